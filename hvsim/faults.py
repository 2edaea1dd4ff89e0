"""Seeded fault injection, configured by a small spec string (--faults / HVSIM_FAULTS).

Grammar (entries separated by ';', options by ','):

    spec    := entry (';' entry)*
    entry   := 'seed=' INT | kind [':' option (',' option)*]
    option  := key '=' value

Kinds:

    boot_hang:vm=<name>[,phase=Specialize][,once=1]
        The guest of <name> never gets past <phase> (R-35, R-76). With once=1
        the hang clears when the VM is turned off and started again (the one
        hard reset R-35 allows), as a console-stall does.
    transient:cmdlet=<name>[,nth=N][,rate=P][,machine=<name>]
        The Nth call (or each call with probability P) of <cmdlet> fails once
        with a terminating ErrorRecord; the next call succeeds.
    drop:cmdlet=<name>[,nth=N][,rate=P]
        The connection is cut while <cmdlet> runs: DropConnection is raised
        and the transport closes the socket without a reply.
    lost:cmdlet=<name>[,nth=N][,rate=P]
        The call runs to its end (the model changes), then the connection is
        cut before the response leaves: the client sees a transport error for
        a call that did run (R-92).

A cmdlet= option may also name one of hvlab's constant scripts by its file name
without .ps1 (drop:cmdlet=Write-FileChunk); hvsim.scripts checks it before the
script runs.
    slow_reboot:factor=F[,vm=<name>]
        Reboots (Restart-VM, and restarts the guest performs) take F times longer.
    slow_boot:factor=F[,vm=<name>]
        First boots take F times longer.
    disk_full:after_bytes=N[,drive=C]
        The host volume accepts N more bytes, then reports no free space (R-79).
    ad_slow:factor=F
        AD becomes ready F times later after promotion (R-81).

Examples: `boot_hang:vm=hvhost02;seed=7`,
`transient:cmdlet=New-VHD,nth=2;drop:cmdlet=Install-WindowsFeature,rate=0.1;seed=7`.

Randomness comes from a generator seeded by `seed=` (or the world's seed), so
a run with the same spec fails the same way each time.

Faults belong to the process that asked for them: they are never written into a
state file (hvsim.persist), and a process without a spec runs without faults.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Iterable
from typing import Any

from hvsim.errors import PSError

KINDS = (
    "boot_hang",
    "transient",
    "drop",
    "lost",
    "slow_reboot",
    "slow_boot",
    "disk_full",
    "ad_slow",
)

_REQUIRED = {
    "boot_hang": ("vm",),
    "transient": ("cmdlet",),
    "drop": ("cmdlet",),
    "lost": ("cmdlet",),
    "slow_reboot": ("factor",),
    "slow_boot": ("factor",),
    "disk_full": ("after_bytes",),
    "ad_slow": ("factor",),
}
_ALLOWED = {
    "boot_hang": {"vm", "phase", "once"},
    "transient": {"cmdlet", "nth", "rate", "machine"},
    "drop": {"cmdlet", "nth", "rate"},
    "lost": {"cmdlet", "nth", "rate"},
    "slow_reboot": {"factor", "vm"},
    "slow_boot": {"factor", "vm"},
    "disk_full": {"after_bytes", "drive"},
    "ad_slow": {"factor"},
}


# The phases a guest's boot can hang in (hvsim.model.guest timelines, R-35/R-76).
_PHASES = {p.lower(): p for p in ("Firmware", "Specialize", "OOBE", "Booting")}
_COMPUTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,14}")
_BOOL = {"1", "0", "true", "false", "yes", "no"}


def _type_name(cmdlet: str) -> str:
    """What follows the comma in an FQID raised by `cmdlet` (its .NET class or function)."""
    try:
        from hvsim.bind import command_type_name, resolve_command

        return command_type_name(resolve_command(cmdlet))
    except (ImportError, PSError, KeyError):
        return cmdlet


class DropConnection(Exception):
    """The transport must close the client's connection without answering."""


class FaultSpecError(ValueError):
    """The spec string is malformed; the message names the bad entry."""


@dataclasses.dataclass
class Fault:
    kind: str
    opts: dict[str, str]
    fired: int = 0  # how many times it took effect
    cleared: bool = False

    def num(self, key: str, default: float) -> float:
        return float(self.opts[key]) if key in self.opts else default

    def matches_vm(self, name: str) -> bool:
        want = self.opts.get("vm")
        return want is None or want.lower() == name.lower()


class Faults:
    def __init__(self, faults: list[Fault], seed: int) -> None:
        self.faults = faults
        self.seed = seed
        self.rng = random.Random(seed)
        self.calls: dict[str, int] = {}
        self.log: list[str] = []  # what fired, for sim.show and tests
        self.installed_in: Any = None  # the world whose state faults were applied to

    @classmethod
    def parse(cls, spec: str, seed: int = 0, vms: Iterable[str] | None = None) -> Faults:
        """Faults from a spec string. With `vms`, a vm= or machine= value must name one
        of them (the VMs of the lab the process builds); any value must be a computer
        name, a phase= one of the boot phases a guest can hang in."""
        known = {v.lower(): v for v in vms} if vms is not None else None
        faults: list[Fault] = []
        for raw in (spec or "").split(";"):
            entry = raw.strip()
            if not entry:
                continue
            if entry.lower().startswith("seed="):
                try:
                    seed = int(entry.split("=", 1)[1])
                except ValueError:
                    raise FaultSpecError(f"fault spec: bad seed in {entry!r}") from None
                continue
            kind, _, rest = entry.partition(":")
            kind = kind.strip().lower()
            if kind not in KINDS:
                raise FaultSpecError(
                    f"fault spec: unknown kind {kind!r} in {entry!r}; known: {', '.join(KINDS)}"
                )
            opts: dict[str, str] = {}
            for item in filter(None, (x.strip() for x in rest.split(","))):
                key, eq, value = item.partition("=")
                key = key.strip().lower()
                if not eq or not value.strip():
                    raise FaultSpecError(
                        f"fault spec: option {item!r} in {entry!r} needs key=value"
                    )
                if key not in _ALLOWED[kind]:
                    raise FaultSpecError(
                        f"fault spec: {kind} has no option {key!r} (allowed: {', '.join(sorted(_ALLOWED[kind]))})"
                    )
                opts[key] = value.strip()
            for key in _REQUIRED[kind]:
                if key not in opts:
                    raise FaultSpecError(f"fault spec: {kind} needs {key}=... in {entry!r}")
            for key in ("vm", "machine"):
                if key in opts:
                    name = opts[key]
                    if not _COMPUTER_NAME.fullmatch(name):
                        raise FaultSpecError(
                            f"fault spec: {key}= must be a VM name (letters, digits, -; at most "
                            f"15) in {entry!r}"
                        )
                    if known is not None and name.lower() not in known:
                        raise FaultSpecError(
                            f"fault spec: {key}={name} in {entry!r} is not a VM of this lab "
                            f"(its VMs: {', '.join(sorted(known.values()))})"
                        )
            if "phase" in opts:
                phase = _PHASES.get(opts["phase"].lower())
                if phase is None:
                    raise FaultSpecError(
                        f"fault spec: phase={opts['phase']} in {entry!r} is not a boot phase; "
                        f"use one of {', '.join(_PHASES.values())}"
                    )
                opts["phase"] = phase
            if "once" in opts and opts["once"].lower() not in _BOOL:
                raise FaultSpecError(f"fault spec: once= must be 1 or 0 in {entry!r}")
            if "drive" in opts and not re.fullmatch(r"[A-Za-z]:?", opts["drive"]):
                raise FaultSpecError(f"fault spec: drive= must be a drive letter in {entry!r}")
            if "cmdlet" in opts and not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", opts["cmdlet"]):
                raise FaultSpecError(
                    f"fault spec: cmdlet= must be a cmdlet name such as New-VHD in {entry!r}"
                )
            for key in ("nth", "after_bytes"):
                if key in opts and not opts[key].isdigit():
                    raise FaultSpecError(f"fault spec: {key} must be a whole number in {entry!r}")
            for key in ("rate", "factor"):
                if key in opts:
                    try:
                        val = float(opts[key])
                    except ValueError:
                        raise FaultSpecError(
                            f"fault spec: {key} must be a number in {entry!r}"
                        ) from None
                    if key == "rate" and not 0 <= val <= 1:
                        raise FaultSpecError(f"fault spec: rate must be within 0..1 in {entry!r}")
                    if key == "factor" and val <= 0:
                        raise FaultSpecError(f"fault spec: factor must be > 0 in {entry!r}")
            faults.append(Fault(kind, opts))
        return cls(faults, seed)

    def of(self, kind: str) -> list[Fault]:
        return [f for f in self.faults if f.kind == kind and not f.cleared]

    def install(self, world: Any) -> None:
        """Apply faults that are state rather than events (disk_full). Idempotent per world;
        check() does it too, so a Faults object assigned to world.faults takes effect."""
        if self.installed_in is world:
            return
        self.installed_in = world
        for f in self.of("disk_full"):
            drive = f.opts.get("drive", "C").rstrip(":").upper()
            vol = world.host.fs.drives.get(drive)
            if vol is not None:
                vol.write_budget = int(f.opts["after_bytes"])

    # -- hooks -----------------------------------------------------------------

    def check(self, ctx: Any, call: Any) -> None:
        """Called by the executor before each handler: may raise PSError or DropConnection."""
        world = getattr(ctx, "world", None)
        if world is not None and self.installed_in is not world:
            self.install(world)
        name = str(getattr(call, "name", "")).lower()
        n = self.calls[name] = self.calls.get(name, 0) + 1
        for f in self.of("drop"):
            if f.opts["cmdlet"].lower() == name and self._due(f, n):
                f.fired += 1
                self.log.append(f"drop {call.name} call {n}")
                raise DropConnection(f"injected: connection dropped during {call.name}")
        for f in self.of("transient"):
            if f.opts["cmdlet"].lower() != name:
                continue
            want_machine = f.opts.get("machine")
            machine = getattr(getattr(ctx, "machine", None), "name", "")
            if want_machine and want_machine.lower() != str(machine).lower():
                continue
            if self._due(f, n):
                f.fired += 1
                self.log.append(f"transient {call.name} call {n}")
                _log_in_guest(ctx, call.name)
                raise PSError(
                    "The operation could not be completed because of a temporary failure: "
                    "The RPC server is unavailable. (0x800706BA)",
                    fqid=f"TransientFailure,{_type_name(call.name)}",
                    category="ResourceUnavailable",
                    exception="System.Runtime.InteropServices.COMException",
                    target=call.name,
                )

    def after(self, ctx: Any, call: Any) -> None:
        """Called by the executor after a handler ran: may raise DropConnection, so the
        client loses the response to a call that did run (lost, R-92)."""
        name = str(getattr(call, "name", "")).lower()
        n = self.calls.get(name, 0)
        for f in self.of("lost"):
            if f.opts["cmdlet"].lower() == name and self._due(f, n):
                f.fired += 1
                self.log.append(f"lost {call.name} call {n}")
                raise DropConnection(f"injected: response to {call.name} lost after it ran")

    def _due(self, f: Fault, n: int) -> bool:
        if "nth" in f.opts:
            return n == int(f.opts["nth"])
        if "rate" in f.opts:
            return self.rng.random() < float(f.opts["rate"])
        return f.fired == 0

    def stuck_phase(self, vm: Any) -> str | None:
        """The phase the guest of `vm` hangs in, or None (boot_hang, R-35/R-76)."""
        for f in self.of("boot_hang"):
            if f.matches_vm(vm.name):
                return f.opts.get("phase", "Specialize")
        return None

    def on_power_off(self, vm: Any) -> None:
        """A hard reset clears a once-only hang (R-76: a stall until someone acts)."""
        for f in self.of("boot_hang"):
            if f.matches_vm(vm.name) and f.opts.get("once", "0").lower() in ("1", "true", "yes"):
                f.cleared = True
                self.log.append(f"boot_hang of {vm.name} cleared by power off")

    def boot_factor(self, vm: Any, kind: str = "reboot") -> float:
        """Multiplier for a boot of `vm`: kind 'reboot' (slow_reboot) or 'first_boot' (slow_boot)."""
        fault_kind = "slow_reboot" if kind == "reboot" else "slow_boot"
        factor = 1.0
        for f in self.of(fault_kind):
            if f.matches_vm(vm.name):
                factor *= f.num("factor", 1.0)
        return factor

    def factor(self, kind: str) -> float:
        """A plain multiplier such as ad_slow (R-81)."""
        factor = 1.0
        for f in self.of(kind):
            factor *= f.num("factor", 1.0)
        return factor

    def describe(self) -> list[str]:
        out = [f"seed={self.seed}"]
        for f in self.faults:
            opts = ",".join(f"{k}={v}" for k, v in f.opts.items())
            state = " (cleared)" if f.cleared else ""
            out.append(f"{f.kind}:{opts}{state}")
        return out


def _log_in_guest(ctx: Any, cmdlet: str) -> None:
    """An injected failure inside a guest leaves an Application error whose source says
    it is hvsim's own, so a diagnostics bundle shows it and nobody takes it for Windows'."""
    machine = getattr(ctx, "machine", None)
    if machine is None or machine is getattr(getattr(ctx, "world", None), "host", None):
        return
    event = getattr(machine, "event", None)
    if callable(event):
        event(
            "Application",
            "hvsim",
            1,
            "Error",
            f"hvsim injected a transient failure of {cmdlet} (HVSIM_FAULTS).",
        )


def parse(spec: str, seed: int = 0, vms: Iterable[str] | None = None) -> Faults:
    """Faults.parse as a function: `hvsim.faults.parse(os.environ["HVSIM_FAULTS"])`."""
    return Faults.parse(spec, seed=seed, vms=vms)
