"""Disks as a guest sees them, and Storage Spaces Direct on a cluster (R-15, R-56, R-60..R-66).

A guest's disks are the VM's SCSI hard drives in controller order: the first is
the boot/system disk, the others are data disks (R-56). What Windows writes on a
disk (partitions, Storage Spaces pool metadata) is kept with the VHD itself
(`DiskState`), so it survives reboots and moves with the file. UniqueId derives
from the VHD's disk identifier, so a copied VHDX shows a duplicate (R-15).

An S2D pool claims the eligible data disks of every node; New-Volume carves
mirrored virtual disks out of it (footprint 2x with two nodes, 3x with three or
more, R-64) and mounts each as a CSV at C:\\ClusterStorage\\<name> on every node.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from hvsim.model.fs import GiB, Volume

# Capacity S2D keeps back in a pool for its own metadata per disk (modelled).
POOL_METADATA_PER_DISK = 256 * 1024**2
# ClusterPerformanceHistory: the Health Service creates "an approximately 10 GB
# three-way mirror volume" when S2D is enabled (windowsserverdocs
# storage-spaces/performance-history.md); two-way with two nodes in this model.
PERF_HISTORY = "ClusterPerformanceHistory"
PERF_HISTORY_SIZE = 10 * GiB


@dataclasses.dataclass
class DiskState:
    """What is written on a disk: it lives on the VHD object."""

    partitions: int = 0
    pool_id: str | None = None  # Storage Spaces metadata
    media_type: str = "Unspecified"  # Hyper-V disks report no media type
    offline: bool = False
    read_only: bool = False
    # Seen by a guest yet: the SAN policy decides a new disk's state once.
    discovered: bool = False
    # Retired by the Health Service's automatic drive replacement.
    retired: bool = False
    # Holds older data than the rest of the pool: its node was restored from a
    # checkpoint alone; a repair (Repair-VirtualDisk) brings it up to date.
    stale: bool = False


def disk_state(vhd: Any) -> DiskState:
    st = getattr(vhd, "disk_state", None)
    if st is None:
        st = DiskState(partitions=len(getattr(vhd, "partitions", []) or []))
        vhd.disk_state = st
    return st


def unique_id(vhd: Any) -> str:
    """SCSI page 83h id as the guest reports it (R-15): NAA prefix + disk identifier."""
    hexid = str(vhd.disk_identifier).replace("-", "").upper()
    return "60022480" + hexid[:24]


@dataclasses.dataclass
class GuestDisk:
    number: int
    vhd: Any
    node: str  # computer name of the guest that sees it
    is_boot: bool

    @property
    def state(self) -> DiskState:
        return disk_state(self.vhd)

    @property
    def size(self) -> int:
        return int(self.vhd.size)

    def cannot_pool_reason(self, pools: dict[str, Any]) -> str | None:
        """R-56/R-60: None when the disk can join a pool."""
        if self.is_boot:
            return "Insufficient Capacity"
        st = self.state
        if st.pool_id is not None:
            return "In a Pool"
        if st.partitions:
            return "Insufficient Capacity"
        return None


def guest_disks(guest: Any) -> list[GuestDisk]:
    """The guest's disks, numbered in controller order (0 = boot)."""
    vm = guest.vm
    drives = sorted(vm.drives, key=lambda d: (d.controller_number, d.controller_location))
    out = []
    for n, d in enumerate(drives):
        try:
            vhd = guest.owner.fs.read(d.path)
        except Exception:  # the file is gone: the disk is missing to the guest
            continue
        if not hasattr(vhd, "disk_identifier"):
            continue
        disk = GuestDisk(n, vhd, guest.name, n == 0)
        st = disk.state
        if not st.discovered:
            # Windows Server's default SAN policy (OfflineShared) leaves a new disk on a
            # shared bus offline; Hyper-V SCSI disks report BusType SAS.
            st.discovered = True
            st.offline = not disk.is_boot
        out.append(disk)
    return out


@dataclasses.dataclass(eq=False)
class VirtualDisk:
    friendly_name: str
    size: int
    copies: int
    unique_id: str
    volume: Volume
    csv_owner: str  # the coordinator node
    csv_id: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def footprint(self) -> int:
        return self.size * self.copies

    @property
    def mount_path(self) -> str:
        return f"C:\\ClusterStorage\\{self.friendly_name}"


@dataclasses.dataclass(eq=False)
class StoragePool:
    friendly_name: str
    unique_id: str
    # (node computer name, vhd) per member disk
    members: list[tuple[str, Any]] = dataclasses.field(default_factory=list)
    virtual_disks: list[VirtualDisk] = dataclasses.field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(int(v.size) for _, v in self.members)

    @property
    def allocated(self) -> int:
        meta = POOL_METADATA_PER_DISK * len(self.members)
        return meta + sum(vd.footprint for vd in self.virtual_disks)

    @property
    def free(self) -> int:
        return max(0, self.size - self.allocated)

    def virtual_disk(self, name: str) -> VirtualDisk | None:
        return next(
            (v for v in self.virtual_disks if v.friendly_name.lower() == name.lower()), None
        )


def mirror_copies(node_count: int) -> int:
    """R-64: two-way mirror with 2 nodes, three-way with 3 or more."""
    return 2 if node_count <= 2 else 3


def on_node_reboot(guest: Any) -> None:
    """R-63: media types set with Set-PhysicalDisk do not survive the node's reboot.

    R-62: while the node is down its pool disks lose communication; with automatic
    drive replacement on, the Health Service treats the disks that come back as
    replaced drives and retires the old ones, and the pool stays degraded
    (modelled: what Microsoft's in-VM guidance turns the setting off for)."""
    from hvsim.model.cluster import cluster_of

    cl = cluster_of(guest.world, guest)
    live = cl.pool.unique_id if cl is not None and cl.pool is not None else None
    for disk in guest_disks(guest):
        disk.state.media_type = "Unspecified"
        if live is not None and disk.state.pool_id == live and cl is not None and cl.auto_replace:
            disk.state.retired = True
