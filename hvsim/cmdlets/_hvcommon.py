"""Helpers shared by the Hyper-V, VHD and host cmdlet families: finding the Hyper-V
subsystem of ctx.machine, resolving -Name/-VMName/-VM arguments to VMs (R-20,
R-21), and reading list-or-scalar parameters."""

from __future__ import annotations

from typing import Any

from hvsim.errors import PSError
from hvsim.model import hverrors as E
from hvsim.model.hyperv import VM, HyperV


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def command_not_found(name: str) -> PSError:
    """What Windows writes for a cmdlet whose module is not installed (the Hyper-V
    module on a machine without the role tools)."""
    return PSError(
        f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, "
        "or operable program. Check the spelling of the name, or if a path was included, "
        "verify that the path is correct and try again.",
        fqid="CommandNotFoundException",
        category="ObjectNotFound",
        exception="System.Management.Automation.CommandNotFoundException",
        target=name,
    )


def hyperv_of(ctx: Any, cmdlet: str) -> HyperV:
    """The Hyper-V subsystem of the machine the command runs on.

    Without the Hyper-V PowerShell module the cmdlet does not exist; with the module
    but without a running hypervisor/VMMS (role installed, reboot pending) the
    cmdlet cannot reach the management service (modelled on the VMMS-down text).
    """
    m = ctx.machine
    hv = getattr(m, "hyperv", None)
    if hv is not None:
        return hv
    if m.features.get("Hyper-V-PowerShell") == "Installed":
        raise E.hv(
            f"Hyper-V encountered an error trying to access an object on computer '{m.name}' "
            "because the object was not found. The object might have been deleted. Verify that "
            "the Virtual Machine Management service on the computer is running.",
            "ObjectNotFound",
            cmdlet,
            "ObjectNotFound",
        )
    raise command_not_found(cmdlet)


def vm_from_object(hv: HyperV, obj: Any) -> VM | None:
    if isinstance(obj, VM):
        return obj
    get = getattr(obj, "get", None)
    if callable(get):
        vm_id = get("VMId") or get("Id")
        if vm_id is not None:
            return hv.vm_by_id(vm_id)
    return None


def resolve_vms(
    ctx: Any,
    call: Any,
    cmdlet: str,
    *,
    name_param: str = "Name",
    object_param: str = "VM",
    terminating: bool = True,
) -> list[VM]:
    """The VMs a call acts on: by -VM objects (or pipeline input), or by name.

    A name matching several VMs acts on all of them (R-20: name-keyed cmdlets
    act on every match). A name matching none raises the R-21 error (terminating
    for set-style cmdlets; Get-VM writes it as non-terminating itself).
    """
    hv = hyperv_of(ctx, cmdlet)
    objs = as_list(call.get(object_param))
    if not objs and not call.get(name_param) and ctx.input:
        objs = list(ctx.input)
    if objs:
        out = []
        for obj in objs:
            vm = vm_from_object(hv, obj)
            if vm is None:
                name = obj.get("Name") if hasattr(obj, "get") else obj
                raise E.vm_not_found(str(name), cmdlet)
            out.append(vm)
        return out
    out = []
    for name in as_list(call.get(name_param)):
        found = hv.find_vms(str(name))
        if not found and not any(ch in str(name) for ch in "*?["):
            err = E.vm_not_found(str(name), cmdlet)
            if terminating:
                raise err
            ctx.error(err)
        out.extend(vm for vm in found if vm not in out)
    return out
