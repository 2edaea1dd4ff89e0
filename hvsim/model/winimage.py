"""A Windows image applied to a disk: what Expand-WindowsImage writes, what bcdboot adds,
what makes a Generation 2 disk bootable, and packages serviced offline.

`apply()` puts an index of a WimFile (hvsim.model.iso) on an NTFS volume of a VHD:
the files the model reads (Windows\\Panther, System32 ...), the space the image
takes (charged to the volume and, through the VHD, to the host volume: R-14,
R-79), and the image's identity on the VHD (`VHD.image`: edition, version,
language, installation type), which guests booted from its children report
(R-55, R-78). An image from install.wim is generalized: its first boot runs
specialize and OOBE (R-117).

A Gen2 VM boots a disk whose EFI system partition (GPT type ESP, FAT32) holds
\\EFI\\Microsoft\\Boot\\bootmgfw.efi, which bcdboot writes (R-118); without it the
firmware finds no operating system.
"""

from __future__ import annotations

from typing import Any

from hvsim.model.fs import Dir, File, FsError, Volume
from hvsim.model.iso import WimIndex
from hvsim.model.vhd import GPT_EFI, VHD, ImageInfo, put_windows_tree

BOOT_FILE = ("EFI", "Microsoft", "Boot", "bootmgfw.efi")


def image_info(index: WimIndex) -> ImageInfo:
    """The identity of a disk that index `index` was applied to."""
    return ImageInfo(
        edition=index.edition,
        image_name=index.name,
        version=index.version,
        build=index.build,
        language=(index.languages or ["en-US"])[0],
        generalized=True,
        caption=index.caption,
        sku=index.sku,
        installation_type=index.installation_type,
    )


def disk_of(volume: Volume) -> VHD | None:
    owner = getattr(volume, "owner", None)
    return owner if isinstance(owner, VHD) else None


def apply(volume: Volume, path: str, index: WimIndex) -> None:
    """Expand-WindowsImage of `index` onto `volume` (its root, `path` for messages).

    The space is charged first (R-79): when the VHD's host volume or the target
    volume cannot hold the image, FsError("no_space") is raised and nothing is
    recorded as applied (DISM leaves a partial tree behind; the model leaves none
    of the identity, so the disk does not boot)."""
    disk = disk_of(volume)
    if disk is not None:
        disk.before_partition_write(volume, path, index.size)
    volume.consume(index.size, path)
    volume.used_base += index.size
    put_windows_tree(volume.root, boot_files=True)
    if disk is not None:
        disk.image = image_info(index)


def windows_present(volume: Volume) -> bool:
    windows = volume.root.get("Windows")
    return isinstance(windows, Dir) and isinstance(windows.get("System32"), Dir)


def write_boot_files(system: Volume, windows: Volume) -> None:
    """bcdboot <W>:\\Windows /s <S>: /f UEFI: the boot manager and a BCD store on the ESP."""
    node: Dir = system.root
    for part in BOOT_FILE[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, Dir):
            nxt = Dir(part)
            node.put(nxt)
        node = nxt
    node.put(File(BOOT_FILE[-1], b"\0" * 64))
    node.put(File("BCD", b"\0" * 32))
    disk = disk_of(system)
    if disk is not None:
        disk.before_partition_write(system, "\\".join(BOOT_FILE), 0)


def bootable(vhd: Any) -> bool:
    """Would a Generation 2 VM find an operating system on this disk (R-118)?

    An ESP (GPT type EFI) with a FAT32 file system that holds the boot manager."""
    for part in getattr(vhd, "partitions", None) or []:
        vol = part.volume
        if part.gpt_type != GPT_EFI or vol is None or vol.file_system.upper() != "FAT32":
            continue
        node: Any = vol.root
        for name in BOOT_FILE:
            node = node.get(name) if isinstance(node, Dir) else None
        if isinstance(node, File):
            return True
    return False


def add_package(volume: Volume, path: str, name: str, size: int) -> None:
    """Add-WindowsPackage -Path <W>:\\ : the package's files land in the image (R-119)."""
    disk = disk_of(volume)
    if disk is None or disk.image is None:
        raise FsError("not_found", path, "no Windows image")
    disk.before_partition_write(volume, path, size)
    volume.consume(size, path)
    volume.used_base += size
    disk.image.packages.append(name)
