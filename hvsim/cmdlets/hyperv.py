"""Hyper-V cmdlets: VMs, their processors, memory, firmware, adapters, drives, switches.

They act on `ctx.machine.hyperv`: the L0 host, or a guest that runs the
Hyper-V role. Rules are enforced in hvsim.model (R-xx cited there and here).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any

from hvsim import timing
from hvsim.cmdlets import _hvshapes as S
from hvsim.cmdlets._hvcommon import as_list, hyperv_of, resolve_vms
from hvsim.errors import PSError
from hvsim.model import hverrors as E
from hvsim.model import vmops
from hvsim.model.fs import normalize
from hvsim.model.hyperv import VERSION_NAMES
from hvsim.objects import Int32, Int64, PSEnum, PSObj
from hvsim.registry import Call, Context, cmdlet


@cmdlet("Get-VMHost", params=[])
def get_vmhost(ctx: Context, call: Call) -> Iterable[Any]:
    hv = hyperv_of(ctx, call.name)
    yield S.vmhost_obj(hv)


@cmdlet("Get-VM", params=["Name", "Id"])
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


# -- helpers ---------------------------------------------------------------------


def _targets(ctx: Context, call: Call, *, name_param: str = "VMName") -> tuple[Any, list[Any]]:
    hv = hyperv_of(ctx, call.name)
    # Get-* cmdlets write a missing VM as a non-terminating error and go on.
    reading = call.name.lower().startswith("get-")
    return hv, resolve_vms(ctx, call, call.name, name_param=name_param, terminating=not reading)


def _int(value: Any) -> int:
    return int(value)


def _flag(value: Any) -> bool:
    """OnOffState parameters arrive as 'On'/'Off'; booleans as bool."""
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("on", "true", "1")


def _mac(value: Any, cmdlet: str) -> str:
    text = str(value).replace("-", "").replace(":", "").upper()
    if len(text) != 12 or any(ch not in "0123456789ABCDEF" for ch in text):
        raise E.hv(
            f"The specified static MAC address '{value}' is not valid.",
            "InvalidParameter",
            cmdlet,
            "InvalidArgument",
            value,
        )
    return text


def _must_be_off(vm: Any, device: str, cmdlet: str) -> None:
    if vm.state != "Off":
        raise E.invalid_state(device, cmdlet, vm.name)


# -- New-VM / Set-VM / Remove-VM ---------------------------------------------------

MAX_VM_NAME = 100  # the longest VM name Hyper-V takes


@cmdlet(
    "New-VM",
    params=[
        "Name",
        "Generation",
        "MemoryStartupBytes",
        "Path",
        "VHDPath",
        "NewVHDPath",
        "NewVHDSizeBytes",
        "NoVHD",
        "SwitchName",
        "Version",
        "BootDevice",
        "Force",
    ],
)
def new_vm(ctx: Context, call: Call) -> Iterable[Any]:
    hv = hyperv_of(ctx, call.name)
    new_vhd = None
    if "NewVHDPath" in call:
        new_vhd = (str(call.get("NewVHDPath")), int(call.get("NewVHDSizeBytes") or 0))
        if new_vhd[1] <= 0:
            raise E.hv(
                "The NewVHDSizeBytes parameter is required with NewVHDPath.",
                "InvalidParameter",
                call.name,
                "InvalidArgument",
            )
    # WPD:Hyper-V/New-VM: "The default name is New virtual machine."
    name = str(call.get("Name") or "New virtual machine")
    if len(name) > MAX_VM_NAME:
        # Hyper-V takes at most 100 characters and says only this.
        raise E.hv(
            "Failed to create a new virtual machine.\nAn unexpected error occurred: The "
            "parameter is incorrect. (0x80070057).",
            "InvalidParameter",
            call.name,
            "InvalidArgument",
            name,
        )
    generation = int(call.get("Generation") or 1)
    boot = str(call.get("BootDevice") or "")
    if generation == 2 and boot in ("Floppy", "LegacyNetworkAdapter", "IDE"):
        # R-09; WPD:Hyper-V/New-VM: these boot devices "will cause an error" on Gen2.
        raise E.hv(
            f"Generation 2 virtual machines do not support the boot device '{boot}'.",
            "InvalidParameter",
            call.name,
            "InvalidArgument",
            boot,
        )
    if new_vhd is not None and "\\" not in new_vhd[0] and "/" not in new_vhd[0]:
        # "If only a file name is specified, the virtual hard disk is created in the
        # default path configured for the host." (WPD:Hyper-V/New-VM)
        new_vhd = (hv.settings.virtual_hard_disk_path.rstrip("\\") + "\\" + new_vhd[0], new_vhd[1])
    vm, _disk = vmops.new_vm(
        ctx.world,
        hv,
        name=name,
        generation=generation,
        memory_startup=int(call.params["MemoryStartupBytes"])
        if "MemoryStartupBytes" in call
        else None,
        path=call.get("Path"),
        vhd_path=call.get("VHDPath"),
        new_vhd=new_vhd,
        switch_name=call.get("SwitchName"),
        version=call.get("Version"),
        cmdlet=call.name,
    )
    ctx.work(timing.seconds("vm.create"), f"creating VM {name}")
    yield S.vm_obj(ctx.world, hv, vm)


@cmdlet(
    "Set-VM",
    params=[
        "Name",
        "VM",
        "ProcessorCount",
        "StaticMemory",
        "DynamicMemory",
        "MemoryStartupBytes",
        "MemoryMinimumBytes",
        "MemoryMaximumBytes",
        "AutomaticCheckpointsEnabled",
        "CheckpointType",
        "Notes",
        "NewVMName",
        "Passthru",
    ],
)
def set_vm(ctx: Context, call: Call) -> Iterable[Any]:
    hv, vms = _targets(ctx, call, name_param="Name")
    for vm in vms:
        # memory and processor changes need the VM Off (checked before any change).
        if "ProcessorCount" in call and _int(call.params["ProcessorCount"]) != vm.processor_count:
            _must_be_off(vm, "Processor", call.name)
        mem_change = (call.switch("StaticMemory") and vm.dynamic_memory) or (
            call.switch("DynamicMemory") and not vm.dynamic_memory
        )
        if (
            "MemoryStartupBytes" in call
            and int(call.params["MemoryStartupBytes"]) != vm.memory_startup
        ):
            mem_change = True
        if mem_change:
            _must_be_off(vm, "Memory", call.name)
    for vm in vms:
        if "ProcessorCount" in call:
            vm.processor_count = _int(call.params["ProcessorCount"])
        if call.switch("StaticMemory"):
            vm.dynamic_memory = False
        if call.switch("DynamicMemory"):
            vm.dynamic_memory = True
        if "MemoryStartupBytes" in call:
            vm.memory_startup = int(call.params["MemoryStartupBytes"])
        if "MemoryMinimumBytes" in call:
            vm.memory_minimum = int(call.params["MemoryMinimumBytes"])
        if "MemoryMaximumBytes" in call:
            vm.memory_maximum = int(call.params["MemoryMaximumBytes"])
        if "AutomaticCheckpointsEnabled" in call:
            vm.automatic_checkpoints = bool(call.params["AutomaticCheckpointsEnabled"])
        if "CheckpointType" in call:
            vm.checkpoint_type = str(call.params["CheckpointType"])
        if "Notes" in call:
            vm.notes = str(call.params["Notes"] or "")
        if "NewVMName" in call:
            vm.name = str(call.params["NewVMName"])
        if call.switch("Passthru"):
            yield S.vm_obj(ctx.world, hv, vm)


@cmdlet("Remove-VM", params=["Name", "VM", "Force", "Passthru"])
def remove_vm(ctx: Context, call: Call) -> Iterable[Any]:
    hv, vms = _targets(ctx, call, name_param="Name")
    for vm in vms:
        if not call.switch("Force"):
            # Remove-VM asks "Are you sure you want to remove virtual machine ...?"
            # (WPD:Hyper-V/Remove-VM example); -Force suppresses it. A remote
            # session has no host to answer the prompt.
            raise prompt_failed(
                f'Are you sure you want to remove virtual machine "{vm.name}"?', call.name
            )
        passthru = S.vm_obj(ctx.world, hv, vm) if call.switch("Passthru") else None
        vmops.remove(ctx, hv, vm)
        if passthru is not None:
            yield passthru


def prompt_failed(question: str, cmdlet: str) -> PSError:
    """What ShouldContinue does in a session whose host cannot prompt (PSRP clients)."""
    return PSError(
        "A command that prompts the user failed because the host program or the command type "
        "does not support user interaction. The host was attempting to request confirmation "
        f"with the following message: {question}",
        fqid=f"HostFunctionNotImplemented,{E.cls_of(cmdlet)}",
        category="NotImplemented",
        exception="System.Management.Automation.Host.HostException",
    )


# -- power ---------------------------------------------------------------------


@cmdlet("Start-VM", params=["Name", "VM", "Passthru"])
def start_vm(ctx: Context, call: Call) -> Iterable[Any]:
    hv, vms = _targets(ctx, call, name_param="Name")
    for vm in vms:
        vmops.start(ctx, hv, vm, call.name)
        if call.switch("Passthru"):
            yield S.vm_obj(ctx.world, hv, vm)


@cmdlet("Stop-VM", params=["Name", "VM", "TurnOff", "Force", "Save", "Passthru"])
def stop_vm(ctx: Context, call: Call) -> Iterable[Any]:
    hv, vms = _targets(ctx, call, name_param="Name")
    for vm in vms:
        vmops.stop(
            ctx,
            hv,
            vm,
            turn_off=call.switch("TurnOff"),
            save=call.switch("Save"),
            force=call.switch("Force"),
            cmdlet=call.name,
        )
        if call.switch("Passthru"):
            yield S.vm_obj(ctx.world, hv, vm)


@cmdlet("Save-VM", params=["Name", "VM", "Passthru"])
def save_vm(ctx: Context, call: Call) -> Iterable[Any]:
    hv, vms = _targets(ctx, call, name_param="Name")
    for vm in vms:
        vmops.stop(ctx, hv, vm, turn_off=False, save=True, force=False, cmdlet=call.name)
        if call.switch("Passthru"):
            yield S.vm_obj(ctx.world, hv, vm)


@cmdlet("Suspend-VM", params=["Name", "VM", "Passthru"])
def suspend_vm(ctx: Context, call: Call) -> Iterable[Any]:
    hv, vms = _targets(ctx, call, name_param="Name")
    for vm in vms:
        vmops.suspend(ctx, hv, vm, call.name)
        if call.switch("Passthru"):
            yield S.vm_obj(ctx.world, hv, vm)


@cmdlet("Resume-VM", params=["Name", "VM", "Passthru"])
def resume_vm(ctx: Context, call: Call) -> Iterable[Any]:
    hv, vms = _targets(ctx, call, name_param="Name")
    for vm in vms:
        vmops.resume(ctx, hv, vm, call.name)
        if call.switch("Passthru"):
            yield S.vm_obj(ctx.world, hv, vm)


@cmdlet("Restart-VM", params=["Name", "VM", "Force", "Passthru"])
def restart_vm(ctx: Context, call: Call) -> Iterable[Any]:
    hv, vms = _targets(ctx, call, name_param="Name")
    for vm in vms:
        if not call.switch("Force"):
            raise prompt_failed(
                f'Are you sure you want to restart virtual machine "{vm.name}"?', call.name
            )
        vmops.restart(ctx, hv, vm, call.name)
        if call.switch("Passthru"):
            yield S.vm_obj(ctx.world, hv, vm)


# -- processor, memory, firmware ------------------------------------------------------


def _processor_obj(hv: Any, vm: Any) -> PSObj:
    return PSObj(
        [S.HV + "VMProcessor", S.HV + "VMComponentObject", *S.BASE],
        {
            "Count": Int64(vm.processor_count),
            "ExposeVirtualizationExtensions": vm.expose_virtualization_extensions,
            "CompatibilityForMigrationEnabled": False,
            "Maximum": Int64(100),
            "Reserve": Int64(0),
            "RelativeWeight": Int32(100),
            "HwThreadCountPerCore": Int64(0),
            "VMName": vm.name,
            "VMId": vm.id,
            "Name": "Processor",
            "ComputerName": S.computer_name(hv),
        },
        to_string=f"VMProcessor (VMName = '{vm.name}')",
    )


@cmdlet("Get-VMProcessor", params=["VMName", "VM"])
def get_vmprocessor(ctx: Context, call: Call) -> Iterable[Any]:
    hv, vms = _targets(ctx, call)
    for vm in vms:
        yield _processor_obj(hv, vm)


@cmdlet(
    "Set-VMProcessor",
    params=["VMName", "VM", "Count", "ExposeVirtualizationExtensions", "Passthru"],
)
def set_vmprocessor(ctx: Context, call: Call) -> Iterable[Any]:
    hv, vms = _targets(ctx, call)
    for vm in vms:
        # ExposeVirtualizationExtensions only while Off; R-11: the count too.
        if "ExposeVirtualizationExtensions" in call:
            _must_be_off(vm, "Processor", call.name)
        if "Count" in call and _int(call.params["Count"]) != vm.processor_count:
            _must_be_off(vm, "Processor", call.name)
        if "Count" in call:
            count = _int(call.params["Count"])
            lps = hv.machine.hardware.logical_processors
            if not 1 <= count <= min(240, lps):
                raise E.hv(
                    f"Failed to modify device 'Processor'.\nThe virtual machine '{vm.name}' cannot "
                    f"have {count} virtual processors: the host has {lps} logical processors.",
                    "InvalidParameter",
                    call.name,
                    "InvalidArgument",
                    vm.name,
                )
    for vm in vms:
        if "ExposeVirtualizationExtensions" in call:
            vm.expose_virtualization_extensions = bool(
                call.params["ExposeVirtualizationExtensions"]
            )
        if "Count" in call:
            vm.processor_count = _int(call.params["Count"])
        if call.switch("Passthru"):
            yield _processor_obj(hv, vm)


def _memory_obj(hv: Any, vm: Any) -> PSObj:
    return PSObj(
        [S.HV + "VMMemory", S.HV + "VMComponentObject", *S.BASE],
        {
            "Startup": Int64(vm.memory_startup),
            "DynamicMemoryEnabled": vm.dynamic_memory,
            "Minimum": Int64(vm.memory_minimum),
            "Maximum": Int64(vm.memory_maximum),
            "Buffer": Int32(20),
            "Priority": Int32(50),
            "VMName": vm.name,
            "VMId": vm.id,
            "Name": "Memory",
            "ComputerName": S.computer_name(hv),
        },
        to_string=f"VMMemory (VMName = '{vm.name}')",
    )


@cmdlet("Get-VMMemory", params=["VMName", "VM"])
def get_vmmemory(ctx: Context, call: Call) -> Iterable[Any]:
    hv, vms = _targets(ctx, call)
    for vm in vms:
        yield _memory_obj(hv, vm)


@cmdlet(
    "Set-VMMemory",
    params=[
        "VMName",
        "VM",
        "DynamicMemoryEnabled",
        "StartupBytes",
        "MinimumBytes",
        "MaximumBytes",
        "Passthru",
    ],
)
def set_vmmemory(ctx: Context, call: Call) -> Iterable[Any]:
    hv, vms = _targets(ctx, call)
    for vm in vms:
        # on a running VM neither startup memory of a static VM nor the dynamic
        # flag can change. R-04: with a hypervisor running in the guest, none at all.
        if vm.state != "Off":
            changes_flag = (
                "DynamicMemoryEnabled" in call
                and bool(call.params["DynamicMemoryEnabled"]) != vm.dynamic_memory
            )
            changes_startup = (
                "StartupBytes" in call and int(call.params["StartupBytes"]) != vm.memory_startup
            )
            nested = getattr(vm.guest, "hyperv", None) is not None
            if changes_flag or (changes_startup and (not vm.dynamic_memory or nested)):
                raise E.invalid_state("Memory", call.name, vm.name)
            if nested and any(k in call for k in ("MinimumBytes", "MaximumBytes")):
                raise E.invalid_state("Memory", call.name, vm.name)
    for vm in vms:
        if "DynamicMemoryEnabled" in call:
            vm.dynamic_memory = bool(call.params["DynamicMemoryEnabled"])
        if "StartupBytes" in call:
            vm.memory_startup = int(call.params["StartupBytes"])
        if "MinimumBytes" in call:
            vm.memory_minimum = int(call.params["MinimumBytes"])
        if "MaximumBytes" in call:
            vm.memory_maximum = int(call.params["MaximumBytes"])
        if call.switch("Passthru"):
            yield _memory_obj(hv, vm)


def _firmware_obj(hv: Any, vm: Any) -> PSObj:
    return PSObj(
        [S.HV + "VMFirmware", S.HV + "VMComponentObject", *S.BASE],
        {
            "SecureBoot": S.on_off(vm.secure_boot),
            "SecureBootTemplate": vm.secure_boot_template,
            "PreferredNetworkBootProtocol": PSEnum(S.HV + "IPProtocolPreference", "IPv4", 0),
            "BootOrder": [],
            "PauseAfterBootFailure": S.on_off(False),
            "VMName": vm.name,
            "VMId": vm.id,
            "ComputerName": S.computer_name(hv),
        },
        to_string=f"VMFirmware (VMName = '{vm.name}')",
    )


def _gen2(vm: Any, cmdlet: str) -> None:
    if vm.generation != 2:
        raise E.hv(
            f"The operation is not supported for generation 1 virtual machine '{vm.name}'. "
            "Firmware settings exist only on generation 2 virtual machines.",
            "InvalidOperation",
            cmdlet,
            "InvalidOperation",
            vm.name,
        )


@cmdlet("Get-VMFirmware", params=["VMName", "VM"])
def get_vmfirmware(ctx: Context, call: Call) -> Iterable[Any]:
    hv, vms = _targets(ctx, call)
    for vm in vms:
        _gen2(vm, call.name)
        yield _firmware_obj(hv, vm)


_TEMPLATES = ("MicrosoftWindows", "MicrosoftUEFICertificateAuthority", "OpenSourceShieldedVM")


@cmdlet(
    "Set-VMFirmware", params=["VMName", "VM", "EnableSecureBoot", "SecureBootTemplate", "Passthru"]
)
def set_vmfirmware(ctx: Context, call: Call) -> Iterable[Any]:
    hv, vms = _targets(ctx, call)
    for vm in vms:
        _gen2(vm, call.name)
        # firmware changes need the VM Off (modelled on the R-01 text family).
        changes = (
            "EnableSecureBoot" in call and _flag(call.params["EnableSecureBoot"]) != vm.secure_boot
        ) or (
            "SecureBootTemplate" in call
            and str(call.params["SecureBootTemplate"]) != vm.secure_boot_template
        )
        if changes:
            _must_be_off(vm, "Firmware", call.name)
        if (
            "SecureBootTemplate" in call
            and str(call.params["SecureBootTemplate"]) not in _TEMPLATES
        ):
            raise E.hv(
                f"The secure boot template '{call.params['SecureBootTemplate']}' was not found.",
                "InvalidParameter",
                call.name,
                "InvalidArgument",
                call.params["SecureBootTemplate"],
            )
    for vm in vms:
        if "EnableSecureBoot" in call:
            vm.secure_boot = _flag(call.params["EnableSecureBoot"])
        if "SecureBootTemplate" in call:
            vm.secure_boot_template = str(call.params["SecureBootTemplate"])
        if call.switch("Passthru"):
            yield _firmware_obj(hv, vm)


# -- integration services ------------------------------------------------------------

_IC_IDS = {
    "Guest Service Interface": "6C09BB55-D683-4DA0-8931-C9BF705F6480",
    "Heartbeat": "84EAAE65-2F2E-45F5-9BB5-0E857DC8EB47",
    "Key-Value Pair Exchange": "2A34B1C2-FD73-4043-8A5B-DD2159BC743F",
    "Shutdown": "9F8233AC-BE49-4C79-8EE3-E7E1985B2077",
    "Time Synchronization": "2497F4DE-E9FA-4204-80E4-4B75C46419C0",
    "VSS": "5CED1297-4598-4915-A5FC-AD21BB4D02A4",
}


@cmdlet("Get-VMIntegrationService", params=["VMName", "VM", "Name"])
def get_vmintegrationservice(ctx: Context, call: Call) -> Iterable[Any]:
    hv, vms = _targets(ctx, call)
    wanted = [str(n).lower() for n in as_list(call.get("Name"))]
    for vm in vms:
        hb = S.heartbeat_name(ctx.world, vm)
        ok = hb in ("OkApplicationsHealthy", "OkApplicationsUnknown", "OkApplicationsCritical")
        for name, enabled in vm.integration_services.items():
            if wanted and not any(fnmatch.fnmatchcase(name.lower(), w) for w in wanted):
                continue
            # OK once the guest's integration components answer; empty when off.
            if not enabled:
                primary = None
            elif name == "Heartbeat":
                primary = "OK" if ok else ("No Contact" if vm.state == "Running" else None)
            elif name == "Guest Service Interface":
                primary = None
            else:
                primary = "OK" if ok else None
            yield PSObj(
                [S.HV + "VMIntegrationComponent", S.HV + "VMDevice", *S.BASE],
                {
                    "Name": name,
                    "Id": f"Microsoft:{str(vm.id).upper()}\\{_IC_IDS[name]}",
                    "Enabled": enabled,
                    "PrimaryStatusDescription": primary,
                    "SecondaryStatusDescription": None,
                    "PrimaryOperationalStatus": PSEnum(
                        S.HV + "VMIntegrationComponentOperationalStatus", "Ok", 2
                    )
                    if primary == "OK"
                    else None,
                    "VMName": vm.name,
                    "VMId": vm.id,
                    "ComputerName": S.computer_name(hv),
                },
                to_string=f"VMIntegrationComponent (Name = '{name}') [VMName = '{vm.name}']",
            )


# -- host ----------------------------------------------------------------------


@cmdlet("Get-VMHostSupportedVersion", params=["Default"])
def get_vmhostsupportedversion(ctx: Context, call: Call) -> Iterable[Any]:
    hv = hyperv_of(ctx, call.name)
    versions = [hv.default_version] if call.switch("Default") else hv.supported_versions
    for v in versions:
        major, minor = (int(x) for x in v.split("."))
        yield PSObj(
            [S.HV + "VMHostSupportedVersion", "System.Object"],
            {
                "Name": VERSION_NAMES.get(v, f"Configuration version {v}"),
                # Version is a System.Version: compare numerically.
                "Version": PSObj(
                    ["System.Version", "System.Object"],
                    {
                        "Major": Int32(major),
                        "Minor": Int32(minor),
                        "Build": Int32(-1),
                        "Revision": Int32(-1),
                    },
                    to_string=v,
                ),
                "IsDefault": v == hv.default_version,
            },
            to_string=v,
        )


@cmdlet(
    "Set-VMHost",
    params=[
        "VirtualMachinePath",
        "VirtualHardDiskPath",
        "MaximumVirtualMachineMigrations",
        "MaximumStorageMigrations",
        "VirtualMachineMigrationPerformanceOption",
        "VirtualMachineMigrationAuthenticationType",
        "NumaSpanningEnabled",
        "EnableEnhancedSessionMode",
        "UseAnyNetworkForMigration",
        "Passthru",
    ],
)
def set_vmhost(ctx: Context, call: Call) -> Iterable[Any]:
    hv = hyperv_of(ctx, call.name)
    s = hv.settings
    fs = ctx.machine.fs
    for key in ("VirtualMachinePath", "VirtualHardDiskPath"):
        if key in call:
            path = normalize(str(call[key]))
            # the folder must exist (a CSV path on every node).
            if not fs.is_dir(path):
                raise E.hv(
                    f"The path '{path}' does not exist or is not a folder.",
                    "InvalidParameter",
                    call.name,
                    "InvalidArgument",
                    path,
                )
    if "VirtualMachinePath" in call:
        s.virtual_machine_path = normalize(str(call.params["VirtualMachinePath"]))
    if "VirtualHardDiskPath" in call:
        s.virtual_hard_disk_path = normalize(str(call.params["VirtualHardDiskPath"]))
    if "MaximumVirtualMachineMigrations" in call:
        s.max_migrations = int(call.params["MaximumVirtualMachineMigrations"])
    if "MaximumStorageMigrations" in call:
        s.max_storage_migrations = int(call.params["MaximumStorageMigrations"])
    if "VirtualMachineMigrationPerformanceOption" in call:
        s.migration_performance = str(call.params["VirtualMachineMigrationPerformanceOption"])
    if "VirtualMachineMigrationAuthenticationType" in call:
        s.migration_auth = str(call.params["VirtualMachineMigrationAuthenticationType"])
    if "NumaSpanningEnabled" in call:
        s.numa_spanning = bool(call.params["NumaSpanningEnabled"])
    if "EnableEnhancedSessionMode" in call:
        s.enhanced_session_mode = bool(call.params["EnableEnhancedSessionMode"])
    if call.switch("Passthru"):
        yield S.vmhost_obj(hv)


# -- hard disk drives ------------------------------------------------------------


@cmdlet(
    "Get-VMHardDiskDrive",
    params=["VMName", "VM", "ControllerType", "ControllerNumber", "ControllerLocation"],
)
def get_vmharddiskdrive(ctx: Context, call: Call) -> Iterable[Any]:
    hv, vms = _targets(ctx, call)
    for vm in vms:
        for d in sorted(
            vm.drives, key=lambda d: (d.controller_type, d.controller_number, d.controller_location)
        ):
            if (
                "ControllerType" in call
                and d.controller_type.lower() != str(call.params["ControllerType"]).lower()
            ):
                continue
            if "ControllerNumber" in call and d.controller_number != int(
                call.params["ControllerNumber"]
            ):
                continue
            if "ControllerLocation" in call and d.controller_location != int(
                call.params["ControllerLocation"]
            ):
                continue
            yield S.drive_obj(hv, vm, d)


@cmdlet(
    "Add-VMHardDiskDrive",
    params=[
        "VMName",
        "VM",
        "ControllerType",
        "ControllerNumber",
        "ControllerLocation",
        "Path",
        "Passthru",
    ],
)
def add_vmharddiskdrive(ctx: Context, call: Call) -> Iterable[Any]:
    hv, vms = _targets(ctx, call)
    ctype = str(call.get("ControllerType") or "")
    for vm in vms:
        if "Path" not in call:
            raise E.not_modelled_param(call.name, "without -Path (pass-through disks)")
        kind = ctype or ("SCSI" if vm.generation == 2 else "IDE")
        drive = vmops.attach_disk(
            hv,
            vm,
            str(call.params["Path"]),
            kind,
            int(call.params["ControllerNumber"]) if "ControllerNumber" in call else None,
            int(call.params["ControllerLocation"]) if "ControllerLocation" in call else None,
            call.name,
        )
        if call.switch("Passthru"):
            yield S.drive_obj(hv, vm, drive)


@cmdlet(
    "Remove-VMHardDiskDrive",
    params=["VMName", "ControllerType", "ControllerNumber", "ControllerLocation", "Passthru"],
)
def remove_vmharddiskdrive(ctx: Context, call: Call) -> Iterable[Any]:
    hv, vms = _targets(ctx, call)
    for vm in vms:
        for d in list(vm.drives):
            if d.controller_type.lower() != str(call.params["ControllerType"]).lower():
                continue
            if d.controller_number != int(call.params["ControllerNumber"]):
                continue
            if d.controller_location != int(call.params["ControllerLocation"]):
                continue
            if vm.state != "Off" and d.controller_type == "IDE":
                raise E.invalid_state("Virtual Hard Disk", call.name, vm.name)
            vm.drives.remove(d)
            disk = hv.vhd_at(d.path)
            if disk is not None and disk.in_use_by == vm.id:
                disk.in_use_by = None
            if call.switch("Passthru"):
                yield S.drive_obj(hv, vm, d)
