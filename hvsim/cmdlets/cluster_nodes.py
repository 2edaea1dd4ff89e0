"""Node maintenance and network health: Suspend-ClusterNode -Drain, Resume-ClusterNode
-Failback (R-107), Get-ClusterNetworkInterface (R-105)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from hvsim import timing
from hvsim.cmdlets._clusterkit import (
    FC,
    cluster_error,
    my_cluster,
    node_ctx,
    node_obj,
)
from hvsim.cmdlets._hvcommon import as_list
from hvsim.errors import not_modelled
from hvsim.model.cluster import Cluster
from hvsim.objects import PSEnum, PSObj
from hvsim.registry import Call, Context, cmdlet

# ClusterNetworkInterfaceState (clusapi CLUSTER_NETINTERFACE_STATE).
NETIF_STATE = {"Unknown": -1, "Unavailable": 0, "Failed": 1, "Unreachable": 2, "Up": 3}


def _node_name(ctx: Context, cl: Cluster, call: Call, cmdlet_name: str) -> str:
    """-Name, or the node the cmdlet runs on."""
    names = [str(n).split(".")[0] for n in as_list(call.get("Name"))]
    if len(names) > 1:
        raise not_modelled(f"{cmdlet_name} of more than one node at once")
    wanted = names[0] if names else node_ctx(ctx, cmdlet_name).name
    found = next((n for n in cl.nodes if n.lower() == wanted.lower()), None)
    if found is None:
        raise cluster_error(
            f"The node '{wanted}' is not a member of cluster '{cl.name}'.",
            cmdlet_name,
            "ObjectNotFound",
            wanted,
        )
    return found


@cmdlet(
    "Suspend-ClusterNode", params=["Name", "Drain", "Wait", "ForceDrain", "TargetNode", "Cluster"]
)
def suspend_cluster_node(ctx: Context, call: Call) -> Iterable[PSObj]:
    """Pause a node; with -Drain move its roles off first, VMs by live migration
    (R-107). The drain is carried out before the cmdlet returns, with or without
    -Wait (modelled: without -Wait Windows returns while it runs)."""
    cmd = "Suspend-ClusterNode"
    cl = my_cluster(ctx, cmd, call.get("Cluster"))
    assert cl is not None
    node = _node_name(ctx, cl, call, cmd)
    state = cl.node_state(ctx.world, node)
    if state == "Down":
        raise cluster_error(
            f"The operation could not be completed because node '{node}' is not Up.",
            cmd,
            "InvalidOperation",
            node,
        )
    if not call.switch("Drain"):
        cl.paused.setdefault(node, [])
        return [node_obj(ctx.world, cl, node)]
    if cl.storage_degraded(ctx.world) and not call.switch("ForceDrain"):
        # maintain-servers: pausing and draining runs a safety check and stops while a
        # volume is unhealthy (text modelled on the documented dialog).
        raise cluster_error(
            "The requested operation can not be completed because a clustered space is in a "
            "degraded condition. Wait for the storage jobs to finish (Get-StorageJob) and "
            "try again.",
            cmd,
            "InvalidOperation",
            node,
        )
    target = call.get("TargetNode")
    others = [n for n in cl.up_nodes(ctx.world) if n != node]
    if target is not None:
        others = [n for n in others if n.lower() == str(target).split(".")[0].lower()]
    if not others:
        raise cluster_error(
            f"Node '{node}' cannot be drained: no other node is Up to take its roles.",
            cmd,
            "InvalidOperation",
            node,
        )
    cl.paused[node] = list(cl.paused.get(node, []))
    cl.drain_failed = [n for n in cl.drain_failed if n != node]
    # Roles in priority order: virtual machines, then the core groups (modelled).
    groups = sorted(
        (g for g in cl.groups if g.owner == node), key=lambda g: g.group_type != "VirtualMachine"
    )
    for group in groups:
        dest = (
            cl.placement(ctx.world, exclude=node)
            if target is None or others[0] not in cl.up_nodes(ctx.world)
            else others[0]
        )
        if dest == node:
            continue
        if group.group_type != "VirtualMachine":
            group.owner = dest
            continue
        found = cl.vm_of(ctx.world, group)
        if found is None:
            continue
        vm = found[1]
        problem = cl.migration_problem(ctx.world, vm, dest, live=vm.state == "Running")
        if problem is not None:
            cl.drain_failed.append(node)
            raise cluster_error(
                f"The drain of node '{node}' failed: live migration of 'Virtual Machine "
                f"{vm.name}' failed. {problem}",
                cmd,
                "InvalidOperation",
                node,
            )
        if vm.state == "Running":
            ctx.work(timing.seconds("cluster.live_migration"), f"live migration of {vm.name}")
        cl.move_vm(ctx.world, group, dest)
        cl.paused[node].append(group.name)
    cl.drain_completed = [*(n for n in cl.drain_completed if n != node), node]
    return [node_obj(ctx.world, cl, node)]


@cmdlet("Resume-ClusterNode", params=["Name", "Failback", "Cluster"])
def resume_cluster_node(ctx: Context, call: Call) -> Iterable[PSObj]:
    """Resume a paused node; -Failback Immediate moves the roles the drain took off it
    back (live migration for VMs); NoFailback (the default) and Policy leave them
    (groups default to AutoFailbackType Prevent) (R-107)."""
    cmd = "Resume-ClusterNode"
    cl = my_cluster(ctx, cmd, call.get("Cluster"))
    assert cl is not None
    node = _node_name(ctx, cl, call, cmd)
    if node not in cl.paused:
        return [node_obj(ctx.world, cl, node)]
    if not cl.node_connected(ctx.world, node):
        raise cluster_error(
            f"The operation could not be completed because node '{node}' is not Up.",
            cmd,
            "InvalidOperation",
            node,
        )
    drained = cl.paused.pop(node)
    cl.drain_failed = [n for n in cl.drain_failed if n != node]
    cl.drain_completed = [n for n in cl.drain_completed if n != node]
    if str(call.get("Failback") or "NoFailback") != "Immediate":
        return [node_obj(ctx.world, cl, node)]
    for name in drained:
        group = cl.group(name)
        if group is None or group.owner == node:
            continue
        found = cl.vm_of(ctx.world, group)
        if found is None:
            continue
        vm = found[1]
        problem = cl.migration_problem(ctx.world, vm, node, live=vm.state == "Running")
        if problem is not None:
            ctx.warning(f"The role '{name}' was not moved back to '{node}': {problem}")
            continue
        if vm.state == "Running":
            ctx.work(timing.seconds("cluster.live_migration"), f"live migration of {vm.name}")
        cl.move_vm(ctx.world, group, node)
    return [node_obj(ctx.world, cl, node)]


@cmdlet("Get-ClusterNetworkInterface", params=["Name", "Node", "Network", "Cluster"])
def get_cluster_network_interface(ctx: Context, call: Call) -> Iterable[PSObj]:
    """One interface per node and cluster network; its state follows the adapter's link
    and the heartbeats over it (R-105)."""
    cl = my_cluster(ctx, "Get-ClusterNetworkInterface", call.get("Cluster"))
    assert cl is not None
    nodes = {str(n).split(".")[0].lower() for n in as_list(call.get("Node"))}
    nets = {str(n).lower() for n in as_list(call.get("Network"))}
    out = []
    for node in cl.nodes:
        if nodes and node.lower() not in nodes:
            continue
        g = cl.node_guest(ctx.world, node)
        for net in cl.networks:
            if nets and net.name.lower() not in nets:
                continue
            adapter = _adapter_on(g, net.address, net.prefix) if g is not None else None
            state = cl.interface_state(ctx.world, node, net)
            name = f"{node} - {adapter or 'Unknown'}"
            out.append(
                PSObj(
                    [FC + "ClusterNetworkInterface", FC + "ClusterObject", "System.Object"],
                    {
                        "Name": name,
                        "Node": node,
                        "Network": net.name,
                        "Adapter": adapter or "",
                        "State": PSEnum(
                            FC + "ClusterNetworkInterfaceState", state, NETIF_STATE[state]
                        ),
                        "Cluster": cl.name,
                    },
                    to_string=name,
                )
            )
    return out


def _adapter_on(guest: Any, address: str, prefix: int) -> str | None:
    net = ipaddress.IPv4Network(f"{address}/{prefix}", strict=False)
    for ad in guest.net.adapters:
        for ip in ad.ips:
            if (
                ip.family == "IPv4"
                and not ip.address.startswith("169.254.")
                and ipaddress.IPv4Address(ip.address) in net
            ):
                return str(ad.name)
    return None
