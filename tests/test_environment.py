"""One source of truth for dependencies: environment.yml installs exactly pyproject's list."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    # The conda environment installs the project itself (with its test extra) through pip...
    assert "-e .[test]" in pip_section
    # ...and its conda-side packages, if any, must be a subset of pyproject's dependencies.
    conda_pkgs = {_name(d) for d in env["dependencies"] if isinstance(d, str) and not d.startswith("python")} - {"pip"}
    declared = {_name(r) for r in project["dependencies"]} | {
        _name(r) for r in project["optional-dependencies"]["test"]
    }
    assert conda_pkgs <= declared, conda_pkgs - declared


def test_torch_requirement_is_bounded():
    # An unbounded torch requirement makes pip download GBs of CUDA wheels on these machines.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_req = next(r for r in project["dependencies"] if _name(r) == "torch")
    assert "<" in torch_req
