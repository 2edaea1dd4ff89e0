"""lab.up / lab.status / lab.down end to end against hvsim over WinRM (NTLM, encrypted).

With no HVLAB_HOST, hvlab starts hvsim in-process on loopback and talks to it over
real WinRM/PSRP; the host's state is kept under .hvlab/sim/ between calls. These
tests read that state back through hvsim's Python API to check the lab from the
host's side, the way a person would look at a real host after a run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from project import LABS, ROOT

from hvlab import lab as labs
from hvlab import status as lab_status
from hvlab import teardown
from hvlab.errors import OwnershipError, PreflightError, StepError

PASSWORDS = {
    "HVLAB_ADMIN_PASSWORD": "Adm1n-Xyzzy-7731!",
    "HVLAB_DOMAIN_PASSWORD": "Adm1n-Xyzzy-7731!",  # a new forest keeps the admin password
    "HVLAB_DSRM_PASSWORD": "Dsrm-Plugh-4417!",
}
READ_ONLY_VERBS = {"Get", "Test", "connect"}  # connect: opening the runspace pool


def sim_world(workdir: Path):
    from hvsim import persist

    return persist.load(workdir / ".hvlab" / "sim" / "host.state")


def fresh_snapshot():
    from hvsim.model.world import World

    return World.create().snapshot()


def trace(workdir: Path, lab: str) -> list[dict]:
    lines = (workdir / ".hvlab" / "sim" / lab / "trace.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line]


def mutating(entries: list[dict]) -> list[str]:
    calls = []
    for entry in entries:
        for command in entry["cmdlet"].split(" | "):
            verb = command.split("-", 1)[0]
            if verb not in READ_ONLY_VERBS:
                calls.append(entry["cmdlet"])
    return calls


def status_json(capsys: pytest.CaptureFixture[str], lab: str | None = None) -> dict:
    capsys.readouterr()
    lab_status.status(None, lab=lab, as_json=True)
    return json.loads(capsys.readouterr().out)


def check_complete(
    workdir: Path, capsys: pytest.CaptureFixture[str], lab_file: Path, nodes: int
) -> None:
    from hvlab.spec import load_lab

    spec = load_lab(lab_file)
    status = status_json(capsys, str(lab_file))
    assert [vm["state"] for vm in status["vms"]] == ["Running"] * len(spec.vms)
    for vm, seen in zip(spec.vms, status["vms"], strict=True):
        # Hyper-V shows what each guest reports for its adapters (static IPs by MAC, R-27).
        # A node's management address moved to the vEthernet adapter of its cluster
        # switch, which Hyper-V reports under that adapter's own MAC.
        ips = {ip for nic in seen["nics"] for ip in nic["ips"]}
        nics = vm.nics[1:] if vm.role == "node" else vm.nics
        assert {str(n.ip) for n in nics if n.ip} <= ips, (vm.name, ips)
    assert [n["state"] for n in status["cluster"]["nodes"]] == ["Up"] * nodes
    assert status["cluster"]["witness"], "a witness is configured (R-58)"
    assert status["s2d"]["pool"]["health"] == "Healthy"
    assert status["s2d"]["pool"]["disks"] == nodes * 4
    paths = {c["path"] for c in status["csv"]}
    assert "C:\\ClusterStorage\\Volume01" in paths
    ha = status["ha_vms"][0]
    assert ha["state"] == "Online"
    assert ha["owner_node"].lower() != spec.nodes[0].name.lower(), (
        "the HA VM was live-migrated off its first node"
    )

    world = sim_world(workdir)
    cluster = world.cluster(spec.cluster.name)
    assert sorted(n.lower() for n in cluster.up_nodes(world)) == sorted(n.name for n in spec.nodes)
    # S2D in VMs: no automatic drive replacement, no CSV read cache.
    assert not cluster.auto_replace and cluster.block_cache_size == 0
    assert status["s2d"]["auto_replace"] == "False" and status["s2d"]["block_cache_mb"] == 0
    # The node vSwitches came before the cluster: no core resource ever failed.
    assert cluster.events == []
    # A node's name resolves to its management address only, never a storage one.
    zone = world.domains[spec.domain.fqdn.lower()].dns
    for node in spec.nodes:
        assert zone[node.name.lower()] == [str(node.nics[0].ip)], zone
    assert cluster.witness and cluster.witness.lower().endswith(
        f"\\{spec.cluster.name}-witness".lower()
    )
    vdisk = next(v for v in cluster.pool.virtual_disks if v.friendly_name == "Volume01")
    assert vdisk.volume.file_system == "CSVFS_ReFS"
    for node in spec.nodes:
        settings = world.guest(node.name).hyperv.host_settings
        assert settings.virtual_machine_path == "C:\\ClusterStorage\\Volume01"
    owner = world.guest(ha["owner_node"])
    vm = next(v for v in owner.hyperv.vms if v.name == "havm01")
    assert vm.state == "Running"


def test_default_lab_up_again_and_down(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = labs.up(None, as_json=True)
    assert report["result"] == "ok" and report["changed"] > 0
    out = json.loads(capsys.readouterr().out)
    assert out["endpoints"]["cluster"] == {"name": "hvcluster", "address": "10.10.0.20"}
    assert out["endpoints"]["csv"] == ["C:\\ClusterStorage\\Volume01"]
    check_complete(workdir, capsys, LABS / "s2d-2node.yaml", nodes=2)

    again = labs.up(None, as_json=True)
    assert again["changed"] == 0
    assert all(not s["changed"] for s in again["steps"])
    # A complete lab gets no mutating call but the lab's lock file; its removal
    # comes after the trace is written.
    assert mutating(trace(workdir, "s2d-2node")) == ["New-Item"]

    teardown.down(None, yes=True)
    assert sim_world(workdir).snapshot() == fresh_snapshot()


def test_four_node_lab(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab_file = LABS / "s2d-4node.yaml"
    labs.up(None, lab=str(lab_file), as_json=True)
    check_complete(workdir, capsys, lab_file, nodes=4)
    assert labs.up(None, lab=str(lab_file), as_json=True)["changed"] == 0
    teardown.down(None, lab=str(lab_file), yes=True)
    assert sim_world(workdir).snapshot() == fresh_snapshot()


def _prepare_host(workdir: Path, setup) -> None:
    """Put the embedded simulated host into a given state before hvlab runs."""
    from hvsim import executor, persist
    from hvsim.model.world import World

    world = World.create()
    setup(world, executor)
    persist.save(world, workdir / ".hvlab" / "sim" / "host.state")


def _run(world, executor, *commands):
    from hvsim.executor import Command

    return executor.run_pipeline(
        world,
        world.host,
        "HV01\\Administrator",
        [Command(n, list(a.items()), False) for n, a in commands],
        None,
    )


def test_foreign_vm_with_a_lab_name_stops_up_and_survives_down(workdir: Path) -> None:
    def setup(world, executor):
        _run(world, executor, ("New-VM", {"Name": "hvhost01", "Generation": 2, "NoVHD": True}))

    _prepare_host(workdir, setup)
    before = sim_world(workdir).snapshot()
    with pytest.raises(
        OwnershipError, match="hvhost01 already exists on the host and is not part of lab s2d-2node"
    ):
        labs.up(None)
    assert sim_world(workdir).snapshot() == before, "preflight created nothing"
    teardown.down(None, yes=True)
    world = sim_world(workdir)
    assert [vm.name for vm in world.host.hyperv.vms] == ["hvhost01"]


def test_standard_image_is_refused_in_preflight(workdir: Path) -> None:
    text = (LABS / "s2d-2node.yaml").read_text()
    bad = workdir / "standard.yaml"
    bad.write_text(text.replace("ws2022-datacenter.vhdx", "ws2022-standard.vhdx"))
    with pytest.raises(PreflightError) as info:
        labs.up(None, lab=str(bad))
    assert "Datacenter" in str(info.value) and "R-55" in str(info.value)
    assert info.value.exit_code == 2, "the lab's own setting is bad input"
    assert sim_world(workdir).snapshot() == fresh_snapshot()


def test_a_first_boot_stall_is_cleared_by_one_hard_reset(workdir: Path, monkeypatch) -> None:
    # The guest hangs in setup until it is power-cycled once; hvlab resets it once.
    monkeypatch.setenv("HVSIM_FAULTS", "boot_hang:vm=hvhost02,once=1")
    monkeypatch.setenv("HVLAB_MIN_WAIT", "2")
    report = labs.up(None, as_json=True)
    boot = next(s for s in report["steps"] if s["step"] == "boot:hvhost02")
    assert any(c.startswith("hard reset of hvhost02") for c in boot["changes"])
    assert report["result"] == "ok"


def test_a_guest_that_never_boots_fails_with_the_step_and_diagnostics(
    workdir: Path, monkeypatch
) -> None:
    monkeypatch.setenv("HVSIM_FAULTS", "boot_hang:vm=hvhost02")
    monkeypatch.setenv("HVLAB_MIN_WAIT", "2")
    with pytest.raises(StepError) as info:
        labs.up(None)
    message = str(info.value)
    assert "boot:hvhost02" in message and "gave up waiting for hvhost02" in message
    diag = json.loads((workdir / ".hvlab" / "sim" / "s2d-2node" / "diagnostics.json").read_text())
    assert diag["failed_steps"][0]["step"] == "boot:hvhost02"
    assert any(v["name"] == "hvhost02" for v in diag["vms"])


def test_passwords_appear_nowhere(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    texts = []
    labs.up(None, as_json=True, trace=str(workdir / "trace.jsonl"))
    lab_status.status(None, as_json=True)
    lab_status.status(None)
    labs.plan(None, as_json=True)
    teardown.down(None, yes=True, as_json=True)
    captured = capsys.readouterr()
    texts += [captured.out, captured.err]
    try:
        labs.up(None, lab=str(workdir / "missing.yaml"))
    except Exception as err:  # the text of a failure counts too
        texts.append(str(err))
    for path in workdir.rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("latin-1"))
    blob = "\n".join(texts)
    for name, password in PASSWORDS.items():
        assert password not in blob, f"{name} leaked"
        assert password.encode("utf-16-le").decode("latin-1") not in blob, (
            f"{name} leaked as UTF-16"
        )


def test_cli_exit_codes(workdir: Path) -> None:
    env = dict(os.environ)
    invoke = [sys.executable, "-m", "invoke", "-r", str(ROOT)]
    bad = subprocess.run(
        [*invoke, "lab.up", "--lab", str(workdir / "nope.yaml")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    ok = subprocess.run([*invoke, "lab.up"], env=env, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    first = ok.stdout.splitlines()[0]
    assert first.startswith("hvlab lab.up s2d-2node from ") and " on simulated host" in first
    down = subprocess.run(
        [*invoke, "lab.down", "--yes"], env=env, capture_output=True, text=True, timeout=300
    )
    assert down.returncode == 0, down.stderr[-2000:]


def test_down_removes_only_the_labs_vm_when_another_shares_its_name(workdir: Path) -> None:
    """Hyper-V allows two VMs with one name (R-20): lab.down goes by Id and the mark."""
    from hvsim import executor, persist

    labs.up(None)
    path = workdir / ".hvlab" / "sim" / "host.state"
    world = persist.load(path)
    _run(world, executor, ("New-VM", {"Name": "hvhost01", "Generation": 2, "NoVHD": True}))
    persist.save(world, path)

    teardown.down(None, yes=True)
    left = sim_world(workdir).host.hyperv.vms
    assert [(vm.name, vm.notes) for vm in left] == [("hvhost01", "")]


def test_plan_against_the_host_changes_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = labs.plan(None, as_json=True)
    state = workdir / ".hvlab" / "sim" / "host.state"
    assert not state.exists(), "plan only reads: it never writes the host's state"
    steps = {s["step"]: s for s in payload["steps"]}
    assert steps["preflight"]["status"] == "ok"
    # The folder comes first: it keeps the record of what the lab creates.
    assert steps["folder"]["status"] == "would-change"
    assert steps["folder"]["changes"] == [
        "New-Item C:\\hvlab\\s2d-2node and mark it as lab s2d-2node"
    ]
    assert steps["switches"]["status"] == "blocked"
    assert steps["cluster"]["status"] == "blocked"
    assert {r["name"] for r in steps["vm:hvhost01"]["resources"] if r["kind"] == "vhdx"} >= {
        "C:\\hvlab\\s2d-2node\\hvhost01\\hvhost01-data1.vhdx"
    }
    labs.up(None)
    after = labs.plan(None, as_json=True)
    assert after["changes"] == 0
    assert all(s["status"] == "ok" and not s["resources"] for s in after["steps"])


def test_three_node_lab(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Three nodes: the upper end of Microsoft's guest-cluster guidance, three-way mirrors."""
    import yaml

    data = yaml.safe_load((LABS / "s2d-4node.yaml").read_text())
    data["name"] = "s2d-3node"
    data["vms"] = [vm for vm in data["vms"] if vm["name"] != "s2d04"]
    lab_file = workdir / "s2d-3node.yaml"
    lab_file.write_text(yaml.safe_dump(data))
    labs.up(None, lab=str(lab_file), as_json=True)
    check_complete(workdir, capsys, lab_file, nodes=3)
    world = sim_world(workdir)
    volume = world.cluster("s2dcluster").pool.virtual_disk("Volume01")
    assert volume.copies == 3  # three-way mirror from 3 nodes
    assert labs.up(None, lab=str(lab_file), as_json=True)["changed"] == 0
    teardown.down(None, lab=str(lab_file), yes=True)
    assert sim_world(workdir).snapshot() == fresh_snapshot()
