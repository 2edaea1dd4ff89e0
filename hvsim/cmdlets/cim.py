"""Get-CimInstance for the classes a lab reads: Win32_OperatingSystem,
Win32_ComputerSystem and Win32_Processor, from the fields of ctx.machine (the
host or a guest). Other classes and WQL queries are refused as not modelled.

A machine that runs the Hyper-V hypervisor (the L0 host, or a guest with the
role) is itself a partition on top of it: Win32_Processor then reports
VirtualizationFirmwareEnabled = False and Win32_ComputerSystem reports
HypervisorPresent = True (microsoft/Windows-Sandbox#15 and PR #21 separate the
two checks for this reason; docs/model-notes.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from hvsim.errors import PSError, not_modelled
from hvsim.model.machine import at
from hvsim.objects import PSObj, UInt16, UInt32, UInt64
from hvsim.registry import Call, Context, cmdlet

CIM = "Microsoft.Management.Infrastructure.CimInstance"


def _types(cls: str) -> list[str]:
    return [f"{CIM}#root/cimv2/{cls}", f"{CIM}#{cls}", CIM, "System.Object"]


def _local(seconds: float) -> dt.datetime:
    # CIM datetimes arrive as local DateTime; the model's hosts run in UTC.
    return at(seconds).replace(tzinfo=None)


def _hypervisor_running(m: Any) -> bool:
    return m.hyperv is not None


def _in_vm(m: Any) -> bool:
    return bool(m.is_guest())


def operating_system(m: Any) -> PSObj:
    mem_kb = m.memory_total // 1024
    free_kb = m.memory_free() // 1024
    return PSObj(
        _types("Win32_OperatingSystem"),
        {
            "Caption": m.os.caption,
            "Version": m.os.version,
            "BuildNumber": str(m.os.build),
            "OperatingSystemSKU": UInt32(m.os.sku),
            "ProductType": UInt32(3 if not getattr(m, "is_dc", False) else 2),
            "OSArchitecture": "64-bit",
            "CSName": _computer_name(m),
            "MUILanguages": [m.os.language],
            "Locale": "0409" if m.os.language == "en-US" else "0000",
            "FreePhysicalMemory": UInt64(free_kb),
            "TotalVisibleMemorySize": UInt64(mem_kb),
            "LastBootUpTime": _local(m.os.last_boot_time),
            "InstallDate": _local(m.os.install_date),
            "LocalDateTime": _local(_now(m)),
            "SystemDrive": "C:",
            "WindowsDirectory": "C:\\Windows",
            "SystemDirectory": "C:\\Windows\\system32",
            "Status": "OK",
        },
        to_string=f"Win32_OperatingSystem: {m.os.caption}",
    )


def _now(m: Any) -> float:
    world = getattr(m, "world", None)
    clock = getattr(world, "clock", None) or getattr(m.fs, "clock", None)
    return clock.now() if clock is not None else 0.0


def _computer_name(m: Any) -> str:
    return str(getattr(m, "computer_name", m.name))


def computer_system(m: Any) -> PSObj:
    joined = m.domain is not None
    is_dc = bool(getattr(m, "is_dc", False))
    # DomainRole: 2 standalone server, 3 member server, 4 backup DC, 5 primary DC.
    role = 5 if is_dc else (3 if joined else 2)
    name = _computer_name(m)
    return PSObj(
        _types("Win32_ComputerSystem"),
        {
            "Name": name,
            "DNSHostName": name.lower(),
            "Domain": m.domain if joined else m.workgroup,
            "PartOfDomain": joined,
            "Workgroup": None if joined else m.workgroup,
            "DomainRole": UInt16(role),
            "Manufacturer": "Microsoft Corporation"
            if _in_vm(m)
            else m.hardware.system_manufacturer,
            "Model": "Virtual Machine" if _in_vm(m) else m.hardware.system_model,
            "NumberOfProcessors": UInt32(m.hardware.sockets),
            "NumberOfLogicalProcessors": UInt32(m.hardware.logical_processors),
            "TotalPhysicalMemory": UInt64(m.memory_total),
            "HypervisorPresent": _hypervisor_running(m) or _in_vm(m),
            "SystemType": "x64-based PC",
            "Status": "OK",
        },
        to_string=f'Win32_ComputerSystem (Name = "{name}")',
    )


def processors(m: Any) -> list[PSObj]:
    hw = m.hardware
    sockets = max(1, hw.sockets)
    per = max(1, hw.logical_processors // sockets)
    if _in_vm(m):
        # A guest sees VT-x only when the VM exposed it at its last start.
        vt = bool(getattr(m, "nested_at_boot", False))
    else:
        vt = hw.virtualization_firmware_enabled
    # With a hypervisor running, the OS is a partition and reports the firmware flag off.
    fw = vt and not _hypervisor_running(m)
    out = []
    for i in range(sockets):
        out.append(
            PSObj(
                _types("Win32_Processor"),
                {
                    "DeviceID": f"CPU{i}",
                    "Manufacturer": hw.manufacturer,
                    "Name": hw.cpu_name,
                    "NumberOfCores": UInt32(max(1, per // 2) if not _in_vm(m) else per),
                    "NumberOfLogicalProcessors": UInt32(per),
                    "VirtualizationFirmwareEnabled": fw,
                    "VMMonitorModeExtensions": vt,
                    "SecondLevelAddressTranslationExtensions": vt and hw.slat,
                    "Architecture": UInt16(9),
                    "AddressWidth": UInt16(64),
                    "Status": "OK",
                },
                to_string=f'Win32_Processor (DeviceID = "CPU{i}")',
            )
        )
    return out


def instances(m: Any, class_name: str) -> list[PSObj] | None:
    """Machine.cim(): the instances of a known class, or None."""
    build = _CLASSES.get(class_name.lower())
    return build(m) if build is not None else None


_CLASSES = {
    "win32_operatingsystem": lambda m: [operating_system(m)],
    "win32_computersystem": lambda m: [computer_system(m)],
    "win32_processor": processors,
}


@cmdlet("Get-CimInstance", params=["ClassName", "Namespace", "Property", "OperationTimeoutSec"])
def get_ciminstance(ctx: Context, call: Call) -> Iterable[Any]:
    ns = str(call.get("Namespace") or "root/cimv2").replace("\\", "/").lower()
    cls = str(call.get("ClassName") or "")
    if ns != "root/cimv2" or cls.lower() not in _CLASSES:
        if ns == "root/cimv2" and cls.lower().startswith("win32_"):
            raise not_modelled(f"Get-CimInstance -ClassName {cls}")
        if ns != "root/cimv2":
            raise not_modelled(f"Get-CimInstance -Namespace {call.get('Namespace')}")
        raise PSError(
            "Invalid class ",
            fqid="HRESULT 0x80041010,Microsoft.Management.Infrastructure.CimCmdlets.GetCimInstanceCommand",
            category="MetadataError",
            exception="Microsoft.Management.Infrastructure.CimException",
            target=cls,
        )
    machine = ctx.machine
    advance = getattr(machine, "phase", None)
    if callable(advance):
        advance()  # a guest catches up with the clock before it answers
    objs = machine.cim(cls) or []
    wanted = [str(p) for p in (call.get("Property") or [])]
    for obj in objs:
        if wanted:
            keep = {
                k: v for k, v in obj.props.items() if any(k.lower() == w.lower() for w in wanted)
            }
            obj = PSObj(obj.type_names, keep, obj.to_string)
        yield obj
