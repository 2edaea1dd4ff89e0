"""Re-runs and teardown: nested PowerShell Direct (R-39), stale objects (R-43,
R-53), disk cleaning (R-60), removal order (R-66), group stop/remove."""

from __future__ import annotations

import pytest
from guestlab import guest_cmd
from test_model_cluster import (
    LAB,
    NODES,
    _ha_vm,
    _s2d,
    build_cluster,
    build_domain,
    build_nodes,
    mirror_volume,
)

from hvsim.errors import PSError
from hvsim.model.world import World


@pytest.fixture
def cluster() -> World:
    world = World.create()
    build_domain(world)
    build_nodes(world)
    build_cluster(world)
    return world


def _volume(world: World) -> None:
    _s2d(world)
    mirror_volume(world)


def test_nested_powershell_direct_only_from_the_owner(cluster: World) -> None:
    _volume(cluster)
    _ha_vm(cluster)
    # node2 does not host l2vm, so -VMName does not resolve there. The L2 VM has
    # no OS, so from node1 the session cannot open.
    with pytest.raises(PSError) as err:
        guest_cmd(cluster, "l2vm", "Get-Service", LAB, machine=cluster.guest("node2"), Name="WinRM")
    assert "does not resolve to any virtual machine" in err.value.message
    with pytest.raises(PSError) as err:
        guest_cmd(cluster, "l2vm", "Get-Service", LAB, machine=cluster.guest("node1"), Name="WinRM")
    assert "might have ended" in err.value.message


def test_computer_objects_outlive_vms(cluster: World) -> None:
    from test_model_cluster import _Ctx

    from hvsim.model import vmops

    vmops.remove(_Ctx(cluster), cluster.host.hyperv, cluster.vm("node2"))
    names = [c["Name"] for c in guest_cmd(cluster, "dc", "Get-ADComputer", LAB, Filter="*")]
    assert "NODE2" in names and "CL1" in names
    with pytest.raises(PSError) as err:  # AD identity errors are terminating
        guest_cmd(
            cluster, "dc", "Get-ADComputer", LAB, Identity="nope", ErrorAction="SilentlyContinue"
        )
    assert "Cannot find an object with identity" in err.value.message
    guest_cmd(cluster, "dc", "Remove-ADComputer", LAB, Identity="NODE2", Confirm=False)
    assert cluster.domains["lab.test"].computer("NODE2") is None


def test_get_cluster_on_a_plain_node_is_non_terminating() -> None:
    world = World.create()
    build_domain(world)
    build_nodes(world)
    assert guest_cmd(world, "node1", "Get-Cluster", LAB, ErrorAction="SilentlyContinue") == []
    with pytest.raises(PSError) as err:
        guest_cmd(world, "node1", "Get-Cluster", LAB)
    assert "cluster service is not running" in err.value.message


def test_clear_disk_rules(cluster: World) -> None:
    node = cluster.guest("node1")
    from hvsim.model.s2d import guest_disks

    guest_disks(node)[1].state.partitions = 2  # a disk used before
    with pytest.raises(PSError) as err:
        guest_cmd(cluster, "node1", "Clear-Disk", LAB, Number=0, RemoveData=True, Confirm=False)
    assert err.value.message == "Operation not supported on a critical disk."
    # Data disks come up offline under the SAN policy: online first.
    with pytest.raises(PSError) as err:
        guest_cmd(cluster, "node1", "Clear-Disk", LAB, Number=2, RemoveData=True, Confirm=False)
    assert err.value.message == "The disk is offline." and err.value.fqid.startswith(
        "StorageWMI 41003"
    )
    for n in (1, 2):
        guest_cmd(cluster, "node1", "Set-Disk", LAB, Number=n, IsOffline=False)
    with pytest.raises(PSError) as err:
        guest_cmd(cluster, "node1", "Clear-Disk", LAB, Number=2, RemoveData=True, Confirm=False)
    assert "not been initialized" in err.value.message
    disks = {d["Number"]: d for d in guest_cmd(cluster, "node1", "Get-Disk", LAB)}
    assert disks[1]["PartitionStyle"] == "GPT"
    pd = [p for p in guest_cmd(cluster, "node1", "Get-PhysicalDisk", LAB) if p["CanPool"] is False]
    assert {p["CannotPoolReason"] for p in pd} == {"Insufficient Capacity"}
    guest_cmd(
        cluster,
        "node1",
        "Clear-Disk",
        LAB,
        Number=1,
        RemoveData=True,
        RemoveOEM=True,
        Confirm=False,
    )
    assert guest_disks(node)[1].state.partitions == 0


def test_teardown_order_and_stale_pool_metadata(cluster: World) -> None:
    _volume(cluster)
    vm = _ha_vm(cluster)
    guest_cmd(cluster, "node1", "Add-ClusterVirtualMachineRole", LAB, VMName="l2vm")
    guest_cmd(cluster, "node1", "Start-ClusterGroup", LAB, Name="l2vm")
    # volumes go after the HA VMs, the pool after its volumes.
    with pytest.raises(PSError):
        guest_cmd(cluster, "node1", "Remove-VirtualDisk", LAB, FriendlyName="v1", Confirm=False)
    with pytest.raises(PSError):
        guest_cmd(
            cluster, "node1", "Remove-StoragePool", LAB, FriendlyName="S2D on CL1", Confirm=False
        )
    with pytest.raises(PSError):  # an Online group cannot be removed
        guest_cmd(
            cluster,
            "node1",
            "Remove-ClusterGroup",
            LAB,
            Name="l2vm",
            RemoveResources=True,
            Force=True,
        )
    out = guest_cmd(cluster, "node1", "Stop-ClusterGroup", LAB, Name="l2vm")
    assert str(out[0]["State"]) == "Offline" and vm.state == "Saved"
    guest_cmd(
        cluster, "node1", "Remove-ClusterGroup", LAB, Name="l2vm", RemoveResources=True, Force=True
    )
    assert not vm.is_clustered
    guest_cmd(cluster, "node1", "Remove-VirtualDisk", LAB, FriendlyName="v1", Confirm=False)
    assert guest_cmd(cluster, "node2", "Test-Path", LAB, Path="C:\\ClusterStorage\\v1") == [False]
    guest_cmd(cluster, "node1", "Remove-StoragePool", LAB, FriendlyName="S2D on CL1", Confirm=False)
    guest_cmd(cluster, "node1", "Remove-Cluster", LAB, Force=True, CleanupAD=True)
    assert "cl1" not in cluster.clusters
    # the disks still carry pool metadata until Reset-PhysicalDisk.
    stale = [
        p
        for p in guest_cmd(cluster, "node1", "Get-PhysicalDisk", LAB)
        if p["CannotPoolReason"] == "In a Pool"
    ]
    assert len(stale) == 4
    for p in stale:
        guest_cmd(cluster, "node1", "Reset-PhysicalDisk", LAB, UniqueId=p["UniqueId"])
    assert (
        len([p for p in guest_cmd(cluster, "node1", "Get-PhysicalDisk", LAB) if p["CanPool"]]) == 4
    )
    # after Remove-Cluster the nodes can form a cluster again.
    guest_cmd(
        cluster,
        "node1",
        "New-Cluster",
        LAB,
        Name="cl1",
        Node=list(NODES),
        StaticAddress="10.0.0.20",
        NoStorage=True,
    )


def test_clear_cluster_node_refuses_an_active_member(cluster: World) -> None:
    with pytest.raises(PSError) as err:
        guest_cmd(cluster, "node1", "Clear-ClusterNode", LAB, Force=True)
    assert "active member" in err.value.message
    # A node whose VM was rebuilt keeps no state, but one left with configuration is
    # cleared.
    from test_model_cluster import _Ctx

    from hvsim.model import vmops

    vmops.power_off(_Ctx(cluster), cluster.host.hyperv, cluster.vm("node2"))
    cluster.guest("node2").cluster_config = "OLD"
    vmops.start(_Ctx(cluster), cluster.host.hyperv, cluster.vm("node2"))
    guest_cmd(cluster, "node2", "Clear-ClusterNode", LAB, Force=True)
    assert cluster.guest("node2").cluster_config is None
