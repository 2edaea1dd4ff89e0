"""FailoverClusters cmdlets inside a node (R-47..R-59, R-62, R-65, R-68, R-69).

They exist only where the Failover Cluster PowerShell module is installed
(RSAT-Clustering-PowerShell, brought by Failover-Clustering
-IncludeManagementTools, R-47) and they need a domain account (R-52).
"""

from __future__ import annotations

import html
import ipaddress
from collections.abc import Iterable
from typing import Any

from hvsim import timing
from hvsim.cmdlets._hvcommon import as_list, command_not_found
from hvsim.errors import PSError, not_modelled
from hvsim.model import s2d as S
from hvsim.model.ad import find_domain, reachable
from hvsim.model.cluster import Cluster, Group, Resource, cluster_of, discover_networks
from hvsim.model.fs import normalize
from hvsim.model.guest import GuestOS
from hvsim.model.machine import at
from hvsim.objects import PSEnum, PSObj, UInt32, UInt64
from hvsim.registry import Call, Context, cmdlet

FC = "Microsoft.FailoverClusters.PowerShell."
NODE_STATE = {"Unknown": -1, "Up": 0, "Down": 1, "Paused": 2, "Joining": 3}
GROUP_STATE = {
    "Unknown": -1,
    "Online": 0,
    "Offline": 1,
    "Failed": 2,
    "PartialOnline": 3,
    "Pending": 4,
}
# CLUSTER_RESOURCE_STATE values (clusapi); map by name.
RES_STATE = {"Unknown": -1, "Online": 2, "Offline": 3, "Failed": 4, "Pending": 128}
# CLUSGROUP_TYPE values (clusapi).
GROUP_TYPE = {"Cluster": 1, "AvailableStorage": 2, "ClusterStoragePool": 5, "VirtualMachine": 111}
NET_ROLE = {"None": 0, "Cluster": 1, "ClusterAndClient": 3}
REPORTS = "C:\\Windows\\Cluster\\Reports"
CSV_ROOT = "C:\\ClusterStorage\\"


def _err(
    text: str, cmdlet_name: str, category: str = "InvalidOperation", target: Any = None
) -> PSError:
    cls = cmdlet_name.replace("-", "")
    return PSError(
        text,
        fqid=f"{cmdlet_name},{FC}{cls}Command",
        category=category,
        exception=FC + "ClusterCmdletException",
        target=target,
    )


def node_ctx(ctx: Context, name: str) -> GuestOS:
    """R-47: the module is there; R-52: the caller is a domain account."""
    g = ctx.machine
    if not isinstance(g, GuestOS) or g.features.get("RSAT-Clustering-PowerShell") != "Installed":
        raise command_not_found(name)
    prefix = ctx.user.rpartition("\\")[0]
    if not prefix or find_domain(ctx.world, prefix) is None or prefix.lower() == g.name.lower():
        # text (unconfirmed), the access-denied family of cluster cmdlets.
        raise _err(
            "You do not have administrative privileges on the cluster. Contact your network "
            "administrator to request access.\n    Access is denied",
            name,
            "PermissionDenied",
        )
    return g


def my_cluster(
    ctx: Context, name: str, cluster_name: Any = None, *, soft: bool = False
) -> Cluster | None:
    g = node_ctx(ctx, name)
    cl = (
        ctx.world.clusters.get(str(cluster_name).lower())
        if cluster_name
        else cluster_of(ctx.world, g)
    )
    if cl is None:
        err = _err(
            "The cluster service is not running. Make sure that the service is running on all "
            "nodes in the cluster.",
            name,
            "ConnectionError",
            cluster_name,
        )
        if soft:
            ctx.error(err)
            return None
        raise err
    cl.refresh(ctx.world)
    return cl


# -- object shapes ----------------------------------------------------------------------


def _tn(kind: str) -> list[str]:
    return [FC + kind, FC + "ClusterObject", "System.Object"]


def cluster_obj(cl: Cluster) -> PSObj:
    return PSObj(
        _tn("Cluster"),
        {
            "Name": cl.name,
            "Domain": cl.domain,
            "Id": cl.id,
            "BlockCacheSize": UInt32(cl.block_cache_size),
            "S2DEnabled": UInt32(1 if cl.s2d_enabled else 0),
            "AdministrativeAccessPoint": PSEnum(
                FC + "AdministrativeAccessPointType", "ActiveDirectoryAndDns", 1
            ),
            "SharedVolumesRoot": "C:\\ClusterStorage",
        },
        to_string=cl.name,
    )


def node_obj(world: Any, cl: Cluster, name: str) -> PSObj:
    state = cl.node_state(world, name)
    return PSObj(
        _tn("ClusterNode"),
        {
            "Name": name,
            "Id": str(cl.nodes.index(name) + 1) if name in cl.nodes else "0",
            "State": PSEnum(FC + "ClusterNodeState", state, NODE_STATE[state]),
            "NodeWeight": UInt32(1),
            "DynamicWeight": UInt32(1 if state == "Up" else 0),
            "Cluster": cl.name,
            "NodeName": name,
        },
        to_string=name,
    )


def group_obj(world: Any, cl: Cluster, g: Group) -> PSObj:
    state = cl.group_state(world, g)
    return PSObj(
        _tn("ClusterGroup"),
        {
            "Name": g.name,
            "OwnerNode": node_obj(world, cl, g.owner),
            "State": PSEnum(FC + "ClusterGroupState", state, GROUP_STATE[state]),
            "GroupType": PSEnum(FC + "GroupType", g.group_type, GROUP_TYPE[g.group_type]),
            "IsCoreGroup": g.core,
            "Id": g.id,
            "Cluster": cl.name,
        },
        to_string=g.name,
    )


def _resource_state(world: Any, cl: Cluster, r: Resource) -> str:
    if r.resource_type == "File Share Witness":
        return cl.quorum_state(world)
    if r.resource_type == "Network Name":
        # the cluster name needs AD/DNS; with the DC down it stays offline.
        dom = find_domain(world, cl.domain)
        if dom is None or not reachable(world, dom):
            return "Offline"
    g = cl.group(r.group)
    gs = cl.group_state(world, g) if g else "Unknown"
    return {"Online": "Online", "Offline": "Offline", "Failed": "Failed"}.get(gs, "Pending")


def resource_obj(world: Any, cl: Cluster, r: Resource) -> PSObj:
    state = _resource_state(world, cl, r)
    g = cl.group(r.group)
    return PSObj(
        _tn("ClusterResource"),
        {
            "Name": r.name,
            "State": PSEnum(FC + "ClusterResourceState", state, RES_STATE[state]),
            "OwnerGroup": r.group,
            "OwnerNode": node_obj(world, cl, g.owner) if g else None,
            "ResourceType": r.resource_type,
            "Id": r.id,
        },
        to_string=r.name,
    )


def network_obj(cl: Cluster, n: Any) -> PSObj:
    mask = str(ipaddress.IPv4Network(f"0.0.0.0/{n.prefix}").netmask)
    return PSObj(
        _tn("ClusterNetwork"),
        {
            "Name": n.name,
            "Address": n.address,
            "AddressMask": mask,
            "Role": PSEnum(FC + "ClusterNetworkRole", n.role_name, n.role),
            "State": PSEnum(FC + "ClusterNetworkState", "Up", 3),
            "Id": n.id,
            "Cluster": cl.name,
        },
        to_string=n.name,
    )


def csv_obj(world: Any, cl: Cluster, vd: S.VirtualDisk) -> PSObj:
    """R-65: name `Cluster Virtual Disk (<FriendlyName>)`, mount path under ClusterStorage."""
    vol = vd.volume
    free = vol.free()
    partition = PSObj(
        [FC + "ClusterDiskPartitionInfo", "System.Object"],
        {
            "Name": f"\\\\?\\Volume{{{vol.unique_id}}}\\",
            "FileSystem": "CSVFS",
            "Size": UInt64(vol.size),
            "FreeSpace": UInt64(free),
            "UsedSpace": UInt64(vol.size - free),
            "PercentFree": round(100.0 * free / vol.size, 2) if vol.size else 0.0,
        },
    )
    info = PSObj(
        [FC + "ClusterSharedVolumeInfo", "System.Object"],
        {
            "FriendlyVolumeName": vd.mount_path,
            "Partition": partition,
            "MaintenanceMode": False,
            "RedirectedAccess": False,
        },
    )
    state = "Online" if cl.up_nodes(world) else "Offline"
    return PSObj(
        _tn("ClusterSharedVolume"),
        {
            "Name": f"Cluster Virtual Disk ({vd.friendly_name})",
            "Id": vd.csv_id,
            "OwnerNode": node_obj(world, cl, vd.csv_owner),
            "State": PSEnum(FC + "ClusterSharedVolumeState", state, RES_STATE[state]),
            "SharedVolumeInfo": [info],
        },
        to_string=f"Cluster Virtual Disk ({vd.friendly_name})",
    )


# -- Test-Cluster (R-48, R-49, R-54..R-56, R-15) --------------------------------------------

CATEGORIES = {
    "inventory": "Inventory",
    "network": "Network",
    "system configuration": "System Configuration",
    "storage spaces direct": "Storage Spaces Direct",
    "hyper-v configuration": "Hyper-V Configuration",
}


def _resolve_nodes(ctx: Context, names: list[str], cmdlet_name: str) -> list[GuestOS]:
    out = []
    for raw in names:
        name = str(raw).split(".")[0]
        found = None
        for m in ctx.world.machines():
            if isinstance(m, GuestOS) and m.name.lower() == name.lower():
                found = m
        if found is None or not found.is_ready():
            raise _err(
                f"The computer '{name}' could not be reached. Verify that the computer is on and "
                "that its name resolves in DNS.",
                cmdlet_name,
                "ConnectionError",
                name,
            )
        out.append(found)
    return out


def _s2d_tests(nodes: list[GuestOS]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    not_dc = [n.name for n in nodes if n.edition_is_datacenter() is False]
    rows.append(
        (
            "Validate Operating System Edition",
            "Failed" if not_dc else "Success",
            f"The operating system edition of {', '.join(not_dc)} does not support Storage Spaces "
            "Direct; Datacenter is required."
            if not_dc
            else "All nodes run Datacenter.",
        )
    )
    dcs = [n.name for n in nodes if n.is_dc]
    eligible = {
        n.name: [d for d in S.guest_disks(n) if d.cannot_pool_reason({}) is None] for n in nodes
    }
    few = [name for name, disks in eligible.items() if len(disks) < 2]
    problems = []
    if dcs:
        problems.append(f"Is DC: {', '.join(dcs)} is a domain controller")
    if few:
        problems.append(
            f"{', '.join(few)} has fewer than 2 disks eligible for Storage Spaces Direct"
        )
    rows.append(
        (
            "Validate Storage Spaces Direct Support",
            "Failed" if problems else "Success",
            "; ".join(problems) or "All nodes support Storage Spaces Direct.",
        )
    )
    ids: dict[str, list[str]] = {}
    for n in nodes:
        for d in S.guest_disks(n):
            ids.setdefault(S.unique_id(d.vhd), []).append(f"{n.name} disk {d.number}")
    dups = [f"{uid} ({', '.join(where)})" for uid, where in ids.items() if len(where) > 1]
    rows.append(
        (
            "Verify Unique Device Identifiers",
            "Failed" if dups else "Success",
            "Disks share SCSI page 83h VPD identifiers: " + "; ".join(dups)
            if dups
            else "All disks have unique SCSI page 83h VPD identifiers.",
        )
    )
    layouts = {name: sorted(d.size for d in disks) for name, disks in eligible.items()}
    differ = len({tuple(v) for v in layouts.values()}) > 1
    rows.append(
        (
            "Verify Node and Disk Configuration",
            "Failed" if differ else "Success",
            "The nodes do not have the same eligible disk configuration: "
            + "; ".join(f"{k}: {len(v)} disks" for k, v in layouts.items())
            if differ
            else "All nodes have the same disk configuration (bus type SAS, media type Unknown).",
        )
    )
    rows.append(("List Disks Eligible for Storage Spaces Direct", "Success", ""))
    return rows


def _category_rows(category: str, nodes: list[GuestOS]) -> list[tuple[str, str, str]]:
    if category == "Storage Spaces Direct":
        return _s2d_tests(nodes)
    if category == "Inventory":
        return [
            ("List Operating System Information", "Success", ""),
            ("List System Information", "Success", ""),
            ("List Software Updates", "Success", ""),
            ("List Unsigned Drivers", "Success", ""),
        ]
    if category == "Network":
        subnets = [{str(i.network) for i in n.ipv4_interfaces()} for n in nodes]
        common = set.intersection(*subnets) if subnets else set()
        apipa = [
            n.name
            for n in nodes
            if any(ip.address.startswith("169.254.") for a in n.net.adapters for ip in a.ips)
        ]
        return [
            ("List Network Binding Order", "Success", ""),
            (
                "Validate Network Communication",
                "Success" if common else "Failed",
                "" if common else "The nodes share no subnet and cannot reach each other.",
            ),
            (
                "Validate IP Configuration",
                "Warning" if apipa else "Success",
                f"{', '.join(apipa)} has an automatic private (APIPA) address." if apipa else "",
            ),
            (
                "Validate Cluster Network Configuration",
                "Warning" if len(common) < 2 else "Success",
                "The nodes are connected by one network only: a single point of failure."
                if len(common) < 2
                else "",
            ),
        ]
    if category == "System Configuration":
        domains = {n.domain for n in nodes}
        missing = [n.name for n in nodes if n.features.get("Failover-Clustering") != "Installed"]
        return [
            (
                "Validate Active Directory Configuration",
                "Failed" if None in domains or len(domains) != 1 else "Success",
                "All nodes must be members of the same domain."
                if None in domains or len(domains) != 1
                else "",
            ),
            ("Validate All Drivers Signed", "Success", ""),
            (
                "Validate Cluster Service and Driver Settings",
                "Failed" if missing else "Success",
                f"The Failover Clustering feature is not installed on {', '.join(missing)}."
                if missing
                else "",
            ),
            ("Validate Same Processor Architecture", "Success", ""),
            (
                "Validate Software Update Levels",
                "Warning",
                "Software updates could not be compared.",
            ),
        ]
    if category == "Hyper-V Configuration":
        no_hv = [n.name for n in nodes if n.hyperv is None]
        return [
            (
                "List Hyper-V Virtual Machine Information",
                "Failed" if no_hv else "Success",
                f"The Hyper-V role is not running on {', '.join(no_hv)}." if no_hv else "",
            ),
            ("Validate Hyper-V Memory Resource Pool Compatibility", "Success", ""),
            (
                "Validate Hyper-V Network Resource Pool And Virtual Switch Compatibility",
                "Success",
                "",
            ),
        ]
    return []


def _report_html(
    title: str, when: str, nodes: list[GuestOS], rows: list[tuple[str, str, str, str]]
) -> str:
    """One table per category with Name / Result / Description rows, the layout of
    the validation report's results tables (modelled, docs/model-notes.md)."""
    lines = [
        "<!DOCTYPE html>",
        f"<html><head><title>{html.escape(title)}</title></head><body>",
        "<h1>Failover Cluster Validation Report</h1>",
        f"<p>Node: {', '.join(html.escape(n.name) for n in nodes)}</p>",
        f"<p>Started {when}</p>",
    ]
    for cat in dict.fromkeys(r[0] for r in rows):
        lines.append(f"<h2>{html.escape(cat)}</h2>")
        lines.append("<table>")
        lines.append("<tr><th>Name</th><th>Result</th><th>Description</th></tr>")
        for c, test, result, detail in rows:
            if c == cat:
                lines.append(
                    f"<tr><td>{html.escape(test)}</td><td>{result}</td>"
                    f"<td>{html.escape(detail)}</td></tr>"
                )
        lines.append("</table>")
    if any(r[2] == "Failed" for r in rows):
        lines.append(
            "<p>Testing has completed for the tests you selected. You should review the "
            "warnings in the Report. A cluster solution is supported by Microsoft only if "
            "you run all cluster validation tests, and all tests succeed (with or without "
            "warnings).</p>"
        )
    else:
        lines.append(
            "<p>Testing has completed successfully and the configuration is suitable for "
            "clustering.</p>"
        )
    lines.append("</body></html>")
    return "\n".join(lines)


def _file_info(path: str, size: int, now: float) -> PSObj:
    name = path.rsplit("\\", 1)[-1]
    when = at(now)
    return PSObj(
        [
            "System.IO.FileInfo",
            "System.IO.FileSystemInfo",
            "System.MarshalByRefObject",
            "System.Object",
        ],
        {
            "Name": name,
            "FullName": path,
            "DirectoryName": path.rsplit("\\", 1)[0],
            "Extension": ".htm",
            "Length": size,
            "CreationTime": when,
            "LastWriteTime": when,
            "Exists": True,
        },
        to_string=path,
    )


def write_report(ctx: Context, g: GuestOS, base: str, content: str) -> PSObj:
    path = f"{REPORTS}\\{base}.htm"
    f = g.fs.write(path, content, create_parents=True)
    return _file_info(normalize(path), f.size, ctx.world.clock.now())


@cmdlet(
    "Test-Cluster", params=["Node", "Include", "ReportName", "Ignore", "Force", "List", "Cluster"]
)
def test_cluster(ctx: Context, call: Call) -> Iterable[PSObj]:
    g = node_ctx(ctx, "Test-Cluster")
    if call.switch("List") or call.get("Ignore") or call.get("Cluster"):
        raise not_modelled("Test-Cluster -List, -Ignore or -Cluster")
    names = [str(n) for n in as_list(call.get("Node"))] or [g.name]
    nodes = _resolve_nodes(ctx, names, "Test-Cluster")
    if any(n.locale.lower() != "en-us" for n in [*nodes, g]):
        # validation on non-English nodes produces no report.
        raise _err("Test report isn't available, try to validate again.", "Test-Cluster")
    include = [str(c) for c in as_list(call.get("Include"))] or list(CATEGORIES.values())
    cats = []
    for c in include:
        if c.lower() not in CATEGORIES:
            raise _err(
                f"The test category '{c}' was not found. Use Test-Cluster -List to see the "
                "available tests.",
                "Test-Cluster",
                "InvalidArgument",
                c,
            )
        cats.append(CATEGORIES[c.lower()])
    ctx.work(timing.seconds("cluster.test"), "validating " + ", ".join(n.name for n in nodes))
    rows = [(cat, t, r, d) for cat in cats for t, r, d in _category_rows(cat, nodes)]
    now = ctx.world.clock.now()
    when = at(now).strftime("%Y.%m.%d At %H.%M.%S")
    base = str(call.get("ReportName") or f"Validation Report {when}")
    report = write_report(ctx, g, base, _report_html(base, when, nodes, rows))
    failed = any(r[2] == "Failed" for r in rows)
    warned = any(r[2] == "Warning" for r in rows)
    if failed:
        ctx.warning(
            "Test Result:\nValidationFailed\nTesting has completed for the tests you selected. "
            "The configuration is not suitable for clustering. Review the report."
        )
    elif warned:
        ctx.warning(
            "Test Result:\nClusterConditionallyApproved\nTesting has completed successfully. The "
            "configuration appears to be suitable for clustering.  However, you should review the "
            "report because it may contain warnings which you should address to attain the "
            "highest availability."
        )
    return [report]


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
    nodes = _resolve_nodes(ctx, names, "New-Cluster")
    dom = find_domain(ctx.world, g.domain) if g.domain else None
    if dom is None or not reachable(ctx.world, dom):
        raise _err(
            "The domain of this computer could not be contacted.", "New-Cluster", "ConnectionError"
        )
    for n in nodes:
        if n.domain is None or n.domain.lower() != dom.fqdn.lower():
            raise _err(
                f"The computer '{n.name}' is not joined to the domain '{dom.fqdn}'. All nodes of "
                "a cluster must be members of the same domain.",
                "New-Cluster",
                target=n.name,
            )
        if n.features.get("Failover-Clustering") != "Installed":
            raise _err(
                f"The Failover Clustering feature is not installed on node '{n.name}'.",
                "New-Cluster",
                target=n.name,
            )
        if n.cluster_config:
            raise _err(
                f"The computer '{n.name}' is joined to a cluster.", "New-Cluster", target=n.name
            )
    if name.lower() in ctx.world.clusters:
        raise _err(
            f"A cluster named '{name}' already exists.", "New-Cluster", "ResourceExists", name
        )
    cno = dom.computer(name)
    if cno is not None and cno.cluster != name.upper():
        # R-57 (modelled text naming the computer object).
        raise _err(
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
        dom.dns[cl.name.lower()] = address
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
        raise _err(
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
        raise _err(
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
                _err(
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
                _err(
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
    return [network_obj(cl, n) for n in cl.networks if not names or n.name.lower() in names]


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
        raise _err(
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
    targets = _resolve_nodes(ctx, names, "Clear-ClusterNode") if names else [g]
    for n in targets:
        cl = cluster_of(ctx.world, n)
        if cl is not None and n.name in cl.up_nodes(ctx.world):
            raise _err(
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


# -- highly available VMs (R-67..R-70, R-08) ---------------------------------------------------


def _group_of_vm(cl: Cluster, name: str) -> Group | None:
    g = cl.group(name)
    return g if g is not None and g.group_type == "VirtualMachine" else None


@cmdlet("Add-ClusterVirtualMachineRole", params=["VMName", "Name", "Cluster"])
def add_cluster_vm_role(ctx: Context, call: Call) -> Iterable[PSObj]:
    g = node_ctx(ctx, "Add-ClusterVirtualMachineRole")
    cl = my_cluster(ctx, "Add-ClusterVirtualMachineRole", call.get("Cluster"))
    assert cl is not None
    vm_name = str(call.get("VMName"))
    vms = [v for v in (g.hyperv.vms if g.hyperv else []) if v.name.lower() == vm_name.lower()]
    if len(vms) != 1:
        raise _err(
            f"The virtual machine '{vm_name}' was not found on node '{g.name}'.",
            "Add-ClusterVirtualMachineRole",
            "ObjectNotFound",
            vm_name,
        )
    vm = vms[0]
    if cl.group(vm.name) is not None:
        raise _err(
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
            raise _err(
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
        raise _err(
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
        raise _err(
            f"The virtual machine of group '{name}' was not found.",
            cmdlet_name,
            "ObjectNotFound",
            name,
        )
    return cl, group, found[0], found[1]


class _NodeCtx:
    """A context for running a Hyper-V model operation on another node."""

    def __init__(self, outer: Context, machine: Any) -> None:
        self.world = outer.world
        self.machine = machine
        self.user = outer.user
        self.input: list[Any] = []
        self._outer = outer

    def error(self, err: PSError) -> None:
        raise err

    def warning(self, text: str) -> None:
        self._outer.warning(text)

    def verbose(self, text: str) -> None:
        self._outer.verbose(text)

    def information(self, data: Any) -> None:
        self._outer.information(data)

    def progress(self, activity: str, status: str, percent: int = -1) -> None:
        self._outer.progress(activity, status, percent)

    def work(self, seconds: float, what: str) -> None:
        self._outer.work(seconds, what)


@cmdlet("Start-ClusterGroup", params=["Name", "Cluster"])
def start_cluster_group(ctx: Context, call: Call) -> Iterable[PSObj]:
    from hvsim.model import vmops

    cl, group, node, vm = _vm_group(ctx, "Start-ClusterGroup", str(call.get("Name")))
    group.wanted = "Online"
    group.failed = False
    if vm.state != "Running":
        try:
            vmops.start(_NodeCtx(ctx, node), node.hyperv, vm)
        except PSError as exc:
            group.failed = True  # the group goes Failed when its VM cannot start
            raise _err(
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
        vmops.stop(_NodeCtx(ctx, node), node.hyperv, vm, turn_off=False, save=True, force=True)
    return [group_obj(ctx.world, cl, group)]


@cmdlet("Remove-ClusterGroup", params=["Name", "RemoveResources", "Force", "Cluster", "Confirm"])
def remove_cluster_group(ctx: Context, call: Call) -> None:
    name = str(as_list(call.get("Name"))[0])  # StringCollection in the catalog
    cl, group, _node, vm = _vm_group(ctx, "Remove-ClusterGroup", name)
    if cl.group_state(ctx.world, group) == "Online":
        raise _err(
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
            raise _err("No other node is available for the move.", "Move-ClusterVirtualMachineRole")
        target_name = others[0]
    dest_name = next((n for n in cl.nodes if n.lower() == target_name.lower()), None)
    fail = f"Live migration of 'Virtual Machine {vm.name}' failed."
    if dest_name is None:
        raise _err(
            f"The node '{target_name}' is not a member of cluster '{cl.name}'.",
            "Move-ClusterVirtualMachineRole",
            "ObjectNotFound",
            target_name,
        )
    if dest_name == src.name:
        return [group_obj(ctx.world, cl, group)]
    dest = cl.node_guest(ctx.world, dest_name)
    if cl.node_state(ctx.world, dest_name) != "Up" or dest is None or dest.hyperv is None:
        raise _err(
            f"{fail} The destination node '{dest_name}' is not Up.",
            "Move-ClusterVirtualMachineRole",
            target=vm.name,
        )
    if vm.state == "Running" and vm.memory_startup > dest.memory_free():
        raise _err(
            f"{fail} Not enough memory in the system on '{dest_name}' to start the virtual machine.",
            "Move-ClusterVirtualMachineRole",
            target=vm.name,
        )
    for a in vm.adapters:
        if a.switch and not dest.hyperv.find_switches(a.switch):
            # the same switch name must exist on the target.
            raise _err(
                f"{fail} The virtual switch '{a.switch}' of network adapter '{a.name}' was not "
                f"found on '{dest_name}'.",
                "Move-ClusterVirtualMachineRole",
                target=vm.name,
            )
    if mtype not in ("Live", "Quick"):
        raise not_modelled(f"Move-ClusterVirtualMachineRole -MigrationType {mtype}")
    ctx.work(timing.seconds("cluster.live_migration"), f"{mtype.lower()} migration of {vm.name}")
    # the VM keeps running and its Uptime keeps counting on the target.
    src.hyperv.vms.remove(vm)
    dest.hyperv.vms.append(vm)
    vm.host_name = dest.name
    group.owner = dest.name
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
