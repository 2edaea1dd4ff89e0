"""Files from the host into a running guest: Enable-/Disable-VMIntegrationService and
Copy-VMFile through the Guest Service Interface (R-111)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hvsim import timing
from hvsim.cmdlets._hvcommon import as_list, resolve_vms
from hvsim.errors import PSError, not_modelled
from hvsim.model import hverrors as E
from hvsim.model.fs import FsError, normalize
from hvsim.registry import Call, Context, cmdlet

GSI = "Guest Service Interface"


def _set_service(ctx: Context, call: Call, enabled: bool) -> None:
    vms = resolve_vms(ctx, call, call.name, name_param="VMName")
    names = [str(n) for n in as_list(call.get("Name"))]
    for vm in vms:
        for name in names:
            known = next((k for k in vm.integration_services if k.lower() == name.lower()), None)
            if known is None:
                raise E.hv(
                    f"No integration service named '{name}' was found for virtual machine "
                    f"'{vm.name}'.",
                    "ObjectNotFound",
                    call.name,
                    "ObjectNotFound",
                    name,
                )
            vm.integration_services[known] = enabled


@cmdlet("Enable-VMIntegrationService", params=["VMName", "Name", "Passthru"])
def enable_vm_integration_service(ctx: Context, call: Call) -> Iterable[Any]:
    _set_service(ctx, call, True)
    return []


@cmdlet("Disable-VMIntegrationService", params=["VMName", "Name", "Passthru"])
def disable_vm_integration_service(ctx: Context, call: Call) -> Iterable[Any]:
    _set_service(ctx, call, False)
    return []


def _copy_failed(vm: str, detail: str, category: str = "NotSpecified") -> PSError:
    # The headline of Copy-VMFile's failures; the detail after it is modelled.
    return E.hv(
        f"Failed to initiate copying files to the guest.\n{detail}",
        "Unspecified",
        "Copy-VMFile",
        category,
        vm,
    )


@cmdlet(
    "Copy-VMFile",
    params=["Name", "SourcePath", "DestinationPath", "FileSource", "CreateFullPath", "Force"],
)
def copy_vm_file(ctx: Context, call: Call) -> Iterable[Any]:
    """Copy a host file into a running guest (-FileSource Host, the only source the
    cmdlet knows). Needs the Guest Service Interface integration service, which is off
    by default, and a guest whose integration services answer; the folder must exist
    unless -CreateFullPath; an existing file is replaced only with -Force."""
    if str(call.get("FileSource")) != "Host":
        raise not_modelled(f"Copy-VMFile -FileSource {call.get('FileSource')}")
    src = normalize(str(call.get("SourcePath")))
    dest = normalize(str(call.get("DestinationPath")))
    host_fs = ctx.machine.fs
    try:
        content = host_fs.read(src)
    except FsError:
        raise E.hv(
            f"Cannot find path '{src}' because it does not exist.",
            "PathNotFound",
            "Copy-VMFile",
            "ObjectNotFound",
            src,
        ) from None
    for vm in resolve_vms(ctx, call, call.name, name_param="Name"):
        if not vm.integration_services.get(GSI, False):
            raise _copy_failed(
                vm.name,
                f"The '{GSI}' integration service is not enabled for virtual machine "
                f"'{vm.name}' (Enable-VMIntegrationService).",
                "InvalidOperation",
            )
        guest = vm.guest
        if vm.state != "Running" or guest is None or not guest.is_ready():
            raise _copy_failed(
                vm.name,
                f"The guest services of virtual machine '{vm.name}' are not responding.",
                "ResourceUnavailable",
            )
        if guest.fs.exists(dest) and not call.switch("Force"):
            raise _copy_failed(vm.name, f"The file '{dest}' exists in the guest.", "ResourceExists")
        parent = dest.rsplit("\\", 1)[0]
        if not guest.fs.is_dir(parent) and not call.switch("CreateFullPath"):
            raise _copy_failed(
                vm.name,
                f"The folder '{parent}' does not exist in the guest (use -CreateFullPath).",
                "ObjectNotFound",
            )
        size = len(content) if isinstance(content, bytes | bytearray | str) else 0
        ctx.work(
            timing.seconds("file.copy_per_gib") * size / 2**30, f"copying {src} into {vm.name}"
        )
        guest.fs.write(dest, content, create_parents=True)
    return []
