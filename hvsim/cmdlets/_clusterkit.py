"""What the FailoverClusters cmdlet modules share: the gate every cluster cmdlet
passes (module installed, R-47; domain account, R-52), the object shapes, node
lookup and report files."""

from __future__ import annotations

import ipaddress
from typing import Any

from hvsim.cmdlets._hvcommon import command_not_found
from hvsim.errors import PSError
from hvsim.model import s2d as S
from hvsim.model.ad import find_domain, reachable
from hvsim.model.cluster import Cluster, Group, Resource, cluster_of
from hvsim.model.fs import normalize
from hvsim.model.guest import GuestOS
from hvsim.model.machine import at
from hvsim.objects import PSEnum, PSObj, UInt32, UInt64
from hvsim.registry import Context

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


def cluster_error(
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
        raise cluster_error(
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
    cl = cluster_of(ctx.world, g)
    if cl is not None and not cluster_name and g.services.get("ClusSvc") != "Running":
        cl = None  # the cluster service is stopped on this node (Stop-Cluster)
    if cluster_name:
        cl = _open_cluster(ctx, g, str(cluster_name), name)
    if cl is None:
        err = cluster_error(
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
    cl.refresh(ctx.world, POLLS.get(name))
    return cl


# Reads that poll for something the cluster has due (hvsim.model.cluster.refresh).
POLLS = {
    "Get-ClusterNode": "nodes",
    "Get-ClusterGroup": "nodes",
    "Get-ClusterResource": "nodes",
    "Get-ClusterNetwork": "links",
    "Get-ClusterNetworkInterface": "links",
}


def _open_cluster(ctx: Context, g: GuestOS, target: str, cmdlet_name: str) -> Cluster | None:
    """-Cluster <name>: the cluster's name or one of its nodes (clusapi OpenCluster: "the
    name of the cluster or one of the cluster nodes"). Reaching another node from a
    PowerShell Direct session is the second hop R-94 worries about."""
    key = target.split(".")[0].lower()
    cl = ctx.world.clusters.get(key)
    if cl is not None and not cl.up_nodes(ctx.world):
        return None  # no node runs the cluster service: nothing answers to the name
    via = None
    if cl is None:
        m = ctx.world.guest_named(key, g.domain)
        if isinstance(m, GuestOS) and m.cluster_config:
            cl, via = cluster_of(ctx.world, m), m
    if cl is None:
        return None
    if via is not None and via is not g:
        if cl.node_state(ctx.world, via.name) != "Up":
            raise cluster_error(
                f"The cluster node '{via.name}' could not be reached.",
                cmdlet_name,
                "ConnectionError",
                target,
            )
        profile = getattr(ctx.world, "profile", None)
        if profile is not None and not profile.powershell_direct_second_hop:
            # the session's credential does not travel on (modelled).
            raise cluster_error(
                f"Failed to connect to the cluster on node '{via.name}'. Access is denied.",
                cmdlet_name,
                "PermissionDenied",
                target,
            )
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
            # heartbeat and compute resiliency settings.
            "SameSubnetDelay": UInt32(cl.same_subnet_delay_ms),
            "SameSubnetThreshold": UInt32(cl.same_subnet_threshold),
            "ResiliencyLevel": UInt32(cl.resiliency_level),
            "ResiliencyDefaultPeriod": UInt32(cl.resiliency_default_period),
        },
        to_string=cl.name,
    )


# NodeDrainStatus and the node's StatusInformation (Windows Server 2016: Isolated and
# Quarantined for compute resiliency, R-106); the numbers are modelled.
DRAIN_STATUS = {"NotInitiated": 0, "InProgress": 1, "Completed": 2, "Failed": 3}
NODE_STATUS_INFO = {"Normal": 0, "Isolated": 1, "Quarantined": 2}
NETWORK_STATE = {"Unknown": -1, "Unavailable": 0, "Down": 1, "Partitioned": 2, "Up": 3}


def node_obj(world: Any, cl: Cluster, name: str) -> PSObj:
    state = cl.node_state(world, name)
    if name in cl.drain_failed:
        drain = "Failed"
    elif name in cl.paused and name in cl.drain_completed:
        drain = "Completed"
    else:
        drain = "NotInitiated"
    info = "Isolated" if cl.isolated(world, name) else "Normal"
    return PSObj(
        _tn("ClusterNode"),
        {
            "Name": name,
            "Id": str(cl.nodes.index(name) + 1) if name in cl.nodes else "0",
            "State": PSEnum(FC + "ClusterNodeState", state, NODE_STATE[state]),
            "DrainStatus": PSEnum(FC + "NodeDrainStatus", drain, DRAIN_STATUS[drain]),
            "StatusInformation": PSEnum(
                FC + "ClusterNodeStatusInformation", info, NODE_STATUS_INFO[info]
            ),
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
    if r.group == "Cluster Group" and cl.core_failed(world):
        return "Failed"  # its node's management network just changed
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


def network_obj(cl: Cluster, n: Any, world: Any = None) -> PSObj:
    mask = str(ipaddress.IPv4Network(f"0.0.0.0/{n.prefix}").netmask)
    state = cl.network_state(world, n) if world is not None else "Up"
    return PSObj(
        _tn("ClusterNetwork"),
        {
            "Name": n.name,
            "Address": n.address,
            "AddressMask": mask,
            "Role": PSEnum(FC + "ClusterNetworkRole", n.role_name, n.role),
            "State": PSEnum(FC + "ClusterNetworkState", state, NETWORK_STATE[state]),
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
    state = "Online" if cl.member_nodes(world) else "Offline"
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


def resolve_nodes(ctx: Context, names: list[str], cmdlet_name: str) -> list[GuestOS]:
    out = []
    for raw in names:
        name = str(raw).split(".")[0]
        # Resolved as the asking node's DNS would: in its domain.
        found = ctx.world.guest_named(name, getattr(ctx.machine, "domain", None))
        if not isinstance(found, GuestOS):
            found = None
        if found is None or not found.is_ready():
            raise cluster_error(
                f"The computer '{name}' could not be reached. Verify that the computer is on and "
                "that its name resolves in DNS.",
                cmdlet_name,
                "ConnectionError",
                name,
            )
        out.append(found)
    return out


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
