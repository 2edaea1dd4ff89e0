"""The model and the catalog agree: every cmdlet hvsim implements is a real cmdlet,
registered under the catalog's spelling (the binder hands handlers that spelling),
and every parameter a handler declares it honours is one the cmdlet has."""

from __future__ import annotations

import pytest

from hvsim import registry
from hvsim.catalog import catalog

ENTRIES = registry.implemented()


def test_model_implements_something() -> None:
    assert ENTRIES, "hvsim.registry.implemented() is empty: no cmdlet family registered"


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_registered_under_catalog_spelling(entry: registry.Entry) -> None:
    cat = catalog()
    canonical = cat.resolve_name(entry.name)
    assert canonical is not None, f"{entry.name} is not a cmdlet in the catalog"
    assert canonical == entry.name, (
        f"registered as {entry.name!r}; the catalog (and so the binder) spells it {canonical!r}"
    )


@pytest.mark.parametrize(
    "entry", [e for e in ENTRIES if e.params is not None], ids=lambda e: e.name
)
def test_declared_params_exist(entry: registry.Entry) -> None:
    cmd = catalog().get(entry.name)
    assert cmd is not None, f"{entry.name} is not a cmdlet in the catalog"
    # cmd.params holds the cmdlet's own parameters (WhatIf/Confirm where it has
    # them) plus the common parameters, all under their canonical names: a handler
    # must declare those, not aliases, since binding hands it canonical names.
    unknown = sorted(p for p in entry.params or () if p not in cmd.params)
    assert unknown == [], f"{entry.name} declares parameters the cmdlet does not have: {unknown}"


def test_check_can_fail() -> None:
    # The same comparison as above, on names that are not the catalog's.
    cat = catalog()
    assert cat.resolve_name("Get-Vm") == "Get-VM"  # resolves, but is not the spelling
    assert cat.resolve_name("Get-VirtualMachine") is None
    cmd = cat.get("Get-VM")
    assert cmd is not None
    assert "VMName" not in cmd.params  # an alias of Name, not a parameter name
    assert "Name" in cmd.params and "ErrorAction" in cmd.params
