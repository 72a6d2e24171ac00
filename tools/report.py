"""The HTML report of the executed notebooks (``make report``): offline, navigable, self-contained.

``build/report/`` holds one page per executed notebook, an ``index.html``, the figures the
notebooks listed (copied into ``figures/``) and MathJax (:mod:`tools.mathjax`), so the folder can be
copied or opened from ``file://`` on a machine with no network. Pages use the ``sdsl_report``
nbconvert template (``tools/templates/``): JupyterLab's styles, math typeset by the local MathJax,
no require.js or CDN script, a navigation bar (index, previous, next) at top and bottom and a table
of contents of the notebook's headings. A page whose notebook printed to stderr (a warning) is
named on the console, so the cause gets fixed rather than shipped.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

from sdsl_lib.io import atomic_write_text
from tools import fingerprint as fp
from tools import mathjax
from tools.runner import DEFAULT_EXECUTED, DEFAULT_FIGURES, DEFAULT_REPORT, NOTEBOOK_GLOB

__all__ = ["TEMPLATE_DIR", "build_report", "stderr_outputs"]

TEMPLATE_DIR = Path(__file__).with_name("templates")
_TOC_MARK = "<!--sdsl-toc-->"
_HEADING = re.compile(r'<h([1-3]) id="([^"]+)">(.*?)<a class="anchor-link"', re.S)


def _title(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return ""


def _kind(nb) -> str:
    # Notebooks with a PROFILE parameter read the ladder this project measured: they test the
    # paper's claims on our models rather than reproduce its printed numbers.
    # A notebook whose first text cell opens with "Beyond the paper" builds on it (planner, engines).
    if "PROFILE" in fp.parameter_names(nb):
        return "tests the paper on our models"
    first = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    beyond = any(line.startswith("Beyond the paper") for line in first.splitlines())
    return "goes beyond the paper" if beyond else "reproduces the paper"


def stderr_outputs(nb) -> list[str]:
    """First line of every stderr stream in an executed notebook (warnings that reach the page)."""
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "stream" and out.get("name") == "stderr" and out.get("text", "").strip():
                found.append(out["text"].strip().splitlines()[0][:200])
    return found


def _nav(pages: list[tuple[str, str]], i: int | None) -> str:
    """Index, previous and next links (``pages`` are (file, label) pairs; ``i`` this page, None: the index)."""
    links = ['<a href="index.html">Index</a>']
    if i is not None:
        if i > 0:
            links.append(f'<a href="{pages[i - 1][0]}" rel="prev">&larr; {html.escape(pages[i - 1][1])}</a>')
        if i + 1 < len(pages):
            links.append(f'<a href="{pages[i + 1][0]}" rel="next">{html.escape(pages[i + 1][1])} &rarr;</a>')
    return " ".join(f"<span>{link}</span>" for link in links)


def _toc(body: str) -> str:
    items = [
        (int(level), anchor, re.sub(r"<[^>]+>", "", text).strip()) for level, anchor, text in _HEADING.findall(body)
    ]
    if len(items) < 2:
        return ""
    lines = ['<details class="sdsl-toc" open><summary>Contents</summary><ul>']
    lines += [
        f'<li style="margin-left:{(level - 1) * 1.2}em"><a href="#{anchor}">{text}</a></li>'
        for level, anchor, text in items
    ]
    return "\n".join(lines + ["</ul></details>"])


def _figure_links(record: dict, figures_dir: Path, report_dir: Path) -> str:
    links = []
    for name in record.get("figures", []):
        source = figures_dir / name
        if not source.exists():
            continue
        target = report_dir / "figures" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        if name.endswith(".png"):
            links.append(f'<a href="figures/{html.escape(name)}">{html.escape(Path(name).stem)}</a>')
    return ", ".join(links)


def _page(exporter, nb, resources: dict) -> str:
    body, _ = exporter.from_notebook_node(nb, resources={"sdsl": {**resources, "toc": _TOC_MARK}})
    return body.replace(_TOC_MARK, _toc(body), 1)


def _index(rows: list[str]) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>SDSL companion: executed notebooks</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:75em}td,th{padding:.3em .8em;text-align:left;"
        "vertical-align:top;border-bottom:1px solid #ddd}</style></head><body>\n"
        "<h1>SDSL companion: executed notebooks</h1>\n"
        "<p>Notebooks 01&ndash;08 reproduce the derivations, tables and figures of <i>Speculative Decoding "
        "Scaling Laws</i> (arXiv:2603.11053) from its printed numbers; notebooks 10&ndash;13 test its claims on "
        "the draft/target ladder this project trained and timed. Regenerate with <code>make figures</code>; this "
        "folder is self-contained and works offline.</p>\n"
        "<table><tr><th>Notebook</th><th>Title</th><th>What it does</th><th>Run time</th><th>Figures</th></tr>\n"
        + "\n".join(rows)
        + "\n</table></body></html>\n"
    )


def build_report(
    executed_dir: Path = DEFAULT_EXECUTED, report_dir: Path = DEFAULT_REPORT, figures_dir: Path = DEFAULT_FIGURES
) -> Path:
    """Convert every executed notebook to an offline HTML page, copy its figures, write the index."""
    import nbformat
    from nbconvert import HTMLExporter

    executed_dir, report_dir, figures_dir = Path(executed_dir), Path(report_dir), Path(figures_dir)
    notebooks = sorted(executed_dir.glob(NOTEBOOK_GLOB))
    if not notebooks:
        raise FileNotFoundError(f"no executed notebooks in {executed_dir}: run `make figures` first")
    report_dir.mkdir(parents=True, exist_ok=True)
    script = mathjax.install(report_dir)
    exporter = HTMLExporter(template_name="sdsl_report", extra_template_basedirs=[str(TEMPLATE_DIR)])
    pages = [(f"{p.stem}.html", p.stem) for p in notebooks]
    rows = []
    for i, path in enumerate(notebooks):
        nb = nbformat.read(str(path), as_version=4)
        for line in stderr_outputs(nb):
            print(f"  warning: {path.stem} prints to stderr: {line}")
        atomic_write_text(report_dir / pages[i][0], _page(exporter, nb, {"mathjax": script, "nav": _nav(pages, i)}))
        stamp = executed_dir / ".stamps" / f"{path.stem}.json"
        record = json.loads(stamp.read_text()) if stamp.exists() else {}
        failed = any(
            o.get("output_type") == "error" for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
        )
        status = "failed" if failed else (f"{record['seconds']} s" if "seconds" in record else "ran")
        rows.append(
            f'<tr><td><a href="{pages[i][0]}">{html.escape(path.stem)}</a></td><td>{html.escape(_title(nb))}</td>'
            f"<td>{_kind(nb)}</td><td>{status}</td><td>{_figure_links(record, figures_dir, report_dir)}</td></tr>"
        )
    index = report_dir / "index.html"
    atomic_write_text(index, _index(rows))
    return index
