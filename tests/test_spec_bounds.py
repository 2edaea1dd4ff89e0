"""Every count in a lab file is bounded to what Hyper-V and the lab can use, and the
checks grow with the file no faster than n log n (12,000 switches once took 135 s)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from project import LABS

from hvlab.errors import SpecError
from hvlab.spec import load_lab


def _lab(tmp_path: Path, extra_switches: list[dict]) -> Path:
    doc = yaml.safe_load((LABS / "s2d-2node.yaml").read_text())
    doc["switches"] += extra_switches
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _private(n: int) -> list[dict]:
    return [
        {"name": f"x{i}", "type": "Private", "subnet": f"10.{100 + i // 250}.{i % 250}.0/24"}
        for i in range(n)
    ]


def test_sixteen_switches_are_fine_seventeen_are_not(tmp_path: Path) -> None:
    assert len(load_lab(_lab(tmp_path, _private(13))).switches) == 16
    with pytest.raises(SpecError, match="17 switches; a lab uses at most 16"):
        load_lab(_lab(tmp_path, _private(14)))


def test_thousands_of_switches_are_refused_quickly_and_once(tmp_path: Path) -> None:
    path = _lab(tmp_path, _private(6000))
    start = time.monotonic()
    with pytest.raises(SpecError) as info:
        load_lab(path)
    assert len(info.value.problems) == 1
    assert "6003 switches; a lab uses at most 16 (hvlab limit)" in info.value.problems[0]
    assert time.monotonic() - start < 60


def test_every_overlap_is_found_by_the_sweep(tmp_path: Path) -> None:
    extra = [
        {"name": "wide", "type": "Private", "subnet": "10.20.0.0/16"},
        {"name": "inner1", "type": "Private", "subnet": "10.20.1.0/24"},
        {"name": "apart", "type": "Private", "subnet": "10.30.0.0/24"},
        {"name": "inner2", "type": "Private", "subnet": "10.20.200.0/24"},
        {"name": "same", "type": "Private", "subnet": "10.30.0.0/24"},
    ]
    with pytest.raises(SpecError) as info:
        load_lab(_lab(tmp_path, extra))
    found = sorted(p.split(": ", 1)[1] for p in info.value.problems)
    assert found == [
        "subnet 10.20.1.0/24 overlaps 10.20.0.0/16 of switch wide",
        "subnet 10.20.200.0/24 overlaps 10.20.0.0/16 of switch wide",
        "subnet 10.30.0.0/24 overlaps 10.30.0.0/24 of switch apart",
    ]
