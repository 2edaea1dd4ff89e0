"""Storage module cmdlets inside a guest, and Storage Spaces Direct (R-15, R-55,
R-56, R-60..R-66): Get-Disk, Clear-Disk, Get-/Set-/Reset-PhysicalDisk,
Enable-ClusterStorageSpacesDirect, Get-StoragePool, Get-VirtualDisk, New-Volume,
Remove-VirtualDisk, Remove-StoragePool, Get-StorageSubSystem.

Storage objects are CIM instances; the Storage module's ScriptProperties turn
their integer codes into names, and that is what scripts read (hyperv-facts,
Object shapes), so MediaType, BusType, HealthStatus and the like are names here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from hvsim import timing
from hvsim.cmdlets._clusterkit import cluster_error, my_cluster, node_ctx
from hvsim.cmdlets._hvcommon import as_list
from hvsim.errors import PSError, not_modelled
from hvsim.model import s2d as S
from hvsim.model.cluster import Resource, cluster_of
from hvsim.model.fs import Volume
from hvsim.model.guest import GuestOS
from hvsim.objects import PSObj, UInt16, UInt32, UInt64
from hvsim.registry import Call, Context, cmdlet

CIM = "Microsoft.Management.Infrastructure.CimInstance"
ST = CIM + "#ROOT/Microsoft/Windows/Storage/"


def _tn(cls: str) -> list[str]:
    return [ST + cls, CIM + "#" + cls, CIM, "System.Object"]


def _guest(ctx: Context, name: str) -> GuestOS:
    if not isinstance(ctx.machine, GuestOS):
        raise not_modelled(f"{name} on the Hyper-V host itself")
    return ctx.machine


def _not_found(cls: str, prop: str, value: Any, cmdlet_name: str) -> PSError:
    return PSError(
        f"No {cls} objects found with property '{prop}' equal to '{value}'.  Verify the value of "
        "the property and retry.",
        fqid=f"CmdletizationQuery_NotFound_{prop},{cmdlet_name}",
        category="ObjectNotFound",
        exception="Microsoft.Management.Infrastructure.CimException",
        target=value,
    )


def _storage_error(
    text: str, cmdlet_name: str, code: int = 1, category: str = "InvalidOperation"
) -> PSError:
    return PSError(
        text,
        fqid=f"StorageWMI {code},{cmdlet_name}",
        category=category,
        exception="Microsoft.Management.Infrastructure.CimException",
    )


# -- disks the guest sees ------------------------------------------------------------------


def _visible_disks(g: GuestOS) -> list[S.GuestDisk]:
    """Get-Disk hides disks that a live S2D pool claimed (they belong to the pool);
    leftover metadata of a pool that is gone shows as a GPT disk (R-60)."""
    cl = cluster_of(g.world, g)
    live = cl.pool.unique_id if cl is not None and cl.pool is not None else None
    return [d for d in S.guest_disks(g) if d.state.pool_id is None or d.state.pool_id != live]


def _disk_obj(d: S.GuestDisk) -> PSObj:
    st = d.state
    # Storage Spaces metadata sits in a partition of its own, so a leftover member is GPT.
    style = "GPT" if d.is_boot or st.partitions or st.pool_id else "RAW"
    return PSObj(
        _tn("MSFT_Disk"),
        {
            "Number": UInt32(d.number),
            "FriendlyName": "Msft Virtual Disk",
            "SerialNumber": "",
            "UniqueId": S.unique_id(d.vhd),
            "Size": UInt64(d.size),
            "AllocatedSize": UInt64(d.size if style == "GPT" else 0),
            "IsBoot": d.is_boot,
            "IsSystem": d.is_boot,
            "IsOffline": st.offline,
            # MSFT_Disk OfflineReason: 1 = Policy (the SAN policy, R-60).
            "OfflineReason": "Policy" if st.offline else None,
            "IsReadOnly": st.read_only,
            "PartitionStyle": style,
            "NumberOfPartitions": UInt32(4 if d.is_boot else st.partitions),
            "OperationalStatus": "Offline" if st.offline else "Online",
            "HealthStatus": "Healthy",
            "BusType": "SAS",
        },
        to_string=f"Msft Virtual Disk ({d.number})",
    )


@cmdlet("Get-Disk", params=["Number", "UniqueId"])
def get_disk(ctx: Context, call: Call) -> Iterable[PSObj]:
    if not isinstance(ctx.machine, GuestOS):
        # The host's own disks and mounted VHDs are the host model's (storage_host).
        from hvsim.cmdlets.storage_host import host_get_disk

        return host_get_disk(ctx, call)
    g = _guest(ctx, "Get-Disk")
    disks = _visible_disks(g)
    numbers = [int(n) for n in as_list(call.get("Number"))]
    out = []
    for n in numbers:
        hit = [d for d in disks if d.number == n]
        if not hit:
            ctx.error(_not_found("MSFT_Disk", "Number", n, "Get-Disk"))
        out.extend(_disk_obj(d) for d in hit)
    if not numbers:
        out = [_disk_obj(d) for d in disks]
    return out


# MSFT_Disk Clear return values (learn.microsoft.com clear-msft-disk).
_CRITICAL = (41009, "Operation not supported on a critical disk.")
_NOT_INITIALIZED = (41000, "The disk has not been initialized.")
_READ_ONLY = (41002, "The disk is read only.")
_OFFLINE = (41003, "The disk is offline.")
_DATA_PARTITIONS = (
    41008,
    "Cannot clear with data partitions present. To clear data partitions, use the RemoveData flag.",
)


def _disk_error(code_text: tuple[int, str], cmdlet_name: str) -> PSError:
    code, text = code_text
    return _storage_error(text, cmdlet_name, code)


@cmdlet("Clear-Disk", params=["Number", "RemoveData", "RemoveOEM", "Confirm"])
def clear_disk(ctx: Context, call: Call) -> None:
    g = _guest(ctx, "Clear-Disk")
    for n in as_list(call.get("Number")):
        hit = [d for d in _visible_disks(g) if d.number == int(n)]
        if not hit:
            raise _not_found("MSFT_Disk", "Number", n, "Clear-Disk")
        d = hit[0]
        st = d.state
        if d.is_boot:
            raise _disk_error(_CRITICAL, "Clear-Disk")  # never boot or system
        # the Microsoft "Clean drives" script brings a disk online and writable
        # before Clear-Disk; an offline (SAN policy) or read-only disk refuses it.
        if st.offline:
            raise _disk_error(_OFFLINE, "Clear-Disk")
        if st.read_only:
            raise _disk_error(_READ_ONLY, "Clear-Disk")
        if not st.partitions and not st.pool_id:
            raise _disk_error(_NOT_INITIALIZED, "Clear-Disk")
        if not call.switch("RemoveData"):
            raise _disk_error(_DATA_PARTITIONS, "Clear-Disk")
        st.partitions = 0


@cmdlet("Set-Disk", params=["Number", "IsOffline", "IsReadOnly"])
def set_disk(ctx: Context, call: Call) -> None:
    """Set-Disk -Number N -IsOffline / -IsReadOnly: what the SAN policy decided, changed."""
    g = _guest(ctx, "Set-Disk")
    n = int(call.get("Number"))
    hit = [d for d in _visible_disks(g) if d.number == n]
    if not hit:
        raise _not_found("MSFT_Disk", "Number", n, "Set-Disk")
    d = hit[0]
    if d.is_boot and (call.get("IsOffline") or call.get("IsReadOnly")):
        raise _disk_error(_CRITICAL, "Set-Disk")
    if call.get("IsOffline") is not None:
        d.state.offline = bool(call.get("IsOffline"))
    if call.get("IsReadOnly") is not None:
        d.state.read_only = bool(call.get("IsReadOnly"))


def _pd_obj(
    world: Any, d: S.GuestDisk, device_id: str, pools: dict[str, Any], lost: bool = False
) -> PSObj:
    st = d.state
    reason = d.cannot_pool_reason(pools)
    return PSObj(
        _tn("MSFT_PhysicalDisk"),
        {
            "FriendlyName": "Msft Virtual Disk",
            "SerialNumber": "",
            "UniqueId": S.unique_id(d.vhd),
            "DeviceId": device_id,
            "Size": UInt64(d.size),
            "AllocatedSize": UInt64(S.POOL_METADATA_PER_DISK if st.pool_id else 0),
            "CanPool": reason is None,
            "CannotPoolReason": reason or "",
            "MediaType": st.media_type,
            "BusType": "SAS",  # Hyper-V SCSI VHDX
            "Usage": "Retired" if st.retired else "Auto-Select",
            # A pool member on a node that is Down (an MSFT_PhysicalDisk status).
            "HealthStatus": "Warning" if lost or st.retired else "Healthy",
            "OperationalStatus": "Lost Communication" if lost else "OK",
            "Manufacturer": "Msft",
            "Model": "Virtual Disk",
            "PhysicalLocation": f"{d.node} disk {d.number}",
        },
        to_string="Msft Virtual Disk",
    )


def _physical_disks(ctx: Context, g: GuestOS) -> list[tuple[S.GuestDisk, str, bool]]:
    """Local disks, plus every pool member on other nodes once S2D pooled them; a member
    that is away (its node down or cut off, or the drive pulled) is listed from the
    pool's record with Lost Communication (R-108). (disk, DeviceId, lost)."""
    out = [(d, str(d.number), False) for d in S.guest_disks(g)]
    cl = cluster_of(ctx.world, g)
    if cl is not None and cl.pool is not None:
        cl.refresh(ctx.world, "storage")
        seen = {id(d.vhd) for d, _, _ in out}
        for idx, node in enumerate(cl.nodes, 1):
            other = cl.node_guest(ctx.world, node)
            disks = S.guest_disks(other) if other is not None else []
            for n, (member_node, vhd) in enumerate([m for m in cl.pool.members if m[0] == node], 1):
                if id(vhd) in seen:
                    continue
                here = next((d for d in disks if d.vhd is vhd), None)
                lost = not cl.member_present(ctx.world, member_node, vhd)
                disk = here or S.GuestDisk(n, vhd, member_node, False)
                out.append((disk, str(1000 * idx + disk.number), lost))
    return out


@cmdlet("Get-PhysicalDisk", params=["UniqueId", "FriendlyName", "CanPool", "SerialNumber"])
def get_physical_disk(ctx: Context, call: Call) -> Iterable[PSObj]:
    g = _guest(ctx, "Get-PhysicalDisk")
    pools: dict[str, Any] = {}
    objs = [
        _pd_obj(ctx.world, d, dev, pools, lost=lost) for d, dev, lost in _physical_disks(ctx, g)
    ]
    if call.get("CanPool") is not None:
        objs = [o for o in objs if o["CanPool"] == bool(call.get("CanPool"))]
    ids = [str(u).upper() for u in as_list(call.get("UniqueId"))]
    if ids:
        objs = [o for o in objs if o["UniqueId"].upper() in ids]
        if not objs:
            ctx.error(_not_found("MSFT_PhysicalDisk", "UniqueId", ids[0], "Get-PhysicalDisk"))
    if call.get("FriendlyName") is not None:
        names = [str(n).lower() for n in as_list(call.get("FriendlyName"))]
        objs = [o for o in objs if o["FriendlyName"].lower() in names]
    return objs


def _select_pd(ctx: Context, call: Call, cmdlet_name: str) -> list[S.GuestDisk]:
    g = _guest(ctx, cmdlet_name)
    disks = _physical_disks(ctx, g)
    if ctx.input:
        ids = {str(o.get("UniqueId")).upper() for o in ctx.input if isinstance(o, PSObj)}
    else:
        ids = {str(u).upper() for u in as_list(call.get("UniqueId"))}
    if not ids:
        raise not_modelled(f"{cmdlet_name} without -UniqueId or piped disks")
    hits = [d for d, _, _ in disks if S.unique_id(d.vhd) in ids]
    if not hits:
        raise _not_found("MSFT_PhysicalDisk", "UniqueId", sorted(ids)[0], cmdlet_name)
    return hits


@cmdlet("Set-PhysicalDisk", params=["UniqueId", "MediaType", "FriendlyName", "NewFriendlyName"])
def set_physical_disk(ctx: Context, call: Call) -> None:
    if call.get("FriendlyName") or call.get("NewFriendlyName"):
        raise not_modelled("Set-PhysicalDisk -FriendlyName / -NewFriendlyName")
    media = call.get("MediaType")
    for d in _select_pd(ctx, call, "Set-PhysicalDisk"):
        if media is None:
            continue
        if d.state.pool_id is None:
            # only disks in a (non-primordial) pool take a media type; text (unconfirmed).
            raise _storage_error("Not Supported", "Set-PhysicalDisk", 1, "NotImplemented")
        d.state.media_type = str(media)


@cmdlet("Reset-PhysicalDisk", params=["UniqueId", "FriendlyName"])
def reset_physical_disk(ctx: Context, call: Call) -> None:
    if call.get("FriendlyName"):
        raise not_modelled("Reset-PhysicalDisk -FriendlyName")
    live = {c.pool.unique_id for c in ctx.world.clusters.values() if c.pool is not None}
    for d in _select_pd(ctx, call, "Reset-PhysicalDisk"):
        if d.state.pool_id in live:
            raise _storage_error(
                "The physical disk is part of a storage pool that is in use. Remove it from the "
                "pool first.",
                "Reset-PhysicalDisk",
                48000,
            )
        d.state.pool_id = None  # the Storage Spaces metadata is wiped
        d.state.partitions = 0
        d.state.media_type = "Unspecified"


# -- S2D (R-62) ---------------------------------------------------------------------------


@cmdlet(
    "Enable-ClusterStorageSpacesDirect",
    params=["CacheState", "PoolFriendlyName", "Confirm", "Autoconfig", "SkipEligibilityChecks"],
)
def enable_s2d(ctx: Context, call: Call) -> Iterable[PSObj]:
    cmd = "Enable-ClusterStorageSpacesDirect"
    node_ctx(ctx, cmd)
    cl = my_cluster(ctx, cmd)
    assert cl is not None
    if call.get("CacheState") not in (None, "Disabled"):
        raise not_modelled("Enable-ClusterStorageSpacesDirect with a cache")
    if cl.pool is not None or cl.s2d_enabled:
        raise cluster_error(
            f"Storage Spaces Direct is already enabled on cluster '{cl.name}'.",
            cmd,
            "ResourceExists",
        )
    down = [n for n in cl.nodes if cl.node_state(ctx.world, n) != "Up"]
    if down:
        raise cluster_error(
            f"All nodes must be Up to enable Storage Spaces Direct; down: {', '.join(down)}.", cmd
        )
    guests = [cl.node_guest(ctx.world, n) for n in cl.nodes]
    not_dc = [g.name for g in guests if not g.edition_is_datacenter()]
    if not_dc:
        # R-55 (text (unconfirmed), modelled).
        raise cluster_error(
            f"Storage Spaces Direct is not supported on the operating system edition of node(s) "
            f"{', '.join(not_dc)}. Windows Server Datacenter is required.",
            cmd,
            "NotImplemented",
        )
    seen: dict[str, int] = {}
    eligible: dict[str, list[S.GuestDisk]] = {}
    for g in guests:
        eligible[g.name] = [d for d in S.guest_disks(g) if d.cannot_pool_reason({}) is None]
        for d in eligible[g.name]:
            seen[S.unique_id(d.vhd)] = seen.get(S.unique_id(d.vhd), 0) + 1
    for name, disks in eligible.items():
        # disks whose identifier is not unique are not claimed (modelled).
        eligible[name] = [d for d in disks if seen[S.unique_id(d.vhd)] == 1]
    few = [n for n, disks in eligible.items() if len(disks) < 2]
    if few:
        raise cluster_error(
            f"No disks with supported bus types found to be used for S2D on node(s) "
            f"{', '.join(few)}: each node needs at least 2 eligible, unique, empty disks.",
            cmd,
            "ObjectNotFound",
        )
    ctx.work(timing.seconds("s2d.enable"), f"enabling Storage Spaces Direct on {cl.name}")
    pool = S.StoragePool(
        str(call.get("PoolFriendlyName") or f"S2D on {cl.name}"),
        "{" + str(ctx.world.new_uuid()) + "}",
    )
    for name, disks in eligible.items():
        for d in disks:
            d.state.pool_id = pool.unique_id
            pool.members.append((name, d.vhd))
    cl.pool = pool
    cl.s2d_enabled = True
    # The Health Service resource runs the performance history (performance-history.md).
    cl.resources.append(
        Resource("Health", "Health Service", "Cluster Group", str(ctx.world.new_uuid()))
    )
    _create_volume(ctx, cl, S.PERF_HISTORY, S.PERF_HISTORY_SIZE)
    return []


def _create_volume(
    ctx: Context, cl: Any, name: str, size: int, file_system: str = "CSVFS_ReFS"
) -> S.VirtualDisk:
    copies = S.mirror_copies(len(cl.nodes))
    # The volume keeps the format asked for (CSVFS_ReFS or CSVFS_NTFS); Windows shows
    # FileSystem "CSVFS" for both and the format in FileSystemType.
    vol = Volume(name, file_system, size)
    vd = S.VirtualDisk(
        name, size, copies, "{" + str(ctx.world.new_uuid()) + "}", vol, cl.up_nodes(ctx.world)[0]
    )
    cl.pool.virtual_disks.append(vd)
    for n in cl.nodes:
        g = cl.node_guest(ctx.world, n)
        if g is not None:
            g.fs.mount(vd.mount_path, vol)  # the same path on every node
    return vd


def _pool_obj(
    name: str, primordial: bool, size: int, allocated: int, uid: str, degraded: bool = False
) -> PSObj:
    return PSObj(
        _tn("MSFT_StoragePool"),
        {
            "FriendlyName": name,
            "IsPrimordial": primordial,
            "IsReadOnly": False,
            "IsClustered": not primordial,
            "HealthStatus": "Warning" if degraded else "Healthy",
            "OperationalStatus": "Degraded" if degraded else "OK",
            "Size": UInt64(size),
            "AllocatedSize": UInt64(allocated),
            "UniqueId": uid,
            "ObjectId": uid,
        },
        to_string=name,
    )


@cmdlet("Get-StoragePool", params=["FriendlyName", "IsPrimordial"])
def get_storage_pool(ctx: Context, call: Call) -> Iterable[PSObj]:
    g = _guest(ctx, "Get-StoragePool")
    disks = S.guest_disks(g)
    pools = [
        _pool_obj("Primordial", True, sum(d.size for d in disks), 0, "{primordial-" + g.name + "}")
    ]
    cl = cluster_of(ctx.world, g)
    if cl is not None and cl.pool is not None:
        cl.refresh(ctx.world, "storage")
        p = cl.pool
        bad = cl.storage_degraded(ctx.world)
        pools.append(_pool_obj(p.friendly_name, False, p.size, p.allocated, p.unique_id, bad))
    if call.get("IsPrimordial") is not None:
        # Boolean[] in the catalog: a pool matches any of the given values.
        wanted = {bool(v) for v in as_list(call.get("IsPrimordial"))}
        pools = [o for o in pools if o["IsPrimordial"] in wanted]
    name = call.get("FriendlyName")
    if name is not None:
        pools = [o for o in pools if o["FriendlyName"].lower() == str(name).lower()]
        if not pools:
            ctx.error(_not_found("MSFT_StoragePool", "FriendlyName", name, "Get-StoragePool"))
    return pools


def _vd_obj(vd: S.VirtualDisk, health: tuple[str, str] = ("Healthy", "OK")) -> PSObj:
    return PSObj(
        _tn("MSFT_VirtualDisk"),
        {
            "FriendlyName": vd.friendly_name,
            "ResiliencySettingName": "Mirror",
            "NumberOfDataCopies": UInt16(vd.copies),
            "Size": UInt64(vd.size),
            "FootprintOnPool": UInt64(vd.footprint),
            "HealthStatus": health[0],
            "OperationalStatus": health[1],
            "UniqueId": vd.unique_id,
            "ObjectId": vd.unique_id,
            "IsManualAttach": True,
        },
        to_string=vd.friendly_name,
    )


@cmdlet("Get-VirtualDisk", params=["FriendlyName"])
def get_virtual_disk(ctx: Context, call: Call) -> Iterable[PSObj]:
    g = _guest(ctx, "Get-VirtualDisk")
    cl = cluster_of(ctx.world, g)
    vds = cl.pool.virtual_disks if cl is not None and cl.pool is not None else []
    names = [str(n) for n in as_list(call.get("FriendlyName"))]
    if cl is not None and cl.pool is not None:
        cl.refresh(ctx.world, "storage")
    bad = cl.storage_health(ctx.world) if cl is not None else ("Healthy", "OK")
    if not names:
        return [_vd_obj(v, bad) for v in vds]
    out = []
    for n in names:
        hit = [v for v in vds if v.friendly_name.lower() == n.lower()]
        if not hit:
            ctx.error(_not_found("MSFT_VirtualDisk", "FriendlyName", n, "Get-VirtualDisk"))
        out.extend(_vd_obj(v, bad) for v in hit)
    return out


@cmdlet(
    "New-Volume",
    params=[
        "StoragePoolFriendlyName",
        "FriendlyName",
        "FileSystem",
        "Size",
        "ResiliencySettingName",
    ],
)
def new_volume(ctx: Context, call: Call) -> Iterable[PSObj]:
    g = _guest(ctx, "New-Volume")
    pool_name = str(call.get("StoragePoolFriendlyName"))
    cl = cluster_of(ctx.world, g)
    if cl is None or cl.pool is None or cl.pool.friendly_name.lower() != pool_name.lower():
        # before S2D there is no such pool.
        raise _not_found("MSFT_StoragePool", "FriendlyName", pool_name, "New-Volume")
    fs = str(call.get("FileSystem") or "")
    if fs not in ("CSVFS_ReFS", "CSVFS_NTFS"):
        raise not_modelled(f"New-Volume -FileSystem {fs or '(none)'} on an S2D pool")
    if str(call.get("ResiliencySettingName") or "Mirror") != "Mirror":
        raise not_modelled("New-Volume with a resiliency other than Mirror")
    name = str(as_list(call.get("FriendlyName"))[0])  # String[] in the catalog
    size = int(call.get("Size"))
    if cl.pool.virtual_disk(name) is not None:
        raise _storage_error(
            f"The name '{name}' is already in use.", "New-Volume", 50001, "ResourceExists"
        )
    copies = S.mirror_copies(len(cl.nodes))
    if size * copies > cl.pool.free:
        raise _storage_error(
            "Not enough available capacity", "New-Volume", 40002, "InvalidArgument"
        )
    ctx.work(timing.seconds("s2d.new_volume"), f"creating volume {name}")
    vd = _create_volume(ctx, cl, name, size, fs)
    vol = vd.volume
    return [
        PSObj(
            _tn("MSFT_Volume"),
            {
                "FriendlyName": name,
                "FileSystem": "CSVFS",
                "FileSystemType": fs,
                "FileSystemLabel": name,
                "Size": UInt64(vol.size),
                "SizeRemaining": UInt64(vol.free()),
                "DriveLetter": None,
                "Path": f"\\\\?\\Volume{{{vol.unique_id}}}\\",
                "HealthStatus": "Healthy",
                "OperationalStatus": "OK",
                "UniqueId": vol.unique_id,
            },
            to_string=name,
        )
    ]


@cmdlet("Remove-VirtualDisk", params=["FriendlyName", "Confirm"])
def remove_virtual_disk(ctx: Context, call: Call) -> None:
    g = _guest(ctx, "Remove-VirtualDisk")
    cl = cluster_of(ctx.world, g)
    name = str(as_list(call.get("FriendlyName"))[0])  # String[] in the catalog
    vd = cl.pool.virtual_disk(name) if cl is not None and cl.pool is not None else None
    if vd is None:
        raise _not_found("MSFT_VirtualDisk", "FriendlyName", name, "Remove-VirtualDisk")
    prefix = vd.mount_path.lower() + "\\"
    for group in cl.groups:
        found = cl.vm_of(ctx.world, group) if group.group_type == "VirtualMachine" else None
        if found and any((p.lower() + "\\").startswith(prefix) for p in [found[1].path]):
            # HA VMs go first (text (unconfirmed), modelled).
            raise _storage_error(
                f"The virtual disk '{name}' is in use by the clustered role '{group.name}'.",
                "Remove-VirtualDisk",
                48000,
            )
    cl.pool.virtual_disks.remove(vd)
    for n in cl.nodes:
        node = cl.node_guest(ctx.world, n)
        if node is not None:
            node.fs.unmount(vd.mount_path)


@cmdlet("Disable-ClusterStorageSpacesDirect", params=["Confirm"])
def disable_s2d(ctx: Context, call: Call) -> None:
    cl = my_cluster(ctx, "Disable-ClusterStorageSpacesDirect")
    assert cl is not None
    cl.s2d_enabled = False


@cmdlet("Remove-StoragePool", params=["FriendlyName", "Confirm"])
def remove_storage_pool(ctx: Context, call: Call) -> None:
    g = _guest(ctx, "Remove-StoragePool")
    cl = cluster_of(ctx.world, g)
    name = str(as_list(call.get("FriendlyName"))[0])  # String[] in the catalog
    if cl is None or cl.pool is None or cl.pool.friendly_name.lower() != name.lower():
        raise _not_found("MSFT_StoragePool", "FriendlyName", name, "Remove-StoragePool")
    if [v for v in cl.pool.virtual_disks if v.friendly_name != S.PERF_HISTORY]:
        # virtual disks first (text (unconfirmed), modelled).
        raise _storage_error(
            "The storage pool could not be removed because it contains virtual disks.",
            "Remove-StoragePool",
            48007,
        )
    for vd in list(cl.pool.virtual_disks):
        for n in cl.nodes:
            node = cl.node_guest(ctx.world, n)
            if node is not None:
                node.fs.unmount(vd.mount_path)
    # The members keep their Storage Spaces metadata until Reset-PhysicalDisk.
    cl.pool = None
    cl.s2d_enabled = False


@cmdlet("Get-StorageSubSystem", params=["FriendlyName"])
def get_storage_subsystem(ctx: Context, call: Call) -> Iterable[PSObj]:
    g = _guest(ctx, "Get-StorageSubSystem")
    names = [f"Windows Storage on {g.name}"]
    cl = cluster_of(ctx.world, g)
    if cl is not None:
        names.append(f"Clustered Windows Storage on {cl.name}")
    wanted = call.get("FriendlyName")
    out = []
    for n in names:
        if wanted is not None:
            import fnmatch

            if not fnmatch.fnmatch(n.lower(), str(wanted).lower()):
                continue
        out.append(
            PSObj(
                _tn("MSFT_StorageSubSystem"),
                {"FriendlyName": n, "HealthStatus": "Healthy", "OperationalStatus": "OK"},
                to_string=n,
            )
        )
    return out


# -- settings for S2D in VMs: templates/guest/{Get,Set}-S2DInVMSettings.ps1 ---------

AUTO_REPLACE = "System.Storage.PhysicalDisk.AutoReplace.Enabled"


def _s2d_settings_obj(cl: Any) -> PSObj:
    return PSObj(
        ["System.Management.Automation.PSCustomObject", "System.Object"],
        {
            "AutoReplace": cl.health_settings.get(AUTO_REPLACE, "True"),
            "BlockCacheSize": int(cl.block_cache_size),
        },
    )


def get_s2d_in_vm_settings(ctx: Any) -> list[PSObj]:
    """templates/guest/Get-S2DInVMSettings.ps1: reads only."""
    cl = my_cluster(ctx, "Get-Cluster")
    assert cl is not None
    return [_s2d_settings_obj(cl)]


def set_s2d_in_vm_settings(ctx: Any, auto_replace: Any, block_cache_size: Any) -> list[PSObj]:
    """templates/guest/Set-S2DInVMSettings.ps1. The health setting lives in the Health
    Service, which Enable-ClusterStorageSpacesDirect creates (text modelled)."""
    cl = my_cluster(ctx, "Set-StorageHealthSetting")
    assert cl is not None
    if cl.pool is None:
        raise _storage_error(
            "The Health Service is not running on this cluster: enable Storage Spaces Direct "
            "first.",
            "Set-StorageHealthSetting",
            1,
            "ObjectNotFound",
        )
    size = int(block_cache_size)
    if size < 0:
        raise PSError(
            f'Exception setting "BlockCacheSize": "Cannot convert value "{size}" to type '
            '"System.UInt32"."',
            fqid="ExceptionWhenSetting",
            category="NotSpecified",
            exception="System.Management.Automation.SetValueInvocationException",
        )
    cl.health_settings[AUTO_REPLACE] = str(auto_replace)
    cl.block_cache_size = size
    return [_s2d_settings_obj(cl)]


# -- storage jobs (R-108) -------------------------------------------------------------------


@cmdlet("Get-StorageJob", params=["Name", "JobState"])
def get_storage_job(ctx: Context, call: Call) -> Iterable[PSObj]:
    """The resync after a node or drive came back: one Repair job per virtual disk,
    IsBackgroundTask, Running with PercentComplete until the repair ends (the
    maintain-servers page shows this output). Finished jobs are not kept (modelled)."""
    g = _guest(ctx, "Get-StorageJob")
    cl = cluster_of(ctx.world, g)
    if cl is None or cl.pool is None:
        return []
    cl.refresh(ctx.world, "storage")
    if not cl.repairing(ctx.world):
        return []
    now = float(ctx.world.clock.now())
    span = max(1e-9, cl.repair_until - cl.repair_start)
    done = min(1.0, max(0.0, (now - cl.repair_start) / span))
    wanted_states = {str(s).lower() for s in as_list(call.get("JobState"))}
    if wanted_states and "running" not in wanted_states:
        return []
    out = []
    for vd in cl.pool.virtual_disks:
        # What changed while the member was away: a small share of the volume (modelled).
        total = max(2**30, vd.volume.size - vd.volume.free()) // 16
        out.append(
            PSObj(
                _tn("MSFT_StorageJob"),
                {
                    "Name": "Repair",
                    "Description": f"Repair {vd.friendly_name}",
                    "IsBackgroundTask": True,
                    "JobState": "Running",
                    "PercentComplete": UInt16(int(done * 100)),
                    "BytesProcessed": UInt64(int(total * done)),
                    "BytesTotal": UInt64(total),
                    "ElapsedTime": timedelta(seconds=max(0.0, now - cl.repair_start)),
                    "UniqueId": "{" + vd.unique_id.strip("{}") + "-repair}",
                },
                to_string="Repair",
            )
        )
    names = [str(n).lower() for n in as_list(call.get("Name"))]
    return [o for o in out if not names or o["Name"].lower() in names]
