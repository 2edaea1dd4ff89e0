"""Hyper-V cmdlets: VMs, their processors, memory, firmware, adapters, drives, switches.

They act on `ctx.machine.hyperv`: the L0 host, or a guest that runs the
Hyper-V role. Rules are enforced in hvsim.model (R-xx cited there and here).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hvsim.cmdlets import _hvshapes as S
from hvsim.cmdlets._hvcommon import as_list, hyperv_of
from hvsim.model import hverrors as E
from hvsim.registry import Call, Context, cmdlet


@cmdlet("Get-VMHost", params=["ComputerName"])
def get_vmhost(ctx: Context, call: Call) -> Iterable[Any]:
    hv = hyperv_of(ctx, call.name)
    yield S.vmhost_obj(hv)


@cmdlet("Get-VM", params=["Name", "Id", "ComputerName"])
def get_vm(ctx: Context, call: Call) -> Iterable[Any]:
    hv = hyperv_of(ctx, call.name)
    if "Id" in call:
        vm = hv.vm_by_id(call.get("Id"))
        if vm is None:
            ctx.error(
                E.hv(
                    f'Hyper-V was unable to find a virtual machine with id "{call.get("Id")}".',
                    "InvalidParameter",
                    call.name,
                    "InvalidArgument",
                    call.get("Id"),
                )
            )
            return
        yield S.vm_obj(ctx.world, hv, vm)
        return
    names = as_list(call.get("Name"))
    if not names:
        for vm in hv.vms:
            yield S.vm_obj(ctx.world, hv, vm)
        return
    seen: list[Any] = []
    for name in names:
        found = hv.find_vms(str(name))
        if not found and not any(ch in str(name) for ch in "*?["):
            # a missing name is a non-terminating error; the rest go on.
            ctx.error(E.vm_not_found(str(name), call.name))
        for vm in found:
            if vm not in seen:
                seen.append(vm)
                yield S.vm_obj(ctx.world, hv, vm)
