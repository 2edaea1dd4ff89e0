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
            disk = differencing_child(path, parent, str(ctx.world.new_uuid()).upper())
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
        for _, f in ctx.machine.fs.files("C:\\"):
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
