"""Sizes with units, and the derived MAC addresses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hvlab.spec import load_lab
from hvlab.spec.mac import HYPERV_PREFIX, dashed, derive_mac
from hvlab.spec.units import GIB, KIB, MIB, TIB, format_size, parse_size

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (0, 0),
        (1024, 1024),
        ("4096", 4096),
        ("512MB", 512 * MIB),
        ("512 MB", 512 * MIB),
        ("256GB", 256 * GIB),  # PowerShell: GB is 1024^3
        ("256gb", 256 * GIB),
        ("4GiB", 4 * GIB),
        ("1TB", TIB),
        ("64TiB", 64 * TIB),
        ("1.5GB", 1536 * MIB),
        ("2KB", 2 * KIB),
        ("10B", 10),
        (" 8GiB ", 8 * GIB),
    ],
)
def test_parse_size(text: object, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "size -1 is negative"),
        ("-4GB", "size -4GB is negative"),
        ("4G", "unknown size unit 'G' in '4G'"),
        ("4 gigs", "unknown size unit 'gigs'"),
        ("lots", "'lots' is not a size"),
        ("1.5", "is not a whole number of bytes"),
        ("0.3KB", "is not a whole number of bytes"),
        (1.5, "a size must be a whole number of bytes or carry a unit"),
        (True, "a size must be a number of bytes or a string"),
        (None, "a size must be a number of bytes or a string"),
        ([1], "a size must be a number of bytes or a string"),
        ("1e9", "is not a size"),
        ("0x10GB", "is not a size"),
    ],
)
def test_parse_size_refuses(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_size(value)


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (MIB, "1.0 MiB"),
        (18 * GIB, "18.0 GiB"),
        (2 * TIB + 100 * GIB, "2.1 TiB"),
    ],
)
def test_format_size(n: int, text: str) -> None:
    assert format_size(n) == text


def test_mac_is_deterministic_and_has_the_hyperv_prefix() -> None:
    a = derive_mac("lab", "hvhost01", "Management", set())
    assert a == derive_mac("LAB", "HVHOST01", "management", set())  # names ignore case
    assert re.fullmatch(r"00155D[0-9A-F]{6}", a)
    assert a.startswith(HYPERV_PREFIX)
    assert derive_mac("lab", "hvhost01", "Storage1", set()) != a
    assert derive_mac("other", "hvhost01", "Management", set()) != a


def test_mac_collision_moves_on_deterministically() -> None:
    first = derive_mac("lab", "vm", "nic", set())
    second = derive_mac("lab", "vm", "nic", {first})
    assert second != first
    assert second == derive_mac("lab", "vm", "nic", {first})


def test_macs_unique_across_a_big_lab() -> None:
    taken: set[str] = set()
    for vm in range(200):
        for nic in range(8):
            mac = derive_mac("big", f"vm{vm}", f"nic{nic}", taken)
            assert mac not in taken
            taken.add(mac)
    assert len(taken) == 1600


def test_dashed_form_for_unattend() -> None:
    assert dashed("00155D01020A") == "00-15-5D-01-02-0A"


def test_lab_macs_are_stable_between_loads() -> None:
    one = load_lab(ROOT / "labs" / "s2d-2node.yaml")
    two = load_lab(ROOT / "labs" / "s2d-2node.yaml")
    macs = [n.mac for vm in one.vms for n in vm.nics]
    assert macs == [n.mac for vm in two.vms for n in vm.nics]
    assert len(set(macs)) == len(macs)
    assert one.vms[1].nics[0].mac_dashed == dashed(one.vms[1].nics[0].mac or "")


def test_given_mac_is_normalised() -> None:
    lab = load_lab(ROOT / "labs" / "example-full.yaml")
    assert lab.vm("node01").management_nic.mac == "00155D400011"
