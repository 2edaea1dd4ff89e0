"""Laying out a blank VHD mounted on the host: Initialize-Disk, New-Partition,
Set-Partition and Format-Volume (R-116).

The disks are those hvsim.cmdlets.storage_host numbers: disk 0 is the machine's
boot disk (already GPT, not modelled further), mounted VHDs follow. A partition
gets a drive letter when it is created with -AssignDriveLetter or -DriveLetter;
the letter reaches the file system once Format-Volume made a volume on it.
Texts of the refusals are modelled unless a rule says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hvsim import timing
from hvsim.cmdlets._hvcommon import as_list
from hvsim.cmdlets.hostnet import not_found
from hvsim.cmdlets.storage_host import _disks, host_disk_obj, partition_obj, volume_obj
from hvsim.errors import PSError, not_modelled
from hvsim.model.fs import FsError, Volume
from hvsim.model.vhd import GPT_BASIC, GPT_EFI, GPT_MSR, GPT_RECOVERY, VHD, Partition
from hvsim.registry import Call, Context, cmdlet

MiB = 1024**2
GPT_TYPES = {GPT_EFI: "System", GPT_MSR: "Reserved", GPT_BASIC: "Basic", GPT_RECOVERY: "Recovery"}
FILE_SYSTEMS = {"ntfs": "NTFS", "fat32": "FAT32", "refs": "ReFS"}


def _storage_error(message: str, code: int, cmdlet: str, category: str, target: Any) -> PSError:
    return PSError(
        message,
        fqid=f"StorageWMI {code},{cmdlet}",
        category=category,
        exception="Microsoft.Management.Infrastructure.CimException",
        target=target,
    )


def _disk(ctx: Context, number: int, cmdlet: str) -> VHD | None:
    disks = dict(_disks(ctx))
    if number not in disks:
        raise not_found("MSFT_Disk", "Number", number, cmdlet)
    return disks[number]


def _vhd_disk(ctx: Context, number: int, cmdlet: str) -> VHD:
    disk = _disk(ctx, number, cmdlet)
    if disk is None:
        # The host's own boot disk: hvsim models only its C: volume.
        raise not_modelled(f"{cmdlet} on the machine's boot disk")
    if disk.mounted_read_only:
        raise _storage_error("The media is write protected.", 19, cmdlet, "WriteError", number)
    return disk


def _gpt(value: Any) -> str:
    text = str(value).strip().lower()
    if not text.startswith("{"):
        text = "{" + text + "}"
    return text


def used_letters(ctx: Context) -> set[str]:
    """Letters in use: the file system's drives and letters given to partitions of
    mounted disks that have no volume yet."""
    used = set(ctx.machine.fs.drives)
    for _, disk in _disks(ctx):
        for part in getattr(disk, "partitions", None) or []:
            if part.drive_letter:
                used.add(part.drive_letter.upper())
    return used


def _next_letter(ctx: Context) -> str | None:
    used = used_letters(ctx)
    for code in range(ord("D"), ord("Z") + 1):
        if chr(code) not in used:
            return chr(code)
    return None


@cmdlet("Initialize-Disk", params=["Number", "PartitionStyle", "PassThru"])
def initialize_disk(ctx: Context, call: Call) -> Iterable[Any]:
    style = str(call.get("PartitionStyle") or "GPT").upper()
    if style != "GPT":
        raise not_modelled(f"Initialize-Disk -PartitionStyle {style}")
    for raw in as_list(call.get("Number")):
        number = int(raw)
        disk = _disk(ctx, number, call.name)
        if disk is None or disk.partition_style != "RAW":
            # Only a RAW disk can be initialized (Storage/Initialize-Disk), R-116.
            raise _storage_error(
                "The disk has already been initialized.",
                41001,
                call.name,
                "InvalidOperation",
                number,
            )
        disk = _vhd_disk(ctx, number, call.name)
        disk.partition_style = "GPT"
        if call.switch("PassThru"):
            yield host_disk_obj(ctx, number, disk)


@cmdlet(
    "New-Partition",
    params=["DiskNumber", "Size", "UseMaximumSize", "GptType", "AssignDriveLetter", "DriveLetter"],
)
def new_partition(ctx: Context, call: Call) -> Iterable[Any]:
    for raw in as_list(call.get("DiskNumber")):
        number = int(raw)
        disk = _vhd_disk(ctx, number, call.name)
        if disk.partition_style == "RAW":
            # "Disks must be initialized before they can be formatted" (Initialize-Disk), R-116.
            raise _storage_error(
                "The disk has not been initialized.", 41000, call.name, "InvalidOperation", number
            )
        gpt = _gpt(call.get("GptType") or GPT_BASIC)
        kind = GPT_TYPES.get(gpt, "Unknown")
        # Partitions start at 1 MiB and on 1 MiB boundaries; the last MiB holds the
        # backup GPT (modelled).
        end = max((p.offset + p.size for p in disk.partitions), default=MiB)
        offset = -(-end // MiB) * MiB
        room = max(0, disk.size - MiB - offset)
        if call.switch("UseMaximumSize"):
            size = room
        elif "Size" in call:
            size = int(call.get("Size"))
        else:
            raise _storage_error("Invalid Parameter", 5, call.name, "InvalidArgument", number)
        if size <= 0 or size > room:
            raise _storage_error(
                "Not enough available capacity", 40000, call.name, "InvalidArgument", number
            )
        letter = None
        if "DriveLetter" in call or call.switch("AssignDriveLetter"):
            if kind == "Reserved":
                raise _storage_error(
                    "The requested access path is not valid.",
                    42003,
                    call.name,
                    "InvalidArgument",
                    number,
                )
            if "DriveLetter" in call:
                letter = str(call.get("DriveLetter")).upper()[:1]
                if letter in used_letters(ctx):
                    raise _storage_error(
                        "The requested access path is already in use.",
                        42002,
                        call.name,
                        "InvalidArgument",
                        letter,
                    )
            else:
                letter = _next_letter(ctx)
        part = Partition(
            len(disk.partitions) + 1, kind, gpt, offset, size, None, drive_letter=letter
        )
        disk.partitions.append(part)
        yield partition_obj(number, part)


def _partition(ctx: Context, number: int, pnum: int, cmdlet: str) -> tuple[VHD, Partition]:
    disk = _vhd_disk(ctx, number, cmdlet)
    for part in disk.partitions:
        if part.number == pnum:
            return disk, part
    raise not_found("MSFT_Partition", "PartitionNumber", pnum, cmdlet)


@cmdlet("Set-Partition", params=["DiskNumber", "PartitionNumber", "GptType"])
def set_partition(ctx: Context, call: Call) -> None:
    if "GptType" not in call:
        raise not_modelled("Set-Partition without -GptType")
    _, part = _partition(
        ctx, int(call.get("DiskNumber")), int(call.get("PartitionNumber")), call.name
    )
    gpt = _gpt(call.get("GptType"))
    part.gpt_type = gpt
    part.type = GPT_TYPES.get(gpt, "Unknown")


def _by_letter(ctx: Context, letter: str, cmdlet: str) -> tuple[VHD, Partition]:
    for _, disk in _disks(ctx):
        for part in getattr(disk, "partitions", None) or []:
            if (part.drive_letter or "").upper() == letter:
                return disk, part
    if letter in ctx.machine.fs.drives:
        raise not_modelled(f"{cmdlet} of volume {letter}: (only new partitions of mounted VHDs)")
    raise not_found("MSFT_Volume", "DriveLetter", letter, cmdlet)


@cmdlet(
    "Format-Volume",
    params=["DriveLetter", "FileSystem", "NewFileSystemLabel", "Force", "Full"],
)
def format_volume(ctx: Context, call: Call) -> Iterable[Any]:
    fs_name = str(call.get("FileSystem") or "NTFS")
    file_system = FILE_SYSTEMS.get(fs_name.lower())
    if file_system is None:
        raise not_modelled(f"Format-Volume -FileSystem {fs_name}")
    letters = [str(x).upper()[:1] for x in as_list(call.get("DriveLetter"))]
    if not letters:
        raise not_modelled("Format-Volume without -DriveLetter")
    for letter in letters:
        disk, part = _by_letter(ctx, letter, call.name)
        if part.type == "System":
            # An EFI system partition is formatted as a basic data partition and typed
            # ESP afterwards (Convert-WindowsImage in microsoft/MSLab), R-116.
            raise _storage_error(
                "Access to the EFI system partition is denied; format it before setting its "
                "GPT type.",
                42004,
                call.name,
                "PermissionDenied",
                letter,
            )
        if part.volume is not None and not call.switch("Force"):
            from hvsim.cmdlets.hyperv import prompt_failed

            raise prompt_failed(
                f"Formatting volume {letter}: erases all data on it. Are you sure?", call.name
            )
        # NTFS keeps its metadata (MFT, log) on the volume: about 1 % of it, at most
        # 100 MiB in the model; FAT32 its two tables (modelled).
        meta = min(part.size // 100, 100 * MiB) if file_system != "FAT32" else part.size // 256
        vol = Volume(str(call.get("NewFileSystemLabel") or ""), file_system, part.size, owner=disk)
        path = f"{letter}:\\"
        try:
            disk.before_partition_write(vol, path, meta)
        except FsError:
            raise _storage_error(
                "There is not enough space on the disk.", 112, call.name, "WriteError", letter
            ) from None
        vol.used_base = meta
        if part.volume is not None:
            ctx.machine.fs.remove_drive(letter)
        part.volume = vol
        ctx.machine.fs.add_drive(letter, vol)
        ctx.work(timing.seconds("disk.format"), f"formatting {letter}:")
        yield volume_obj(letter, vol)
