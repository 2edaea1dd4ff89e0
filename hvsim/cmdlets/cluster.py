"""FailoverClusters cmdlets inside a node (R-47..R-59, R-62, R-65, R-68, R-69).

They exist only where the Failover Cluster PowerShell module is installed
(RSAT-Clustering-PowerShell, brought by Failover-Clustering
-IncludeManagementTools, R-47) and they need a domain account (R-52).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from hvsim import timing
from hvsim.cmdlets._clusterkit import (
    FC,
    NET_ROLE,
    cluster_error,
    cluster_obj,
    group_obj,
    my_cluster,
    network_obj,
    node_ctx,
    node_obj,
    resolve_nodes,
    resource_obj,
    write_report,
)
from hvsim.cmdlets._hvcommon import as_list
from hvsim.errors import PSError, not_modelled
from hvsim.model.ad import find_domain, reachable
from hvsim.model.cluster import Cluster, Group, Resource, cluster_of, discover_networks
from hvsim.model.guest import GuestOS
from hvsim.model.machine import at
from hvsim.objects import PSObj
from hvsim.registry import Call, Context, cmdlet

# -- New-Cluster and friends (R-50, R-51, R-53, R-57) ---------------------------------------


@cmdlet(
    "New-Cluster",
    params=["Name", "Node", "StaticAddress", "NoStorage", "AdministrativeAccessPoint", "Force"],
)
def new_cluster(ctx: Context, call: Call) -> Iterable[PSObj]:
    g = node_ctx(ctx, "New-Cluster")
    name = str(call.get("Name"))
    if call.get("AdministrativeAccessPoint") not in (None, "ActiveDirectoryAndDns"):
        raise not_modelled(
            "New-Cluster -AdministrativeAccessPoint other than ActiveDirectoryAndDns"
        )
    names = [str(n) for n in as_list(call.get("Node"))] or [g.name]
    nodes = resolve_nodes(ctx, names, "New-Cluster")
    dom = find_domain(ctx.world, g.domain) if g.domain else None
    if dom is None or not reachable(ctx.world, dom, g):
        raise cluster_error(
            "The domain of this computer could not be contacted.", "New-Cluster", "ConnectionError"
        )
    for n in nodes:
        if n.domain is None or n.domain.lower() != dom.fqdn.lower():
            raise cluster_error(
                f"The computer '{n.name}' is not joined to the domain '{dom.fqdn}'. All nodes of "
                "a cluster must be members of the same domain.",
                "New-Cluster",
                target=n.name,
            )
        if n.features.get("Failover-Clustering") != "Installed":
            raise cluster_error(
                f"The Failover Clustering feature is not installed on node '{n.name}'.",
                "New-Cluster",
                target=n.name,
            )
        if n.cluster_config:
            raise cluster_error(
                f"The computer '{n.name}' is joined to a cluster.", "New-Cluster", target=n.name
            )
    if name.lower() in ctx.world.clusters:
        raise cluster_error(
            f"A cluster named '{name}' already exists.", "New-Cluster", "ResourceExists", name
        )
    cno = dom.computer(name)
    if cno is not None and cno.cluster != name.upper():
        # R-57 (modelled text naming the computer object).
        raise cluster_error(
            f"There was an error creating the cluster name object. The computer object "
            f"'{name.upper()}' already exists in '{dom.distinguished_name(name)}'. Remove the "
            "stale computer object and try again.",
            "New-Cluster",
            "ResourceExists",
            name,
        )
    address = _static_address(ctx, call.get("StaticAddress"), nodes)
    ctx.work(timing.seconds("cluster.create"), f"creating cluster {name}")
    cl = Cluster(
        name=name.upper(),
        domain=dom.fqdn,
        netbios=dom.netbios,
        address=address,
        nodes=[n.name for n in nodes],
        id=str(ctx.world.new_uuid()),
        created=ctx.world.clock.now(),
    )
    cl.networks = discover_networks(ctx.world, nodes)
    first = nodes[0].name
    cl.groups = [
        Group("Cluster Group", "Cluster", first, core=True, id=str(ctx.world.new_uuid())),
        Group(
            "Available Storage",
            "AvailableStorage",
            first,
            core=True,
            wanted="Offline",
            id=str(ctx.world.new_uuid()),
        ),
    ]
    cl.resources = [
        Resource("Cluster Name", "Network Name", "Cluster Group", str(ctx.world.new_uuid())),
    ]
    if address:
        cl.resources.append(
            Resource("Cluster IP Address", "IP Address", "Cluster Group", str(ctx.world.new_uuid()))
        )
    ctx.world.clusters[cl.name.lower()] = cl
    if cno is None:
        dom.add_computer(cl.name, ctx.world.clock.now(), cluster=cl.name)
    if address:
        dom.dns[cl.name.lower()] = [address]
    for n in nodes:
        n.cluster_config = cl.name
        n.services["ClusSvc"] = "Running"
    when = at(ctx.world.clock.now()).strftime("%Y.%m.%d At %H.%M.%S")
    report = write_report(
        ctx,
        g,
        f"Create Cluster Wizard {cl.name} on {when}",
        "<html><body>Create Cluster</body></html>",
    )
    ctx.warning(
        "There were issues while creating the clustered role that may prevent it from starting. "
        f"For more information view the report file below.\nReport file location: {report['FullName']}"
    )
    return [cluster_obj(cl)]


def _static_address(ctx: Context, value: Any, nodes: list[GuestOS]) -> str | None:
    addrs = [str(a) for a in as_list(value)]
    if not addrs:
        return None
    if len(addrs) > 1:
        raise not_modelled("New-Cluster with more than one static address")
    ip = ipaddress.IPv4Address(addrs[0])
    in_subnet = any(ip in i.network for n in nodes for i in n.ipv4_interfaces())
    if not in_subnet:
        raise cluster_error(
            f"The static address '{ip}' is not on any network of the nodes. Specify an address "
            "in a subnet the nodes are connected to.",
            "New-Cluster",
            "InvalidArgument",
            str(ip),
        )
    used = {
        i.split("/")[0]
        for m in ctx.world.machines()
        for a in m.net.adapters
        for i in (f"{x.address}/{x.prefix_length}" for x in a.ips)
    }
    used |= {c.address for c in ctx.world.clusters.values() if c.address}
    if str(ip) in used:
        # a duplicate address (modelled: the IP resource cannot come online).
        raise cluster_error(
            f"The cluster IP address resource 'Cluster IP Address' failed to come online: the "
            f"address '{ip}' is already in use on the network.",
            "New-Cluster",
            "ResourceExists",
            str(ip),
        )
    return str(ip)


@cmdlet("Get-Cluster", params=["Name"])
def get_cluster(ctx: Context, call: Call) -> Iterable[PSObj]:
    cl = my_cluster(ctx, "Get-Cluster", call.get("Name"), soft=True)
    return [cluster_obj(cl)] if cl else []


@cmdlet("Get-ClusterNode", params=["Name", "Cluster"])
def get_cluster_node(ctx: Context, call: Call) -> Iterable[PSObj]:
    cl = my_cluster(ctx, "Get-ClusterNode", call.get("Cluster"))
    assert cl is not None
    names = [str(n).lower() for n in as_list(call.get("Name"))]
    out = [node_obj(ctx.world, cl, n) for n in cl.nodes if not names or n.lower() in names]
    for n in names:
        if n not in (x.lower() for x in cl.nodes):
            ctx.error(
                cluster_error(
                    f"The node '{n}' is not a member of cluster '{cl.name}'.",
                    "Get-ClusterNode",
                    "ObjectNotFound",
                    n,
                )
            )
    return out


@cmdlet("Get-ClusterGroup", params=["Name", "Cluster"])
def get_cluster_group(ctx: Context, call: Call) -> Iterable[PSObj]:
    cl = my_cluster(ctx, "Get-ClusterGroup", call.get("Cluster"))
    assert cl is not None
    names = [str(n) for n in as_list(call.get("Name"))]
    if not names:
        return [group_obj(ctx.world, cl, g) for g in cl.groups]
    out = []
    for n in names:
        g = cl.group(n)
        if g is None:
            ctx.error(
                cluster_error(
                    f"An error occurred while opening the cluster group '{n}'.\n    The group "
                    "name specified is not valid or the group cannot be found.",
                    "Get-ClusterGroup",
                    "ObjectNotFound",
                    n,
                )
            )
            continue
        out.append(group_obj(ctx.world, cl, g))
    return out


@cmdlet("Get-ClusterResource", params=["Name", "Cluster"])
def get_cluster_resource(ctx: Context, call: Call) -> Iterable[PSObj]:
    cl = my_cluster(ctx, "Get-ClusterResource", call.get("Cluster"))
    assert cl is not None
    names = [str(n).lower() for n in as_list(call.get("Name"))]
    return [
        resource_obj(ctx.world, cl, r) for r in cl.resources if not names or r.name.lower() in names
    ]


@cmdlet("Get-ClusterNetwork", params=["Name", "Cluster"])
def get_cluster_network(ctx: Context, call: Call) -> Iterable[PSObj]:
    cl = my_cluster(ctx, "Get-ClusterNetwork", call.get("Cluster"))
    assert cl is not None
    names = [str(n).lower() for n in as_list(call.get("Name"))]
    return [
        network_obj(cl, n, ctx.world) for n in cl.networks if not names or n.name.lower() in names
    ]


def set_cluster_network_role(ctx: Any, address: str, name: str, role: Any) -> list[PSObj]:
    """templates/guest/Set-ClusterNetworkRole.ps1 (R-59)."""
    cl = my_cluster(ctx, "Get-ClusterNetwork")
    assert cl is not None
    net = cl.network_by_address(address)
    if net is None:
        raise PSError(
            f"No cluster network has the address {address}.",
            fqid=f"No cluster network has the address {address}.",
            category="OperationStopped",
            exception="System.Management.Automation.RuntimeException",
        )
    r = int(role)
    if r not in NET_ROLE.values():
        raise PSError(
            f'Exception setting "Role": "Cannot convert value "{r}" to type '
            '"Microsoft.FailoverClusters.PowerShell.ClusterNetworkRole"."',
            fqid="ExceptionWhenSetting",
            category="NotSpecified",
            exception="System.Management.Automation.SetValueInvocationException",
        )
    net.name = name
    net.role = r
    return [
        PSObj(
            ["System.Management.Automation.PSCustomObject", "System.Object"],
            {"Name": net.name, "Address": net.address, "Role": net.role},
        )
    ]


@cmdlet("Get-ClusterQuorum", params=["Cluster"])
def get_cluster_quorum(ctx: Context, call: Call) -> Iterable[PSObj]:
    cl = my_cluster(ctx, "Get-ClusterQuorum", call.get("Cluster"))
    assert cl is not None
    res = next((r for r in cl.resources if r.resource_type == "File Share Witness"), None)
    return [
        PSObj(
            [FC + "ClusterQuorumSettings", "System.Object"],
            {
                "Cluster": cl.name,
                "QuorumResource": resource_obj(ctx.world, cl, res) if res else None,
                "QuorumType": "NodeAndFileShareMajority" if res else "NodeMajority",
            },
        )
    ]


@cmdlet("Set-ClusterQuorum", params=["FileShareWitness", "NoWitness", "Cluster"])
def set_cluster_quorum(ctx: Context, call: Call) -> Iterable[PSObj]:
    cl = my_cluster(ctx, "Set-ClusterQuorum", call.get("Cluster"))
    assert cl is not None
    cl.resources = [r for r in cl.resources if r.resource_type != "File Share Witness"]
    if call.switch("NoWitness"):
        cl.witness = None
        return get_cluster_quorum(ctx, Call("Get-ClusterQuorum", "", {}))
    path = str(call.get("FileShareWitness"))
    ctx.work(timing.seconds("cluster.quorum"), f"configuring the witness {path}")
    cl.witness = path
    cl.resources.append(
        Resource(
            "File Share Witness", "File Share Witness", "Cluster Group", str(ctx.world.new_uuid())
        )
    )
    if cl.quorum_state(ctx.world) != "Online":
        # the witness resource fails when the share is missing or denies the CNO.
        raise cluster_error(
            f"There was an error configuring the file share witness '{path}'. Unable to save "
            "property changes for 'File Share Witness'. The user name or password is incorrect "
            "or the cluster name object has no write access to the share.",
            "Set-ClusterQuorum",
            "PermissionDenied",
            path,
        )
    return get_cluster_quorum(ctx, Call("Get-ClusterQuorum", "", {}))


@cmdlet("Clear-ClusterNode", params=["Name", "Force", "CleanupDisks", "Confirm"])
def clear_cluster_node(ctx: Context, call: Call) -> None:
    g = node_ctx(ctx, "Clear-ClusterNode")
    names = [str(n) for n in as_list(call.get("Name"))]
    targets = resolve_nodes(ctx, names, "Clear-ClusterNode") if names else [g]
    for n in targets:
        cl = cluster_of(ctx.world, n)
        if cl is not None and n.name in cl.up_nodes(ctx.world):
            raise cluster_error(
                f"The node '{n.name}' is an active member of cluster '{cl.name}'. Remove it from "
                "the cluster first.",
                "Clear-ClusterNode",
                target=n.name,
            )
        n.cluster_config = None
        n.services.pop("ClusSvc", None)


@cmdlet("Remove-Cluster", params=["Force", "CleanupAD", "Cluster", "Confirm"])
def remove_cluster(ctx: Context, call: Call) -> None:
    cl = my_cluster(ctx, "Remove-Cluster", call.get("Cluster"))
    assert cl is not None
    if any(g.group_type == "VirtualMachine" for g in cl.groups):
        raise not_modelled("Remove-Cluster with clustered roles left (remove them first, R-66)")
    for n in cl.nodes:
        guest = cl.node_guest(ctx.world, n)
        if guest is not None and guest.cluster_config == cl.name:
            guest.cluster_config = None
            guest.services.pop("ClusSvc", None)
            for path in list(guest.fs.mounts):
                if len(path) >= 2 and path[1] == "clusterstorage":
                    del guest.fs.mounts[path]
    dom = find_domain(ctx.world, cl.domain)
    if dom is not None:
        dom.dns.pop(cl.name.lower(), None)
        if call.switch("CleanupAD"):
            dom.computers.pop(cl.name.lower(), None)
        elif dom.computer(cl.name) is not None:
            dom.computer(cl.name).enabled = False  # the CNO stays, disabled
    del ctx.world.clusters[cl.name.lower()]
