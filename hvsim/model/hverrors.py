"""ErrorRecords of the Hyper-V and VHD modules, as Windows writes them (en-US).

Each constructor names the rule (R-xx) or the public report its text comes
from; texts marked (modelled) follow the family of a confirmed text where no
exact wording was found (docs/model-notes.md, "Host").
"""

from __future__ import annotations

from typing import Any

from hvsim.errors import PSError

VEX = "Microsoft.HyperV.PowerShell.VirtualizationException"
HV_NS = "Microsoft.HyperV.PowerShell.Commands."
VHD_NS = "Microsoft.Vhd.PowerShell.Cmdlets."

# The .NET class behind each cmdlet, for FQIDs (Get-VM -> GetVM; Get-VHD -> GetVHD,
# New-VHD -> NewVhd as seen in real FQIDs, MSLab#386 and PS-AutoLab-Env#159).
_VHD_CLASSES = {
    "get-vhd": "GetVHD",
    "new-vhd": "NewVhd",
    "mount-vhd": "MountVhd",
    "dismount-vhd": "DismountVhd",
    "set-vhd": "SetVhd",
    "resize-vhd": "ResizeVhd",
}


def cls_of(cmdlet: str) -> str:
    """'Set-VMProcessor' -> 'Microsoft.HyperV.PowerShell.Commands.SetVMProcessor'."""
    key = cmdlet.lower()
    if key in _VHD_CLASSES:
        return VHD_NS + _VHD_CLASSES[key]
    return HV_NS + cmdlet.replace("-", "")


def hv(message: str, fqid: str, cmdlet: str, category: str, target: Any = None) -> PSError:
    return PSError(
        message, fqid=f"{fqid},{cls_of(cmdlet)}", category=category, exception=VEX, target=target
    )


def vm_not_found(name: str, cmdlet: str) -> PSError:
    """R-21: Get-VM writes InvalidParameter/InvalidArgument; other cmdlets ObjectNotFound."""
    msg = f'Hyper-V was unable to find a virtual machine with name "{name}".'
    if cmdlet.lower() == "get-vm":
        return hv(msg, "InvalidParameter", cmdlet, "InvalidArgument", name)
    return hv(msg, "ObjectNotFound", cmdlet, "ObjectNotFound", name)


def switch_not_found(name: str, cmdlet: str) -> PSError:
    """R-21 family for switches (modelled on the VM text)."""
    msg = f'Hyper-V was unable to find a virtual switch with name "{name}".'
    if cmdlet.lower() == "get-vmswitch":
        return hv(msg, "InvalidParameter", cmdlet, "InvalidArgument", name)
    return hv(msg, "ObjectNotFound", cmdlet, "ObjectNotFound", name)


def adapter_not_found(vm: str, name: str, cmdlet: str) -> PSError:
    """No network adapter of that name on the VM (modelled, R-21 family)."""
    return hv(
        f'Hyper-V was unable to find a network adapter with name "{name}" on virtual machine "{vm}".',
        "ObjectNotFound",
        cmdlet,
        "ObjectNotFound",
        name,
    )


def vhd_not_found(path: str, cmdlet: str) -> PSError:
    """Get-VHD/Mount-VHD of a missing file (openzfs#381, PS-AutoLab-Env#159)."""
    return hv(
        f"'{path}' is not an existing virtual hard disk file.",
        "InvalidParameter",
        cmdlet,
        "InvalidArgument",
        path,
    )


def vhd_create_failed(path: str, reason: str, cmdlet: str = "New-VHD") -> PSError:
    """New-VHD failure: the text repeats the headline twice (MSLab#386: 0x80070050)."""
    return hv(
        "Failed to create the virtual hard disk.\n"
        f"The system failed to create '{path}'.\n"
        "Failed to create the virtual hard disk.\n"
        f"The system failed to create '{path}': {reason}",
        "OperationFailed",
        cmdlet,
        "NotSpecified",
        path,
    )


FILE_EXISTS = "The file exists. (0x80070050)."
DISK_FULL = "There is not enough space on the disk. (0x80070070)."
IN_USE = (
    "The process cannot access the file because it is being used by another process. (0x80070020)."
)


def invalid_state(device: str, cmdlet: str, vm: str) -> PSError:
    """R-01/R-05/R-11: changing a device of a VM that is not Off."""
    return hv(
        f"Failed to modify device '{device}'.",
        "InvalidState",
        cmdlet,
        "InvalidOperation",
        vm,
    )


def vm_state_error(vm: str, cmdlet: str, action: str = "perform the operation") -> PSError:
    """The generic Hyper-V state message (R-01 mentions it; (modelled) per use)."""
    return hv(
        f"The operation cannot be performed while the virtual machine is in its current state. ('{vm}' could not {action}.)",
        "InvalidState",
        cmdlet,
        "InvalidOperation",
        vm,
    )


def out_of_memory(vm: str, vm_id: str, cmdlet: str = "Start-VM") -> PSError:
    """R-10: Start-VM admission against host free memory (minikube#17171)."""
    return hv(
        f"'{vm}' failed to start.\n"
        f"Not enough memory in the system to start the virtual machine {vm}.\n"
        "Could not initialize memory: Not enough memory resources are available to complete "
        "this operation. (0x8007000E).\n"
        f"'{vm}' failed to start. (Virtual machine ID {vm_id})",
        "OutOfMemory",
        cmdlet,
        "ResourceUnavailable",
        vm,
    )


def start_in_use(vm: str, vm_id: str, controller_id: str, path: str) -> PSError:
    """R-17: Start-VM while a disk of the VM is mounted on the host (0x80070020)."""
    return hv(
        f"'{vm}' failed to start.\n"
        f"Synthetic SCSI Controller (Instance ID {controller_id}): Failed to Power on with Error "
        "'The process cannot access the file because it is being used by another process.' "
        f"(0x80070020). (Virtual machine ID {vm_id})\n"
        f"'{vm}': Failed to open attachment '{path}'. Error: 'The process cannot access the "
        "file because it is being used by another process.' (0x80070020).",
        "OperationFailed",
        "Start-VM",
        "NotSpecified",
        vm,
    )


def start_corrupt(vm: str, vm_id: str, path: str) -> PSError:
    """R-16 (modelled): a differencing disk whose parent changed cannot be opened."""
    return hv(
        f"'{vm}' failed to start. (Virtual machine ID {vm_id})\n"
        f"'{vm}': Failed to open attachment '{path}'. Error: 'The chain of virtual hard disks "
        "is corrupted. There is a mismatch in the identifiers of the parent virtual hard disk "
        "and differencing disk.' (0xC03A000E).",
        "OperationFailed",
        "Start-VM",
        "NotSpecified",
        vm,
    )


def start_missing_disk(vm: str, vm_id: str, path: str) -> PSError:
    return hv(
        f"'{vm}' failed to start. (Virtual machine ID {vm_id})\n"
        f"'{vm}': Failed to open attachment '{path}'. Error: 'The system cannot find the file "
        "specified.' (0x80070002).",
        "OperationFailed",
        "Start-VM",
        "NotSpecified",
        vm,
    )


def chain_attached(path: str, cmdlet: str = "Set-VHD") -> PSError:
    """R-15: Set-VHD -ResetDiskIdentifier on an attached chain."""
    return hv(
        "This operation cannot be performed when the virtual disk chain is attached.",
        "InvalidOperation",
        cmdlet,
        "InvalidOperation",
        path,
    )


def disk_in_use(path: str, cmdlet: str) -> PSError:
    """R-17: Mount-VHD / attaching a disk that another owner holds (0x80070020)."""
    return hv(
        f"The process cannot access the file because it is being used by another process. ('{path}')",
        "ObjectInUse",
        cmdlet,
        "ResourceBusy",
        path,
    )


def not_modelled_param(cmdlet: str, what: str) -> PSError:
    return PSError(
        f"hvsim does not model {cmdlet} {what}. The simulated host refuses it rather than pretend.",
        fqid="NotModelled,hvsim",
        category="NotImplemented",
        exception="System.NotImplementedException",
    )
