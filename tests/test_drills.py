"""lab.drill end to end against the embedded hvsim over WinRM: the five drills on the
2- and 4-node labs with their measured figures, refusal on a lab that is not healthy,
JUnit output that validates, interrupted drills recovered by `--recover` and by lab.up
(R-105..R-113).

Each lab is built once per module (timescale 0) and its host state copied into each
test's own folder, so every test starts from the same complete lab.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from project import LABS, ROOT

from hvlab import drills
from hvlab import lab as labs
from hvlab import status as lab_status
from hvlab.errors import Interrupted
from hvsim import persist, timing
from hvsim.model.iso import Package, package_bytes

PASSWORDS = {
    "HVLAB_ADMIN_PASSWORD": "Adm1n-Xyzzy-7731!",
    "HVLAB_DOMAIN_PASSWORD": "Adm1n-Xyzzy-7731!",
    "HVLAB_DSRM_PASSWORD": "Dsrm-Plugh-4417!",
}
ENV = {"HVSIM_TIMESCALE": "0", **PASSWORDS}
XSD = Path(__file__).with_name("junit.xsd")
LAB_FILES = {2: LABS / "s2d-2node.yaml", 4: LABS / "s2d-4node.yaml"}
# What the model's defaults give: 1000 ms x 10 heartbeats, a
# 240 s resiliency period, a 60 s resync.
HEARTBEAT = 10.0
RESILIENCY = 240.0
REPAIR = timing.seconds("s2d.repair")


def _clean_env(mp: pytest.MonkeyPatch) -> None:
    for key in ("HVLAB_HOST", "HVLAB_USER", "HVLAB_PASSWORD", "HVSIM_FAULTS", "HVLAB_HOME"):
        mp.delenv(key, raising=False)
    for key, value in ENV.items():
        mp.setenv(key, value)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, Path]]:
    """Each lab built once: nodes count -> a folder holding its .hvlab state."""
    out: dict[int, Path] = {}
    with pytest.MonkeyPatch.context() as mp:
        _clean_env(mp)
        for nodes, lab_file in LAB_FILES.items():
            folder = tmp_path_factory.mktemp(f"lab{nodes}")
            mp.chdir(folder)
            assert labs.up(None, lab=str(lab_file))["result"] == "ok"
            out[nodes] = folder
    yield out


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    _clean_env(monkeypatch)
    return tmp_path


def _use(built: dict[int, Path], nodes: int, workdir: Path) -> str:
    shutil.copytree(built[nodes] / ".hvlab", workdir / ".hvlab")
    return str(LAB_FILES[nodes])


def _state(workdir: Path) -> Path:
    return workdir / ".hvlab" / "sim" / "host.state"


def _status(capsys: pytest.CaptureFixture[str], lab: str) -> dict[str, Any]:
    capsys.readouterr()
    lab_status.status(None, lab=lab, as_json=True)
    return json.loads(capsys.readouterr().out)


def assert_healthy(capsys: pytest.CaptureFixture[str], lab: str, nodes: int) -> None:
    """lab.status shows a healthy lab: VMs running, nodes Up, pool Healthy, HA VM Online."""
    status = _status(capsys, lab)
    assert {vm["state"] for vm in status["vms"]} == {"Running"}
    assert [n["state"] for n in status["cluster"]["nodes"]] == ["Up"] * nodes
    assert status["s2d"]["pool"]["health"] == "Healthy"
    assert {c["state"] for c in status["csv"]} == {"Online"}
    assert status["ha_vms"] and {h["state"] for h in status["ha_vms"]} == {"Online"}


def _validate_junit(path: Path) -> Any:
    import xmlschema

    xmlschema.XMLSchema(str(XSD)).validate(str(path))
    import xml.etree.ElementTree as ET

    return ET.parse(path).getroot()


# -- the five drills, 2 and 4 nodes -----------------------------------------------------------


@pytest.mark.parametrize("nodes", [2, 4])
@pytest.mark.parametrize("kind", drills.KINDS)
def test_drill_passes_and_leaves_the_lab_healthy(
    built: dict[int, Path],
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    nodes: int,
) -> None:
    lab = _use(built, nodes, workdir)
    report_file = workdir / "drill.xml"
    payload = drills.drill(None, lab=lab, kind=kind, junit_file=str(report_file))
    assert payload["result"] == "pass" and payload["healthy_after"], payload["error"]
    assert payload["clock"] == "modelled"
    figures = payload["figures"]
    checks = {c["what"]: c["ok"] for c in payload["checks"]}
    assert all(checks.values()), checks
    if kind == "node-failure":
        # Noticed after the heartbeat timeout, restarted after the resiliency period.
        assert figures["node_detected_down_s"] == pytest.approx(HEARTBEAT, abs=1)
        assert figures["ha_vm_downtime_s"] == pytest.approx(HEARTBEAT + RESILIENCY, abs=2)
        assert figures["node_rejoin_s"] >= timing.seconds("vm.reboot")
        assert figures["storage_repair_s"] == pytest.approx(REPAIR, abs=3)
        assert "restarted on a surviving node" in " ".join(checks)
    elif kind == "maintenance":
        assert figures["ha_vm_downtime_s"] == 0.0
        assert figures["drain_s"] >= timing.seconds("cluster.live_migration")
        assert figures["restart_s"] >= timing.seconds("vm.reboot")
        assert figures["storage_repair_s"] == pytest.approx(REPAIR, abs=3)
    elif kind == "rolling-update":
        assert figures["ha_vm_downtime_s"] == 0.0
        rows = payload["per_node"]
        assert sorted(r["node"].lower() for r in rows) == sorted(
            n.lower() for n in _node_names(lab)
        )
        for row in rows:
            assert row["restart_s"] >= timing.seconds("vm.reboot")
            assert row["repair_s"] == pytest.approx(REPAIR, abs=3)
        # The HA VM's owner is drained by live migration; others have nothing to move.
        assert sum(1 for r in rows if r["drain_s"] > 0) >= 1
    elif kind == "disk-failure":
        assert figures["ha_vm_downtime_s"] == 0.0
        assert figures["storage_repair_s"] == pytest.approx(REPAIR, abs=1)
    elif kind == "network":
        assert figures["ha_vm_downtime_s"] == 0.0
        assert figures["loss_detected_s"] == pytest.approx(HEARTBEAT, abs=1)
    assert_healthy(capsys, lab, nodes)
    root = _validate_junit(report_file)
    cases = root.findall("./testsuite/testcase")
    assert cases[0].get("name") == "healthy before"
    assert cases[-1].get("name") == "lab healthy"
    assert root.get("failures") == "0" and root.get("errors") == "0"
    assert all(float(c.get("time")) >= 0 for c in cases)


def _node_names(lab: str) -> list[str]:
    from hvlab.spec import load_lab

    return [n.name for n in load_lab(Path(lab)).nodes]


@pytest.mark.parametrize("nodes", [2, 4])
def test_rolling_update_with_updates_runs_cluster_aware_updating(
    built: dict[int, Path], workdir: Path, capsys: pytest.CaptureFixture[str], nodes: int
) -> None:
    """`updates:` names a folder on the host: the packages go to a share on the DC and
    Invoke-CauRun installs them with the hotfix plug-in, node by node (R-111, R-112)."""
    original = _use(built, nodes, workdir)
    text = Path(original).read_text()
    lab_file = workdir / Path(original).name
    lab_file.write_text(text.replace("timezone: UTC", "updates: C:\\hvlab\\updates\ntimezone: UTC"))
    world = persist.load(_state(workdir))
    pkg = Package("KB5031364", 20348, 2031)
    world.host.fs.write(
        "C:\\hvlab\\updates\\windows10.0-kb5031364-x64.msu", package_bytes(pkg), create_parents=True
    )
    world.host.fs.write("C:\\hvlab\\updates\\notes.txt", "not an update", create_parents=True)
    persist.save(world, _state(workdir))

    payload = drills.drill(None, lab=str(lab_file), kind="rolling-update")
    assert payload["result"] == "pass", payload["error"]
    assert payload["figures"]["update_packages"] == 1
    assert payload["figures"]["ha_vm_downtime_s"] == 0.0
    rows = {r["node"]: r for r in payload["per_node"]}
    assert len(rows) == nodes
    for row in rows.values():
        assert row["status"] == "Succeeded" and row["updates"] == "KB5031364=Installed"
        assert row["install_s"] == pytest.approx(timing.seconds("cau.install_update"))
        assert row["restart_s"] >= timing.seconds("vm.reboot")
        assert row["repair_s"] <= REPAIR
    world = persist.load(_state(workdir))
    for name in _node_names(str(lab_file)):
        node = world.guest(name)
        assert [h["HotFixID"] for h in node.hotfixes] == ["KB5031364"]
        assert node.os.version == "10.0.20348.2031"
    assert_healthy(capsys, str(lab_file), nodes)


# -- refusal and failure -----------------------------------------------------------------------


def test_a_drill_on_an_unhealthy_lab_refuses_and_changes_nothing(
    built: dict[int, Path], workdir: Path
) -> None:
    lab = _use(built, 2, workdir)
    world = persist.load(_state(workdir))
    from hvsim.model import vmops

    class Ctx:
        def __init__(self, w: Any) -> None:
            self.world = w

        def work(self, seconds: float, what: str) -> None:
            self.world.clock.sleep(seconds)

    vmops.power_off(Ctx(world), world.host.hyperv, world.vm("hvhost01"))
    persist.save(world, _state(workdir))
    before = persist.load(_state(workdir)).snapshot()
    with pytest.raises(drills.DrillRefused) as err:
        drills.drill(None, lab=lab, kind="maintenance")
    assert err.value.exit_code == 2
    assert "VM hvhost01 is Off" in str(err.value) and "R-113" in str(err.value)
    assert persist.load(_state(workdir)).snapshot() == before


def test_a_drill_needs_a_kind(workdir: Path) -> None:
    from hvlab.errors import ConfigError

    with pytest.raises(ConfigError, match="needs --kind"):
        drills.drill(None, kind="meteor")
    with pytest.raises(ConfigError, match="not both"):
        drills.drill(None, kind="network", recover=True)


def test_a_failed_expectation_fails_the_drill_and_the_restore_still_runs(
    built: dict[int, Path],
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second node failure within six hours on two nodes: the failover policy leaves the
    role Failed (R-106), the drill fails with that, and the restore starts it again."""
    monkeypatch.setenv("HVLAB_MIN_WAIT", "2")
    lab = _use(built, 2, workdir)
    assert drills.drill(None, lab=lab, kind="node-failure")["result"] == "pass"
    report = workdir / "second.xml"
    with pytest.raises(drills.DrillFailed) as err:
        drills.drill(None, lab=lab, kind="node-failure", junit_file=str(report))
    assert "another node" in str(err.value)
    root = _validate_junit(report)
    failed = [c for c in root.findall("./testsuite/testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["HA VM runs on a survivor"]
    assert "Failed" in failed[0].find("failure").text
    skipped = [c.get("name") for c in root.iter("testcase") if c.find("skipped") is not None]
    assert skipped == ["volume online, pool degraded"]
    assert_healthy(capsys, lab, 2)


# -- interrupted drills ---------------------------------------------------------------------------


class _Stop:
    """Raise KeyboardInterrupt at the n-th host call, as Ctrl-C would land there."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0

    def wrap(self, fn: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == self.n:
                raise KeyboardInterrupt
            return fn(*args, **kwargs)

        return call


def _count_calls(monkeypatch: pytest.MonkeyPatch, kind: str, lab: str) -> int:
    from hvlab.remote import Host

    counter = _Stop(-1)
    with monkeypatch.context() as mp:
        mp.setattr(Host, "run", counter.wrap(Host.run))
        mp.setattr(Host, "script", counter.wrap(Host.script))
        drills.drill(None, lab=lab, kind=kind)
    return counter.calls


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3, 7, 11, 29])
def test_an_interrupted_drill_is_recovered(
    built: dict[int, Path],
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
) -> None:
    from hvlab.remote import Host

    rng = random.Random(seed)
    kind = rng.choice(drills.KINDS)
    lab = _use(built, 2, workdir)
    # How many host calls the whole drill makes, on a copy of the lab.
    scratch = workdir / "scratch"
    shutil.copytree(workdir / ".hvlab", scratch / ".hvlab")
    monkeypatch.chdir(scratch)
    total = _count_calls(monkeypatch, kind, lab)
    monkeypatch.chdir(workdir)
    # Stop somewhere after the health check and before the last restore phase.
    stop = _Stop(rng.randrange(total // 4, total - 3))
    with monkeypatch.context() as mp:
        mp.setattr(Host, "run", stop.wrap(Host.run))
        mp.setattr(Host, "script", stop.wrap(Host.script))
        with pytest.raises(Interrupted) as err:
            drills.drill(None, lab=lab, kind=kind)
    assert err.value.exit_code == 130 and "--recover" in str(err.value)
    payload = drills.drill(None, lab=lab, recover=True)
    assert payload["result"] == "pass" and payload["healthy_after"], payload["error"]
    assert_healthy(capsys, lab, 2)


@pytest.mark.slow
def test_lab_up_recovers_an_interrupted_drill(
    built: dict[int, Path],
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A drill stopped while a drive is out, a NIC is cut or a node is off: lab.up
    brings them back and waits for the storage to be healthy."""
    from hvlab import engine

    lab = _use(built, 2, workdir)
    original = engine.Run._run_step
    for kind, phase in (
        ("disk-failure", "reattach the drive"),
        ("network", "loss noticed"),
        ("node-failure", "owner detected Down"),
    ):

        def run_step(self: Any, step: Any, phase: str = phase) -> None:
            if step.name == phase:
                raise KeyboardInterrupt  # Ctrl-C as this phase starts
            return original(self, step)

        with monkeypatch.context() as mp:
            mp.setattr(engine.Run, "_run_step", run_step)
            with pytest.raises(Interrupted):
                drills.drill(None, lab=lab, kind=kind)
        with pytest.raises(drills.DrillRefused):  # the lab is not healthy now
            drills.drill(None, lab=lab, kind="network")
        assert labs.up(None, lab=lab)["result"] == "ok"
        assert_healthy(capsys, lab, 2)


# -- the command -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_drill_exit_codes_and_junit(built: dict[int, Path], workdir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HVLAB_HOST", "HVSIM_FAULTS"))}
    env.update(ENV)
    invoke = [sys.executable, "-m", "invoke", "-r", str(ROOT)]
    lab = _use(built, 2, workdir)
    ok = subprocess.run(
        [*invoke, "lab.drill", "--kind", "network", "--lab", lab, "--junit", "net.xml", "--json"],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert json.loads(ok.stdout)["result"] == "pass"
    _validate_junit(workdir / "net.xml")
    empty = workdir / "empty"
    empty.mkdir()
    refused = subprocess.run(
        [*invoke, "lab.drill", "--kind", "network"],
        env=env,
        cwd=empty,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "nothing was changed" in refused.stderr and "Traceback" not in refused.stderr
