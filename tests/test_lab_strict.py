"""lab.up end to end against an hvsim that is as strict as Windows (issue 10).

Each test puts the embedded simulated host into a situation a real host brings
about (a response lost after the call ran, leftover disks, a failed promotion
prerequisite, ...) and shows hvlab handling it. The behaviour of Windows itself
is shown over the wire in tests/test_strict_windows.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from project import LABS
from test_lab_e2e import check_complete, sim_world, trace

from hvlab import lab as labs

# -- item 4: retries that repeat a change (R-92) ----------------------------------------------


def test_lost_responses_to_changes_converge_without_repeating_them(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each of these calls runs on the host, and then its response is lost.
    monkeypatch.setenv(
        "HVSIM_FAULTS",
        "lost:cmdlet=New-VM,nth=2;lost:cmdlet=New-VHD,nth=3;"
        "lost:cmdlet=Install-ADDSForest,nth=1;lost:cmdlet=New-Cluster,nth=1",
    )
    report = labs.up(None, as_json=True)
    assert report["result"] == "ok"
    world = sim_world(workdir)
    fired = world.faults.log if world.faults is not None else []
    names = [vm.name for vm in world.host.hyperv.vms]
    assert sorted(names) == ["dc01", "hvhost01", "hvhost02"], names  # no duplicate
    assert len(world.clusters) == 1
    check_complete(workdir, capsys, LABS / "s2d-2node.yaml", nodes=2)
    entries = trace(workdir, "s2d-2node")
    lost = [e for e in entries if e["outcome"] == "lost"]
    assert {e["cmdlet"].split(" @")[0] for e in lost} >= {
        "New-VM",
        "New-VHD",
        "Install-ADDSForest",
        "New-Cluster",
    }, (lost, fired)
    # None of them was sent twice by the transport: a lost change is not retried.
    assert all(e["attempts"] == 1 for e in lost)
    steps = json.loads((workdir / ".hvlab" / "sim" / "s2d-2node" / "report.json").read_text())[
        "steps"
    ]
    assert steps


# -- item 8: Install-ADDSForest's result ------------------------------------------------------


def test_a_failed_promotion_stops_the_domain_step_at_once_with_its_message(
    workdir: Path,
) -> None:
    from test_lab_e2e import _prepare_host

    from hvlab.errors import StepError
    from hvsim.model.ad import Domain

    def setup(world, executor):
        # Another forest of the lab's name answers on the network already.
        world.domains["corp.hvlab.test"] = Domain(
            fqdn="corp.hvlab.test",
            netbios="CORP",
            sid="S-1-5-21-1-2-3",
            dc="OLDDC",
            created=0.0,
            ready_at=0.0,
        )

    _prepare_host(workdir, setup)
    with pytest.raises(StepError) as info:
        labs.up(None)
    message = str(info.value)
    assert "promote:dc01" in message
    assert "Verification of prerequisites" in message and "already exists" in message
    entries = trace(workdir, "s2d-2node")
    promoted = [e for e in entries if e["cmdlet"] == "Install-ADDSForest @dc01"]
    assert len(promoted) == 1
    # Nothing after the refused promotion: no restart, no half-hour wait for AD.
    assert not [e for e in entries if e["cmdlet"] in ("Restart-Computer @dc01", "Restart-VM")]
    assert not [e for e in entries if e["cmdlet"] == "Get-ADDomainController @dc01"]


# -- item 7: disk cleaning (R-60) -------------------------------------------------------------


def test_a_rerun_cleans_used_data_disks_in_the_microsoft_order(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hvlab.errors import StepError
    from hvsim import persist
    from hvsim.model.s2d import guest_disks

    # A first run stops at validation; then the data disks look used: partitions on
    # some, Storage Spaces metadata of a pool that is gone on others.
    # (every time: a transient error alone is retried by the step, R-102)
    monkeypatch.setenv("HVSIM_FAULTS", "transient:cmdlet=Test-Cluster,rate=1")
    with pytest.raises(StepError, match="cluster"):
        labs.up(None)
    monkeypatch.delenv("HVSIM_FAULTS")
    path = workdir / ".hvlab" / "sim" / "host.state"
    world = persist.load(path)
    for node in ("hvhost01", "hvhost02"):
        disks = guest_disks(world.guest(node))
        disks[1].state.partitions = 2
        disks[2].state.pool_id = "{an-old-pool}"
        disks[3].state.partitions = 1
    persist.save(world, path)

    report = labs.up(None, as_json=True)
    assert report["result"] == "ok"
    check_complete(workdir, capsys, LABS / "s2d-2node.yaml", nodes=2)
    calls = [e["cmdlet"] for e in trace(workdir, "s2d-2node")]
    # The script's order per node: reset pool metadata, then online, writable, clear.
    for node in ("hvhost01", "hvhost02"):
        mine = [c.split(" @")[0] for c in calls if c.endswith(f"@{node}")]
        assert mine.count("Reset-PhysicalDisk") == 1
        assert mine.count("Clear-Disk") == 2  # the reset disk is RAW again
        first_clear = mine.index("Clear-Disk")
        assert mine.index("Reset-PhysicalDisk") < first_clear
        assert "Set-Disk" in mine[:first_clear]


# -- item 9: what the lab file says changes what is built --------------------------------------


def test_volume_format_and_network_roles_from_the_lab_file_are_built(workdir: Path) -> None:
    import yaml

    data = yaml.safe_load((LABS / "s2d-2node.yaml").read_text())
    data["volumes"][0]["file_system"] = "CSVFS_NTFS"
    data["cluster"]["networks"] = {"management": "ClusterAndClient", "storage": "None"}
    lab_file = workdir / "s2d-2node.yaml"
    lab_file.write_text(yaml.safe_dump(data))
    assert labs.up(None, lab=str(lab_file), as_json=True)["result"] == "ok"
    world = sim_world(workdir)
    cluster = world.cluster("hvcluster")
    vdisk = cluster.pool.virtual_disk("Volume01")
    assert vdisk.volume.file_system == "CSVFS_NTFS"
    roles = {n.address: n.role_name for n in cluster.networks}
    assert roles == {"10.10.0.0": "ClusterAndClient", "10.10.1.0": "None", "10.10.2.0": "None"}
    # A complete lab stays as asked: nothing to change on a second run.
    assert labs.up(None, lab=str(lab_file), as_json=True)["changed"] == 0


# -- item 11: the first live run proves its riskiest assumptions (R-94) ----------------------


def test_without_powershell_direct_from_winrm_only_the_first_vm_is_made(workdir: Path) -> None:
    from test_lab_e2e import _prepare_host

    from hvlab.errors import StepError

    def setup(world, executor):
        world.profile.powershell_direct_from_winrm = False

    _prepare_host(workdir, setup)
    with pytest.raises(StepError) as info:
        labs.up(None)
    message = str(info.value)
    assert "boot:dc01" in message and "R-94" in message
    assert "Invoke-Command -VMName dc01" in message and "Access is denied" in message
    # Nothing else was built before the proof: only the first VM exists.
    assert [vm.name for vm in sim_world(workdir).host.hyperv.vms] == ["dc01"]


def test_a_cluster_cmdlet_that_cannot_reach_the_other_nodes_stops_the_run(workdir: Path) -> None:
    from test_lab_e2e import _prepare_host

    from hvlab.errors import StepError

    def setup(world, executor):
        world.profile.powershell_direct_second_hop = False

    _prepare_host(workdir, setup)
    with pytest.raises(StepError) as info:
        labs.up(None)
    message = str(info.value)
    assert "step cluster failed" in message and "R-94" in message
    assert "Get-ClusterNode -Cluster hvhost02" in message and "Access is denied" in message
    assert sim_world(workdir).cluster("hvcluster").pool is None  # S2D did not start
