"""ISO files: Mount-DiskImage, Dismount-DiskImage, Get-DiskImage, and the volume of a
mounted ISO for `Get-DiskImage | Get-Volume` (R-121).

A mounted ISO is a read-only UDF volume with a drive letter; its owner is an
IsoMount (hvsim.model.iso) that names the file and the CD-ROM device. The
medium's content comes from the ISO file's manifest. VHD files mount with
Mount-VHD (hvsim.cmdlets.vhd); Mount-DiskImage of a VHD is not modelled.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hvsim import timing
from hvsim.cmdlets._hvcommon import as_list
from hvsim.errors import PSError, not_modelled
from hvsim.model.fs import Dir, File, Volume, normalize
from hvsim.model.iso import SECTOR, IsoMount, WimFile, parse_manifest
from hvsim.objects import PSObj, UInt32, UInt64
from hvsim.registry import Call, Context, cmdlet

CIM = "Microsoft.Management.Infrastructure.CimInstance"
STORAGE_TYPE_ISO = 1  # MSFT_DiskImage.StorageType: 1 ISO, 2 VHD, 3 VHDX


def _types(cls: str) -> list[str]:
    return [f"{CIM}#ROOT/Microsoft/Windows/Storage/{cls}", f"{CIM}#{cls}", CIM, "System.Object"]


def _cim_error(message: str, hresult: int, cmdlet: str, category: str, target: Any) -> PSError:
    # Storage cmdlets are CDXML: a failed method call carries the HRESULT in its FQID.
    return PSError(
        message,
        fqid=f"HRESULT 0x{hresult:08x},{cmdlet}",
        category=category,
        exception="Microsoft.Management.Infrastructure.CimException",
        target=target,
    )


def not_found_file(path: str, cmdlet: str) -> PSError:
    return _cim_error(
        "The system cannot find the file specified.", 0x80070002, cmdlet, "ObjectNotFound", path
    )


def mounts(ctx: Context) -> list[tuple[str, Volume, IsoMount]]:
    """(drive letter, volume, mount) of every ISO mounted on this machine."""
    out = []
    for letter, vol in sorted(ctx.machine.fs.drives.items()):
        if isinstance(vol.owner, IsoMount):
            out.append((letter, vol, vol.owner))
    return out


def mount_of(ctx: Context, path: str) -> tuple[str, Volume, IsoMount] | None:
    want = normalize(path).lower()
    for found in mounts(ctx):
        if found[2].image_path.lower() == want:
            return found
    return None


def _iso_path(raw: Any, cmdlet: str) -> str:
    path = normalize(str(raw))
    if not path.lower().endswith(".iso"):
        # VHD and VHDX files mount with Mount-VHD here (hvsim.cmdlets.vhd).
        raise not_modelled(f"{cmdlet} of a file that is not an .iso")
    return path


def disk_image_obj(ctx: Context, path: str) -> PSObj:
    data = ctx.machine.fs.read(path)
    size = len(data) if isinstance(data, bytes | bytearray) else 0
    found = mount_of(ctx, path)
    return PSObj(
        _types("MSFT_DiskImage"),
        {
            "Attached": found is not None,
            "BlockSize": UInt32(0),
            "DevicePath": found[2].device_path if found else None,
            "FileSize": UInt64(size),
            "ImagePath": path,
            "LogicalSectorSize": UInt32(SECTOR),
            "Number": None,  # a disk number exists only for VHDs
            "Size": UInt64(size),
            "StorageType": UInt32(STORAGE_TYPE_ISO),
        },
        to_string=f'MSFT_DiskImage (ImagePath = "{path}")',
    )


def _medium_volume(label: str, image_file: str, wim: WimFile, size: int) -> Volume:
    vol = Volume(label, "UDF", max(size, wim.file_size))
    vol.used_base = max(0, vol.size - wim.file_size)
    root = vol.root
    root.put(File("setup.exe", b"\0" * 64))
    root.put(Dir("boot"))
    root.put(Dir("efi"))
    sources = Dir("sources")
    sources.put(File(image_file, wim))
    sources.put(File("boot.wim", b"\0" * 64))
    root.put(sources)
    return vol


@cmdlet(
    "Mount-DiskImage",
    params=["ImagePath", "PassThru", "StorageType", "Access", "NoDriveLetter"],
)
def mount_diskimage(ctx: Context, call: Call) -> Iterable[Any]:
    fs = ctx.machine.fs
    if call.switch("NoDriveLetter"):
        raise not_modelled("Mount-DiskImage -NoDriveLetter")
    for raw in as_list(call.get("ImagePath")):
        path = _iso_path(raw, call.name)
        node = fs.node(path)
        if not isinstance(node, File):
            raise not_found_file(path, call.name)
        if mount_of(ctx, path) is not None:
            # Documented: "If the file is already mounted, then the cmdlet will display
            # the following error" (Storage/Mount-DiskImage), R-121.
            raise _cim_error(
                "The process cannot access the file because it is being used by another process.",
                0x80070020,
                call.name,
                "ResourceBusy",
                path,
            )
        medium = parse_manifest(node.content)
        if medium is None:
            raise _cim_error(
                "The file or directory is corrupted and unreadable.",
                0x80070570,
                call.name,
                "InvalidData",
                path,
            )
        wim = WimFile(list(medium.indexes), medium.wim_size)
        vol = _medium_volume(medium.label, medium.image_file, wim, medium.wim_size + 300 * 2**20)
        used = {m.device_number for _, _, m in mounts(ctx)}
        number = 0
        while number in used:
            number += 1
        vol.owner = IsoMount(path, number)
        vol.read_only = True
        letter = fs.free_letter("D")
        if letter is None:
            raise not_modelled("mounting an ISO with no free drive letter")
        fs.add_drive(letter, vol)
        ctx.work(timing.seconds("iso.mount"), f"mounting {path}")
        if call.switch("PassThru"):
            yield disk_image_obj(ctx, path)


@cmdlet("Dismount-DiskImage", params=["ImagePath", "DevicePath", "StorageType"])
def dismount_diskimage(ctx: Context, call: Call) -> Iterable[Any]:
    fs = ctx.machine.fs
    targets: list[tuple[str, Volume, IsoMount]] = []
    for raw in as_list(call.get("DevicePath")):
        hit = [m for m in mounts(ctx) if m[2].device_path.lower() == str(raw).lower()]
        if not hit:
            raise _cim_error(
                "The system cannot find the file specified.",
                0x80070002,
                call.name,
                "ObjectNotFound",
                raw,
            )
        targets.extend(hit)
    for raw in as_list(call.get("ImagePath")):
        path = _iso_path(raw, call.name)
        if not fs.exists(path):
            raise not_found_file(path, call.name)
        found = mount_of(ctx, path)
        if found is None:
            # Whether Windows reports this is not documented; the model refuses (modelled).
            raise _cim_error(
                "The disk image is not attached.", 0x80070015, call.name, "InvalidOperation", path
            )
        targets.append(found)
    for letter, _vol, mount in targets:
        fs.remove_drive(letter)
        ctx.work(timing.seconds("iso.mount"), f"dismounting {mount.image_path}")
        yield disk_image_obj(ctx, mount.image_path)


@cmdlet("Get-DiskImage", params=["ImagePath", "DevicePath", "StorageType"])
def get_diskimage(ctx: Context, call: Call) -> Iterable[Any]:
    fs = ctx.machine.fs
    for raw in as_list(call.get("DevicePath")):
        hit = [m for m in mounts(ctx) if m[2].device_path.lower() == str(raw).lower()]
        if not hit:
            ctx.error(not_found_file(str(raw), call.name))
        for _, _, mount in hit:
            yield disk_image_obj(ctx, mount.image_path)
    for raw in as_list(call.get("ImagePath")):
        path = _iso_path(raw, call.name)
        if not isinstance(fs.node(path), File):
            ctx.error(not_found_file(path, call.name))
            continue
        yield disk_image_obj(ctx, path)


def volumes_of(ctx: Context, images: Any) -> list[tuple[str, Volume]]:
    """Get-Volume -DiskImage: the volume of each mounted image given (none when not attached)."""
    out = []
    for image in as_list(images):
        path = image.get("ImagePath") if isinstance(image, PSObj) else None
        if not path:
            continue
        found = mount_of(ctx, str(path))
        if found is not None:
            out.append((found[0], found[1]))
    return out
