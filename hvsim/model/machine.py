"""A Windows machine: the L0 host, and (as a subclass, hvsim.model.guest) each guest OS.

Everything a cmdlet may ask about "the machine it runs on" lives here: its
file system, OS identity, hardware, features, registry, services, IP stack,
domain membership and, when the Hyper-V role runs, its Hyper-V subsystem.
Handlers act on `ctx.machine`, whichever machine that is.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any

from hvsim.model.eventlog import EventLogs
from hvsim.model.fs import FileSystem
from hvsim.model.net import NetStack

if TYPE_CHECKING:
    from hvsim.model.hyperv import HyperV

# The modelled epoch: modelled second 0 is this instant (UTC). Boot times and
# file times are reported relative to it, so a run is reproducible.
EPOCH = dt.datetime(2026, 1, 5, 8, 0, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    """The wall-clock time of a modelled instant."""
    return EPOCH + dt.timedelta(seconds=seconds)


@dataclasses.dataclass
class OSInfo:
    """Identity of the installed Windows (Win32_OperatingSystem)."""

    caption: str = "Microsoft Windows Server 2022 Datacenter"
    edition: str = "ServerDatacenter"  # EditionID
    version: str = "10.0.20348"
    build: int = 20348
    sku: int = 8  # OperatingSystemSKU: 8 Datacenter, 7 Standard
    language: str = "en-US"
    install_type: str = "Server"
    last_boot_time: float = 0.0  # modelled seconds
    install_date: float = 0.0


@dataclasses.dataclass
class Hardware:
    """What Win32_Processor / Win32_ComputerSystem report (R-02)."""

    manufacturer: str = "GenuineIntel"
    cpu_name: str = "Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz"
    sockets: int = 2
    logical_processors: int = 32
    memory_bytes: int = 64 * 1024**3
    virtualization_firmware_enabled: bool = True
    # Second-level address translation (EPT) present: needed for nested.
    slat: bool = True
    system_manufacturer: str = "Contoso"
    system_model: str = "Lab Server"


@dataclasses.dataclass(eq=False)
class Machine:
    name: str
    fs: FileSystem = dataclasses.field(default_factory=FileSystem)
    os: OSInfo = dataclasses.field(default_factory=OSInfo)
    hardware: Hardware = dataclasses.field(default_factory=Hardware)
    # Feature name -> InstallState (Installed, Available, InstallPending, Removed).
    features: dict[str, str] = dataclasses.field(default_factory=dict)
    # Registry: key path (HKLM:\...) as given, compared case-insensitively via reg_key().
    registry: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    # Service name -> Status (Running, Stopped, StartPending ...).
    services: dict[str, str] = dataclasses.field(default_factory=dict)
    hyperv: HyperV | None = None
    net: NetStack = dataclasses.field(default_factory=NetStack)
    domain: str | None = None  # FQDN when joined, else None (workgroup)
    workgroup: str = "WORKGROUP"
    # Bytes of memory the OS itself keeps (kernel, services): FreePhysicalMemory
    # is total minus this minus what VMs hold.
    os_reserve_bytes: int = 4 * 1024**3
    # The classic event logs (System, Application, ...): hvsim.model.eventlog.
    events: EventLogs = dataclasses.field(default_factory=EventLogs)

    # -- identity -------------------------------------------------------------

    @property
    def memory_total(self) -> int:
        return self.hardware.memory_bytes

    def memory_free(self) -> int:
        """FreePhysicalMemory in bytes: total minus the OS reserve minus running VMs."""
        held = self.hyperv.memory_held() if self.hyperv is not None else 0
        return max(0, self.memory_total - self.os_reserve_bytes - held)

    def reg_key(self, path: str, create: bool = False) -> dict[str, Any] | None:
        want = _reg_norm(path)
        for key, values in self.registry.items():
            if _reg_norm(key) == want:
                return values
        if create:
            self.registry[path] = {}
            return self.registry[path]
        return None

    def has_feature(self, name: str) -> bool:
        return self.features.get(name) == "Installed"

    def is_guest(self) -> bool:
        return False

    def cim(self, class_name: str) -> list[Any] | None:
        """The CIM instances of `class_name` (root/cimv2) this machine reports, built
        from its fields; None for a class the model does not know. A subclass may
        override single classes and defer to this for the rest."""
        from hvsim.cmdlets.cim import instances

        return instances(self, class_name)

    def snapshot(self) -> dict[str, Any]:
        """A canonical summary of what exists on this machine (World.snapshot)."""
        files = sorted(
            (p.lower(), f.size if not hasattr(f.content, "file_size") else "vhd")
            for letter, vol in sorted(self.fs.drives.items())
            for p, f in self.fs.files(f"{letter}:\\")
            if getattr(vol, "owner", None) is None
        )
        dirs: list[str] = []
        for letter, vol in sorted(self.fs.drives.items()):
            if vol.owner is not None:
                continue
            for parts, node in vol.root.walk():
                if not hasattr(node, "content"):
                    dirs.append((f"{letter}:\\" + "\\".join(parts)).lower())
        return {
            "name": self.name,
            "domain": self.domain,
            "features": {k: v for k, v in sorted(self.features.items()) if v != "Available"},
            "services": dict(sorted(self.services.items())),
            "files": [list(f) for f in files],
            "dirs": sorted(dirs),
            "adapters": [
                {
                    "name": a.name,
                    "mac": a.mac,
                    "ips": sorted(f"{ip.address}/{ip.prefix_length}" for ip in a.ips),
                }
                for a in sorted(self.net.adapters, key=lambda a: a.name.lower())
            ],
            "nats": sorted((n.name, n.internal_prefix) for n in self.net.nats),
            "hyperv": self.hyperv.snapshot() if self.hyperv is not None else None,
        }


def _reg_norm(path: str) -> str:
    """'HKLM:\\SYSTEM\\X' and 'Registry::HKEY_LOCAL_MACHINE\\SYSTEM\\X' -> 'hklm\\system\\x'."""
    p = path.replace("/", "\\").strip().rstrip("\\").lower()
    if p.startswith("registry::"):
        p = p[len("registry::") :]
    for prefix in ("hkey_local_machine", "hklm:"):
        if p.startswith(prefix):
            p = "hklm" + p[len(prefix) :]
            break
    parts = [x for x in p.split("\\") if x]
    return "\\".join(parts)
