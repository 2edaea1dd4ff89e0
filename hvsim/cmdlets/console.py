"""templates/host/Get-VMThumbnail.ps1: a VM's console picture from the host, through
Msvm_VirtualSystemManagementService.GetVirtualSystemThumbnailImage (hvsim.model.console).

Return values are the method's documented ones: 0 with the image; for a VM that is Off
or Saved (no console to picture) 32775, "Invalid state for this operation" (which of
the documented values Windows picks there is modelled).
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from hvsim.errors import PSError
from hvsim.model.console import render, screen_of
from hvsim.objects import PSObj

INVALID_STATE = 32775
LIMITS = {"WidthPixels": 1024, "HeightPixels": 768}


def _thrown(text: str) -> PSError:
    """What `throw "text"` in a script gives: the text is the error id too."""
    return PSError(
        text,
        fqid=text,
        category="OperationStopped",
        exception="System.Management.Automation.RuntimeException",
    )


def _size(name: str, value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise PSError(
            f"Cannot process argument transformation on parameter '{name}'. Cannot convert "
            f'value "{value}" to type "System.Int32".',
            fqid=f"ParameterArgumentTransformationError,{name}",
            category="InvalidData",
            exception="System.Management.Automation.ParameterBindingArgumentTransformationException",
        ) from None
    top = LIMITS[name]
    if not 16 <= number <= top:
        which = "less than the minimum" if number < 16 else "greater than the maximum"
        raise PSError(
            f"Cannot validate argument on parameter '{name}'. The {number} argument is {which} "
            f"allowed range of {16 if number < 16 else top}. Supply an argument that is "
            f"{'greater' if number < 16 else 'less'} than or equal to "
            f"{16 if number < 16 else top} and then try the command again.",
            fqid=f"ParameterArgumentValidationError,{name}",
            category="InvalidData",
            exception="System.Management.Automation.ParameterBindingValidationException",
        )
    return number


def get_vm_thumbnail(ctx: Any, vm_id: Any, width: Any, height: Any) -> list[PSObj]:
    hv = getattr(ctx.machine, "hyperv", None)
    if hv is None:
        # No Hyper-V: the virtualization namespace is not there (text modelled).
        raise PSError(
            "Invalid namespace ",
            fqid="HRESULT 0x8004100e,Microsoft.Management.Infrastructure.CimCmdlets."
            "GetCimInstanceCommand",
            category="InvalidArgument",
            exception="Microsoft.Management.Infrastructure.CimException",
        )
    try:
        wanted = uuid.UUID(str(vm_id))
    except ValueError:
        raise PSError(
            f"Cannot process argument transformation on parameter 'VMId'. Cannot convert "
            f'value "{vm_id}" to type "System.Guid".',
            fqid="ParameterArgumentTransformationError,VMId",
            category="InvalidData",
            exception="System.Management.Automation.ParameterBindingArgumentTransformationException",
        ) from None
    w, h = _size("WidthPixels", width), _size("HeightPixels", height)
    vm = next((v for v in hv.vms if uuid.UUID(str(v.id)) == wanted), None)
    if vm is None:
        raise _thrown(f"No virtual machine has the Id {wanted}.")
    data = None
    code = INVALID_STATE
    if vm.state not in ("Off", "Saved"):
        code = 0
        data = base64.b64encode(render(screen_of(vm), w, h)).decode("ascii")
    return [
        PSObj(
            ["System.Management.Automation.PSCustomObject", "System.Object"],
            {
                "VMId": wanted,
                "Width": w,
                "Height": h,
                "Format": "RGB565",
                "ReturnValue": code,
                "ImageData": data,
            },
        )
    ]
