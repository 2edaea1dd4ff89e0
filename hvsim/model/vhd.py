"""Virtual hard disks: VHD/VHDX files, their partitions, chains and identities.

A VHD object is the content of a file in a machine's file system. It carries
what Get-VHD reports (R-14..R-17) and, for OS images, a GPT partition layout
(EFI, MSR, OS, Recovery) whose OS partition is a file-system Volume: files
written while the disk is mounted on the host (unattend.xml, R-17/R-23) are
there when the guest boots.

A differencing child gets its own copy of the parent's partition trees at
creation; its FileSize grows only by its own writes. It also carries its
parent's identity: the Virtual Disk ID (Get-VHD DiskIdentifier, the guest's
page-83 id, R-15) and the GPT disk GUID (R-91), so siblings are the same disk
to Windows. Because the parent must
never change after children exist (R-16), a copy-on-create is the same as a
live overlay for every case the model allows; a write to such a parent marks
its children corrupt instead.
"""

from __future__ import annotations

import copy
import dataclasses
import uuid
from typing import Any

from hvsim.model.fs import Dir, File, GiB, Volume

MiB = 1024**2

# GPT partition type GUIDs (what Get-Partition reports as GptType).
GPT_EFI = "{c12a7328-f81f-11d2-ba4b-00a0c93ec93b}"
GPT_MSR = "{e3c9e316-0b5c-4db8-817d-f92df00215ae}"
GPT_BASIC = "{ebd0a0a2-b9e5-4433-87c0-68b6b72699c7}"
GPT_RECOVERY = "{de94bba4-06d1-4d40-a16a-bfd50179d6ac}"


@dataclasses.dataclass(eq=False)
class Partition:
    number: int
    type: str  # Get-Partition Type: System, Reserved, Basic, Recovery
    gpt_type: str
    offset: int
    size: int
    volume: Volume | None = None  # None for MSR (no file system)
    drive_letter: str | None = None  # letter while mounted on a host with one assigned
    access_paths: list[str] = dataclasses.field(default_factory=list)
    guid: str = dataclasses.field(default_factory=lambda: "{" + str(uuid.uuid4()) + "}")


@dataclasses.dataclass
class ImageInfo:
    """Metadata of a Windows image on the OS partition (Get-WindowsImage, R-55/R-78)."""

    edition: str = "ServerDatacenter"  # EditionId
    image_name: str = "Windows Server 2022 Datacenter (Desktop Experience)"
    version: str = "10.0.20348.587"
    build: int = 20348
    language: str = "en-US"
    generalized: bool = True  # sysprep /generalize /oobe
    caption: str = "Microsoft Windows Server 2022 Datacenter"
    sku: int = 8
    installation_type: str = "Server"  # or "Server Core"
    # Roles staged offline (Install-WindowsFeature -Vhd, R-18) and packages added
    # offline (Add-WindowsPackage, R-119): the guest finishes them at first boot.
    staged_features: list[str] = dataclasses.field(default_factory=list)
    packages: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(eq=False)
class VHD:
    path: str
    format: str = "VHDX"  # VHD / VHDX
    type: str = "Dynamic"  # Fixed / Dynamic / Differencing
    size: int = 127 * GiB  # virtual size, bytes
    file_size: int = 4 * MiB
    disk_identifier: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()).upper())
    parent: VHD | None = dataclasses.field(default=None, repr=False)
    block_size: int = 32 * MiB
    logical_sector_size: int = 512
    physical_sector_size: int = 4096
    partitions: list[Partition] = dataclasses.field(default_factory=list, repr=False)
    partition_style: str = "RAW"  # RAW / GPT / MBR
    image: ImageInfo | None = None
    # GPT disk GUID of a partitioned disk ("" while RAW); children and copies share
    # it, and two attached disks with one GUID collide.
    disk_guid: str = ""
    # Mounted on the host (Mount-VHD): a disk number, until Dismount-VHD.
    mounted: bool = False
    mounted_read_only: bool = False
    disk_number: int | None = None
    # Why the host left the mounted disk offline (MSFT_Disk OfflineReason), "" if online.
    offline_reason: str = ""
    # A running VM that holds the file open (the VM's id), R-17.
    in_use_by: Any = None
    corrupt: bool = False
    children: list[VHD] = dataclasses.field(default_factory=list, repr=False)
    # The host volume the file lives on: VHD growth is charged to it.
    home: Volume | None = dataclasses.field(default=None, repr=False)
    # Bytes written inside this disk that are not in a modelled partition
    # (guest data disks written by S2D and the like).
    data_written: int = 0
    # The frozen disk of a VM checkpoint (hvsim.model.checkpoints): the VM writes to
    # its .avhdx child; the checkpoint keeps what the disk held.
    checkpoint_disk: bool = False

    @property
    def parent_path(self) -> str:
        return self.parent.path if self.parent is not None else ""

    @property
    def attached(self) -> bool:
        """Get-VHD .Attached: mounted on the host or open by a running VM."""
        return self.mounted or self.in_use_by is not None

    @property
    def open_by_children(self) -> bool:
        """A differencing child in use keeps its whole parent chain open (read-only)."""
        return any(c.attached or c.open_by_children for c in self.children)

    @property
    def minimum_size(self) -> int | None:
        if not self.partitions:
            return None
        last = max(self.partitions, key=lambda p: p.offset)
        return last.offset + last.size

    def os_partition(self) -> Partition | None:
        basics = [p for p in self.partitions if p.type == "Basic" and p.volume is not None]
        return max(basics, key=lambda p: p.size) if basics else None

    def chain(self) -> list[VHD]:
        out: list[VHD] = [self]
        while out[-1].parent is not None:
            out.append(out[-1].parent)  # type: ignore[arg-type]
        return out

    # -- file-system hooks (hvsim.model.fs) -----------------------------------

    def placed(self, volume: Volume, path: str) -> None:
        """The file was written at `path` on `volume` (New-VHD, Copy-Item)."""
        self.home = volume
        self.path = path

    def discarded(self) -> None:
        """The file was removed (Remove-Item, or replaced): the parent keeps no reference
        to it, so nothing of the deleted disk (its answer file) lives on in the image."""
        if self.parent is not None:
            self.parent.children = [c for c in self.parent.children if c is not self]

    def before_partition_write(self, volume: Volume, path: str, growth: int) -> None:
        """A write inside one of this disk's partitions (while mounted or as a guest's C:).

        A dynamic or differencing VHDX grows by what is written (R-14); the growth
        is charged to the host volume first, so a full host volume fails the write
        (R-79). Writing to a parent that has children corrupts them (R-16).
        """
        if self.children:
            for child in self.children:
                child.corrupt = True
        if growth > 0 and self.type != "Fixed":
            if self.home is not None:
                self.home.consume(growth, self.path)
            self.file_size += growth

    def grow(self, nbytes: int) -> None:
        """Data written to the raw disk (not through a modelled partition)."""
        if nbytes <= 0 or self.type == "Fixed":
            return
        nbytes = min(nbytes, max(0, self.size - self.file_size))
        if self.home is not None:
            self.home.consume(nbytes, self.path)
        self.file_size += nbytes
        self.data_written += nbytes


def new_disk(path: str, size: int, *, fixed: bool = False, ident: str | None = None) -> VHD:
    """A blank disk as New-VHD makes it: no partitions (RAW), R-14."""
    fmt = "VHD" if path.lower().endswith(".vhd") else "VHDX"
    v = VHD(path=path, format=fmt, type="Fixed" if fixed else "Dynamic", size=size)
    v.file_size = size + MiB if fixed else 4 * MiB
    if ident:
        v.disk_identifier = ident
    return v


def differencing_child(path: str, parent: VHD) -> VHD:
    """New-VHD -Differencing: same virtual size, the parent's layout and the parent's
    identity (R-16, R-15): MS-VHDX 2.6.1.2 marks the Virtual Disk ID item IsVirtualDisk,
    and a differencing disk 'MUST copy all metadata items with this field set'."""
    child = VHD(
        path=path,
        format=parent.format,
        type="Differencing",
        size=parent.size,
        file_size=4 * MiB,
        parent=parent,
        block_size=2 * MiB,
        partition_style=parent.partition_style,
        image=copy.deepcopy(parent.image),
        disk_identifier=parent.disk_identifier,
        disk_guid=parent.disk_guid,
    )
    child.partitions = _copy_partitions(parent.partitions, child)
    parent.children.append(child)
    return child


def copy_of(vhd: VHD, path: str) -> VHD:
    """Copy-Item of a VHD file: an exact copy, disk identifier included (R-15)."""
    dup = VHD(
        path=path,
        format=vhd.format,
        type=vhd.type,
        size=vhd.size,
        file_size=vhd.file_size,
        disk_identifier=vhd.disk_identifier,
        disk_guid=vhd.disk_guid,
        parent=vhd.parent,
        block_size=vhd.block_size,
        logical_sector_size=vhd.logical_sector_size,
        physical_sector_size=vhd.physical_sector_size,
        partition_style=vhd.partition_style,
        image=copy.deepcopy(vhd.image),
        corrupt=vhd.corrupt,
        data_written=vhd.data_written,
    )
    dup.partitions = _copy_partitions(vhd.partitions, dup)
    if vhd.parent is not None:
        vhd.parent.children.append(dup)
    return dup


def _copy_partitions(parts: list[Partition], owner: VHD) -> list[Partition]:
    out: list[Partition] = []
    for p in parts:
        vol = None
        if p.volume is not None:
            vol = Volume(
                label=p.volume.label,
                file_system=p.volume.file_system,
                size=p.volume.size,
                used_base=p.volume.used_base,
                root=copy.deepcopy(p.volume.root),
                owner=owner,
            )
        out.append(Partition(p.number, p.type, p.gpt_type, p.offset, p.size, vol, guid=p.guid))
    return out


def windows_image(path: str, info: ImageInfo, size: int = 127 * GiB) -> VHD:
    """A generalized Gen2 (GPT/UEFI) Windows Server VHDX: EFI, MSR, OS, Recovery (R-16/R-17).

    Sizes follow the Windows default layout for UEFI (100 MB EFI, 16 MB MSR, a
    Recovery partition at the end); the OS partition holds a small tree of the
    files the model reads (the Panther folder where unattend.xml goes, R-23).
    """
    v = VHD(path=path, type="Dynamic", size=size, partition_style="GPT", image=info)
    v.disk_guid = "{" + str(uuid.uuid4()).upper() + "}"
    efi_size, msr_size, rec_size = 100 * MiB, 16 * MiB, 529 * MiB
    off = MiB
    efi = Partition(1, "System", GPT_EFI, off, efi_size, Volume("", "FAT32", efi_size, owner=v))
    off += efi_size
    msr = Partition(2, "Reserved", GPT_MSR, off, msr_size)
    off += msr_size
    os_size = size - off - rec_size - MiB
    os_vol = Volume("", "NTFS", os_size, used_base=9 * GiB, owner=v)
    os_part = Partition(3, "Basic", GPT_BASIC, off, os_size, os_vol)
    off += os_size
    rec = Partition(
        4, "Recovery", GPT_RECOVERY, off, rec_size, Volume("", "NTFS", rec_size, owner=v)
    )
    efi.volume.root.put(  # type: ignore[union-attr]
        Dir(
            "EFI",
            {
                "microsoft": Dir(
                    "Microsoft",
                    {"boot": Dir("Boot", {"bootmgfw.efi": File("bootmgfw.efi", b"\0" * 64)})},
                )
            },
        )
    )
    put_windows_tree(os_vol.root)
    v.partitions = [efi, msr, os_part, rec]
    # A sysprepped 2022 image holds about 9-10 GB of data in its VHDX.
    v.file_size = 9 * GiB + 300 * MiB
    return v


def put_windows_tree(root: Dir, *, boot_files: bool = False) -> None:
    """The folders and files of an installed Windows that the model reads (the Panther
    folder where unattend.xml goes, R-23); `boot_files`: also Windows\\Boot\\EFI, the
    source bcdboot copies from (R-118), which an applied image carries."""
    windows = root.get("Windows")
    if not isinstance(windows, Dir):
        windows = Dir("Windows")
        root.put(windows)
    windows.put(Dir("Panther"))
    sys32 = Dir("System32")
    windows.put(sys32)
    sys32.put(File("ntoskrnl.exe", b"\0" * 128))
    sys32.put(
        Dir(
            "config",
            {"software": File("SOFTWARE", b"\0" * 64), "system": File("SYSTEM", b"\0" * 64)},
        )
    )
    sys32.put(Dir("Sysprep"))
    if boot_files:
        efi = Dir("EFI", {"bootmgfw.efi": File("bootmgfw.efi", b"\0" * 64)})
        windows.put(Dir("Boot", {"efi": efi}))
    for name in ("Users", "Program Files", "ProgramData"):
        root.put(Dir(name))
