"""The world: one L0 Hyper-V host, its VMs and their guests, AD domains, clusters.

`World.create()` builds the default host profile (hyperv-facts R-02, R-03,
R-79): Windows Server 2022 Datacenter build 20348 on GenuineIntel, 32 logical
processors, 64 GiB memory (4 GiB kept by the host OS), a 2 TiB NTFS C: with
1.5 TiB free, a 4 TiB NTFS data volume D: (HostProfile.volumes, or HVSIM_VOLUMES
for the embedded host and sim.serve), the Hyper-V role installed, configuration versions up to 10.0,
and two generalized base images under C:\\hvlab\\images.

Tests reach the model through `world.host`, `world.vm(name)`,
`world.guest(name)`, `world.cluster(name)` and `world.snapshot()`.
"""

from __future__ import annotations

import dataclasses
import json
import random
import threading
import uuid
from collections.abc import Iterator
from typing import Any

from hvsim.clock import Clock
from hvsim.model.fs import FileSystem, GiB, TiB, Volume
from hvsim.model.hyperv import VM, HyperV
from hvsim.model.machine import Hardware, Machine, OSInfo
from hvsim.model.vhd import ImageInfo, windows_image

IMAGES_DIR = "C:\\hvlab\\images"

# What a Windows Server 2022 installation has at the top of C: (R-101; a lab tool must keep
# its hands off all of it). "Documents and Settings" is a junction to C:\\Users in
# Windows; the model has no junctions and keeps it as a folder.
SYSTEM_FOLDERS = (
    "C:\\Windows\\System32",
    "C:\\Windows\\Panther",
    "C:\\Users\\Public\\Documents\\Hyper-V\\Virtual Hard Disks",
    "C:\\Users\\Administrator\\Documents",
    "C:\\ProgramData\\Microsoft\\Windows\\Hyper-V",
    "C:\\Program Files\\Common Files",
    "C:\\Program Files (x86)",
    "C:\\Recovery\\WindowsRE",
    "C:\\System Volume Information",
    "C:\\PerfLogs",
    "C:\\Documents and Settings",
    "C:\\$Recycle.Bin",
)
SYSTEM_FILES = (
    ("C:\\Windows\\System32\\ntoskrnl.exe", b"\0" * 128),
    ("C:\\Recovery\\WindowsRE\\Winre.wim", b"\0" * 256),
    ("C:\\Recovery\\WindowsRE\\ReAgent.xml", '<WindowsRE version="2.0" />'),
    ("C:\\Users\\Administrator\\Documents\\notes.txt", "the administrator's own file"),
)


@dataclasses.dataclass
class ImageSpec:
    file: str
    info: ImageInfo


def _default_images() -> list[ImageSpec]:
    return [
        ImageSpec(
            "ws2022-datacenter.vhdx",
            ImageInfo(
                edition="ServerDatacenter",
                image_name="Windows Server 2022 Datacenter (Desktop Experience)",
                caption="Microsoft Windows Server 2022 Datacenter",
                sku=8,
            ),
        ),
        ImageSpec(
            "ws2022-standard.vhdx",
            ImageInfo(
                edition="ServerStandard",
                image_name="Windows Server 2022 Standard (Desktop Experience)",
                caption="Microsoft Windows Server 2022 Standard",
                sku=7,
            ),
        ),
    ]


@dataclasses.dataclass
class VolumeSpec:
    """A data volume of the host besides C: (a second disk, formatted)."""

    letter: str
    size: int
    free: int
    file_system: str = "NTFS"
    label: str = "Data"


def _default_volumes() -> list[VolumeSpec]:
    # Many Hyper-V hosts keep VMs on a data volume; labs may put their root there.
    return [VolumeSpec("D", 4 * TiB, 4 * TiB - 64 * GiB)]


def parse_volumes(text: str) -> list[VolumeSpec]:
    """`D=4TiB,E=ReFS:1TiB` (letter = [file system:] size, free = all of it) for
    HVSIM_VOLUMES and `sim.serve --volumes`."""
    units = {"GIB": GiB, "GB": GiB, "TIB": TiB, "TB": TiB}
    volumes: list[VolumeSpec] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        letter, _, rest = item.partition("=")
        letter = letter.strip().upper().rstrip(":")
        fs, _, size_text = rest.rpartition(":")
        number = size_text.strip().upper()
        unit = next((u for u in units if number.endswith(u)), None)
        if (
            len(letter) != 1
            or not letter.isalpha()
            or letter in "ABC"
            or unit is None
            or not number[: -len(unit)].strip().isdigit()
            or (fs and fs.strip().upper() not in ("NTFS", "REFS"))
        ):
            raise ValueError(
                f"volume {item!r}: write LETTER=SIZE or LETTER=NTFS|ReFS:SIZE, "
                "such as D=4TiB or E=ReFS:1TiB (letters D to Z, sizes in GiB or TiB)"
            )
        size = int(number[: -len(unit)]) * units[unit]
        file_system = {"NTFS": "NTFS", "REFS": "ReFS"}[fs.strip().upper()] if fs else "NTFS"
        volumes.append(VolumeSpec(letter, size, size, file_system))
    return volumes


# The embedded host's outside domain takes its join account with this password unless
# HVSIM_DOMAINS names another (password_env=VAR). Public by design: it protects a
# simulated domain and nothing else, as hvlab's demo passwords do.
DEMO_JOIN_PASSWORD = "Corp-Join-Demo-2026!"


@dataclasses.dataclass
class OutsideDomainSpec:
    """An Active Directory domain outside the lab that the host's network reaches
    (R-125): its DC at `dc_address` on the host's LAN, an account that may join
    computers and create cluster name objects, and a file server with witness shares."""

    fqdn: str = "corp.example.com"
    # Not CORP: the shipped lab s2d-2node makes a forest CORP, and two domains of one
    # NetBIOS name cannot share a network.
    netbios: str = "EXAMPLECORP"
    dc_name: str = "CORPDC01"
    dc_address: str = "192.168.1.5"
    join_account: str = "hvjoin"
    # Digest of the join account's password (hvsim.model.guest.pw_hash), never the text.
    join_password_hash: str = ""
    file_server: str = "fs01"
    file_server_address: str = "192.168.1.6"
    shares: tuple[str, ...] = ("witness",)


def _default_domains() -> list[OutsideDomainSpec]:
    from hvsim.model.guest import pw_hash

    return [OutsideDomainSpec(join_password_hash=pw_hash(DEMO_JOIN_PASSWORD))]


def parse_domains(text: str, env: Any = None) -> list[OutsideDomainSpec]:
    """`corp.example.com[:key=value,...]` entries separated by `;` for HVSIM_DOMAINS and
    `sim.serve --domains`. Keys: netbios, dc (address), dc_name, join (account),
    password_env (the environment variable holding the join password; default the
    demo password), fs (file server name), fs_address, shares (names joined by +)."""
    import ipaddress
    import os
    import re

    from hvsim.model.guest import pw_hash

    env = os.environ if env is None else env
    keys = {"netbios", "dc", "dc_name", "join", "password_env", "fs", "fs_address", "shares"}
    name_re = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,14}")
    out: list[OutsideDomainSpec] = []
    for entry in filter(None, (part.strip() for part in text.split(";"))):
        fqdn, _, rest = entry.partition(":")
        fqdn = fqdn.strip().lower()
        if not re.fullmatch(r"([a-z0-9][a-z0-9-]{0,62}\.)+[a-z]{2,63}", fqdn):
            raise ValueError(f"domain {entry!r}: {fqdn!r} is not a DNS domain name")
        opts: dict[str, str] = {}
        for item in filter(None, (x.strip() for x in rest.split(","))):
            key, eq, value = item.partition("=")
            if not eq or key.strip() not in keys or not value.strip():
                raise ValueError(
                    f"domain {entry!r}: write key=value with keys {', '.join(sorted(keys))}"
                )
            opts[key.strip()] = value.strip()
        spec = OutsideDomainSpec(fqdn=fqdn, netbios=fqdn.split(".")[0].upper()[:15])
        for key, field in (
            ("netbios", "netbios"),
            ("dc_name", "dc_name"),
            ("join", "join_account"),
            ("fs", "file_server"),
        ):
            if key in opts:
                if not name_re.fullmatch(opts[key]):
                    raise ValueError(f"domain {entry!r}: {key}={opts[key]!r} is not a valid name")
                setattr(spec, field, opts[key])
        for key, field in (("dc", "dc_address"), ("fs_address", "file_server_address")):
            if key in opts:
                try:
                    setattr(spec, field, str(ipaddress.IPv4Address(opts[key])))
                except ValueError:
                    raise ValueError(
                        f"domain {entry!r}: {key}={opts[key]!r} is not an IPv4 address"
                    ) from None
        if "shares" in opts:
            shares = tuple(opts["shares"].split("+"))
            if not all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}", x) for x in shares):
                raise ValueError(f"domain {entry!r}: shares= takes share names joined by +")
            spec.shares = shares
        password = DEMO_JOIN_PASSWORD
        if "password_env" in opts:
            password = env.get(opts["password_env"], "")
            if not password:
                raise ValueError(
                    f"domain {entry!r}: the environment variable {opts['password_env']} "
                    "(password_env) is not set"
                )
        spec.join_password_hash = pw_hash(password)
        out.append(spec)
    return out


@dataclasses.dataclass
class HostProfile:
    """What the L0 host is. Change a field to model another host (AMD, small disk...)."""

    name: str = "HV01"
    os: OSInfo = dataclasses.field(default_factory=OSInfo)
    hardware: Hardware = dataclasses.field(default_factory=Hardware)
    os_reserve_bytes: int = 4 * GiB
    c_size: int = 2 * TiB
    c_free: int = 3 * TiB // 2
    c_file_system: str = "NTFS"
    volumes: list[VolumeSpec] = dataclasses.field(default_factory=_default_volumes)
    hyperv_installed: bool = True
    default_version: str = "10.0"
    max_version: str = "10.0"
    images: list[ImageSpec] = dataclasses.field(default_factory=_default_images)
    # Mount-VHD gives the OS partition a drive letter by itself. Off by default:
    # images whose partitions carry the GPT "no drive letter" attribute get none,
    # and then the caller must Add-PartitionAccessPath.
    automount_letters: bool = False
    # The physical NIC and its address; the last two octets seed the MAC pool.
    nic_name: str = "Ethernet"
    nic_ip: str = "192.168.1.10"
    nic_prefix: int = 24
    nic_mac: str = "0CC47A1B2C3D"
    # Boots that run side by side before they slow each other down.
    parallel_boots: int | None = None
    # R-94 (unconfirmed either way): PowerShell Direct works from a WinRM session on
    # this host, and a cluster cmdlet run through it in one node can reach the
    # others with the session's explicit credential. False models a host where it
    # does not, for the checks that prove it on a live run.
    powershell_direct_from_winrm: bool = True
    powershell_direct_second_hop: bool = True
    # Active Directory domains outside the lab on the host's network.
    domains: list[OutsideDomainSpec] = dataclasses.field(default_factory=_default_domains)


class World:
    # The lock is made anew on load; faults belong to the process that asked for
    # them (HVSIM_FAULTS), never to the state file (hvsim.persist).
    PERSIST_SKIP = frozenset({"lock", "faults", "dropped_faults", "revision", "busy", "journal"})

    def __init__(self, host: Machine, clock: Clock, faults: Any, seed: int) -> None:
        self.clock = clock
        self.host = host
        self.domains: dict[str, Any] = {}  # AD model (GUEST)
        self.clusters: dict[str, Any] = {}  # failover clusters (GUEST)
        self.faults = faults
        self.seed = seed
        self.rng = random.Random(seed)
        self.profile: HostProfile | None = None
        self.reset_process_state(faults)

    def reset_process_state(self, faults: Any = None) -> None:
        """What belongs to the running process, not to the host: the lock, the faults
        this process injects, and the bookkeeping of changes (hvsim.persist.Journal)."""
        from hvsim.faults import Faults

        self.lock = threading.Lock()
        self.faults = faults if faults is not None else Faults([], self.seed)
        # What a loaded state file carried that is never loaded (faults of an older run).
        self.dropped_faults: list[str] = []
        # Bumped by every call that may change the world (hvsim.executor); `busy` counts
        # handlers that let modelled time pass mid-change (their lock released).
        self.revision = 0
        self.busy = 0
        # Called after each pipeline from the wire: saves the world when it changed.
        self.journal: Any = None

    # -- construction ----------------------------------------------------------

    @classmethod
    def create(
        cls,
        profile: HostProfile | None = None,
        timescale: float = 0.0,
        faults: str | None = None,
        seed: int = 0,
    ) -> World:
        from hvsim.faults import Faults

        profile = profile or HostProfile()
        clock = Clock(timescale)
        fault_set = Faults.parse(faults or "", seed=seed)
        host = Machine(profile.name)
        world = cls(host, clock, fault_set, seed)
        world.profile = profile
        _build_host(world, host, profile)
        fault_set.install(world)
        return world

    def new_uuid(self) -> uuid.UUID:
        """A reproducible UUID (version 4 layout) from the world's seeded generator."""
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    # -- time ------------------------------------------------------------------

    def modelled_now(self) -> float:
        return self.clock.now()

    def parallel_boots(self) -> int:
        """How many guests boot side by side at full speed: one per 8 logical processors
        (a boot is disk-bound; 32 LP -> 4). See docs/model-notes.md."""
        if self.profile is not None and self.profile.parallel_boots:
            return self.profile.parallel_boots
        return max(1, self.host.hardware.logical_processors // 8)

    def booting_count(self) -> int:
        now = self.clock.now()
        count = 0
        for vm in self.all_vms():
            booting = getattr(vm.guest, "booting", None)
            if vm.state == "Running" and callable(booting) and booting(now):
                count += 1
        return count

    def boot_slowdown(self, extra: int = 0) -> float:
        """Contention factor for a boot that starts now:

            max(1, (booting + 1 + extra) / parallel_boots)

        `booting` counts guests of this world in a booting phase now; the boot
        being started is the +1 (its guest is not booting yet when it asks);
        `extra` counts further boots the caller starts at the same moment.
        """
        booting = self.booting_count() + 1 + extra
        return max(1.0, booting / self.parallel_boots())

    # -- lookups ---------------------------------------------------------------

    def machines(self) -> Iterator[Machine]:
        """The host and every guest OS that exists, nested guests included."""
        stack: list[Machine] = [self.host]
        while stack:
            m = stack.pop(0)
            yield m
            if m.hyperv is not None:
                stack.extend(vm.guest for vm in m.hyperv.vms if vm.guest is not None)

    def guest_named(self, name: str, domain: str | None = None) -> Any:
        """The guest OS whose computer name is `name`, as a machine of `domain` finds
        it. Two labs side by side may use the same computer names on networks of their
        own: a name then resolves in the asker's domain (its DNS), so among guests of
        that name the one in `domain` (joined or joining) is meant (modelled, R-145).
        Without `domain`, or when none of that name is in it: the first one found."""
        key = name.split(".")[0].lower()
        found = [
            m
            for m in self.machines()
            if m is not self.host
            and getattr(m, "computer_name", None) is not None
            and m.name.lower() == key
        ]
        if domain and len(found) > 1:
            wanted = domain.lower()
            mine = [
                m
                for m in found
                if (getattr(m, "domain", None) or getattr(m, "pending_join", None) or "").lower()
                == wanted
            ]
            if mine:
                return mine[0]
        return found[0] if found else None

    def all_vms(self) -> Iterator[VM]:
        for m in self.machines():
            if m.hyperv is not None:
                yield from m.hyperv.vms

    def vm(self, name: str) -> VM:
        """The one VM with this name, on any machine (tests only). KeyError if none or many."""
        found = [vm for vm in self.all_vms() if vm.name.lower() == name.lower()]
        if len(found) != 1:
            raise KeyError(f"{len(found)} VMs named {name!r}")
        return found[0]

    def guest(self, name: str) -> Any:
        """The guest OS of the VM `name` (or whose computer name is `name`)."""
        for m in self.machines():
            if m is not self.host and m.name.lower() == name.lower():
                return m
        g = self.vm(name).guest
        if g is None:
            raise KeyError(f"VM {name!r} has no guest OS yet (never started)")
        return g

    def cluster(self, name: str) -> Any:
        for key, c in self.clusters.items():
            if key.lower() == name.lower():
                return c
        raise KeyError(f"no cluster {name!r}")

    # -- persistence (hvsim.persist) ------------------------------------------------

    def save_state(self, path: str) -> None:
        from hvsim import persist

        persist.save(self, path)

    def load_state(self, path: str) -> None:
        """Replace this world's contents with a saved one; the fault spec given now
        (command line) wins over the saved one. Both objects then share one
        attribute dict, so references the loaded guests hold (guest.world) agree."""
        from hvsim import persist

        faults = self.faults
        loaded = persist.load(path, timescale=self.clock.timescale)
        self.__dict__ = loaded.__dict__
        self.faults = faults
        faults.install(self)

    def snapshot(self) -> dict[str, Any]:
        """A canonical, JSON-able summary of everything on the host and in the guests."""
        guests = [m for m in self.machines() if m is not self.host]
        return {
            "host": self.host.snapshot(),
            "guests": sorted((g.snapshot() for g in guests), key=lambda s: s["name"].lower()),
            "domains": sorted((_snap(d) for d in self.domains.values()), key=_order),
            "clusters": sorted((_snap(c) for c in self.clusters.values()), key=_order),
        }


def _order(snap: Any) -> str:
    # Snapshots are dicts (or reprs); order them by their canonical JSON text.
    return json.dumps(snap, sort_keys=True, default=str)


def _snap(obj: Any) -> Any:
    fn = getattr(obj, "snapshot", None)
    return fn() if callable(fn) else repr(obj)


def _build_host(world: World, host: Machine, profile: HostProfile) -> None:
    host.os = dataclasses.replace(profile.os)
    host.hardware = dataclasses.replace(profile.hardware)
    host.os_reserve_bytes = profile.os_reserve_bytes
    host.fs = FileSystem(clock=world.clock)
    c = Volume("", profile.c_file_system, profile.c_size, used_base=profile.c_size - profile.c_free)
    host.fs.add_drive("C", c)
    for spec in profile.volumes:
        volume = Volume(spec.label, spec.file_system, spec.size, used_base=spec.size - spec.free)
        host.fs.add_drive(spec.letter, volume)
    for folder in SYSTEM_FOLDERS:
        host.fs.mkdir(folder)
    for path, content in SYSTEM_FILES:
        host.fs.write(path, content)
    host.features = {
        "Hyper-V": "Installed" if profile.hyperv_installed else "Available",
        "Hyper-V-PowerShell": "Installed" if profile.hyperv_installed else "Available",
        "RSAT-Hyper-V-Tools": "Installed" if profile.hyperv_installed else "Available",
        "Failover-Clustering": "Available",
        "FS-FileServer": "Installed",
        "AD-Domain-Services": "Available",
    }
    host.services = {"WinRM": "Running", "LanmanServer": "Running"}
    if profile.hyperv_installed:
        host.services["vmms"] = "Running"
        host.services["vmcompute"] = "Running"
        hv = HyperV(host, default_version=profile.default_version)
        hv.supported_versions = [
            v for v in hv.supported_versions if _vt(v) <= _vt(profile.max_version)
        ]
        octets = profile.nic_ip.split(".")
        hv.mac_prefix = f"00155D{int(octets[2]):02X}{int(octets[3]):02X}"
        host.hyperv = hv
    nic = host.net.add_adapter(
        profile.nic_name,
        "Intel(R) Ethernet Controller X710 for 10GbE SFP+",
        profile.nic_mac,
        virtual=False,
    )
    from hvsim.model.net import IPAddr

    nic.ips.append(IPAddr(profile.nic_ip, profile.nic_prefix, origin="Dhcp"))
    nic.dhcp = True
    nic.gateway = ".".join(profile.nic_ip.split(".")[:3]) + ".1"
    for spec in profile.images:
        path = f"{IMAGES_DIR}\\{spec.file}"
        image = windows_image(path, spec.info)
        image.disk_identifier = str(world.new_uuid()).upper()
        image.disk_guid = "{" + str(world.new_uuid()).upper() + "}"
        host.fs.write(path, image, create_parents=True)
    from hvsim.model.ad import outside_domain

    for spec in profile.domains:
        dom = outside_domain(
            world,
            fqdn=spec.fqdn,
            netbios=spec.netbios,
            dc_name=spec.dc_name,
            dc_address=spec.dc_address,
            accounts={spec.join_account: spec.join_password_hash},
            file_servers=[(spec.file_server, spec.file_server_address, list(spec.shares))],
        )
        world.domains[dom.fqdn] = dom
    # The profile's free space is what is free with the images in place.
    c.used_base = 0
    c.used_base = max(0, profile.c_size - profile.c_free - c.used())
    host.os.last_boot_time = -3 * 24 * 3600.0  # the host has been up three days


def _vt(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))
