"""VHD cmdlets: New-VHD, Get-VHD, Set-VHD, Mount-VHD, Dismount-VHD (R-14..R-17, R-79)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hvsim import timing
from hvsim.cmdlets import _hvshapes as S
from hvsim.cmdlets._hvcommon import as_list, hyperv_of
from hvsim.model import hverrors as E
from hvsim.model.fs import FsError, GiB, normalize
from hvsim.model.vhd import VHD, differencing_child, new_disk
from hvsim.registry import Call, Context, cmdlet


def vhd_at(ctx: Context, path: str) -> VHD | None:
    node = ctx.machine.fs.node(path)
    content = getattr(node, "content", None)
    return content if isinstance(content, VHD) else None


@cmdlet(
    "New-VHD",
    params=[
        "Path",
        "SizeBytes",
        "Dynamic",
        "Fixed",
        "Differencing",
        "ParentPath",
        "BlockSizeBytes",
        "LogicalSectorSizeBytes",
        "PhysicalSectorSizeBytes",
    ],
)
def new_vhd(ctx: Context, call: Call) -> Iterable[Any]:
    hyperv_of(ctx, call.name)
    fs = ctx.machine.fs
    for raw in as_list(call.get("Path")):
        path = normalize(str(raw))
        if not path.lower().endswith((".vhd", ".vhdx")):
            raise E.vhd_create_failed(
                path, "The file type is not supported. (0xC03A0010).", call.name
            )
        # New-VHD never replaces an existing file.
        if fs.exists(path):
            raise E.vhd_create_failed(path, E.FILE_EXISTS, call.name)
        parent_dir = path.rsplit("\\", 1)[0]
        if not fs.is_dir(parent_dir):
            raise E.vhd_create_failed(
                path, "The system cannot find the path specified. (0x80070003).", call.name
            )
        if call.switch("Differencing"):
            parent_path = normalize(str(call.get("ParentPath")))
            parent = vhd_at(ctx, parent_path)
            if parent is None:
                raise E.vhd_create_failed(
                    path,
                    f"The system cannot find the file specified. (0x80070002). ('{parent_path}')",
                    call.name,
                )
            if "SizeBytes" in call and int(call.get("SizeBytes")) != parent.size:
                raise E.not_modelled_param(call.name, "-SizeBytes different from the parent's size")
            disk = differencing_child(path, parent)
            seconds = timing.seconds("vhd.create_dynamic")
        else:
            size = int(call.get("SizeBytes") or 0)
            if size <= 0:
                raise E.vhd_create_failed(
                    path, "The parameter is incorrect. (0x80070057).", call.name
                )
            fixed = call.switch("Fixed")
            disk = new_disk(path, size, fixed=fixed, ident=str(ctx.world.new_uuid()).upper())
            if "BlockSizeBytes" in call:
                disk.block_size = int(call.get("BlockSizeBytes"))
            if "LogicalSectorSizeBytes" in call:
                disk.logical_sector_size = int(call.get("LogicalSectorSizeBytes"))
            if "PhysicalSectorSizeBytes" in call:
                disk.physical_sector_size = int(call.get("PhysicalSectorSizeBytes"))
            seconds = timing.seconds("vhd.create_dynamic")
            if fixed:
                seconds += timing.seconds("vhd.create_fixed_per_gib") * size / GiB
        try:
            # the new file is charged to the volume it lands on.
            fs.write(path, disk)
        except FsError as err:
            if disk.parent is not None:
                disk.parent.children.remove(disk)
            if err.kind == "no_space":
                raise E.vhd_create_failed(path, E.DISK_FULL, call.name) from None
            raise E.vhd_create_failed(path, str(err), call.name) from None
        ctx.work(seconds, f"creating {path}")
        yield S.vhd_obj(ctx.machine, disk)


@cmdlet("Get-VHD", params=["Path", "DiskNumber", "VMId"])
def get_vhd(ctx: Context, call: Call) -> Iterable[Any]:
    hv = hyperv_of(ctx, call.name)
    if "DiskNumber" in call:
        want = int(call.get("DiskNumber"))
        for _, f in ctx.machine.fs.local_files():
            if isinstance(f.content, VHD) and f.content.disk_number == want:
                yield S.vhd_obj(ctx.machine, f.content)
                return
        ctx.error(
            E.hv(
                f"Hyper-V was unable to find a virtual hard disk with disk number {want}.",
                "ObjectNotFound",
                call.name,
                "ObjectNotFound",
                want,
            )
        )
        return
    if "VMId" in call:
        for vm_id in as_list(call.get("VMId")):
            vm = hv.vm_by_id(vm_id)
            if vm is None:
                ctx.error(E.vm_not_found(str(vm_id), call.name))
                continue
            for d in vm.drives:
                disk = vhd_at(ctx, d.path)
                if disk is not None:
                    yield S.vhd_obj(ctx.machine, disk)
        return
    for raw in as_list(call.get("Path")):
        path = normalize(str(raw))
        disk = vhd_at(ctx, path)
        if disk is None:
            ctx.error(E.vhd_not_found(str(raw), call.name))
            continue
        yield S.vhd_obj(ctx.machine, disk)


def _host_disk_numbers(ctx: Context) -> set[int]:
    """Disk numbers in use on this machine: 0 is its boot disk, then mounted VHDs."""
    used = {0}
    for _, f in ctx.machine.fs.local_files():
        if isinstance(f.content, VHD) and f.content.disk_number is not None:
            used.add(f.content.disk_number)
    return used


def _assign_letter(ctx: Context, part: Any) -> str | None:
    letter = ctx.machine.fs.free_letter("D")
    if letter is None or part.volume is None:
        return None
    part.drive_letter = letter
    ctx.machine.fs.add_drive(letter, part.volume)
    return letter


@cmdlet("Mount-VHD", params=["Path", "Passthru", "ReadOnly", "NoDriveLetter"])
def mount_vhd(ctx: Context, call: Call) -> Iterable[Any]:
    hv = hyperv_of(ctx, call.name)
    for raw in as_list(call.get("Path")):
        path = normalize(str(raw))
        disk = vhd_at(ctx, path)
        if disk is None:
            raise E.vhd_not_found(str(raw), call.name)
        if disk.mounted:
            raise E.hv(
                f"The disk '{path}' is already mounted (disk number {disk.disk_number}).",
                "InvalidOperation",
                call.name,
                "InvalidOperation",
                path,
            )
        # a disk held open by a running VM cannot be mounted (0x80070020, unconfirmed).
        holders = [vm for vm in hv.holder_of(path) if vm.state != "Off"]
        # A parent whose child runs is open read-only: only a read-only mount shares it.
        parent_busy = disk.open_by_children and not call.switch("ReadOnly")
        if disk.in_use_by is not None or holders or parent_busy:
            raise E.hv(
                f"Failed to mount the disk.\nThe system failed to mount '{path}': {E.IN_USE}",
                "ObjectInUse",
                call.name,
                "ResourceBusy",
                path,
            )
        used = _host_disk_numbers(ctx)
        number = 1
        while number in used:
            number += 1
        # a disk whose GPT disk GUID equals an attached disk's (a sibling child
        # of the same image) collides: Windows leaves it offline, OfflineReason
        # Collision, and its partitions get no access path.
        twin = _attached_twin(ctx, disk)
        disk.mounted = True
        disk.mounted_read_only = call.switch("ReadOnly")
        disk.disk_number = number
        disk.offline_reason = "Collision" if twin is not None else ""
        for part in disk.partitions:
            if part.volume is not None:
                part.volume.read_only = disk.mounted_read_only
        auto = getattr(getattr(ctx.world, "profile", None), "automount_letters", False)
        if auto and not call.switch("NoDriveLetter") and not disk.offline_reason:
            os_part = disk.os_partition()
            if os_part is not None:
                _assign_letter(ctx, os_part)
        ctx.work(timing.seconds("vhd.mount"), f"mounting {path}")
        if call.switch("Passthru"):
            yield S.vhd_obj(ctx.machine, disk)


def _attached_twin(ctx: Context, disk: VHD) -> VHD | None:
    """Another disk mounted on this machine with the same GPT disk GUID (R-91)."""
    if not disk.disk_guid:
        return None
    for _, f in ctx.machine.fs.files("C:\\"):
        other = f.content
        if (
            isinstance(other, VHD)
            and other is not disk
            and other.mounted
            and other.disk_guid == disk.disk_guid
            and not other.offline_reason
        ):
            return other
    return None


def dismount(ctx: Context, disk: VHD) -> None:
    fs = ctx.machine.fs
    for part in disk.partitions:
        if part.drive_letter:
            fs.remove_drive(part.drive_letter)
            part.drive_letter = None
        for ap in part.access_paths:
            fs.unmount(ap)
        part.access_paths = []
        if part.volume is not None:
            part.volume.read_only = False
    disk.mounted = False
    disk.mounted_read_only = False
    disk.disk_number = None
    disk.offline_reason = ""


@cmdlet("Dismount-VHD", params=["Path", "DiskNumber", "Passthru"])
def dismount_vhd(ctx: Context, call: Call) -> Iterable[Any]:
    hyperv_of(ctx, call.name)
    disks: list[VHD] = []
    if "DiskNumber" in call:
        want = int(call.params["DiskNumber"])
        disks = [
            f.content
            for _, f in ctx.machine.fs.local_files()
            if isinstance(f.content, VHD) and f.content.disk_number == want
        ]
        if not disks:
            raise E.hv(
                f"The disk number {want} does not belong to a mounted virtual hard disk.",
                "InvalidParameter",
                call.name,
                "InvalidArgument",
                want,
            )
    for raw in as_list(call.get("Path")):
        disk = vhd_at(ctx, str(raw))
        if disk is None:
            raise E.vhd_not_found(str(raw), call.name)
        if not disk.mounted:
            raise E.hv(
                f"The disk '{normalize(str(raw))}' is not mounted. The virtual disk is not attached.",
                "InvalidOperation",
                call.name,
                "InvalidOperation",
                str(raw),
            )
        disks.append(disk)
    for disk in disks:
        dismount(ctx, disk)
        ctx.work(timing.seconds("vhd.mount"), f"dismounting {disk.path}")
        if call.switch("Passthru"):
            yield S.vhd_obj(ctx.machine, disk)


@cmdlet("Set-VHD", params=["Path", "ResetDiskIdentifier", "Force", "ParentPath", "Passthru"])
def set_vhd(ctx: Context, call: Call) -> Iterable[Any]:
    hyperv_of(ctx, call.name)
    path = normalize(str(call.params["Path"]))
    disk = vhd_at(ctx, path)
    if disk is None:
        raise E.vhd_not_found(str(call.params["Path"]), call.name)
    if call.switch("ResetDiskIdentifier"):
        # VHDX only, and only when no disk of the chain is attached.
        if disk.format != "VHDX":
            raise E.hv(
                "The disk identifier can be reset only on a VHDX file.",
                "InvalidParameter",
                call.name,
                "InvalidArgument",
                path,
            )
        if any(link.attached for link in disk.chain()):
            raise E.chain_attached(path, call.name)
        if not call.switch("Force"):
            # -Force suppresses the confirmation prompt (WPD:Hyper-V/Set-VHD).
            from hvsim.cmdlets.hyperv import prompt_failed

            raise prompt_failed(
                f"Are you sure you want to reset the disk identifier of '{path}'?", call.name
            )
        disk.disk_identifier = str(ctx.world.new_uuid()).upper()
    if "ParentPath" in call:
        raise E.not_modelled_param(call.name, "-ParentPath (re-parenting a chain)")
    if call.switch("Passthru"):
        yield S.vhd_obj(ctx.machine, disk)
