"""Volumes and partitions of a machine's own disks and of VHDs mounted on it
(Get-Volume, Get-Partition, Add-PartitionAccessPath; R-17, R-79), and
Get-WindowsImage on a VHD (R-55, R-78).

Disk 0 is the machine's boot disk (the host's C:, or a guest's OS VHD);
mounted VHDs take the next numbers (Mount-VHD, hvsim.cmdlets.vhd).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hvsim.cmdlets._hvcommon import as_list
from hvsim.cmdlets.hostnet import not_found
from hvsim.errors import PSError
from hvsim.model.fs import Volume, normalize
from hvsim.model.vhd import GPT_BASIC, VHD, Partition
from hvsim.objects import PSObj, UInt32, UInt64
from hvsim.registry import Call, Context, cmdlet

CIM = "Microsoft.Management.Infrastructure.CimInstance"
NO_LETTER = "\x00"  # a Char 0: what MSFT_Partition/MSFT_Volume report without a letter


def _types(cls: str) -> list[str]:
    return [f"{CIM}#ROOT/Microsoft/Windows/Storage/{cls}", f"{CIM}#{cls}", CIM, "System.Object"]


def _disks(ctx: Context) -> list[tuple[int, VHD | None]]:
    """(disk number, VHD or None for the host's own boot disk)."""
    m = ctx.machine
    out: list[tuple[int, VHD | None]] = []
    vm = getattr(m, "vm", None)
    owner = getattr(m, "owner", None)
    if vm is not None and owner is not None:
        drive = vm.os_drive()
        disk = owner.fs.read(drive.path) if drive is not None else None
        out.append((0, disk if isinstance(disk, VHD) else None))
    else:
        out.append((0, None))
    for _, f in m.fs.local_files():
        if isinstance(f.content, VHD) and f.content.mounted and f.content.disk_number is not None:
            out.append((f.content.disk_number, f.content))
    return sorted(out, key=lambda t: t[0])


def _host_partitions(ctx: Context) -> list[Partition]:
    """The boot disk of a physical host: the model knows only its C: volume."""
    c = ctx.machine.fs.drives.get("C")
    part = Partition(1, "Basic", GPT_BASIC, 1024**2, c.size if c else 0, c, drive_letter="C")
    return [part]


def partition_obj(disk_number: int, p: Partition) -> PSObj:
    letter = p.drive_letter or NO_LETTER
    return PSObj(
        _types("MSFT_Partition"),
        {
            "DiskNumber": UInt32(disk_number),
            "PartitionNumber": UInt32(p.number),
            "DriveLetter": letter,
            "AccessPaths": ([f"{p.drive_letter}:\\"] if p.drive_letter else [])
            + list(p.access_paths),
            "Type": p.type,
            "GptType": p.gpt_type,
            "Offset": UInt64(p.offset),
            "Size": UInt64(p.size),
            "IsBoot": False,
            "IsSystem": p.type == "System",
            "IsHidden": p.type in ("Reserved", "Recovery"),
            "IsActive": False,
            "IsReadOnly": False,
            "IsOffline": False,
            "Guid": p.guid,
            "UniqueId": p.guid,
            "OperationalStatus": "Online",
        },
        to_string=f"MSFT_Partition (DiskNumber = {disk_number}, PartitionNumber = {p.number})",
    )


def _partitions_of(ctx: Context, number: int, disk: VHD | None) -> list[Partition]:
    if disk is None:
        return _host_partitions(ctx)
    return disk.partitions


@cmdlet("Get-Partition", params=["DiskNumber", "PartitionNumber", "DriveLetter"])
def get_partition(ctx: Context, call: Call) -> Iterable[Any]:
    disks = _disks(ctx)
    numbers = [int(n) for n in as_list(call.get("DiskNumber"))]
    pnums = [int(n) for n in as_list(call.get("PartitionNumber"))]
    letters = [str(x).upper().rstrip(":") for x in as_list(call.get("DriveLetter"))]
    for n in numbers:
        if not any(num == n for num, _ in disks):
            ctx.error(not_found("MSFT_Disk", "Number", n, call.name))
    found = False
    for num, disk in disks:
        if numbers and num not in numbers:
            continue
        for p in _partitions_of(ctx, num, disk):
            if pnums and p.number not in pnums:
                continue
            if letters and (p.drive_letter or "").upper() not in letters:
                continue
            found = True
            yield partition_obj(num, p)
    if not found and (pnums or letters):
        prop, val = ("PartitionNumber", pnums[0]) if pnums else ("DriveLetter", letters[0])
        ctx.error(not_found("MSFT_Partition", prop, val, call.name))


@cmdlet(
    "Add-PartitionAccessPath",
    params=[
        "DiskNumber",
        "PartitionNumber",
        "AssignDriveLetter",
        "AccessPath",
        "DriveLetter",
        "PassThru",
    ],
)
def add_partitionaccesspath(ctx: Context, call: Call) -> Iterable[Any]:
    fs = ctx.machine.fs
    disks = dict(_disks(ctx))
    number = int(as_list(call.get("DiskNumber"))[0])
    if number not in disks:
        raise not_found("MSFT_Disk", "Number", number, call.name)
    parts = [
        p
        for p in _partitions_of(ctx, number, disks[number])
        if p.number == int(as_list(call.get("PartitionNumber"))[0])
    ]
    if not parts:
        raise not_found("MSFT_Partition", "PartitionNumber", call.get("PartitionNumber"), call.name)
    part = parts[0]
    disk = disks[number]
    if disk is not None and disk.offline_reason:
        # an offline disk's partitions take no access path (text modelled).
        raise PSError(
            f"The disk {number} is offline ({disk.offline_reason}); bring it online before "
            "assigning an access path.",
            fqid=f"StorageWMI 41001,{call.name}",
            category="InvalidOperation",
            exception="Microsoft.Management.Infrastructure.CimException",
            target=number,
        )
    if part.volume is None:
        raise PSError(
            "The partition has no file system that can be given an access path.",
            fqid=f"StorageWMI 4,{call.name}",
            category="InvalidOperation",
            exception="Microsoft.Management.Infrastructure.CimException",
        )
    if call.switch("AssignDriveLetter"):
        if part.drive_letter:
            raise PSError(
                "The requested access path is already in use.",
                fqid=f"StorageWMI 42002,{call.name}",
                category="InvalidArgument",
                exception="Microsoft.Management.Infrastructure.CimException",
            )
        letter = fs.free_letter("D")
        if letter is None:
            raise PSError(
                "No drive letter is free.",
                fqid=f"StorageWMI 42007,{call.name}",
                category="NotSpecified",
                exception="Microsoft.Management.Infrastructure.CimException",
            )
        part.drive_letter = letter
        fs.add_drive(letter, part.volume)
    elif "AccessPath" in call:
        path = str(call.get("AccessPath"))
        if len(path.rstrip("\\")) == 2 and path[1] == ":":
            letter = path[0].upper()
            if letter in fs.drives:
                raise PSError(
                    "The requested access path is already in use.",
                    fqid=f"StorageWMI 42002,{call.name}",
                    category="InvalidArgument",
                    exception="Microsoft.Management.Infrastructure.CimException",
                )
            part.drive_letter = letter
            fs.add_drive(letter, part.volume)
        else:
            fs.mount(normalize(path), part.volume)
            part.access_paths.append(normalize(path))
    if call.switch("PassThru"):
        yield partition_obj(number, part)


def volume_obj(letter: str | None, vol: Volume, path: str = "") -> PSObj:
    fs = "CSVFS" if vol.file_system.upper().startswith("CSVFS") else vol.file_system
    return PSObj(
        _types("MSFT_Volume"),
        {
            "DriveLetter": letter or NO_LETTER,
            "FileSystemLabel": vol.label,
            "FileSystem": fs,
            # A CSV's underlying format: CSVFS_NTFS or CSVFS_ReFS.
            "FileSystemType": vol.file_system,
            "DriveType": "Fixed",
            "HealthStatus": "Healthy",
            "OperationalStatus": "OK",
            "Size": UInt64(vol.size),
            "SizeRemaining": UInt64(vol.free()),
            "UniqueId": f"\\\\?\\Volume{{{vol.unique_id}}}\\",
            "ObjectId": f"{{1}}\\\\?\\Volume{{{vol.unique_id}}}\\",
            "Path": f"\\\\?\\Volume{{{vol.unique_id}}}\\",
        },
        to_string=f"MSFT_Volume ({letter or path})",
    )


@cmdlet("Get-Volume", params=["DriveLetter", "FileSystemLabel", "FilePath", "DiskImage"])
def get_volume(ctx: Context, call: Call) -> Iterable[Any]:
    fs = ctx.machine.fs
    if "DiskImage" in call:
        # `Get-DiskImage | Get-Volume`: the volume of a mounted ISO.
        from hvsim.cmdlets.diskimage import volumes_of

        for letter, vol in volumes_of(ctx, call.get("DiskImage")):
            obj = volume_obj(letter, vol)
            obj.props["DriveType"] = "CD-ROM"
            yield obj
        return
    if "FilePath" in call:
        path = str(call.get("FilePath"))
        vol = fs.volume_of(path)
        letter = next((k for k, v in fs.drives.items() if v is vol), None)
        yield volume_obj(letter, vol, path)
        return
    letters = [str(x).upper().rstrip(":") for x in as_list(call.get("DriveLetter"))]
    labels = [str(x) for x in as_list(call.get("FileSystemLabel"))]
    for letter in letters:
        if letter not in fs.drives:
            ctx.error(not_found("MSFT_Volume", "DriveLetter", letter, call.name))
    for letter, vol in sorted(fs.drives.items()):
        if letters and letter not in letters:
            continue
        if labels and vol.label not in labels:
            continue
        yield volume_obj(letter, vol)
    if not letters and not labels:
        seen = {id(v) for v in fs.drives.values()}
        for key, vol in fs.mounts.items():
            if id(vol) not in seen:
                seen.add(id(vol))
                yield volume_obj(None, vol, "\\".join(key))


# -- Get-WindowsImage ---------------------------------------------------------------


def _dism_error(message: str, target: Any) -> PSError:
    return PSError(
        message,
        fqid="Microsoft.Dism.Commands.GetWindowsImageCommand",
        category="NotSpecified",
        exception="System.Runtime.InteropServices.COMException",
        target=target,
    )


@cmdlet("Get-WindowsImage", params=["ImagePath", "Index", "Name", "LogLevel"])
def get_windowsimage(ctx: Context, call: Call) -> Iterable[Any]:
    path = normalize(str(call.get("ImagePath")))
    node = ctx.machine.fs.node(path)
    if node is None:
        raise _dism_error("The system cannot find the file specified.", path)
    disk = getattr(node, "content", None)
    from hvsim.cmdlets.dism import WimFile, wim_image_info

    if isinstance(disk, WimFile):
        # install.wim / install.esd of a mounted medium.
        yield from wim_image_info(path, disk, call)
        return
    if not isinstance(disk, VHD):
        raise _dism_error("An attempt was made to load a program with an incorrect format.", path)
    if disk.attached:
        raise _dism_error(
            "The process cannot access the file because it is being used by another process.", path
        )
    info = disk.chain()[-1].image
    if info is None or disk.os_partition() is None:
        raise _dism_error("The specified image does not contain a Windows installation.", path)
    index = call.get("Index")
    if index is not None and int(index) != 1:
        raise _dism_error("The specified image does not exist in the image file.", path)
    name = call.get("Name")
    if name is not None and str(name).lower() != info.image_name.lower():
        raise _dism_error("The specified image does not exist in the image file.", path)
    major, minor, build, *rest = (int(x) for x in info.version.split("."))
    basic = {
        "ImagePath": path,
        "ImageIndex": UInt32(1),
        "ImageName": info.image_name,
        "ImageDescription": info.image_name,
        "ImageSize": UInt64(disk.chain()[-1].file_size),
    }
    if index is None and name is None:
        yield PSObj(
            ["Microsoft.Dism.Commands.BasicImageInfoObject", "System.Object"],
            basic,
            to_string=info.image_name,
        )
        return
    os_part = disk.os_partition()
    yield PSObj(
        [
            "Microsoft.Dism.Commands.WimImageInfoObject",
            "Microsoft.Dism.Commands.ImageInfoObject",
            "System.Object",
        ],
        {
            **basic,
            "EditionId": info.edition,
            "InstallationType": "Server",
            "ProductType": "ServerNT",
            "ProductSuite": "Terminal Server",
            "Architecture": "x64",
            "Version": info.version,
            "MajorVersion": UInt32(major),
            "MinorVersion": UInt32(minor),
            "Build": UInt32(build),
            "SPBuild": UInt32(rest[0] if rest else 0),
            "Languages": [info.language],
            "DefaultLanguageIndex": UInt32(0),
            "Generalized": info.generalized,
            "DirectoryCount": UInt32(len([1 for _ in os_part.volume.root.walk()]))
            if os_part and os_part.volume
            else UInt32(0),
        },
        to_string=info.image_name,
    )


# -- Get-Disk on a machine that is not a guest (called by hvsim.cmdlets.storage) --------


def host_disk_obj(ctx: Context, number: int, disk: VHD | None) -> PSObj:
    c = ctx.machine.fs.drives.get("C")
    if disk is None:
        props: dict[str, Any] = {
            "FriendlyName": "Contoso NVMe Boot Disk",
            "Location": "PCI Slot 1",
            "Size": UInt64(c.size if c else 0),
            "IsBoot": True,
            "IsSystem": True,
            "PartitionStyle": "GPT",
            "NumberOfPartitions": UInt32(1),
            "BusType": "NVMe",
            "UniqueId": "eui.0025385B71B07E2F",
        }
    else:
        props = {
            "FriendlyName": "Msft Virtual Disk",
            "Location": disk.path,
            "Size": UInt64(disk.size),
            "IsBoot": False,
            "IsSystem": False,
            "PartitionStyle": disk.partition_style,
            "NumberOfPartitions": UInt32(len(disk.partitions)),
            # A VHD mounted on the host is a file-backed virtual disk.
            "BusType": "File Backed Virtual",
            "UniqueId": disk.disk_identifier.replace("-", ""),
        }
    offline = disk is not None and bool(disk.offline_reason)
    props.update(
        {
            "Number": UInt32(number),
            "IsOffline": offline,
            # MSFT_Disk OfflineReason (4 = Collision); the Storage module shows the name.
            "OfflineReason": disk.offline_reason if offline and disk is not None else None,
            "IsReadOnly": bool(disk.mounted_read_only) if disk is not None else False,
            "OperationalStatus": "Offline" if offline else "Online",
            "HealthStatus": "Healthy",
        }
    )
    return PSObj(_types("MSFT_Disk"), props, to_string=f"{props['FriendlyName']} ({number})")


def host_get_disk(ctx: Context, call: Call) -> list[PSObj]:
    """Get-Disk on the host: its boot disk and the VHDs mounted on it (R-17)."""
    disks = _disks(ctx)
    numbers = [int(n) for n in as_list(call.get("Number"))]
    out = []
    for n in numbers:
        if not any(num == n for num, _ in disks):
            ctx.error(not_found("MSFT_Disk", "Number", n, "Get-Disk"))
    for num, disk in disks:
        if not numbers or num in numbers:
            out.append(host_disk_obj(ctx, num, disk))
    return out
