"""What the steps read from the host, in as few round trips as the protocol allows.

Every call to a host costs round trips (a Command and a Receive at least); over a
real link each one is tens of milliseconds. So the host-side facts of the lab (its
VMs and their hardware, disks, switches, addresses, NAT, the folder's mark) are
read as the statements of one pipeline (`Host.batch`), each answer typed
(`VmFacts`, `HostFacts`), and:

- preflight reads all of them with its own checks, in one round trip;
- a later step uses that reading as long as the run has changed nothing since
  (`Run.generation`; plan never changes anything), and otherwise reads just what it
  needs anew, again in one round trip;
- a wait never uses an earlier reading: it polls for what happens meanwhile.

Reads inside guests go through templates/guest/Get-GuestFacts.ps1 and
Get-ClusterFacts.ps1: one PowerShell Direct call returns several facts, each under
its name (`GuestFacts`). Such a reading is kept too, and a later step that asks for
no more than it holds uses it while the run has changed nothing since.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hvlab.remote import Call, Statement

SILENT = {"ErrorAction": "SilentlyContinue"}


class Reads:
    """Named statements for one batch: add them, send them as one pipeline, read the
    answers by name."""

    def __init__(self, base: Reads | None = None) -> None:
        """A new set of reads, beginning with a copy of `base`'s."""
        self._names: list[str] = list(base._names) if base is not None else []
        self._statements: list[Statement] = list(base._statements) if base is not None else []

    def add(self, name: str, *calls: Call) -> None:
        if name in self._names:
            raise ValueError(f"two reads named {name!r} in one batch")
        self._names.append(name)
        self._statements.append(calls[0] if len(calls) == 1 else list(calls))

    def __len__(self) -> int:
        return len(self._names)

    def send(self, host: Any) -> dict[str, list[Any]]:
        answers = host.batch(self._statements)
        return dict(zip(self._names, answers, strict=True))


def _first(values: Iterable[Any]) -> Any:
    for value in values:
        return value
    return None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _get(rec: Any, key: str) -> Any:
    if isinstance(rec, Mapping):
        return rec.get(key)
    return None


def _by_vm(records: list[Any], name: str) -> list[Any]:
    return [r for r in records if _text(_get(r, "VMName")).lower() == name.lower()]


# --- the VMs ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class VmFacts:
    """One lab VM as the host shows it: Get-VM (every VM of that name, R-20), its
    processor, firmware, network adapters with their VLAN settings, drives, and the
    VHD file of its OS disk (None: no such file). Its data disks' files are read by
    the VM step, and only those not attached: one attached at its path is the lab's."""

    name: str
    found: list[Any]
    processor: Any
    firmware: Any
    adapters: list[Any]
    drives: list[Any]
    vlans: dict[str, Any]  # adapter name -> Get-VMNetworkAdapterVlan (NICs with a VLAN)
    os_vhd: Any

    @property
    def vm(self) -> Any:
        """The VM, when exactly one has the name."""
        return self.found[0] if len(self.found) == 1 else None


def add_vm_reads(reads: Reads, lab: Any, vms: Sequence[Any], *, must_exist: bool = False) -> None:
    """The reads of `vms`' facts. Without `must_exist` every read may find nothing
    (SilentlyContinue, R-21): the VMs and files may not exist yet."""
    quiet = {} if must_exist else SILENT
    names = [vm.host_name for vm in vms]
    reads.add("vm", ("Get-VM", {"Name": names, **quiet}))
    reads.add("vm.processor", ("Get-VMProcessor", {"VMName": names, **quiet}))
    reads.add("vm.firmware", ("Get-VMFirmware", {"VMName": names, **quiet}))
    reads.add("vm.adapters", ("Get-VMNetworkAdapter", {"VMName": names, **quiet}))
    reads.add("vm.drives", ("Get-VMHardDiskDrive", {"VMName": names, **quiet}))
    for vm in vms:
        for nic in vm.nics:
            if nic.vlan is not None:
                # Piped: an adapter that does not exist yet gives nothing, not an error.
                reads.add(
                    f"vlan:{vm.name}:{nic.name}",
                    ("Get-VMNetworkAdapter", {"VMName": vm.host_name, "Name": nic.name, **SILENT}),
                    ("Get-VMNetworkAdapterVlan", {}),
                )
    # Every OS disk in one statement: Get-VHD takes several paths and answers each
    # file that exists with its Path, by which the answers are told apart.
    reads.add("vhd", ("Get-VHD", {"Path": [lab.os_disk_path(vm) for vm in vms], **SILENT}))


def vhds_by_path(found: Iterable[Any]) -> dict[str, Any]:
    """Get-VHD's answers by lower-case path."""
    return {_text(_get(v, "Path")).lower(): v for v in found}


def vm_facts_from(
    answers: Mapping[str, list[Any]], lab: Any, vms: Sequence[Any]
) -> dict[str, VmFacts]:
    out: dict[str, VmFacts] = {}
    files = vhds_by_path(answers["vhd"])
    for vm in vms:
        # Keyed by the computer name; the host knows the VM by its host name.
        on_host = vm.host_name
        out[vm.name.lower()] = VmFacts(
            name=vm.name,
            found=_by_name(answers["vm"], on_host),
            processor=_first(_by_vm(answers["vm.processor"], on_host)),
            firmware=_first(_by_vm(answers["vm.firmware"], on_host)),
            adapters=_by_vm(answers["vm.adapters"], on_host),
            drives=_by_vm(answers["vm.drives"], on_host),
            vlans={
                nic.name: _first(answers[f"vlan:{vm.name}:{nic.name}"])
                for nic in vm.nics
                if nic.vlan is not None
            },
            os_vhd=files.get(lab.os_disk_path(vm).lower()),
        )
    return out


def _by_name(records: list[Any], name: str) -> list[Any]:
    return [r for r in records if _text(_get(r, "Name")).lower() == name.lower()]


def read_vm_facts(
    host: Any, lab: Any, vms: Sequence[Any], *, must_exist: bool = False
) -> dict[str, VmFacts]:
    """The facts of `vms` in one round trip, by lower-case VM name."""
    reads = Reads()
    add_vm_reads(reads, lab, vms, must_exist=must_exist)
    return vm_facts_from(reads.send(host), lab, vms)


# --- the host -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class HostFacts:
    """The lab on the host: its VMs (by lower-case name), every virtual switch, the
    addresses of the lab's host vNICs (by interface alias), the NAT networks, and
    the lines of the lab folder's mark file."""

    vms: dict[str, VmFacts]
    switches: list[Any]
    addresses: dict[str, list[Any]]
    nats: list[Any]
    marker: list[Any]

    def vm(self, name: str) -> VmFacts:
        return self.vms[name.lower()]

    def switch(self, name: str) -> Any:
        return _first(_by_name(self.switches, name))


def gateway_aliases(lab: Any) -> list[str]:
    """The host vNICs that carry a lab gateway address (R-72)."""
    return [
        f"vEthernet ({sw.host_name})"
        for sw in lab.switches
        if sw.type == "Internal" and sw.gateway is not None
    ]


def add_host_reads(reads: Reads, lab: Any) -> None:
    """Everything the host-side steps (folder, switches, mounts, the VMs) read."""
    reads.add("marker", ("Get-Content", {"Path": lab.marker_path, **SILENT}))
    reads.add("switches", ("Get-VMSwitch", {}))  # -Name takes one name: read all, pick
    for alias in gateway_aliases(lab):
        reads.add(f"ip:{alias}", ("Get-NetIPAddress", {"InterfaceAlias": alias, **SILENT}))
    if any(sw.nat for sw in lab.switches):
        reads.add("nat", ("Get-NetNat", SILENT))
    add_vm_reads(reads, lab, lab.vms)


def host_facts_from(answers: Mapping[str, list[Any]], lab: Any) -> HostFacts:
    return HostFacts(
        vms=vm_facts_from(answers, lab, lab.vms),
        switches=list(answers["switches"]),
        addresses={a: list(answers[f"ip:{a}"]) for a in gateway_aliases(lab)},
        nats=list(answers.get("nat", [])),
        marker=list(answers["marker"]),
    )


def read_host_facts(host: Any, lab: Any) -> HostFacts:
    reads = Reads()
    add_host_reads(reads, lab)
    return host_facts_from(reads.send(host), lab)


class FactStore:
    """The run's last reading of the host, and of each guest (by script and VM), kept
    with the generation it was read at: a reading stands while the run has changed
    nothing since."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: tuple[int, HostFacts] | None = None
        self._guests: dict[str, tuple[int, GuestFacts]] = {}

    def keep_guest(self, key: str, generation: int, facts: GuestFacts) -> None:
        with self._lock:
            kept = self._guests.get(key)
            if kept is None or kept[0] <= generation:
                self._guests[key] = (generation, facts)

    def guest(self, key: str, generation: int, asked: Mapping[str, Any]) -> GuestFacts | None:
        with self._lock:
            kept = self._guests.get(key)
        if kept is None or kept[0] != generation or not kept[1].covers(asked):
            return None
        return kept[1].narrow(asked)

    def keep(self, generation: int, facts: HostFacts) -> None:
        with self._lock:
            if self._kept is None or self._kept[0] <= generation:
                self._kept = (generation, facts)

    def current(self, generation: int) -> HostFacts | None:
        with self._lock:
            if self._kept is not None and self._kept[0] == generation:
                return self._kept[1]
            return None


def _store(ctx: Any) -> FactStore | None:
    store = ctx.run.services.get("facts")
    return store if isinstance(store, FactStore) else None


def kept_host_facts(ctx: Any) -> HostFacts | None:
    """The run's reading of the host, if nothing has changed since it was made."""
    store = _store(ctx)
    return None if store is None else store.current(ctx.run.generation)


def keep_host_facts(ctx: Any, generation: int, facts: HostFacts) -> None:
    """Keep a reading made when the run was at `generation` (read before the call)."""
    store = _store(ctx)
    if store is not None:
        store.keep(generation, facts)


def kept_guest_facts(ctx: Any, script: str, vm: str, asked: Mapping[str, Any]) -> GuestFacts | None:
    """What an earlier step read in `vm` with `script`, if it read at least `asked` and
    the run has changed nothing since. Never for a wait: it polls for what changes."""
    store = _store(ctx)
    if store is None:
        return None
    return store.guest(f"{script} @{vm.lower()}", ctx.run.generation, asked)


def keep_guest_facts(ctx: Any, script: str, vm: str, generation: int, facts: GuestFacts) -> None:
    store = _store(ctx)
    if store is not None:
        store.keep_guest(f"{script} @{vm.lower()}", generation, facts)


def host_facts(ctx: Any) -> HostFacts:
    """The lab on the host: the kept reading while nothing changed, else read anew."""
    kept = kept_host_facts(ctx)
    if kept is not None:
        return kept
    generation = ctx.run.generation
    facts = read_host_facts(ctx.host, ctx.lab)
    keep_host_facts(ctx, generation, facts)
    return facts


def vm_facts(ctx: Any, vm: Any) -> VmFacts:
    """One VM's facts: from the kept reading while nothing changed, else read anew (the
    VM only)."""
    kept = kept_host_facts(ctx)
    if kept is not None:
        return kept.vm(vm.name)
    return read_vm_facts(ctx.host, ctx.lab, [vm])[vm.name.lower()]


# --- inside guests --------------------------------------------------------------

GUEST_FACTS = "Get-GuestFacts.ps1"
CLUSTER_FACTS = "Get-ClusterFacts.ps1"
FACT_TYPE = "hvlab.GuestFact"


# The list parameters of the facts scripts: the fact each fills, and the property by
# which an answer says which item it is for (None: one answer per item, in order).
_ITEMS: dict[str, tuple[str, str | None]] = {
    "Path": ("Path", None),
    "Feature": ("Feature", "Name"),
    "DnsClient": ("DnsClient", "InterfaceAlias"),
    "Service": ("Service", "Name"),
    "Group": ("Group", "Name"),
    "VirtualDisk": ("VirtualDisk", "FriendlyName"),
}


def _items(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


class GuestFacts(Mapping[str, list[Any]]):
    """What Get-GuestFacts.ps1 or Get-ClusterFacts.ps1 returned: the objects of each
    fact asked for, by the fact's name (a fact that found nothing is an empty list),
    and the parameters it was asked with."""

    def __init__(
        self, sections: dict[str, list[Any]], asked: Mapping[str, Any] | None = None
    ) -> None:
        self._sections = sections
        self.asked = dict(asked or {})

    @classmethod
    def parse(
        cls, output: list[Any], names: Iterable[str], asked: Mapping[str, Any] | None = None
    ) -> GuestFacts:
        sections: dict[str, list[Any]] = {}
        current: list[Any] | None = None
        for value in output:
            types = getattr(value, "type_names", None) or []
            if any(t.endswith(FACT_TYPE) for t in types):
                current = sections.setdefault(_text(_get(value, "Fact")), [])
                continue
            if current is None:
                raise ValueError(f"the script answered {value!r} before naming a fact")
            current.append(value)
        missing = [name for name in names if name not in sections]
        if missing:
            raise ValueError(f"the script did not answer {', '.join(missing)}")
        return cls(sections, asked)

    def __getitem__(self, key: str) -> list[Any]:
        return self._sections[key]

    def __iter__(self) -> Any:
        return iter(self._sections)

    def __len__(self) -> int:
        return len(self._sections)

    def one(self, key: str) -> Any:
        return _first(self._sections.get(key, []))

    def covers(self, asked: Mapping[str, Any]) -> bool:
        """Were these facts read, for at least these items, in this reading?"""
        for key, value in asked.items():
            if key in _ITEMS:
                # Names and paths are case-insensitive on Windows.
                wanted = {v.lower() for v in _items(value)}
                if not wanted <= {v.lower() for v in _items(self.asked.get(key))}:
                    return False
            elif isinstance(value, bool):
                if value and self.asked.get(key) is not True:
                    return False
            elif self.asked.get(key) != value:
                return False
        return True

    def narrow(self, asked: Mapping[str, Any]) -> GuestFacts:
        """The answer to `asked` (which this reading covers): list facts only for the
        items asked, in the order asked."""
        sections = dict(self._sections)
        for key, value in asked.items():
            if key not in _ITEMS or key not in self.asked:
                continue
            fact, by = _ITEMS[key]
            if fact not in sections:
                continue
            wanted = _items(value)
            if by is None:
                answers = {
                    item.lower(): answer
                    for item, answer in zip(_items(self.asked[key]), sections[fact], strict=False)
                }
                sections[fact] = [answers[i.lower()] for i in wanted if i.lower() in answers]
            else:
                names = {w.lower() for w in wanted}
                sections[fact] = [v for v in sections[fact] if _text(_get(v, by)).lower() in names]
        return GuestFacts(sections, asked)
