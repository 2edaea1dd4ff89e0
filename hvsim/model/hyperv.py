"""The Hyper-V subsystem of one machine: VMs, virtual switches, host settings.

It exists on the L0 host and on every guest that runs the Hyper-V role (the
GUEST model sets `machine.hyperv` once the role is installed and rebooted).
The rules it enforces cite hyperv-facts.md (R-xx); the ErrorRecords they raise
are in hvsim.model.hverrors.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import uuid
from typing import TYPE_CHECKING, Any

from hvsim.model import hverrors as E
from hvsim.model.fs import FsError, GiB, normalize
from hvsim.model.vhd import VHD, ImageInfo, Partition  # re-exported: VHD objects live here too

if TYPE_CHECKING:
    from hvsim.model.machine import Machine

MiB = 1024**2

# VMState names; values per hyperv-facts "Object shapes" (map by name, R-xx note).
VM_STATES = {
    "Running": 2,
    "Off": 3,
    "Stopping": 4,
    "Saved": 6,
    "Paused": 9,
    "Starting": 10,
    "Reset": 11,
    "Saving": 32773,
    "Pausing": 32776,
    "Resuming": 32777,
    # Values from here on differ between Windows versions (eryph VirtualMachineState.cs).
    "RunningCritical": 32785,
    "PausedCritical": 32789,
}

# States in which a VM holds its memory and counts as powered on.
POWERED = ("Running", "Paused", "Stopping", "Starting", "PausedCritical", "RunningCritical")

# Configuration versions a Windows Server 2022 host runs: 8.0 to 10.0 (windowsserverdocs,
# "Upgrade virtual machine version in Hyper-V", table for long-term servicing hosts),
# with the names Get-VMHostSupportedVersion shows (unconfirmed wording).
SUPPORTED_VERSIONS_WS2022 = ["8.0", "8.1", "8.2", "8.3", "9.0", "9.1", "9.2", "9.3", "10.0"]
VERSION_NAMES = {
    "8.0": "Microsoft Windows 10 Anniversary Update/Server 2016",
    "8.1": "Microsoft Windows 10 Creators Update",
    "8.2": "Microsoft Windows 10 Fall Creators Update/Server 1709",
    "8.3": "Microsoft Windows 10 April 2018 Update/Server 1803",
    "9.0": "Microsoft Windows 10 October 2018 Update/Server 2019",
    "9.1": "Microsoft Windows 10 May 2019 Update/Server 1903",
    "9.2": "Microsoft Windows 10 May 2020 Update/Server 2004",
    "9.3": "Microsoft Windows 10 (Prerelease)",
    "10.0": "Microsoft Windows Server 2022",
}


def version_tuple(v: str) -> tuple[int, ...]:
    """'10.0' -> (10, 0): versions compare numerically, never as strings (R-03)."""
    return tuple(int(x) for x in str(v).strip().split("."))


@dataclasses.dataclass
class VlanSetting:
    mode: str = "Untagged"  # Access / Trunk / Untagged
    access_vlan_id: int = 0
    native_vlan_id: int = 0
    allowed_vlan_id_list: str = ""


@dataclasses.dataclass(eq=False)
class VMNetworkAdapter:
    name: str
    switch: str | None = None  # switch name; None = not connected
    switch_id: str | None = None
    mac: str = "000000000000"  # no usable MAC before the first start
    dynamic_mac: bool = True
    mac_spoofing: bool = False
    allow_teaming: bool = False
    device_naming: bool = False
    vlan: VlanSetting = dataclasses.field(default_factory=VlanSetting)
    id: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()).upper())
    ips: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(eq=False)
class HardDrive:
    path: str
    controller_type: str = "SCSI"
    controller_number: int = 0
    controller_location: int = 0

    @property
    def name(self) -> str:
        return "Hard Drive"


@dataclasses.dataclass(eq=False)
class VM:
    id: uuid.UUID
    name: str
    generation: int = 2
    state: str = "Off"
    version: str = "10.0"
    path: str = ""  # Path = ConfigurationLocation
    memory_startup: int = 512 * MiB
    dynamic_memory: bool = False
    memory_minimum: int = 512 * MiB
    memory_maximum: int = 1024**4
    processor_count: int = 1
    expose_virtualization_extensions: bool = False
    secure_boot: bool = True
    secure_boot_template: str = "MicrosoftWindows"
    adapters: list[VMNetworkAdapter] = dataclasses.field(default_factory=list)
    drives: list[HardDrive] = dataclasses.field(default_factory=list)
    notes: str = ""
    automatic_checkpoints: bool = True
    checkpoint_type: str = "Production"
    # hvsim.model.checkpoints.Checkpoint objects, oldest first; the one the running
    # state descends from (Get-VM ParentCheckpointId).
    checkpoints: list[Any] = dataclasses.field(default_factory=list)
    parent_checkpoint: str | None = None
    is_clustered: bool = False
    # Power bookkeeping: when the current run started (modelled s), None when off.
    started_at: float | None = None
    boot_count: int = 0
    # The OS disk took the writes of Windows' first boot (vmops.FIRST_BOOT_GROWTH).
    first_boot_grown: bool = False
    # Settings as they were at the last start: the guest sees these.
    booted_with: dict[str, Any] = dataclasses.field(default_factory=dict)
    guest: Any = None  # hvsim.model.guest.GuestOS, created on first start
    # Hyper-V subsystem that holds this VM.
    host_name: str = ""
    integration_services: dict[str, bool] = dataclasses.field(
        default_factory=lambda: {
            "Guest Service Interface": False,
            "Heartbeat": True,
            "Key-Value Pair Exchange": True,
            "Shutdown": True,
            "Time Synchronization": True,
            "VSS": True,
        }
    )

    @property
    def config_files(self) -> list[str]:
        base = self.path.rstrip("\\") + "\\Virtual Machines\\" + str(self.id).upper()
        return [base + ".vmcx", base + ".vmgs", base + ".VMRS"]

    def uptime(self, now: float) -> float:
        """Get-VM .Uptime: time since the last start; zero while Off or Saved."""
        if self.started_at is None or self.state not in POWERED:
            return 0.0
        return max(0.0, now - self.started_at)

    def memory_held(self) -> int:
        """What the VM takes from the host while it runs (R-10)."""
        return self.memory_startup if self.state in POWERED else 0

    def os_drive(self) -> HardDrive | None:
        """The boot disk: the first hard drive (SCSI 0:0 for Gen2)."""
        drives = sorted(self.drives, key=lambda d: (d.controller_number, d.controller_location))
        return drives[0] if drives else None

    def adapter(self, name: str) -> list[VMNetworkAdapter]:
        return [a for a in self.adapters if fnmatch.fnmatchcase(a.name.lower(), name.lower())]


@dataclasses.dataclass(eq=False)
class VMSwitch:
    name: str
    switch_type: str  # Internal / Private / External
    id: uuid.UUID
    notes: str = ""
    net_adapter: str | None = None  # external switch: the physical adapter it binds
    allow_management_os: bool = False


@dataclasses.dataclass
class HostSettings:
    virtual_machine_path: str = "C:\\ProgramData\\Microsoft\\Windows\\Hyper-V"
    virtual_hard_disk_path: str = "C:\\Users\\Public\\Documents\\Hyper-V\\Virtual Hard Disks"
    migration_enabled: bool = False
    max_migrations: int = 2
    max_storage_migrations: int = 2
    migration_performance: str = "TCPIP"
    migration_auth: str = "CredSSP"
    numa_spanning: bool = True
    enhanced_session_mode: bool = False


@dataclasses.dataclass(eq=False)
class HyperV:
    """Hyper-V on one machine."""

    machine: Machine
    vms: list[VM] = dataclasses.field(default_factory=list)
    switches: list[VMSwitch] = dataclasses.field(default_factory=list)
    settings: HostSettings = dataclasses.field(default_factory=HostSettings)
    default_version: str = "10.0"
    supported_versions: list[str] = dataclasses.field(
        default_factory=lambda: list(SUPPORTED_VERSIONS_WS2022)
    )
    mac_prefix: str = "00155D010A"  # MacAddressMinimum without the last byte
    next_mac: int = 0
    next_disk_number: int = 1

    @property
    def host_settings(self) -> HostSettings:
        return self.settings

    @property
    def memory_total(self) -> int:
        return self.machine.memory_total

    @property
    def memory_free(self) -> int:
        return self.machine.memory_free()

    def memory_held(self) -> int:
        return sum(vm.memory_held() for vm in self.vms)

    # -- lookups --------------------------------------------------------------

    def find_vms(self, name: str) -> list[VM]:
        """VMs whose name matches `name` (wildcards as -Name allows). R-20: a list."""
        pat = name.lower()
        if any(ch in pat for ch in "*?["):
            return [vm for vm in self.vms if fnmatch.fnmatchcase(vm.name.lower(), pat)]
        return [vm for vm in self.vms if vm.name.lower() == pat]

    def vm_by_id(self, vm_id: uuid.UUID | str) -> VM | None:
        want = str(vm_id).lower()
        return next((vm for vm in self.vms if str(vm.id).lower() == want), None)

    def find_switches(self, name: str) -> list[VMSwitch]:
        pat = name.lower()
        return [s for s in self.switches if fnmatch.fnmatchcase(s.name.lower(), pat)]

    def allocate_mac(self) -> str:
        """The next dynamic MAC from the host pool, 12 upper-case hex digits (R-19)."""
        mac = f"{self.mac_prefix}{self.next_mac:02X}"
        self.next_mac = (self.next_mac + 1) % 256
        return mac.upper()

    def holder_of(self, path: str) -> list[VM]:
        """VMs (any state) that have the disk at `path` attached."""
        p = normalize(path).lower()
        return [vm for vm in self.vms if any(normalize(d.path).lower() == p for d in vm.drives)]

    def vhd_at(self, path: str) -> VHD | None:
        node = self.machine.fs.node(path)
        content = getattr(node, "content", None)
        return content if isinstance(content, VHD) else None

    def snapshot(self) -> dict[str, Any]:
        return {
            "vms": sorted(
                (
                    {
                        "name": vm.name,
                        "state": vm.state,
                        "notes": vm.notes,
                        "adapters": sorted(a.name for a in vm.adapters),
                        "drives": sorted(d.path.lower() for d in vm.drives),
                    }
                    for vm in self.vms
                ),
                key=lambda d: (d["name"].lower(), d["notes"]),
            ),
            "switches": sorted((s.name, s.switch_type) for s in self.switches),
            "settings": dataclasses.asdict(self.settings),
        }


__all__ = [
    "POWERED",
    "VHD",
    "VM",
    "VM_STATES",
    "E",
    "FsError",
    "GiB",
    "HardDrive",
    "HostSettings",
    "HyperV",
    "ImageInfo",
    "Partition",
    "VMNetworkAdapter",
    "VMSwitch",
    "VlanSetting",
    "version_tuple",
]
