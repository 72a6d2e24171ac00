"""The HTML report in a real browser: headless Chromium renders every page from ``file://``.

Chromium is Debian's ``chromium`` package; the set-up installs it with apt-get when it is absent
and the tests skip, saying why, only where it cannot be installed. Pages come from the executed
notebooks of ``build/notebooks/`` when ``make figures`` has run, else from the committed notebooks
(no outputs, but every markdown cell with its math). For each page the test asserts that MathJax
typeset the math (``mjx-container`` elements in the DOM after scripts ran), that every relative link
and anchor resolves, and that the page requested no network URL (Chromium's net log, with every
host name mapped to nowhere so nothing can leave the machine anyway).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from tools import report
from tools.runner import DEFAULT_EXECUTED, DEFAULT_FIGURES, NOTEBOOK_DIR, NOTEBOOK_GLOB

pytestmark = pytest.mark.slow
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob(NOTEBOOK_GLOB))

#: Flags that keep Chromium's own background traffic (updates, sync, accounts) out of the net log.
FLAGS = [
    "--headless",
    "--no-sandbox",  # runs as root on these machines
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]
#: Where the screenshots are copied for a closing note (unset: they stay in the test's temporary folder).
SCREENSHOTS = os.environ.get("SDSL_SCREENSHOTS")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium is not installed and cannot be installed here (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if done.returncode != 0:
            pytest.skip(f"chromium could not be installed ({' '.join(cmd)}: {done.stderr.strip()[-200:]})")
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def chromium() -> str:
    return _chromium()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A report folder built from the executed notebooks, or from the committed ones."""
    tmp = tmp_path_factory.mktemp("report")
    executed, figures = DEFAULT_EXECUTED, DEFAULT_FIGURES
    if len(list(executed.glob(NOTEBOOK_GLOB))) < len(NOTEBOOKS):
        executed, figures = tmp / "notebooks", tmp / "no-figures"
        executed.mkdir()
        for nb in NOTEBOOKS:
            shutil.copy(nb, executed / nb.name)
    index = report.build_report(executed, tmp / "report", figures)
    return index.parent


def _render(chromium: str, page: Path, tmp: Path) -> tuple[str, list[str]]:
    """The DOM after scripts ran, and the network URLs the page itself requested."""
    netlog = tmp / f"{page.stem}.netlog.json"
    cmd = [chromium, *FLAGS, "--virtual-time-budget=20000", f"--log-net-log={netlog}", "--dump-dom", page.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-500:]
    log = json.loads(netlog.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    requested = [
        e["params"]["url"]
        for e in log["events"]
        if e["type"] == start_job
        # Chromium's own requests have no origin; a page's carry the file:// page as initiator.
        and e.get("params", {}).get("initiator") != "not an origin"
        and urlparse(e["params"].get("url", "")).scheme in ("http", "https", "ws", "wss")
    ]
    return done.stdout, requested


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for key in ("href", "src"):
            if attrs.get(key) and not (tag == "link" and attrs.get("rel") == "icon"):
                self.refs.append(attrs[key])


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text())
    return parser


def _broken_links(page: Path) -> list[str]:
    broken = []
    for ref in _parse(page).refs:
        url = urlparse(ref)
        if url.scheme in ("data", "mailto", "http", "https"):
            continue  # data: is inline; outward links are for the reader, not requests (checked above)
        target = page if not url.path else (page.parent / unquote(url.path)).resolve()
        if not target.exists() or not target.is_relative_to(page.parent):
            broken.append(ref)
        elif url.fragment and target.suffix == ".html":
            # Browsers look the fragment up as written, then percent-decoded (nbconvert writes encoded ids).
            ids = _parse(target).ids
            if url.fragment not in ids and unquote(url.fragment) not in ids:
                broken.append(ref)
    return broken


def test_detector_sees_a_network_request(chromium, tmp_path):
    # The net-log check must be able to fail: a page with a CDN script is caught.
    page = tmp_path / "cdn.html"
    page.write_text('<html><body><script src="https://cdn.invalid/x.js"></script></body></html>')
    _, requested = _render(chromium, page, tmp_path)
    assert requested == ["https://cdn.invalid/x.js"]


def test_every_page_typesets_math_resolves_links_and_stays_offline(chromium, built, tmp_path):
    pages = sorted(built.glob("*.html"))
    assert [p.name for p in pages if p.name != "index.html"] == [f"{nb.stem}.html" for nb in NOTEBOOKS]
    for page in pages:
        dom, requested = _render(chromium, page, tmp_path)
        assert requested == [], (page.name, requested)
        assert not _broken_links(page), (page.name, _broken_links(page))
        if page.name != "index.html":
            assert "mjx-container" in dom, f"{page.name}: MathJax did not typeset"
            assert "<mjx-merror" not in dom, f"{page.name}: a TeX error"
            assert 'href="index.html"' in dom, f"{page.name}: no link back to the index"


def test_screenshots_of_the_index_and_two_pages(chromium, built, tmp_path):
    pages = [built / "index.html", *sorted(built.glob("0[2-5]_*.html"))[:2]]
    for page in pages:
        shot = tmp_path / f"report_{page.stem}.png"
        cmd = [chromium, *FLAGS, "--virtual-time-budget=20000", "--window-size=1280,1600", f"--screenshot={shot}"]
        subprocess.run([*cmd, page.as_uri()], capture_output=True, timeout=120, check=True)
        assert shot.stat().st_size > 10_000, shot
        if SCREENSHOTS:
            Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(SCREENSHOTS) / shot.name)
