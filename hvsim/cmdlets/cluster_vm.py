"""Highly available VMs: Add-ClusterVirtualMachineRole, Start-/Stop-/Remove-ClusterGroup,
Move-ClusterVirtualMachineRole and the CSVs they live on (R-65, R-67..R-70, R-08)."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from hvsim import timing
from hvsim.cmdlets._clusterkit import (
    cluster_error,
    csv_obj,
    group_obj,
    my_cluster,
    node_ctx,
    write_report,
)
from hvsim.cmdlets._hvcommon import as_list
from hvsim.errors import PSError, not_modelled
from hvsim.executor import Nested
from hvsim.model.cluster import Cluster, Group, Resource
from hvsim.model.fs import normalize
from hvsim.model.machine import at
from hvsim.objects import PSObj
from hvsim.registry import Call, Context, cmdlet

# -- highly available VMs (R-67..R-70, R-08) ---------------------------------------------------


@cmdlet("Add-ClusterVirtualMachineRole", params=["VMName", "Name", "Cluster"])
def add_cluster_vm_role(ctx: Context, call: Call) -> Iterable[PSObj]:
    g = node_ctx(ctx, "Add-ClusterVirtualMachineRole")
    cl = my_cluster(ctx, "Add-ClusterVirtualMachineRole", call.get("Cluster"))
    assert cl is not None
    vm_name = str(call.get("VMName"))
    vms = [v for v in (g.hyperv.vms if g.hyperv else []) if v.name.lower() == vm_name.lower()]
    if len(vms) != 1:
        raise cluster_error(
            f"The virtual machine '{vm_name}' was not found on node '{g.name}'.",
            "Add-ClusterVirtualMachineRole",
            "ObjectNotFound",
            vm_name,
        )
    vm = vms[0]
    if cl.group(vm.name) is not None:
        raise cluster_error(
            f"A clustered role named '{vm.name}' already exists.",
            "Add-ClusterVirtualMachineRole",
            "ResourceExists",
            vm.name,
        )
    paths = [vm.path, *(d.path for d in vm.drives)]
    csvs = [vd.mount_path.lower() + "\\" for vd in (cl.pool.virtual_disks if cl.pool else [])]
    for p in paths:
        np = normalize(p).lower() + "\\"
        if not any(np.startswith(c) for c in csvs):
            # the role is refused; the report goes to Cluster\Reports.
            when = at(ctx.world.clock.now()).strftime("%Y.%m.%d At %H.%M.%S")
            report = write_report(
                ctx,
                g,
                f"Highly Available Virtual Machine {vm.name} on {when}",
                f"<html><body>Disk path '{html.escape(p)}' is not a path to storage in the "
                "cluster or to storage that can be added to the cluster.</body></html>",
            )
            raise cluster_error(
                f"Disk path '{p}' is not a path to storage in the cluster or to storage that can "
                f"be added to the cluster. You must ensure this storage is available to every "
                f"node in the cluster to make this virtual machine highly available.\n"
                f"Report file location: {report['FullName']}",
                "Add-ClusterVirtualMachineRole",
                "InvalidArgument",
                p,
            )
    ctx.work(timing.seconds("cluster.add_vm_role"), f"making {vm.name} highly available")
    group = Group(
        vm.name,
        "VirtualMachine",
        g.name,
        wanted="Online" if vm.state == "Running" else "Offline",
        vm_id=str(vm.id),
        id=str(ctx.world.new_uuid()),
    )
    cl.groups.append(group)
    cl.resources += [
        Resource(
            f"Virtual Machine {vm.name}", "Virtual Machine", vm.name, str(ctx.world.new_uuid())
        ),
        Resource(
            f"Virtual Machine Configuration {vm.name}",
            "Virtual Machine Configuration",
            vm.name,
            str(ctx.world.new_uuid()),
        ),
    ]
    vm.is_clustered = True
    return [group_obj(ctx.world, cl, group)]


def _vm_group(ctx: Context, cmdlet_name: str, name: str) -> tuple[Cluster, Group, Any, Any]:
    cl = my_cluster(ctx, cmdlet_name)
    assert cl is not None
    group = cl.group(name)
    if group is None:
        raise cluster_error(
            f"An error occurred while opening the cluster group '{name}'.\n    The group name "
            "specified is not valid or the group cannot be found.",
            cmdlet_name,
            "ObjectNotFound",
            name,
        )
    if group.group_type != "VirtualMachine":
        raise not_modelled(f"{cmdlet_name} of the core group {name}")
    found = cl.vm_of(ctx.world, group)
    if found is None:
        raise cluster_error(
            f"The virtual machine of group '{name}' was not found.",
            cmdlet_name,
            "ObjectNotFound",
            name,
        )
    return cl, group, found[0], found[1]


@cmdlet("Start-ClusterGroup", params=["Name", "Cluster"])
def start_cluster_group(ctx: Context, call: Call) -> Iterable[PSObj]:
    from hvsim.model import vmops

    cl, group, node, vm = _vm_group(ctx, "Start-ClusterGroup", str(call.get("Name")))
    group.wanted = "Online"
    group.failed = False
    if vm.state != "Running":
        try:
            vmops.start(Nested(ctx, node), node.hyperv, vm)
        except PSError as exc:
            group.failed = True  # the group goes Failed when its VM cannot start
            raise cluster_error(
                f"The operation failed because the group '{group.name}' could not be brought "
                f"online: {exc.message}",
                "Start-ClusterGroup",
                target=group.name,
            ) from exc
    return [group_obj(ctx.world, cl, group)]


@cmdlet("Stop-ClusterGroup", params=["Name", "Cluster"])
def stop_cluster_group(ctx: Context, call: Call) -> Iterable[PSObj]:
    from hvsim.model import vmops

    cl, group, node, vm = _vm_group(ctx, "Stop-ClusterGroup", str(call.get("Name")))
    group.wanted = "Offline"
    if vm.state == "Running":
        # The Virtual Machine resource's default offline action is Save.
        vmops.stop(Nested(ctx, node), node.hyperv, vm, turn_off=False, save=True, force=True)
    return [group_obj(ctx.world, cl, group)]


@cmdlet("Remove-ClusterGroup", params=["Name", "RemoveResources", "Force", "Cluster", "Confirm"])
def remove_cluster_group(ctx: Context, call: Call) -> None:
    name = str(as_list(call.get("Name"))[0])  # StringCollection in the catalog
    cl, group, _node, vm = _vm_group(ctx, "Remove-ClusterGroup", name)
    if cl.group_state(ctx.world, group) == "Online":
        raise cluster_error(
            f"The group '{group.name}' must be offline to be removed.",
            "Remove-ClusterGroup",
            target=group.name,
        )
    cl.groups.remove(group)
    cl.resources = [r for r in cl.resources if r.group != group.name]
    vm.is_clustered = False


@cmdlet(
    "Move-ClusterVirtualMachineRole", params=["Name", "Node", "MigrationType", "Wait", "Cluster"]
)
def move_cluster_vm_role(ctx: Context, call: Call) -> Iterable[PSObj]:
    cl, group, src, vm = _vm_group(ctx, "Move-ClusterVirtualMachineRole", str(call.get("Name")))
    mtype = str(call.get("MigrationType") or "Live")
    target_name = str(as_list(call.get("Node"))[0]).split(".")[0] if call.get("Node") else None
    if target_name is None:
        others = [n for n in cl.up_nodes(ctx.world) if n != src.name]
        if not others:
            raise cluster_error(
                "No other node is available for the move.", "Move-ClusterVirtualMachineRole"
            )
        target_name = others[0]
    dest_name = next((n for n in cl.nodes if n.lower() == target_name.lower()), None)
    fail = f"Live migration of 'Virtual Machine {vm.name}' failed."
    if dest_name is None:
        raise cluster_error(
            f"The node '{target_name}' is not a member of cluster '{cl.name}'.",
            "Move-ClusterVirtualMachineRole",
            "ObjectNotFound",
            target_name,
        )
    if dest_name == src.name:
        return [group_obj(ctx.world, cl, group)]
    if mtype not in ("Live", "Quick"):
        raise not_modelled(f"Move-ClusterVirtualMachineRole -MigrationType {mtype}")
    problem = cl.migration_problem(ctx.world, vm, dest_name, live=mtype == "Live")
    if problem is not None:
        # R-69 (target Up, memory), R-70 (a switch of each adapter's name), R-59 (a
        # cluster network with a role): the VM stays where it is.
        raise cluster_error(f"{fail} {problem}", "Move-ClusterVirtualMachineRole", target=vm.name)
    ctx.work(timing.seconds("cluster.live_migration"), f"{mtype.lower()} migration of {vm.name}")
    # the VM keeps running and its Uptime keeps counting on the target.
    cl.move_vm(ctx.world, group, dest_name)
    return [group_obj(ctx.world, cl, group)]


@cmdlet("Get-ClusterSharedVolume", params=["Name", "Cluster"])
def get_cluster_shared_volume(ctx: Context, call: Call) -> Iterable[PSObj]:
    cl = my_cluster(ctx, "Get-ClusterSharedVolume", call.get("Cluster"))
    assert cl is not None
    names = [str(n).lower() for n in as_list(call.get("Name"))]
    vds = cl.pool.virtual_disks if cl.pool else []
    return [
        csv_obj(ctx.world, cl, vd)
        for vd in vds
        if not names or f"cluster virtual disk ({vd.friendly_name.lower()})" in names
    ]
