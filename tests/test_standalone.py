"""Nothing hvlab or hvsim needs at run time lives outside the package."""

from __future__ import annotations

import re

import pytest
from project import ROOT

RUNTIME = ["hvlab", "hvsim", "templates", "unattend", "labs", "tasks.py", "setup.py", "invoke.yaml"]
REFERENCE = ROOT.parent / "shared" / "reference" / "powershell-cmdlets.json"


def _runtime_files() -> list:
    files = []
    for name in RUNTIME:
        path = ROOT / name
        files.extend(
            [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        )
    return [p for p in files if "__pycache__" not in p.parts and p.suffix != ".json"]


def test_no_runtime_file_refers_to_the_development_folder() -> None:
    pattern = re.compile(r"\.\./shared|shared/reference|shared/docs")
    offenders = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in _runtime_files()
        for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if pattern.search(line)
    ]
    assert _runtime_files(), "no run-time files found"
    assert offenders == []


def test_the_packaged_catalog_is_the_reference_copy() -> None:
    from hvsim import catalog

    packaged = catalog.packaged_path()
    assert packaged.is_file() and packaged.is_relative_to(ROOT / "hvsim")
    if not REFERENCE.is_file():
        pytest.skip("no reference copy beside the project to compare with (a plain clone)")
    assert packaged.read_bytes() == REFERENCE.read_bytes()


def test_the_default_catalog_is_the_packaged_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from hvsim import catalog

    monkeypatch.delenv(catalog.ENV_VAR, raising=False)
    assert catalog.default_path() == catalog.packaged_path()
    monkeypatch.setenv(catalog.ENV_VAR, "/nonexistent/catalog.json")
    with pytest.raises(catalog.CatalogError, match="Check the file HVSIM_CATALOG names"):
        catalog.load()
