"""A built lab's lifecycle over the wire against the embedded hvsim: whole-lab
checkpoints and restores (R-13, R-130), lab.stop / lab.start, lab.run, lab.connect
and lab.list. The default lab is built once for the module; each test starts from a
copy of that host."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from project import LABS, ROOT
from test_lab_e2e import PASSWORDS, fresh_snapshot

from hvlab import lab as labs
from hvlab import lifecycle, teardown
from hvlab.api import Lab
from hvlab.errors import ConfigError, OwnershipError
from hvlab.session import sim_state_path

LAB_FILE = LABS / "s2d-2node.yaml"
VMS = ("dc01", "hvhost01", "hvhost02")


def _env(monkeypatch: pytest.MonkeyPatch, where: Path) -> None:
    monkeypatch.chdir(where)
    monkeypatch.setenv("HVSIM_TIMESCALE", "0")
    for key in ("HVLAB_HOST", "HVLAB_USER", "HVLAB_PASSWORD", "HVSIM_FAULTS", "HVLAB_HOME"):
        monkeypatch.delenv(key, raising=False)
    for key, value in PASSWORDS.items():
        monkeypatch.setenv(key, value)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The embedded host with the default lab built on it (its .hvlab folder)."""
    where = tmp_path_factory.mktemp("built")
    with pytest.MonkeyPatch.context() as mp:
        _env(mp, where)
        report = labs.up(None, lab=str(LAB_FILE))
        assert report["result"] == "ok"
        yield where / ".hvlab"


@pytest.fixture
def workdir(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(built, tmp_path / ".hvlab")
    _env(monkeypatch, tmp_path)
    return tmp_path


def world(workdir: Path) -> Any:
    from hvsim import persist

    return persist.load(sim_state_path(workdir / ".hvlab"))


def _lab() -> Lab:
    return Lab.load(str(LAB_FILE))


def hvlab(workdir: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    import os

    full = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "hvlab", *args],
        cwd=workdir,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_a_checkpoint_and_restore_cycle_ends_healthy(workdir: Path) -> None:
    lab = _lab()
    up_seconds = json.loads((workdir / ".hvlab" / "sim" / "s2d-2node" / "report.json").read_text())[
        "modelled_clock_seconds"
    ]
    report = lab.checkpoint("base")
    assert report["result"] == "ok"
    found = lab.checkpoints()
    assert [(c["name"], c["complete"], c["vms"]) for c in found] == [("base", True, list(VMS))]
    w = world(workdir)
    for name in VMS:
        vm = w.vm(name)
        # back to Disabled once the checkpoint is taken; the running lab writes
        # to .avhdx files next to its disks.
        assert vm.checkpoint_type == "Disabled" and vm.state == "Running"
        assert [c.name for c in vm.checkpoints] == ["hvlab:s2d-2node:base"]
        assert all(d.path.lower().endswith(".avhdx") for d in vm.drives)
    assert lab.status().healthy, "a lab that ran runs again after its checkpoint"
    with pytest.raises(ConfigError, match="has a checkpoint base already"):
        lab.checkpoint("base")

    # After the checkpoint: a file in a node, the HA VM moved to the other node.
    lab.run("hvhost01", "Set-Content", Path="C:\\after-checkpoint.txt", Value="x")
    owner = lab.status().owner_of("havm01")
    other = "hvhost01" if owner.lower() == "hvhost02" else "hvhost02"
    lab.run("hvhost01", "Move-ClusterVirtualMachineRole", Name="havm01", Node=other)
    assert lab.status().owner_of("havm01").lower() == other

    restored = lab.restore("base")
    assert restored["result"] == "ok"
    status = lab.status()
    assert status.healthy
    assert status.ha_vms["havm01"]["state"] == "Online"
    assert status.owner_of("havm01").lower() == owner.lower(), "where it ran at the checkpoint"
    assert lab.run("hvhost01", "Test-Path", Path="C:\\after-checkpoint.txt") == [False]
    w = world(workdir)
    ha_owner = w.guest(status.owner_of("havm01"))
    assert next(v for v in ha_owner.hyperv.vms if v.name == "havm01").state == "Running"
    for name in VMS:
        assert w.vm(name).checkpoint_type == "Disabled"  # R-13 again after the restore
    # Restoring is a fraction of building: the figure bench/lab.py reports.
    assert 0 < restored["host_seconds"] < up_seconds / 4, (restored["host_seconds"], up_seconds)

    # lab.up on a restored lab finds it complete but for what a reboot resets.
    again = lab.up()
    assert again.ok and {s["step"] for s in again.steps if s["changed"]} <= {"s2d"}

    # lab.down removes the checkpoints (their .avhdx merge back) and then everything.
    down = lab.down()
    assert any(r.startswith("checkpoint hvlab:s2d-2node:base of") for r in down["removed"])
    assert world(workdir).snapshot() == fresh_snapshot()


def test_stop_and_start_in_order(workdir: Path) -> None:
    lab = _lab()
    report = lab.stop()
    order = [s["step"] for s in sorted(report["steps"], key=lambda s: s["start_seconds"])]
    assert order.index("stop:ha") < order.index("stop:cluster") < order.index("stop:hvhost01")
    assert order.index("stop:hvhost02") < order.index("stop:dc01")
    changes = [c for s in report["steps"] for c in s["changes"]]
    assert "Stop-ClusterGroup havm01" in changes and "Stop-Cluster HVCLUSTER" in changes
    assert all("TurnOff" not in c for c in changes), "a clean shutdown, no power cut"
    w = world(workdir)
    assert {w.vm(n).state for n in VMS} == {"Off"}
    assert not lab.status().healthy
    assert lab.stop()["changed"] == 0, "a stopped lab stays as it is"

    started = lab.start()
    order = [s["step"] for s in sorted(started["steps"], key=lambda s: s["start_seconds"])]
    assert order[0] == "start:dc01" and order[-1] == "healthy"
    assert (
        order.index("start:hvhost01") < order.index("start:cluster") < order.index("start:havm01")
    )
    assert lab.status().healthy


def test_restore_refuses_what_it_cannot_do_whole(workdir: Path) -> None:
    lab = _lab()
    with pytest.raises(ConfigError, match="has no checkpoint nope"):
        lab.restore("nope")
    with pytest.raises(ConfigError, match="must be 1-48 letters"):
        lab.checkpoint("no spaces")
    # A checkpoint that one VM lacks (hvlab never makes one; a person might).
    lab.stop()
    from hvsim import persist
    from hvsim.executor import Command, run_pipeline

    path = sim_state_path(workdir / ".hvlab")
    w = persist.load(path)
    for args in (
        [("Name", "dc01"), ("CheckpointType", "Production")],
        [("Name", "dc01"), ("SnapshotName", "hvlab:s2d-2node:half")],
    ):
        name = "Set-VM" if args[1][0] == "CheckpointType" else "Checkpoint-VM"
        run_pipeline(w, w.host, "HV01\\Administrator", [Command(name, args)], None)
    persist.save(w, path)
    with pytest.raises(ConfigError, match=r"lacks hvhost01, hvhost02.*never restored alone"):
        lab.restore("half")
    assert [c["complete"] for c in lab.checkpoints()] == [False]


def test_run_and_connect_from_the_command_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hvlab import cli

    run = hvlab(workdir, "lab.run", "--vm", "hvhost01", "Get-ClusterNode", "--json")
    assert run.returncode == 0, run.stderr
    nodes = json.loads(run.stdout)
    assert sorted((n["Name"], n["State"]) for n in nodes) == [
        ("HVHOST01", "Up"),
        ("HVHOST02", "Up"),
    ]
    refused = hvlab(workdir, "lab.run", "--vm", "dc01", "Get-Service", "--param", "Name=[a, b]")
    assert refused.returncode == 2 and "only scalars" in refused.stderr, refused.stderr

    capsys.readouterr()
    cli.run_in_vm(None, vm="dc01", cmdlet="Get-Service", params=["Name=NTDS"], lab=str(LAB_FILE))
    text = capsys.readouterr().out
    assert "Running" in text and "NTDS" in text
    # Values are YAML scalars: `false` is a Boolean, not the text "false".
    assert lifecycle_params(["Recurse=false", "Depth=3", "Name='3'", "Filter=null"]) == {
        "Recurse": False,
        "Depth": 3,
        "Name": "3",
        "Filter": None,
    }
    for bad in (["no-equals"], ["Name=1", "Name=2"], ["1x=3"]):
        with pytest.raises(ConfigError):
            lifecycle_params(bad)
    with pytest.raises(ConfigError, match="not a VM of lab s2d-2node"):
        cli.run_in_vm(None, vm="dc99", cmdlet="Get-Service", lab=str(LAB_FILE))
    with pytest.raises(ConfigError, match="not a cmdlet name"):
        cli.run_in_vm(None, vm="dc01", cmdlet="Get-Service; Stop-Computer", lab=str(LAB_FILE))

    capsys.readouterr()
    cli.connect(None, vm="hvhost02", lab=str(LAB_FILE), as_json=True)
    out = capsys.readouterr()
    info = json.loads(out.out)
    assert info["console"] == 'vmconnect.exe HV01 "hvhost02"'
    assert (
        info["powershell_direct"]
        == "Enter-PSSession -VMName hvhost02 -Credential CORP\\Administrator"
    )
    assert info["address"] == "10.10.0.12" and info["state"] == "Running"
    assert PASSWORDS["HVLAB_ADMIN_PASSWORD"] not in out.out + out.err
    cli.connect(None, vm="dc01", lab=str(LAB_FILE))
    human = capsys.readouterr().out
    assert "vmconnect.exe HV01" in human and "10.10.0.10" in human


def lifecycle_params(items: list[str]) -> dict[str, Any]:
    from hvlab.access import parse_params

    return parse_params(items)


def test_list_shows_every_lab_by_its_mark(workdir: Path) -> None:
    from hvsim import persist
    from hvsim.executor import Command, run_pipeline

    path = sim_state_path(workdir / ".hvlab")
    w = persist.load(path)

    def host(name: str, **params: Any) -> None:
        run_pipeline(w, w.host, "HV01\\Administrator", [Command(name, list(params.items()))], None)

    # Another lab's folder, with a VM and a switch that carry its mark.
    host("New-Item", ItemType="Directory", Path="D:\\labs\\other")
    host("Set-Content", Path="D:\\labs\\other\\.hvlab-lab", Value="other")
    host("New-VM", Name="web01", Generation=2, NoVHD=True, Path="D:\\labs\\other")
    host("Set-VM", Name="web01", Notes="hvlab:other\nCreated by hvlab for lab other.")
    host("New-VMSwitch", Name="other-lan", SwitchType="Private", Notes="hvlab:other")
    holder = {
        "lab": "other",
        "controller": "ci-runner-2",
        "pid": 77,
        "user": "bob",
        "command": "lab.restore",
        "since": "2026-01-05T08:00:00Z",
        "heartbeat": "2026-01-05T08:00:00Z",
        "token": "feedfacefeedface",
    }
    host("New-Item", ItemType="File", Path="D:\\labs\\other\\.hvlab-lock", Value=json.dumps(holder))
    persist.save(w, path)

    listed = hvlab(workdir, "lab.list", "--json")
    assert listed.returncode == 0, listed.stderr
    found = {e["lab"]: e for e in json.loads(listed.stdout)}
    assert set(found) == {"other", "s2d-2node"}
    assert found["s2d-2node"]["vm_count"] == 3
    assert found["s2d-2node"]["states"] == {"Running": 3}
    assert found["s2d-2node"]["folder"] == "C:\\hvlab\\s2d-2node"
    assert found["other"]["vm_count"] == 1 and found["other"]["states"] == {"Off": 1}
    assert found["other"]["folder"] == "D:\\labs\\other"
    assert found["other"]["switches"] == ["other-lan"]
    assert "lab.restore by bob on controller ci-runner-2 (pid 77)" in found["other"]["lock"]
    assert found["s2d-2node"]["lock"] is None
    text = hvlab(workdir, "lab.list")
    assert "s2d-2node" in text.stdout and "3 VM(s): 3 Running" in text.stdout

    # The same VM names in another lab: refused, naming the lab that owns them.
    copy = workdir / "twin.yaml"
    copy.write_text(
        LAB_FILE.read_text()
        .replace("name: s2d-2node", "name: twin")
        .replace("root: C:\\hvlab\\s2d-2node", "root: C:\\hvlab\\twin")
    )
    with pytest.raises(OwnershipError, match="belongs to lab 's2d-2node'"):
        labs.up(None, lab=str(copy))


def test_down_removes_checkpoints_of_a_stopped_lab(workdir: Path) -> None:
    lab = _lab()
    lab.stop()
    lab.checkpoint("cold")
    w = world(workdir)
    assert {w.vm(n).state for n in VMS} == {"Off"}, "a stopped lab stays stopped"
    assert any(p.lower().endswith("\\snapshots") for p in _dirs(w, "C:\\hvlab\\s2d-2node")), (
        "Hyper-V keeps the checkpoint's configuration there"
    )
    teardown.down(None, lab=str(LAB_FILE), yes=True)
    assert world(workdir).snapshot() == fresh_snapshot()


def _dirs(w: Any, root: str) -> list[str]:
    node = w.host.fs.node(root)
    return [root + "\\" + "\\".join(parts) for parts, n in node.walk() if not hasattr(n, "content")]


def test_the_tasks_are_listed(workdir: Path) -> None:
    listing = hvlab(workdir, "--list")
    for task in (
        "lab.checkpoint",
        "lab.restore",
        "lab.checkpoints",
        "lab.stop",
        "lab.start",
        "lab.run",
        "lab.connect",
        "lab.list",
    ):
        assert task in listing.stdout, task
    assert ROOT.is_dir()
    assert lifecycle.checkpoint_label("a", "b") == "hvlab:a:b"


def test_one_session_checkpoints_and_restores(workdir: Path) -> None:
    """As the pytest plugin does (--hvlab-restore): one host session for everything."""
    lab = _lab()
    with lab.connected():
        lab.checkpoint("session")
        lab.run("dc01", "Set-Content", Path="C:\\later.txt", Value="x")
        assert lab.restore("session")["result"] == "ok"
        assert lab.status().healthy
        assert lab.run("dc01", "Test-Path", Path="C:\\later.txt") == [False]
