"""Output objects of the Hyper-V and VHD cmdlets, with their real type names and
property types (hyperv-facts "Object shapes"; Microsoft's cmdlet OUTPUTS sections).

Enum numeric values follow the Hyper-V module's enums where known; clients
compare by name (the facts file warns that numbers differ between versions).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from hvsim.model.hyperv import POWERED, VM, VM_STATES, HyperV, VMNetworkAdapter, VMSwitch
from hvsim.model.vhd import VHD
from hvsim.objects import Int32, Int64, PSEnum, PSObj, UInt32, UInt64

HV = "Microsoft.HyperV.PowerShell."
BASE = [HV + "VirtualizationObject", "System.Object"]

HEARTBEAT = {
    "Unknown": 0,
    "Disabled": 1,
    "NoContact": 2,
    "Error": 3,
    "LostCommunication": 4,
    "OkApplicationsUnknown": 5,
    "OkApplicationsHealthy": 6,
    "OkApplicationsCritical": 7,
    "Paused": 8,
}
CHECKPOINT_TYPE = {"Disabled": 2, "Production": 3, "ProductionOnly": 4, "Standard": 5}
ON_OFF = {"On": 0, "Off": 1}
VHD_TYPE = {"Unknown": 0, "Fixed": 2, "Dynamic": 3, "Differencing": 4}
VHD_FORMAT = {"Unknown": 0, "VHD": 2, "VHDX": 3, "VHDSet": 4}
SWITCH_TYPE = {"Private": 0, "Internal": 1, "External": 2}
VLAN_MODE = {"Untagged": 0, "Access": 1, "Trunk": 2, "Private": 3}
CONTROLLER_TYPE = {"IDE": 0, "SCSI": 1}


def enum(type_name: str, table: dict[str, int], name: str) -> PSEnum:
    return PSEnum(type_name, name, table[name])


def on_off(flag: bool) -> PSEnum:
    return enum(HV + "OnOffState", ON_OFF, "On" if flag else "Off")


def vm_state(name: str) -> PSEnum:
    return enum(HV + "VMState", VM_STATES, name)


def heartbeat(world: Any, vm: VM) -> PSEnum | None:
    """Get-VM .Heartbeat: None when the VM is off; else the guest's status (R-36)."""
    name = heartbeat_name(world, vm)
    return None if name is None else enum(HV + "VMHeartbeatStatus", HEARTBEAT, name)


def heartbeat_name(world: Any, vm: VM) -> str | None:
    if vm.state not in POWERED:
        return None
    if vm.state in ("Paused", "PausedCritical"):
        return "Paused"
    if not vm.integration_services.get("Heartbeat", True):
        return "Disabled"
    if vm.guest is None:
        return "NoContact"
    return str(vm.guest.heartbeat(world.clock.now()))


def computer_name(hv: HyperV) -> str:
    return hv.machine.name


def vm_obj(world: Any, hv: HyperV, vm: VM) -> PSObj:
    now = world.clock.now()
    return PSObj(
        [HV + "VirtualMachine", HV + "VirtualMachineBase", *BASE],
        {
            "VMName": vm.name,
            "VMId": vm.id,
            "Id": vm.id,
            "Name": vm.name,
            "State": vm_state(vm.state),
            "Status": "Operating normally",
            "Generation": Int32(vm.generation),
            "Version": vm.version,
            "ProcessorCount": Int64(vm.processor_count),
            "MemoryStartup": Int64(vm.memory_startup),
            "MemoryAssigned": Int64(vm.memory_held()),
            "MemoryDemand": Int64(vm.memory_held() // 2 if vm.state == "Running" else 0),
            "MemoryMinimum": Int64(vm.memory_minimum),
            "MemoryMaximum": Int64(vm.memory_maximum),
            "DynamicMemoryEnabled": vm.dynamic_memory,
            "Uptime": dt.timedelta(seconds=int(vm.uptime(now))),
            "Heartbeat": heartbeat(world, vm),
            "CPUUsage": Int32(0),
            "Path": vm.path,
            "ConfigurationLocation": vm.path,
            "SnapshotFileLocation": vm.path,
            "CheckpointFileLocation": vm.path,
            "SmartPagingFilePath": vm.path,
            "Notes": vm.notes,
            "AutomaticCheckpointsEnabled": vm.automatic_checkpoints,
            "CheckpointType": enum(HV + "CheckpointType", CHECKPOINT_TYPE, vm.checkpoint_type),
            "IsClustered": vm.is_clustered,
            "IsDeleted": False,
            "ParentCheckpointId": _parent_checkpoint(vm, "id"),
            "ParentCheckpointName": _parent_checkpoint(vm, "name"),
            "ParentSnapshotId": _parent_checkpoint(vm, "id"),
            "ParentSnapshotName": _parent_checkpoint(vm, "name"),
            "NetworkAdapters": [adapter_obj(hv, vm, a) for a in vm.adapters],
            "HardDrives": [drive_obj(hv, vm, d) for d in vm.drives],
            "ComputerName": computer_name(hv),
            "IntegrationServicesVersion": "10.0.20348" if vm.guest is not None else None,
            "ReplicationState": PSEnum(HV + "VMReplicationState", "Disabled", 0),
        },
        to_string=f"VirtualMachine (Name = '{vm.name}') [Id = '{vm.id}']",
    )


def _parent_checkpoint(vm: VM, what: str) -> Any:
    """The checkpoint the VM's running state descends from (Get-VM ParentCheckpointId)."""
    cp = next((c for c in vm.checkpoints if c.id == vm.parent_checkpoint), None)
    if cp is None:
        return None
    return uuid.UUID(cp.id) if what == "id" else cp.name


def adapter_obj(
    hv: HyperV, vm: VM | None, a: VMNetworkAdapter, management_os: bool = False
) -> PSObj:
    tn = HV + ("VMInternalNetworkAdapter" if management_os else "VMNetworkAdapter")
    vlan = vlan_obj(vm, a)
    return PSObj(
        [tn, HV + "VMNetworkAdapterBase", HV + "VirtualizationObject", "System.Object"],
        {
            "Name": a.name,
            "Id": f"Microsoft:{vm.id if vm else ''}\\{a.id}".upper() if vm else a.id,
            "VMName": vm.name if vm else "",
            "VMId": vm.id if vm else uuid.UUID(int=0),
            "SwitchName": a.switch,
            "SwitchId": a.switch_id,
            "Connected": a.switch is not None,
            "IsManagementOs": management_os,
            "MacAddress": a.mac,
            "DynamicMacAddressEnabled": a.dynamic_mac,
            "MacAddressSpoofing": on_off(a.mac_spoofing),
            "AllowTeaming": on_off(a.allow_teaming),
            "DeviceNaming": on_off(a.device_naming),
            "IPAddresses": reported_ips(vm, a),
            "Status": ["Ok"] if vm is not None and vm.state == "Running" else [],
            "VlanSetting": vlan,
            "ComputerName": computer_name(hv),
        },
        to_string=f"VMNetworkAdapter (Name = '{a.name}', VMName = '{vm.name if vm else ''}')",
    )


def reported_ips(vm: VM | None, a: VMNetworkAdapter) -> list[str]:
    """IPAddresses as Hyper-V shows them: what the running guest reports for the
    adapter with this MAC through the data exchange integration service (KVP);
    empty while the guest is off or not yet up."""
    guest = getattr(vm, "guest", None) if vm is not None else None
    if guest is None or vm is None or vm.state != "Running" or not guest.is_ready():
        return list(a.ips)
    for adapter in guest.net.adapters:
        if adapter.mac.upper() == str(a.mac).upper():
            return [ip.address for ip in adapter.ips]
    return list(a.ips)


def vlan_obj(vm: VM | None, a: VMNetworkAdapter) -> PSObj:
    """Get-VMNetworkAdapterVlan / VMNetworkAdapter.VlanSetting (R-74)."""
    return PSObj(
        [HV + "VMNetworkAdapterVlanSetting", HV + "VirtualizationObject", "System.Object"],
        {
            "OperationMode": enum(HV + "VMNetworkAdapterVlanMode", VLAN_MODE, a.vlan.mode),
            "AccessVlanId": Int32(a.vlan.access_vlan_id),
            "NativeVlanId": Int32(a.vlan.native_vlan_id),
            "AllowedVlanIdList": a.vlan.allowed_vlan_id_list or None,
            "AllowedVlanIdListString": a.vlan.allowed_vlan_id_list,
            "PrivateVlanMode": None,
            "ParentAdapter": f"VMNetworkAdapter (Name = '{a.name}', VMName = '{vm.name if vm else ''}')",
        },
        to_string=f"VMNetworkAdapterVlanSetting (VMName = '{vm.name if vm else ''}', Mode = {a.vlan.mode})",
    )


def drive_obj(hv: HyperV, vm: VM, d: Any) -> PSObj:
    return PSObj(
        [HV + "HardDiskDrive", HV + "Drive", HV + "VirtualizationObject", "System.Object"],
        {
            "Name": d.name,
            "Path": d.path,
            "ControllerType": enum(HV + "ControllerType", CONTROLLER_TYPE, d.controller_type),
            "ControllerNumber": Int32(d.controller_number),
            "ControllerLocation": Int32(d.controller_location),
            "DiskNumber": None,
            "VMName": vm.name,
            "VMId": vm.id,
            "ComputerName": computer_name(hv),
            "Id": f"Microsoft:{vm.id}\\{d.controller_number}\\{d.controller_location}\\D".upper(),
        },
        to_string=f"HardDiskDrive (Name = '{d.name}') [VMName = '{vm.name}']",
    )


def switch_obj(hv: HyperV, s: VMSwitch) -> PSObj:
    return PSObj(
        [HV + "VMSwitch", HV + "VirtualizationObject", "System.Object"],
        {
            "Name": s.name,
            "Id": s.id,
            "SwitchType": enum(HV + "VMSwitchType", SWITCH_TYPE, s.switch_type),
            "Notes": s.notes,
            "AllowManagementOS": s.allow_management_os,
            "NetAdapterInterfaceDescription": s.net_adapter,
            "ComputerName": computer_name(hv),
        },
        to_string=f"VMSwitch (Name = '{s.name}') [Id = '{s.id}']",
    )


def vhd_obj(machine: Any, v: VHD) -> PSObj:
    return PSObj(
        ["Microsoft.Vhd.PowerShell.VirtualHardDisk", "System.Object"],
        {
            "ComputerName": machine.name,
            "Path": v.path,
            "VhdFormat": enum("Microsoft.Vhd.PowerShell.VhdFormat", VHD_FORMAT, v.format),
            "VhdType": enum("Microsoft.Vhd.PowerShell.VhdType", VHD_TYPE, v.type),
            "FileSize": UInt64(v.file_size),
            "Size": UInt64(v.size),
            "MinimumSize": UInt64(v.minimum_size) if v.minimum_size is not None else None,
            "LogicalSectorSize": UInt32(v.logical_sector_size),
            "PhysicalSectorSize": UInt32(v.physical_sector_size),
            "BlockSize": UInt32(v.block_size),
            "ParentPath": v.parent_path,
            "DiskIdentifier": v.disk_identifier,
            "FragmentationPercentage": UInt32(0),
            "Alignment": UInt32(1),
            "Attached": v.attached,
            "DiskNumber": UInt32(v.disk_number) if v.disk_number is not None else None,
            "IsPMEMCompatible": False,
            "AddressAbstractionType": PSEnum(
                "Microsoft.Vhd.PowerShell.VirtualHardDiskPmemAddressAbstractionType", "None", 0
            ),
            "Number": UInt32(v.disk_number) if v.disk_number is not None else None,
        },
        to_string=v.path,
    )


def vmhost_obj(hv: HyperV) -> PSObj:
    m = hv.machine
    s = hv.settings
    return PSObj(
        [HV + "VMHost", HV + "VirtualizationObject", "System.Object"],
        {
            "ComputerName": m.name,
            "Name": m.name,
            "LogicalProcessorCount": Int32(m.hardware.logical_processors),
            "MemoryCapacity": Int64(m.memory_total),
            "VirtualMachinePath": s.virtual_machine_path,
            "VirtualHardDiskPath": s.virtual_hard_disk_path,
            "VirtualMachineMigrationEnabled": s.migration_enabled,
            "MaximumVirtualMachineMigrations": Int32(s.max_migrations),
            "MaximumStorageMigrations": Int32(s.max_storage_migrations),
            "VirtualMachineMigrationPerformanceOption": PSEnum(
                HV + "VMMigrationPerformance",
                s.migration_performance,
                {"TCPIP": 0, "Compression": 1, "SMB": 2}[s.migration_performance],
            ),
            "VirtualMachineMigrationAuthenticationType": PSEnum(
                HV + "MigrationAuthenticationType",
                s.migration_auth,
                {"CredSSP": 0, "Kerberos": 1}[s.migration_auth],
            ),
            "MacAddressMinimum": hv.mac_prefix + "00",
            "MacAddressMaximum": hv.mac_prefix + "FF",
            "NumaSpanningEnabled": s.numa_spanning,
            "EnableEnhancedSessionMode": s.enhanced_session_mode,
            "FullyQualifiedDomainName": m.name if not m.domain else f"{m.name}.{m.domain}",
            "SupportedVmVersions": list(hv.supported_versions),
        },
        to_string=f"VMHost (ComputerName = '{m.name}')",
    )
