"""The README's verdict table is the one the results JSON gives (issue: verdicts cannot drift)."""

import json

from tools import verdict_table as vt


def test_readme_verdicts_match_the_results():
    assert vt.readme_block(vt.README.read_text()) == vt.render()


def test_every_measured_verdict_reaches_the_table():
    table = vt.render()
    n = sum(len(json.loads(p.read_text()).get("verdicts") or []) for p in vt.RESULTS.glob("1[0-9]_*.json"))
    assert n > 0 and table.count("\n") - 1 == n
    for outcome in ("supported", "contradicted", "inconclusive"):
        assert f"**{outcome}**" in table


def test_a_changed_outcome_is_caught(tmp_path):
    for p in vt.RESULTS.glob("1[0-9]_*.json"):
        (tmp_path / p.name).write_text(p.read_text())
    assert vt.render(tmp_path) == vt.render()
    src = next(p for p in sorted(tmp_path.glob("*.json")) if json.loads(p.read_text()).get("verdicts"))
    data = json.loads(src.read_text())
    first = data["verdicts"][0]
    first["outcome"] = "supported" if first["outcome"] != "supported" else "contradicted"
    src.write_text(json.dumps(data))
    assert vt.render(tmp_path) != vt.render()
