"""The offline tasks: validate, plan --offline, render, schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Config

from hvlab import cli
from hvlab.errors import ConfigError, SpecError
from hvlab.spec.inventory import PHASES

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "labs" / "s2d-2node.yaml"
PW = "Cl1-Test-Pass!"


def test_lab_path_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from hvlab import paths

    # In a checkout the default is labs/s2d-2node.yaml in the current folder.
    monkeypatch.chdir(ROOT)
    assert cli.lab_path() == Path("labs/s2d-2node.yaml")
    assert paths.lab_path()[1] == "default"
    # Paths are taken as given, relative to the current folder; --lab wins over the setting.
    assert cli.lab_path(None, "x/y.yaml") == Path("x/y.yaml")
    assert cli.lab_path({"hvlab": {"lab": "labs/s2d-4node.yaml"}}) == Path("labs/s2d-4node.yaml")
    assert cli.lab_path({"hvlab": {"lab": "/abs/lab.yaml"}}) == Path("/abs/lab.yaml")
    assert cli.lab_path({"hvlab": {"lab": "labs/a.yaml"}}, "b.yaml") == Path("b.yaml")
    config = Config(overrides={"hvlab": {"lab": "labs/s2d-4node.yaml"}})
    assert cli.lab_path(config) == Path("labs/s2d-4node.yaml")
    # In a folder without labs/, the copy that ships inside the package.
    monkeypatch.chdir(tmp_path)
    path, how = paths.lab_path(Config())
    assert how == "default, shipped with hvlab"
    assert path.read_text(encoding="utf-8") == DEFAULT.read_text(encoding="utf-8")
    # A shipped lab by name, unless a file of that name is here.
    named, how = paths.lab_path(None, "s2d-4node")
    assert how == "shipped with hvlab"
    assert named.read_bytes() == (ROOT / "labs" / "s2d-4node.yaml").read_bytes()
    (tmp_path / "s2d-4node").write_text("name: mine\n")
    assert paths.lab_path(None, "s2d-4node") == (Path("s2d-4node"), "given")
    with pytest.raises(ConfigError, match=r"ships no lab of that name .*s2d-2node"):
        paths.lab_path(None, "s2d-9node")


def test_validate_prints_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    cli.validate()
    out, err = capsys.readouterr()
    assert out == (
        "labs/s2d-2node.yaml: lab s2d-2node is valid: 3 VMs, 10 vCPUs, 18.0 GiB memory, "
        "2.4 TiB disk (+1 HA VM inside the cluster)\n"
    )
    assert err == ""


def test_validate_prints_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "de.yaml"
    path.write_text(DEFAULT.read_text().replace("locale: en-US", "locale: de-DE"))
    cli.validate(None, str(path))
    out, err = capsys.readouterr()
    assert "lab s2d-2node is valid" in out
    assert err.startswith("warning: locale de-DE")


def test_validate_raises_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(DEFAULT.read_text().replace("cpus: 4,", "cpus: 0,"))
    with pytest.raises(SpecError) as info:
        cli.validate(None, str(path))
    assert info.value.problems[0].startswith("defaults.node.cpus (line")


def test_plan_offline_json(capsys: pytest.CaptureFixture[str]) -> None:
    cli.plan(None, as_json=True, offline=True)
    doc = json.loads(capsys.readouterr().out)
    assert doc["lab"] == "s2d-2node" and doc["offline"] is True
    assert [p["name"] for p in doc["phases"]] == PHASES
    assert PHASES == [
        "switches",
        "NAT",
        "folders",
        "disks",
        "VMs",
        "NICs",
        "boot",
        "domain",
        "features",
        "cluster",
        "S2D",
        "volumes",
        "HA VM",
    ]
    by = {p["name"]: p["resources"] for p in doc["phases"]}
    assert [r["name"] for r in by["switches"] if r["kind"] == "switch"] == [
        "s2d-2node-lab",
        "s2d-2node-storage1",
        "s2d-2node-storage2",
    ]
    assert by["NAT"] == []
    disks = [r for r in by["disks"] if "-data" in r["name"]]
    assert len(disks) == 8 and all("256.0 GiB dynamic" in r["detail"] for r in disks)
    assert [r["name"] for r in by["VMs"]] == ["dc01", "hvhost01", "hvhost02"]
    assert len(by["NICs"]) == 7
    assert by["boot"][0]["name"] == "dc01"  # the DC boots first
    assert by["S2D"] == [
        {"kind": "pool", "name": "S2D on hvcluster", "detail": "8 disks, cache disabled (R-62)"}
    ]
    assert by["volumes"][0]["name"] == "C:\\ClusterStorage\\Volume01"
    assert by["HA VM"][0]["name"] == "havm01"
    for phase in doc["phases"]:
        for res in phase["resources"]:
            assert set(res) == {"kind", "name", "detail"}


def test_plan_offline_text_and_config(capsys: pytest.CaptureFixture[str]) -> None:
    cli.plan({"hvlab": {"lab": "labs/s2d-4node.yaml"}}, offline=True)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("Plan for lab s2d-4node (offline: no host asked")
    numbered = [line for line in lines if line[:2].strip().isdigit()]
    assert [line.split(". ", 1)[1] for line in numbered] == PHASES
    assert "      (nothing)" in out  # no NAT in this lab
    assert "+ vm              s2d04" in out


def test_plan_lists_nat_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    cli.plan(None, lab=str(ROOT / "labs" / "example-full.yaml"), as_json=True, offline=True)
    doc = json.loads(capsys.readouterr().out)
    nat = next(p for p in doc["phases"] if p["name"] == "NAT")["resources"]
    assert nat == [
        {"kind": "nat", "name": "example-full-lab", "detail": "NAT for 10.40.0.0/24 (R-73)"}
    ]


def test_schema_is_json_schema_with_aliases(capsys: pytest.CaptureFixture[str]) -> None:
    cli.schema()
    doc = json.loads(capsys.readouterr().out)
    assert doc["title"] == "hvlab lab file"
    assert doc["additionalProperties"] is False
    assert {"name", "host", "switches", "domain", "vms", "cluster", "volumes"} <= set(
        doc["properties"]
    )
    vm = doc["$defs"]["VM"]["properties"]
    assert "memory" in vm and "memory_bytes" not in vm
    # `name` defaults to the file name, so a file may leave it out
    assert set(doc["required"]) == {
        "host",
        "switches",
        "domain",
        "vms",
        "cluster",
        "volumes",
    }


def test_render_writes_files_and_prints_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HVLAB_ADMIN_PASSWORD", PW)
    monkeypatch.setenv("HVLAB_DSRM_PASSWORD", "Dsrm-Passw0rd")
    monkeypatch.delenv("HVLAB_DOMAIN_PASSWORD", raising=False)
    cli.render(None, out=str(tmp_path / "r"))
    out = capsys.readouterr().out
    assert out.startswith("wrote 6 files for 3 VMs of lab s2d-2node to ")
    assert PW not in out
    assert (tmp_path / "r" / "hvhost02" / "unattend.xml").is_file()
    for path in (tmp_path / "r").rglob("*"):
        if path.is_file():
            assert PW not in path.read_text(encoding="utf-8")


def test_render_into_a_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HVLAB_ADMIN_PASSWORD", PW)
    monkeypatch.setenv("HVLAB_DSRM_PASSWORD", "Dsrm-Passw0rd")
    monkeypatch.delenv("HVLAB_DOMAIN_PASSWORD", raising=False)
    target = tmp_path / "taken"
    target.write_text("x")
    with pytest.raises(ConfigError) as info:
        cli.render(None, out=str(target))
    assert str(info.value) == (
        f"{target} is not a folder (a link or a file); hvlab writes only into folders"
    )
    assert PW not in str(info.value)


def test_render_without_passwords_names_the_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("HVLAB_ADMIN_PASSWORD", "HVLAB_DSRM_PASSWORD", "HVLAB_DOMAIN_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    with pytest.raises(ConfigError, match="HVLAB_ADMIN_PASSWORD"):
        cli.render(None, out=str(tmp_path / "r"))
    assert not (tmp_path / "r").exists()


def test_plan_task_end_to_end() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HVLAB_")}
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "lab.plan", "--offline", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["lab"] == "s2d-2node"
