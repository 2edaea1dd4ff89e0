"""A built lab whose file changed: drift is shown as drift, lab.up names the changes
that need a VM off and makes them only with --allow-restart, cluster nodes one at a
time (R-140, R-141). hvsim refuses the memory change on a running node over the wire.

The default lab is built once per module on the embedded host (timescale 0); each test
starts from a copy of its host state and a lab file whose nodes want 10 GiB.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import pypsrp_wsman
from project import LABS, ROOT
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import TaggedValue

from hvlab import lab as labs
from hvlab import status as lab_status
from hvlab.errors import EXIT_FAILED, ChangesWaiting
from hvsim import persist

GiB = 2**30
PASSWORDS = {
    "HVLAB_ADMIN_PASSWORD": "Adm1n-Xyzzy-7731!",
    "HVLAB_DSRM_PASSWORD": "Dsrm-Plugh-4417!",
}
NODES = ("hvhost01", "hvhost02")


def _clean_env(mp: pytest.MonkeyPatch) -> None:
    for key in ("HVLAB_HOST", "HVLAB_USER", "HVLAB_PASSWORD", "HVSIM_FAULTS", "HVLAB_HOME"):
        mp.delenv(key, raising=False)
    mp.setenv("HVSIM_TIMESCALE", "0")
    for key, value in PASSWORDS.items():
        mp.setenv(key, value)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("built")
    with pytest.MonkeyPatch.context() as mp:
        _clean_env(mp)
        mp.chdir(folder)
        assert labs.up(None)["result"] == "ok"
    yield folder


@pytest.fixture
def workdir(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    _clean_env(monkeypatch)
    shutil.copytree(built / ".hvlab", tmp_path / ".hvlab")
    text = (LABS / "s2d-2node.yaml").read_text(encoding="utf-8")
    wanted = "node: {cpus: 4, memory: 8GiB"
    assert wanted in text
    (tmp_path / "bigger.yaml").write_text(
        text.replace(wanted, "node: {cpus: 4, memory: 10GiB"), encoding="utf-8"
    )
    return tmp_path


def _world(workdir: Path) -> Any:
    return persist.load(workdir / ".hvlab" / "sim" / "host.state")


def _ha_vm(world: Any, name: str = "havm01") -> Any:
    for node in NODES:
        for vm in world.guest(node).hyperv.vms:
            if vm.name == name:
                return vm
    raise AssertionError(f"{name} runs on no node")


def _off_spans(world: Any, node: str, since: float) -> list[tuple[float, float]]:
    """When the node's Windows was down after `since`: from its shutdown (EventLog 6006)
    to its next start (6005), as the guest's System log records them."""
    entries = world.guest(node).events.entries("System") or []
    spans: list[tuple[float, float]] = []
    down: float | None = None
    for e in entries:
        if e.time < since:
            continue
        if e.event_id == 6006:
            down = e.time
        elif e.event_id == 6005 and down is not None:
            spans.append((down, e.time))
            down = None
    assert down is None, f"{node} did not start again"
    return spans


def _cli(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HVLAB_HOST")}
    return subprocess.run(
        [sys.executable, "-m", "hvlab", *args],
        cwd=workdir,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_plan_shows_drift_in_gib_and_exits_0(workdir: Path) -> None:
    done = _cli(workdir, "lab.plan", "--lab", "bigger.yaml")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for node in NODES:
        assert f"vm:{node}" in out
    assert "drift: memory 8 GiB -> 10 GiB static" in out
    assert "needs VM off: restart with --allow-restart" in out
    assert "drained, shut down, changed, started, resumed, storage repaired" in out
    assert "failed" not in out.lower() and "failed" not in done.stderr.lower()

    done = _cli(workdir, "lab.plan", "--lab", "bigger.yaml", "--json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert set(payload["drift"]) == set(NODES)
    for node in NODES:
        assert payload["drift"][node]["drift"] == ["memory 8 GiB -> 10 GiB static (R-05)"]
        assert "--allow-restart" in payload["drift"][node]["to_apply"]
    steps = {s["step"]: s for s in payload["steps"]}
    assert steps["vm:hvhost01"]["status"] == "drift"
    assert not any(s["status"] == "failed" for s in payload["steps"])
    assert steps["vm:dc01"]["drift"] == []


def test_up_without_the_flag_names_the_waiting_changes_and_changes_no_vm(
    workdir: Path,
) -> None:
    world = _world(workdir)
    since = world.clock.now()
    assert {n: world.vm(n).memory_startup for n in NODES} == {n: 8 * GiB for n in NODES}
    with pytest.raises(ChangesWaiting) as caught:
        labs.up(None, lab="bigger.yaml")
    err = caught.value
    assert err.exit_code == EXIT_FAILED
    message = str(err)
    assert "hvhost01: memory 8 GiB -> 10 GiB static" in message
    assert "hvhost02: memory 8 GiB -> 10 GiB static" in message
    assert "--allow-restart" in message
    assert "step vm:" not in message  # drift, not a failed step
    report = err.report  # type: ignore[attr-defined]
    assert report["result"] == "changes-waiting"
    assert report["changed"] == 0
    assert set(report["waiting"]) == set(NODES)
    assert not (workdir / ".hvlab" / "sim" / "s2d-2node" / "diagnostics.json").exists()
    world = _world(workdir)
    for node in NODES:
        vm = world.vm(node)
        assert vm.memory_startup == 8 * GiB and vm.state == "Running"
        assert _off_spans(world, node, since) == []  # not shut down


def test_the_cli_exit_code_says_changes_wait(workdir: Path) -> None:
    done = _cli(workdir, "lab.up", "--lab", "bigger.yaml")
    assert done.returncode == 1
    assert "need a restart for these changes" in done.stderr
    assert "memory 8 GiB -> 10 GiB static" in done.stdout + done.stderr


def test_allow_restart_changes_the_nodes_one_at_a_time(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = _world(workdir)
    since = world.clock.now()
    ha_before = _ha_vm(world)
    started, ha_state = ha_before.started_at, ha_before.state
    assert ha_state == "Running"

    report = labs.up(None, lab="bigger.yaml", allow_restart=True)
    assert report["result"] == "ok"
    restart = next(s for s in report["steps"] if s["step"] == "restart")
    changes = restart["changes"]
    order = [c.split(" (")[0] for c in changes if not c.startswith("Set-PhysicalDisk")]
    assert order == [
        "Suspend-ClusterNode hvhost01 -Drain",
        "Stop-VM hvhost01",
        "Set-VMMemory hvhost01 static 10240 MiB",
        "Start-VM hvhost01",
        "Resume-ClusterNode hvhost01 -Failback Immediate",
        "Suspend-ClusterNode hvhost02 -Drain",
        "Stop-VM hvhost02",
        "Set-VMMemory hvhost02 static 10240 MiB",
        "Start-VM hvhost02",
        "Resume-ClusterNode hvhost02 -Failback Immediate",
    ]

    world = _world(workdir)
    spans = {n: _off_spans(world, n, since) for n in NODES}
    assert all(len(s) == 1 for s in spans.values()), spans  # each restarted once
    (a0, a1), (b0, b1) = spans["hvhost01"][0], spans["hvhost02"][0]
    assert a1 <= b0 or b1 <= a0, f"both nodes were down at once: {spans}"
    for node in NODES:
        assert world.vm(node).memory_startup == 10 * GiB
        assert world.vm(node).state == "Running"
    ha = _ha_vm(world)
    assert ha.state == "Running" and ha.started_at == started  # it moved, never stopped

    capsys.readouterr()
    lab_status.status(None, lab="bigger.yaml", as_json=True)
    status = json.loads(capsys.readouterr().out)
    assert [n["state"] for n in status["cluster"]["nodes"]] == ["Up", "Up"]
    assert status["s2d"]["pool"]["health"] == "Healthy"
    assert {h["state"] for h in status["ha_vms"]} == {"Online"}

    again = labs.up(None, lab="bigger.yaml", allow_restart=True)
    assert again["result"] == "ok" and again["changed"] == 0
    assert not any(s["drift"] for s in again["steps"])


def test_hvsim_refuses_a_memory_change_of_a_running_node_over_the_wire(
    workdir: Path, sim_server: Any
) -> None:
    """R-04, R-05: Hyper-V runs in the node, so its memory changes only while Off."""
    world = _world(workdir)
    assert world.guest("hvhost01").hypervisor_running
    server = sim_server(auth="ntlm", world=world)
    with RunspacePool(pypsrp_wsman(server, "ntlm")) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Set-VMMemory").add_parameter("VMName", "hvhost01")
        ps.add_parameter("StartupBytes", TaggedValue("I64", 10 * GiB))
        ps.invoke()
    assert ps.had_errors
    (err,) = ps.streams.error
    assert str(err).startswith("Failed to modify device 'Memory'.")
    assert err.fq_error == "InvalidState,Microsoft.HyperV.PowerShell.Commands.SetVMMemory"
    assert world.vm("hvhost01").memory_startup == 8 * GiB


def test_help_of_lab_up_names_allow_restart(tmp_path: Path) -> None:
    done = _cli(tmp_path, "--help", "lab.up")
    assert done.returncode == 0, done.stderr
    assert "--allow-restart" in done.stdout
    assert "changes wait for --allow-restart" in " ".join(done.stdout.split())


def test_allow_restart_changes_the_dc_alone_and_ad_answers_after(workdir: Path) -> None:
    """A VM that is not a cluster node (the DC) is shut down cleanly, changed and
    started without any drain; the lab is healthy after and a re-run changes nothing."""
    text = (LABS / "s2d-2node.yaml").read_text(encoding="utf-8")
    wanted = "dc: {cpus: 2, memory: 2GiB}"
    assert wanted in text
    (workdir / "bigger-dc.yaml").write_text(
        text.replace(wanted, "dc: {cpus: 3, memory: 3GiB}"), encoding="utf-8"
    )
    world = _world(workdir)
    since = world.clock.now()

    with pytest.raises(ChangesWaiting) as caught:
        labs.up(None, lab="bigger-dc.yaml")
    assert set(caught.value.report["waiting"]) == {"dc01"}  # type: ignore[attr-defined]
    assert _world(workdir).vm("dc01").memory_startup == 2 * GiB

    report = labs.up(None, lab="bigger-dc.yaml", allow_restart=True)
    assert report["result"] == "ok"
    changes = next(s for s in report["steps"] if s["step"] == "restart")["changes"]
    assert not any(c.startswith(("Suspend-ClusterNode", "Resume-ClusterNode")) for c in changes)
    assert changes[0].startswith("Stop-VM dc01") and changes[-1].startswith("Start-VM dc01")

    world = _world(workdir)
    dc = world.vm("dc01")
    assert (dc.memory_startup, dc.processor_count, dc.state) == (3 * GiB, 3, "Running")
    assert len(_off_spans(world, "dc01", since)) == 1
    for node in NODES:  # the nodes were left alone
        assert _off_spans(world, node, since) == []
    status = lab_status.status(None, lab="bigger-dc.yaml")
    assert [n["state"] for n in status["cluster"]["nodes"]] == ["Up", "Up"]
    again = labs.up(None, lab="bigger-dc.yaml", allow_restart=True)
    assert again["changed"] == 0


def test_allow_restart_on_a_prefixed_lab_changes_the_vm_by_its_host_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With vm_prefix, the VM on the host is <prefix><computer name> (R-145): the
    clean shutdown, the change and the start go to that VM, PowerShell Direct to the
    computer name inside it."""
    monkeypatch.chdir(tmp_path)
    _clean_env(monkeypatch)
    text = (LABS / "s2d-2node-beside.yaml").read_text(encoding="utf-8")
    wanted = "dc: {cpus: 2, memory: 2GiB}"
    assert wanted in text and "vm_prefix: beside-" in text
    (tmp_path / "beside.yaml").write_text(text, encoding="utf-8")
    assert labs.up(None, lab="beside.yaml")["result"] == "ok"
    (tmp_path / "beside.yaml").write_text(
        text.replace(wanted, "dc: {cpus: 2, memory: 3GiB}"), encoding="utf-8"
    )
    report = labs.up(None, lab="beside.yaml", allow_restart=True)
    changes = next(s for s in report["steps"] if s["step"] == "restart")["changes"]
    assert changes[0].startswith("Stop-VM beside-dc01") and changes[-1] == "Start-VM beside-dc01"
    world = _world(tmp_path)
    assert world.vm("beside-dc01").memory_startup == 3 * GiB
    assert world.vm("beside-dc01").state == "Running"
    assert labs.up(None, lab="beside.yaml", allow_restart=True)["changed"] == 0
