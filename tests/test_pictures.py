"""Pictures: the lab's topology (lab.render --diagram) and a run's timeline
(lab.report --timeline) render, hold what they show, and fail clearly."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from project import LABS

from hvlab import cli, pictures
from hvlab.errors import ConfigError
from hvlab.spec import load_lab

SVG = "{http://www.w3.org/2000/svg}"


def _svg_text(path: Path) -> str:
    root = ET.parse(path).getroot()  # a well-formed SVG document
    assert root.tag == f"{SVG}svg"
    return " ".join(t.text or "" for t in root.iter(f"{SVG}text"))


@pytest.mark.parametrize("name", ["s2d-2node", "s2d-4node", "example-full", "s2d-2node-beside"])
def test_topology_shows_every_switch_vm_nic_and_volume(name: str, tmp_path: Path) -> None:
    lab = load_lab(LABS / f"{name}.yaml")
    out = pictures.topology(lab, tmp_path / "t.svg")
    text = _svg_text(out)
    for sw in lab.switches:
        assert sw.host_name in text and str(sw.subnet) in text
    for vm in lab.vms:
        assert vm.host_name in text  # the name on the host ...
        if vm.host_name != vm.name:
            assert f"computer name {vm.name}" in text  # ... and the guest's
        for nic in vm.nics:
            assert f"{nic.name}: {nic.ip or 'DHCP'}" in text
    for volume in lab.volumes:
        assert volume.csv_path in text
    assert f"{lab.cluster.name}  {lab.cluster.address}" in text
    # Same lab, same picture: the files diff well.
    again = pictures.topology(lab, tmp_path / "u.svg")
    assert again.read_bytes() == out.read_bytes()


def test_render_diagram_task_writes_into_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # No password is needed for a picture.
    for key in ("HVLAB_ADMIN_PASSWORD", "HVLAB_DSRM_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    cli.render(None, lab=str(LABS / "s2d-4node.yaml"), out=str(tmp_path), diagram=True)
    assert (tmp_path / "s2d-4node-topology.svg").is_file()
    assert "wrote the topology of lab s2d-4node" in capsys.readouterr().out


def _report(tmp_path: Path) -> dict:
    steps = [
        ("preflight", "lab", "preflight", 0.0, 1.0, "ok"),
        ("vm:dc01", "dc01", "vm", 1.0, 120.0, "changed"),
        ("vm:hvhost01", "hvhost01", "vm", 1.0, 300.0, "changed"),
        ("boot:hvhost01", "hvhost01", "boot", 301.0, 400.0, "failed"),
        ("cluster", "cluster", "cluster", 0.0, 0.0, "skipped"),
    ]
    return {
        "lab": "s2d-2node",
        "result": "failed",
        "clock": "modelled",
        "steps": [
            {
                "step": n,
                "scope": sc,
                "phase": ph,
                "start_seconds": st,
                "host_seconds": d,
                "status": s,
            }
            for n, sc, ph, st, d, s in steps
        ],
    }


def test_timeline_draws_a_row_per_scope(tmp_path: Path) -> None:
    out = pictures.timeline(_report(tmp_path), tmp_path / "t.svg")
    text = _svg_text(out)
    for scope in ("lab", "dc01", "hvhost01"):
        assert scope in text
    assert "cluster" not in text and "4 steps" in text  # a skipped step is not drawn
    assert "modelled seconds since the run started" in text
    png = pictures.timeline(_report(tmp_path), tmp_path / "t.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_timeline_of_a_real_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hvlab import lab as labs

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HVSIM_TIMESCALE", "0")
    for key in ("HVLAB_HOST", "HVSIM_FAULTS"):
        monkeypatch.delenv(key, raising=False)
    payload = labs.up(None, lab=str(LABS / "s2d-2node.yaml"), as_json=False, yes=True)
    starts = [s["start_seconds"] for s in payload["steps"]]
    assert all(isinstance(x, float) for x in starts) and payload["clock"] == "modelled"
    # Steps that need others start after them: the cluster after every node's roles.
    by_name = {s["step"]: s for s in payload["steps"]}
    roles_end = max(
        s["start_seconds"] + s["host_seconds"] for s in payload["steps"] if s["phase"] == "roles"
    )
    assert by_name["cluster"]["start_seconds"] >= roles_end - 1e-6
    cli.report(None, lab=str(LABS / "s2d-2node.yaml"), timeline=str(tmp_path / "run.svg"))
    text = _svg_text(tmp_path / "run.svg")
    for vm in ("dc01", "hvhost01", "hvhost02", "havm01"):
        assert vm in text


def test_bad_inputs_say_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"\.svg or \.png"):
        pictures.timeline(_report(tmp_path), tmp_path / "t.pdf")
    with pytest.raises(ConfigError, match="is not a folder"):
        pictures.timeline(_report(tmp_path), tmp_path / "nope" / "t.svg")
    with pytest.raises(ConfigError, match="no step timings"):
        pictures.timeline({"steps": [{"step": "x", "status": "ok"}]}, tmp_path / "t.svg")
    report = tmp_path / "r.json"
    report.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read the report"):
        cli.report(None, report_file=str(report))
    with pytest.raises(ConfigError, match=r"run lab\.up first"):
        cli.report(None, report_file=str(tmp_path / "missing.json"))
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ConfigError, match=r"pip install 'hvlab\[pictures\]'"):
        pictures.topology(load_lab(LABS / "s2d-2node.yaml"), tmp_path / "t.svg")
