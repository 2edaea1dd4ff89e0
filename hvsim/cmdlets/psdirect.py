"""PowerShell Direct: the wrappers' sessions into a guest (R-34, R-37, R-38, R-39),
the Deserialized shape of what comes back, and Invoke-Command -VMName.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from hvsim import executor, scripts
from hvsim.cmdlets._hvcommon import as_list
from hvsim.errors import PSError, not_modelled
from hvsim.model.guest import GuestOS, session_aborted, session_ended
from hvsim.objects import Credential, PSObj
from hvsim.registry import Call, Context, cmdlet

# -- PowerShell Direct (R-34, R-37, R-38, R-39) -------------------------------------------


def _does_not_resolve(name: str) -> PSError:
    return PSError(
        "The input VMName parameter does not resolve to any virtual machine.",
        fqid="InvalidVMNameNotSingle,Microsoft.PowerShell.Commands.InvokeCommandCommand",
        category="InvalidArgument",
        exception="System.ArgumentException",
        target=name,
    )


def _session(ctx: Context, vm_name: str, credential: Any) -> tuple[Any, GuestOS, str]:
    """Resolve the VM on this machine (R-39) and log on to its guest (R-34, R-38)."""
    profile = getattr(ctx.world, "profile", None)
    on_host = ctx.machine is getattr(ctx.world, "host", None)
    if on_host and profile is not None and not profile.powershell_direct_from_winrm:
        # a host where PowerShell Direct does not work from a WinRM session
        # (text and id modelled; whether such hosts exist is unconfirmed).
        raise PSError(
            f"Could not open a PowerShell Direct session to the virtual machine "
            f"'{vm_name}' from this remote session: Access is denied.",
            fqid="CreateRemoteRunspaceForVMFailed,Microsoft.PowerShell.Commands."
            "InvokeCommandCommand",
            category="PermissionDenied",
            exception="System.UnauthorizedAccessException",
            target=vm_name,
        )
    hv = getattr(ctx.machine, "hyperv", None)
    vms = [v for v in hv.vms if v.name.lower() == vm_name.lower()] if hv is not None else []
    if not vms:
        raise _does_not_resolve(vm_name)
    if len(vms) > 1:
        # several VMs share the name; PowerShell Direct cannot pick one (text
        # (unconfirmed), modelled).
        raise PSError(
            f"The input VMName {vm_name} resolves to more than one virtual machine. Use the "
            "VMId parameter instead.",
            fqid="InvalidVMNameMultipleVM,Microsoft.PowerShell.Commands.InvokeCommandCommand",
            category="InvalidArgument",
            exception="System.ArgumentException",
            target=vm_name,
        )
    vm = vms[0]
    if vm.state != "Running" or vm.guest is None:
        raise session_ended(vm_name)
    if not isinstance(credential, Credential):
        raise PSError(
            "Cannot bind parameter 'Credential'. A PSCredential is required.",
            fqid="CannotConvertArgument,Microsoft.PowerShell.Commands.InvokeCommandCommand",
            category="InvalidArgument",
            exception="System.Management.Automation.ParameterBindingException",
        )
    guest: GuestOS = vm.guest
    principal = guest.logon(credential.user, credential.password.reveal())
    return vm, guest, principal.user


def _deserialized(value: Any, notes: dict[str, Any]) -> Any:
    """An object as Invoke-Command hands it back: Deserialized.* type names and the
    PSComputerName/RunspaceId/PSShowComputerName notes (hyperv-facts, How objects travel)."""
    if isinstance(value, PSObj):
        return PSObj(
            ["Deserialized." + t for t in value.type_names],
            {k: _deserialized(v, {}) for k, v in value.props.items()},
            value.to_string,
            {**value.notes, **notes},
        )
    if isinstance(value, list):
        return [_deserialized(v, {}) for v in value]
    return value


def _run_inside(
    ctx: Context, vm: Any, guest: GuestOS, user: str, command: str, parameters: dict[str, Any]
) -> list[Any]:
    if not isinstance(parameters, dict):
        raise PSError(
            "Cannot convert the Parameters value to type System.Collections.Hashtable.",
            fqid="ParameterArgumentTransformationError",
            category="InvalidData",
            exception="System.Management.Automation.ParameterBindingException",
        )
    args: list[tuple[str | None, Any]] = [(str(k), v) for k, v in parameters.items()]
    if not any(str(k).lower() in ("erroraction", "ea") for k in parameters):
        # The wrapper's inner block sets $ErrorActionPreference = 'Stop'.
        args.append(("ErrorAction", "Stop"))
    epoch, restarts = guest.epoch, guest.restart_requests
    out = executor.run_pipeline(
        ctx.world,
        guest,
        user,
        [executor.Command(command, args)],
        executor.Forward(ctx, executor.raise_error),
    )
    guest.phase()  # catch up: a restart the command caused may have happened already
    if guest.epoch != epoch or guest.restart_requests != restarts:
        raise session_aborted(vm.name)
    notes = {
        "PSComputerName": vm.name,
        "RunspaceId": ctx.world.new_uuid(),
        "PSShowComputerName": True,
    }
    return [_deserialized(o, notes) for o in out]


def powershell_direct_command(
    ctx: Context, vm_name: Any, credential: Any, command: Any, parameters: dict[str, Any]
) -> list[Any]:
    """templates/host/Invoke-GuestCommand.ps1: one cmdlet inside a guest."""
    vm, guest, user = _session(ctx, str(vm_name), credential)
    return _run_inside(ctx, vm, guest, user, str(command), parameters)


def powershell_direct_script(
    ctx: Context, vm_name: Any, credential: Any, script: Any, parameters: dict[str, Any]
) -> list[Any]:
    """templates/host/Invoke-GuestScript.ps1: a known guest script inside a guest."""
    vm, guest, user = _session(ctx, str(vm_name), credential)
    known = scripts.find(str(script), "guest")
    if known is None:
        raise not_modelled("this script")
    epoch = guest.epoch
    inner = executor.Nested(ctx, guest, user)  # the script sets $ErrorActionPreference = 'Stop'
    result = known.handler(inner, known.bind(dict(parameters or {})))
    out = list(result or [])
    if guest.epoch != epoch:
        raise session_aborted(vm.name)
    notes = {
        "PSComputerName": vm.name,
        "RunspaceId": ctx.world.new_uuid(),
        "PSShowComputerName": True,
    }
    return [_deserialized(o, notes) for o in out]


# The script block inside Invoke-GuestCommand.ps1, for Invoke-Command sent as a cmdlet.
_INNER_COMMAND_BLOCK = """param($Command, $Parameters)
$ErrorActionPreference = 'Stop'
& $Command @Parameters"""


@cmdlet(
    "Invoke-Command",
    params=["VMName", "Credential", "ScriptBlock", "ArgumentList"],
)
def invoke_command(ctx: Context, call: Call) -> Iterable[Any]:
    """Invoke-Command -VMName with a script block hvsim can read: the wrapper's own
    inner block (command + hashtable) or a single quoted string, the R-35 probe."""
    names = as_list(call.get("VMName"))
    block = call.get("ScriptBlock")
    text = scripts.normalise(str(getattr(block, "text", block) or ""))
    if len(names) != 1:
        raise not_modelled("Invoke-Command without exactly one -VMName")
    vm_name = str(names[0])
    args = as_list(call.get("ArgumentList"))
    if text == scripts.normalise(_INNER_COMMAND_BLOCK) and len(args) == 2:
        return powershell_direct_command(
            ctx, vm_name, call.get("Credential"), args[0], args[1] or {}
        )
    literal = re.fullmatch(r"'([^']*)'", text)
    if literal:
        _session(ctx, vm_name, call.get("Credential"))
        return [literal.group(1)]
    raise not_modelled("Invoke-Command with this script block")
