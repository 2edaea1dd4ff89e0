"""Stopping and starting a whole cluster (Stop-Cluster, Start-Cluster), and the repair
of a mirror whose copy on one node is stale (Repair-VirtualDisk, R-13).

Stop-Cluster "stops the Cluster service on all nodes in a failover cluster, which will
stop all services and applications configured in the cluster"; without -Force it asks
for confirmation (learn.microsoft.com, failoverclusters/stop-cluster). Clustered VMs
go offline with their resource's offline action (Save by default, as Stop-ClusterGroup
does here); the groups keep their persistent state, which Start-Cluster brings back
unless -IgnorePersistentState (failoverclusters/start-cluster). The service is set to
start automatically, so a node that boots runs it again (modelled).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hvsim import timing
from hvsim.cmdlets._clusterkit import cluster_error, cluster_obj, my_cluster, node_ctx
from hvsim.cmdlets._hvcommon import as_list
from hvsim.cmdlets.hyperv import prompt_failed
from hvsim.cmdlets.storage import _guest, _not_found
from hvsim.executor import Nested
from hvsim.model import vmops
from hvsim.model.cluster import cluster_of
from hvsim.model.s2d import disk_state
from hvsim.objects import PSObj
from hvsim.registry import Call, Context, cmdlet


@cmdlet("Stop-Cluster", params=["Cluster", "Force", "Wait"])
def stop_cluster(ctx: Context, call: Call) -> None:
    cl = my_cluster(ctx, "Stop-Cluster", call.get("Cluster"))
    assert cl is not None
    if not call.switch("Force"):
        raise prompt_failed(
            f"Are you sure you want to stop the cluster {cl.name}? All clustered roles will "
            "be taken offline.",
            "Stop-Cluster",
        )
    ctx.work(timing.seconds("cluster.stop"), f"stopping cluster {cl.name}")
    for group in cl.groups:
        if group.group_type != "VirtualMachine":
            continue
        found = cl.vm_of(ctx.world, group)
        if found is not None and found[1].state == "Running":
            node, vm = found
            # The Virtual Machine resource's default offline action is Save.
            vmops.stop(Nested(ctx, node), node.hyperv, vm, turn_off=False, save=True, force=True)
    for name in cl.nodes:
        guest = cl.node_guest(ctx.world, name)
        if guest is not None and guest.cluster_config == cl.name and "ClusSvc" in guest.services:
            guest.services["ClusSvc"] = "Stopped"


@cmdlet("Start-Cluster", params=["Name", "IgnorePersistentState", "Wait"])
def start_cluster(ctx: Context, call: Call) -> Iterable[PSObj]:
    g = node_ctx(ctx, "Start-Cluster")
    cl = cluster_of(ctx.world, g)
    wanted = call.get("Name")
    if wanted:
        key = str(wanted).split(".")[0].lower()
        cl = ctx.world.clusters.get(key) if cl is None or cl.name.lower() != key else cl
        if cl is not None and g.name not in cl.nodes:
            raise not_reachable(str(wanted))
    if cl is None:
        raise cluster_error(
            "The cluster could not be found: this computer is not a node of a cluster.",
            "Start-Cluster",
            "ObjectNotFound",
            wanted,
        )
    ctx.work(timing.seconds("cluster.start"), f"starting cluster {cl.name}")
    for name in cl.nodes:
        guest = cl.node_guest(ctx.world, name)
        if guest is not None and guest.cluster_config == cl.name and guest.is_ready():
            guest.services["ClusSvc"] = "Running"
    if call.switch("IgnorePersistentState"):
        for group in cl.groups:
            if group.group_type == "VirtualMachine":
                group.wanted = "Offline"
    cl.refresh(ctx.world)
    return [cluster_obj(cl)]


def not_reachable(name: str) -> Any:
    return cluster_error(
        f"The cluster '{name}' could not be reached from this node.",
        "Start-Cluster",
        "ConnectionError",
        name,
    )


@cmdlet("Repair-VirtualDisk", params=["FriendlyName"])
def repair_virtual_disk(ctx: Context, call: Call) -> None:
    """Resynchronise the mirror copies on stale disks (a node restored alone, R-13):
    every node of the pool must be Up; the stale disks are current again after it."""
    g = _guest(ctx, "Repair-VirtualDisk")
    cl = cluster_of(ctx.world, g)
    vds = cl.pool.virtual_disks if cl is not None and cl.pool is not None else []
    for name in as_list(call.get("FriendlyName")):
        hit = [v for v in vds if v.friendly_name.lower() == str(name).lower()]
        if not hit:
            raise _not_found("MSFT_VirtualDisk", "FriendlyName", name, "Repair-VirtualDisk")
    if cl is None or cl.pool is None:
        return
    up = set(cl.up_nodes(ctx.world))
    down = sorted({node for node, _ in cl.pool.members if node not in up})
    if down:
        raise cluster_error(
            f"The virtual disk cannot be repaired while node(s) {', '.join(down)} are not Up.",
            "Repair-VirtualDisk",
        )
    stale = [v for _, v in cl.pool.members if disk_state(v).stale]
    written = sum(vd.size for vd in cl.pool.virtual_disks) // max(1, len(cl.pool.members))
    if stale:
        ctx.work(
            timing.seconds("s2d.repair_per_gib") * written * len(stale) / 1024**3,
            "repairing the mirror copies on stale disks",
        )
    for disk in stale:
        disk_state(disk).stale = False
