"""VM checkpoints in hvsim (R-13, R-130): Checkpoint-VM, Get-VMSnapshot,
Restore-VMSnapshot, Remove-VMSnapshot, and the cluster's and forest's state when a
whole lab, or one node alone, goes back to a checkpoint; Stop-Cluster/Start-Cluster."""

from __future__ import annotations

from typing import Any

import pytest
from guestlab import Streams, guest_cmd, guest_script, host_run
from hostkit import cmd, pipe
from test_model_cluster import (
    LAB,
    NODES,
    _s2d,
    build_cluster,
    build_domain,
    build_nodes,
    mirror_volume,
)

from hvsim import persist
from hvsim.errors import PSError
from hvsim.model.fs import GiB
from hvsim.model.s2d import disk_state
from hvsim.model.world import World

ALL = ("dc", *NODES)


@pytest.fixture
def cluster() -> World:
    """A domain, two nodes, a cluster with S2D and one CSV volume."""
    world = World.create()
    build_domain(world)
    build_nodes(world)
    build_cluster(world)
    _s2d(world)
    mirror_volume(world)
    # As hvlab builds it: no automatic drive replacement in VMs.
    guest_script(
        world, "node1", "Set-S2DInVMSettings.ps1", LAB, AutoReplace="False", BlockCacheSize=0
    )
    return world


def _files(world: World, folder: str) -> list[str]:
    return sorted(p.lower() for p, _ in world.host.fs.files(folder))


def _pool(world: World) -> dict[str, Any]:
    pool = guest_cmd(world, "node1", "Get-StoragePool", LAB, IsPrimordial=False)[0]
    return {"health": pool["HealthStatus"], "status": pool["OperationalStatus"]}


def _shut_down_cleanly(world: World) -> None:
    """What hvlab's lab.stop does: the cluster first, then the nodes, then the DC."""
    guest_cmd(world, "node1", "Stop-Cluster", LAB, Force=True)
    for name in (*NODES, "dc"):
        host_run(world, "Stop-VM", Name=name, Force=True)
        assert world.vm(name).state == "Off"


def _checkpoint_all(world: World, label: str) -> None:
    for name in ALL:
        host_run(world, "Set-VM", Name=name, CheckpointType="Production")
        host_run(world, "Checkpoint-VM", Name=name, SnapshotName=label)
        host_run(world, "Set-VM", Name=name, CheckpointType="Disabled")


def _restore(world: World, name: str, label: str) -> None:
    pipe(
        world,
        cmd("Get-VMSnapshot", VMName=name, Name=label),
        cmd("Restore-VMSnapshot", Confirm=False),
    )


def _start_all(world: World) -> None:
    for name in ALL:
        host_run(world, "Start-VM", Name=name)
    for name in ALL:
        world.guest(name).phase()  # at timescale 0 the boot is over once looked at


def test_a_vm_with_checkpoints_disabled_refuses_one() -> None:
    world = World.create()
    host_run(world, "New-VM", Name="v", Generation=2, NoVHD=True)
    host_run(world, "Set-VM", Name="v", CheckpointType="Disabled")
    with pytest.raises(PSError) as err:
        host_run(world, "Checkpoint-VM", Name="v", SnapshotName="x")
    assert "Checkpoints are disabled for 'v'" in err.value.message
    assert host_run(world, "Get-VMSnapshot", VMName="v") == []


def test_a_checkpoint_freezes_the_disk_and_the_vm_writes_to_an_avhdx(cluster: World) -> None:
    _shut_down_cleanly(cluster)
    before = _files(cluster, "C:\\lab\\node1")
    _checkpoint_all(cluster, "base")
    drives = host_run(cluster, "Get-VMHardDiskDrive", VMName="node1")
    # The VM now writes to .avhdx files next to its disks; the .vhdx files stay, frozen.
    assert all(str(d["Path"]).lower().endswith(".avhdx") for d in drives)
    assert all(str(d["Path"]).lower().startswith("c:\\lab\\node1\\node1-") for d in drives)
    after = _files(cluster, "C:\\lab\\node1")
    assert set(before) < set(after)
    avhdx = host_run(cluster, "Get-VHD", Path=str(drives[0]["Path"]))[0]
    assert str(avhdx["VhdType"]) == "Differencing"
    assert str(avhdx["ParentPath"]).lower() == "c:\\lab\\node1\\node1-os.vhdx"
    # The configuration is kept under the VM's Snapshots folder.
    snaps = host_run(cluster, "Get-VMSnapshot", VMName="node1")
    assert [s["Name"] for s in snaps] == ["base"]
    assert any(f"\\snapshots\\{str(snaps[0]['Id']).lower()}.vmcx" in p for p in after)
    vm = host_run(cluster, "Get-VM", Name="node1")[0]
    assert vm["ParentCheckpointName"] == "base"
    # A checkpoint's disk is no disk of its own to attach.
    with pytest.raises(PSError) as err:
        host_run(
            cluster,
            "Add-VMHardDiskDrive",
            VMName="node1",
            ControllerType="SCSI",
            Path="C:\\lab\\node1\\node1-data1.vhdx",
        )
    assert "0x80070020" in err.value.message


def test_restore_asks_first_and_refuses_a_running_vm(cluster: World) -> None:
    _shut_down_cleanly(cluster)
    _checkpoint_all(cluster, "base")
    with pytest.raises(PSError) as err:  # the documentation passes -Confirm:$false
        pipe(cluster, cmd("Get-VMSnapshot", VMName="dc"), cmd("Restore-VMSnapshot"))
    assert "prompts the user" in err.value.message
    host_run(cluster, "Start-VM", Name="dc")
    with pytest.raises(PSError) as err:
        _restore(cluster, "dc", "base")
    assert "while it is Running" in err.value.message


def test_a_whole_lab_comes_back_as_it_was(cluster: World) -> None:
    _shut_down_cleanly(cluster)
    _checkpoint_all(cluster, "base")
    _start_all(cluster)
    guest_cmd(cluster, "node1", "Start-Cluster", LAB)
    assert sorted(str(n["State"]) for n in guest_cmd(cluster, "node1", "Get-ClusterNode", LAB)) == [
        "Up",
        "Up",
    ]
    # Changes after the checkpoint: a file in a guest, a file on the CSV, a second
    # volume in the pool, a computer object in the forest.
    guest_cmd(cluster, "node1", "Set-Content", LAB, Path="C:\\after.txt", Value="x")
    guest_cmd(cluster, "node2", "Set-Content", LAB, Path="C:\\ClusterStorage\\v1\\a.txt", Value="y")
    guest_cmd(
        cluster,
        "node1",
        "New-Volume",
        LAB,
        StoragePoolFriendlyName="S2D on CL1",
        FriendlyName="v2",
        FileSystem="CSVFS_ReFS",
        Size=50 * GiB,
        ResiliencySettingName="Mirror",
    )
    cluster.domains["lab.test"].add_computer("LATE", cluster.clock.now())
    _shut_down_cleanly(cluster)
    for name in ALL:
        _restore(cluster, name, "base")
        assert host_run(cluster, "Get-VM", Name=name)[0]["CheckpointType"].name == "Production"
    _start_all(cluster)
    assert guest_cmd(cluster, "node1", "Test-Path", LAB, Path="C:\\after.txt") == [False]
    assert guest_cmd(cluster, "node2", "Test-Path", LAB, Path="C:\\ClusterStorage\\v1\\a.txt") == [
        False
    ]
    assert cluster.domains["lab.test"].computer("LATE") is None
    cl = cluster.cluster("cl1")
    assert [v.friendly_name for v in cl.pool.virtual_disks] == ["ClusterPerformanceHistory", "v1"]
    # The nodes boot with the cluster service (it starts automatically); Up again.
    nodes = guest_cmd(cluster, "node1", "Get-ClusterNode", LAB)
    assert sorted(str(n["State"]) for n in nodes) == ["Up", "Up"]
    assert _pool(cluster) == {"health": "Healthy", "status": "OK"}


def test_one_node_restored_alone_leaves_its_pool_disks_stale(cluster: World) -> None:
    _shut_down_cleanly(cluster)
    _checkpoint_all(cluster, "base")
    _start_all(cluster)
    guest_cmd(cluster, "node1", "Start-Cluster", LAB)
    guest_cmd(cluster, "node2", "Set-Content", LAB, Path="C:\\ClusterStorage\\v1\\a.txt", Value="y")
    guest_cmd(cluster, "node1", "Stop-Cluster", LAB, Force=True)
    host_run(cluster, "Stop-VM", Name="node1", Force=True)
    _restore(cluster, "node1", "base")  # never done by hvlab
    host_run(cluster, "Start-VM", Name="node1")
    cluster.guest("node1").phase()
    guest_cmd(cluster, "node2", "Start-Cluster", LAB)
    # The cluster is the one the other node kept (the CSV keeps the newer file)...
    assert guest_cmd(cluster, "node1", "Test-Path", LAB, Path="C:\\ClusterStorage\\v1\\a.txt") == [
        True
    ]
    # ...and node1's pool disks hold older data: Degraded until a repair.
    cl = cluster.cluster("cl1")
    stale = [v for node, v in cl.pool.members if disk_state(v).stale]
    assert stale and all(node == "NODE1" for node, v in cl.pool.members if disk_state(v).stale)
    assert _pool(cluster) == {"health": "Warning", "status": "Degraded"}
    guest_cmd(cluster, "node1", "Repair-VirtualDisk", LAB, FriendlyName="v1")
    assert _pool(cluster) == {"health": "Healthy", "status": "OK"}


def test_stop_cluster_asks_first_and_stops_the_service_on_every_node(cluster: World) -> None:
    with pytest.raises(PSError) as err:
        guest_cmd(cluster, "node1", "Stop-Cluster", LAB)
    assert "prompts the user" in err.value.message
    guest_cmd(cluster, "node1", "Stop-Cluster", LAB, Force=True)
    for node in NODES:
        with pytest.raises(PSError) as err:
            guest_cmd(cluster, node, "Get-ClusterNode", LAB)
        assert "cluster service is not running" in err.value.message
    out = guest_cmd(cluster, "node2", "Start-Cluster", LAB)
    assert str(out[0]["Name"]).upper() == "CL1"
    nodes = guest_cmd(cluster, "node1", "Get-ClusterNode", LAB)
    assert sorted(str(n["State"]) for n in nodes) == ["Up", "Up"]


def test_removing_checkpoints_merges_them_back(cluster: World) -> None:
    _shut_down_cleanly(cluster)
    start_files = _files(cluster, "C:\\lab\\node1")
    _checkpoint_all(cluster, "one")
    host_run(cluster, "Set-VM", Name="node1", CheckpointType="Production")
    host_run(cluster, "Checkpoint-VM", Name="node1", SnapshotName="two")
    _restore(cluster, "node1", "one")  # a branch: "two" stays, the VM runs from "one"
    assert sorted(s["Name"] for s in host_run(cluster, "Get-VMSnapshot", VMName="node1")) == [
        "one",
        "two",
    ]
    pipe(cluster, cmd("Get-VM", Name="node1"), cmd("Remove-VMSnapshot", Name="one"))
    pipe(cluster, cmd("Get-VM", Name="node1"), cmd("Remove-VMSnapshot", Name="two"))
    assert host_run(cluster, "Get-VMSnapshot", VMName="node1") == []
    drives = host_run(cluster, "Get-VMHardDiskDrive", VMName="node1")
    assert all(str(d["Path"]).lower().endswith(".vhdx") for d in drives)
    # Only the (empty) Snapshots folder is new: no .avhdx and no configuration left.
    assert [p for p in _files(cluster, "C:\\lab\\node1") if p not in start_files] == []
    assert not any(p.endswith(".avhdx") for p in _files(cluster, "C:\\lab\\node1"))
    image = cluster.host.fs.read("C:\\hvlab\\images\\ws2022-datacenter.vhdx")
    assert [c.path.lower() for c in image.children if "node1" in c.path.lower()] == [
        "c:\\lab\\node1\\node1-os.vhdx"
    ]


def test_checkpoints_survive_the_state_file(cluster: World, tmp_path: Any) -> None:
    _shut_down_cleanly(cluster)
    _checkpoint_all(cluster, "base")
    _start_all(cluster)
    guest_cmd(cluster, "node1", "Set-Content", LAB, Path="C:\\after.txt", Value="x")
    path = tmp_path / "host.state"
    persist.save(cluster, path)
    world = persist.load(path)
    guest_cmd(world, "node1", "Stop-Cluster", LAB, Force=True)
    for name in (*NODES, "dc"):
        host_run(world, "Stop-VM", Name=name, Force=True)
    for name in ALL:
        _restore(world, name, "base")
    _start_all(world)
    assert guest_cmd(world, "node1", "Test-Path", LAB, Path="C:\\after.txt") == [False]
    assert _pool(world) == {"health": "Healthy", "status": "OK"}


def test_a_production_checkpoint_of_a_running_vm_restores_it_off(cluster: World) -> None:
    host_run(cluster, "Set-VM", Name="dc", CheckpointType="Production")
    streams = Streams()
    host_run(cluster, "Checkpoint-VM", streams, Name="dc", SnapshotName="live")
    guest_cmd(cluster, "dc", "Set-Content", LAB, Path="C:\\after.txt", Value="x")
    host_run(cluster, "Stop-VM", Name="dc", TurnOff=True)
    _restore(cluster, "dc", "live")
    assert cluster.vm("dc").state == "Off"  # checkpoints.md: the VM is Off after it
    host_run(cluster, "Start-VM", Name="dc")
    cluster.guest("dc").phase()
    assert guest_cmd(cluster, "dc", "Test-Path", LAB, Path="C:\\after.txt") == [False]
    svc = guest_cmd(cluster, "dc", "Get-Service", LAB, Name=["NTDS"])
    assert str(svc[0]["Status"]) == "Running"


@pytest.mark.parametrize(
    "order", [("node2", "node1", "dc"), ("dc", "node1", "node2")], ids=["node2-first", "dc-first"]
)
def test_a_moved_ha_vm_is_back_where_it_ran_whatever_the_restore_order(
    cluster: World, order: tuple[str, ...]
) -> None:
    from test_model_cluster import _ha_vm

    _ha_vm(cluster)
    guest_cmd(cluster, "node1", "Add-ClusterVirtualMachineRole", LAB, VMName="l2vm")
    guest_cmd(cluster, "node1", "Start-ClusterGroup", LAB, Name="l2vm")
    guest_cmd(cluster, "node1", "Stop-ClusterGroup", LAB, Name="l2vm")
    _shut_down_cleanly(cluster)
    _checkpoint_all(cluster, "base")
    _start_all(cluster)
    guest_cmd(cluster, "node1", "Start-ClusterGroup", LAB, Name="l2vm")
    guest_cmd(cluster, "node1", "Move-ClusterVirtualMachineRole", LAB, Name="l2vm", Node="node2")
    assert [v.name for v in cluster.guest("node2").hyperv.vms] == ["l2vm"]
    guest_cmd(cluster, "node1", "Stop-ClusterGroup", LAB, Name="l2vm")
    _shut_down_cleanly(cluster)
    for name in order:
        _restore(cluster, name, "base")
    _start_all(cluster)
    # One VM object, on the node that ran it at the checkpoint, as the cluster says.
    holders = [n for n in NODES if any(v.name == "l2vm" for v in cluster.guest(n).hyperv.vms)]
    assert holders == ["node1"]
    group = guest_cmd(cluster, "node2", "Start-ClusterGroup", LAB, Name="l2vm")[0]
    assert (str(group["State"]), str(group["OwnerNode"]["Name"]).lower()) == ("Online", "node1")
    assert _pool(cluster) == {"health": "Healthy", "status": "OK"}
