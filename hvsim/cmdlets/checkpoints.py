"""VM checkpoints: Checkpoint-VM, Get-VMSnapshot, Restore-VMSnapshot, Remove-VMSnapshot
(R-13, R-130). The model is hvsim.model.checkpoints."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from hvsim.cmdlets import _hvshapes as S
from hvsim.cmdlets._hvcommon import as_list, hyperv_of, resolve_vms
from hvsim.cmdlets.hyperv import prompt_failed
from hvsim.errors import PSError
from hvsim.model import checkpoints as C
from hvsim.model import hverrors as E
from hvsim.model.hyperv import VM, HyperV
from hvsim.model.machine import at
from hvsim.objects import PSEnum, PSObj
from hvsim.registry import Call, Context, cmdlet

# SnapshotType (Get-VMSnapshot -SnapshotType): what a user checkpoint is.
SNAPSHOT_TYPE = {"Standard": 0, "Recovery": 1, "Planned": 2, "Missing": 3, "Replica": 4}


def snapshot_obj(hv: HyperV, vm: VM, cp: C.Checkpoint) -> PSObj:
    parent = next((c for c in vm.checkpoints if c.id == cp.parent_id), None)
    return PSObj(
        [S.HV + "VMSnapshot", S.HV + "VirtualMachineBase", *S.BASE],
        {
            "Name": cp.name,
            "Id": uuid.UUID(cp.id),
            "VMName": vm.name,
            "VMId": vm.id,
            "SnapshotType": PSEnum(S.HV + "SnapshotType", "Standard", SNAPSHOT_TYPE["Standard"]),
            "CheckpointType": S.enum(
                S.HV + "CheckpointType", S.CHECKPOINT_TYPE, cp.checkpoint_type
            ),
            "CreationTime": at(cp.created),
            "ParentCheckpointId": uuid.UUID(parent.id) if parent else None,
            "ParentCheckpointName": parent.name if parent else None,
            "ParentSnapshotId": uuid.UUID(parent.id) if parent else None,
            "ParentSnapshotName": parent.name if parent else None,
            "Path": vm.path,
            "State": S.vm_state("Off"),
            "IsDeleted": False,
            "HardDrives": [S.drive_obj(hv, vm, d.drive) for d in cp.disks],
            "ComputerName": S.computer_name(hv),
        },
        to_string=f"VMSnapshot (Name = '{cp.name}') [VMName = '{vm.name}']",
    )


def _snapshot_of(hv: HyperV, obj: Any, cmdlet: str) -> tuple[VM, C.Checkpoint]:
    """A VMSnapshot object given with -VMSnapshot or through the pipeline."""
    get = getattr(obj, "get", None)
    vm = hv.vm_by_id(get("VMId")) if callable(get) and get("VMId") is not None else None
    cp = C.by_id(vm, get("Id")) if vm is not None and callable(get) else None
    if vm is None or cp is None:
        name = get("Name") if callable(get) else obj
        raise _not_found(str(name), cmdlet)
    return vm, cp


def _not_found(name: str, cmdlet: str) -> PSError:
    return E.hv(
        f'Hyper-V was unable to find a checkpoint named "{name}".',
        "InvalidParameter",
        cmdlet,
        "InvalidArgument",
        name,
    )


@cmdlet("Checkpoint-VM", params=["Name", "VM", "SnapshotName", "Passthru"])
def checkpoint_vm(ctx: Context, call: Call) -> Iterable[Any]:
    hv = hyperv_of(ctx, call.name)
    vms = resolve_vms(ctx, call, call.name, name_param="Name")
    for vm in vms:
        cp = C.create(ctx, hv, vm, call.get("SnapshotName"), call.name)
        if call.switch("Passthru"):
            yield snapshot_obj(hv, vm, cp)


@cmdlet(
    "Get-VMSnapshot", params=["VMName", "VM", "Name", "Id", "SnapshotType", "ParentOf", "ChildOf"]
)
def get_vmsnapshot(ctx: Context, call: Call) -> Iterable[Any]:
    hv = hyperv_of(ctx, call.name)
    if "ParentOf" in call or "ChildOf" in call:
        from hvsim.errors import not_modelled

        raise not_modelled("Get-VMSnapshot -ParentOf/-ChildOf")
    if "Id" in call:
        for vm in hv.vms:
            cp = C.by_id(vm, call.get("Id"))
            if cp is not None:
                yield snapshot_obj(hv, vm, cp)
                return
        ctx.error(_not_found(str(call.get("Id")), call.name))
        return
    kind = call.get("SnapshotType")
    if kind is not None and str(kind) != "Standard":
        return  # user checkpoints are Standard; the model has no others
    vms = resolve_vms(ctx, call, call.name, name_param="VMName", terminating=False)
    name = call.get("Name")
    for vm in vms:
        found = C.find(vm, str(name)) if name is not None else list(vm.checkpoints)
        for cp in found:
            yield snapshot_obj(hv, vm, cp)


def _targets(ctx: Context, call: Call, hv: HyperV) -> list[tuple[VM, C.Checkpoint]]:
    """The checkpoints a call names: -VMSnapshot objects (or piped), or -Name with
    -VMName or -VM (piped VMs)."""
    snaps = as_list(call.get("VMSnapshot"))
    if snaps:
        return [_snapshot_of(hv, o, call.name) for o in snaps]
    vms = resolve_vms(ctx, call, call.name, name_param="VMName")
    out: list[tuple[VM, C.Checkpoint]] = []
    for name in as_list(call.get("Name")) or ["*"]:
        hit = False
        for vm in vms:
            for cp in C.find(vm, str(name)):
                hit = True
                out.append((vm, cp))
        if not hit and not any(ch in str(name) for ch in "*?["):
            raise _not_found(str(name), call.name)
    return out


@cmdlet("Restore-VMSnapshot", params=["Name", "VMName", "VM", "VMSnapshot", "Passthru", "Confirm"])
def restore_vmsnapshot(ctx: Context, call: Call) -> Iterable[Any]:
    hv = hyperv_of(ctx, call.name)
    targets = _targets(ctx, call, hv)
    if len({id(vm) for vm, _ in targets}) != len(targets):
        raise E.hv(
            "A virtual machine can be restored to one checkpoint at a time.",
            "InvalidParameter",
            call.name,
            "InvalidArgument",
        )
    for vm, cp in targets:
        if not ("Confirm" in call and not call.switch("Confirm")):
            # Restore-VMSnapshot asks before it discards the VM's current state; the
            # documentation passes -Confirm:$false. A remote session cannot answer.
            raise prompt_failed(
                f'Are you sure you want to apply checkpoint "{cp.name}" to virtual machine '
                f'"{vm.name}"?',
                call.name,
            )
        C.restore(ctx, hv, vm, cp, call.name)
        if call.switch("Passthru"):
            yield snapshot_obj(hv, vm, cp)


@cmdlet(
    "Remove-VMSnapshot",
    params=[
        "Name",
        "VMName",
        "VM",
        "VMSnapshot",
        "IncludeAllChildSnapshots",
        "Passthru",
        "Confirm",
    ],
)
def remove_vmsnapshot(ctx: Context, call: Call) -> Iterable[Any]:
    hv = hyperv_of(ctx, call.name)
    targets = _targets(ctx, call, hv)
    for vm, cp in targets:
        if cp not in vm.checkpoints:
            continue  # removed with its parent's subtree already
        passthru = snapshot_obj(hv, vm, cp) if call.switch("Passthru") else None
        C.remove(ctx, hv, vm, cp, subtree=call.switch("IncludeAllChildSnapshots"))
        if passthru is not None:
            yield passthru
