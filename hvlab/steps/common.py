"""Helpers every step uses: reading records, reaching guests, waiting for them.

Deadlines are host seconds from hyperv-facts.md §11 ("Orch deadline"); polls follow
R-35. On the simulated host the engine scales both by the timescale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hvlab.engine import StepContext
from hvlab.errors import HostError, StepError
from hvlab.facts import (
    CLUSTER_FACTS,
    GUEST_FACTS,
    GuestFacts,
    keep_guest_facts,
    kept_guest_facts,
)
from hvlab.guest import BAD_CREDENTIAL, NO_SUCH_VM, NOT_READY, Guest, as_whoever_logs_on, classify

# How long each wait may take is a setting (hvlab.waits, ctx.waits); how often it
# looks is not.
READY_POLL = 5.0
AD_POLL = 10.0

SILENT = {"ErrorAction": "SilentlyContinue"}


def mark(lab_name: str) -> str:
    """The ownership mark in VM and switch Notes."""
    return f"hvlab:{lab_name}"


def has_mark(notes: Any, lab_name: str) -> bool:
    return isinstance(notes, str) and notes.splitlines()[:1] == [mark(lab_name)]


def owns_vm(rec: Any, lab: Any, folder_is_ours: bool) -> bool:
    """Is this VM the lab's? It carries the mark in its Notes; or, created by a run
    that stopped before it could mark it, it has no Notes, its name is one of the
    lab's VMs and its configuration lives in that VM's own folder in the lab's marked
    folder. New-VM cannot set Notes, so the two calls are never atomic."""
    notes = val(rec, "Notes")
    if has_mark(notes, lab.name):
        return True
    if not folder_is_ours or text(notes).strip():
        return False
    spec = lab.by_host_name(text(val(rec, "Name")))
    return spec is not None and same_path(val(rec, "Path"), lab.vm_folder(spec))


def other_lab(notes: Any) -> str | None:
    """The lab whose mark a VM or switch carries, if any."""
    first_line = text(notes).splitlines()[:1]
    if first_line and first_line[0].startswith("hvlab:"):
        return first_line[0][len("hvlab:") :].strip() or None
    return None


def foreign_vm(rec: Any, vm: Any, lab: Any) -> str:
    """What to say of a VM that has the host name of one of the lab's VMs and is not
    the lab's: whose it is (the lab its Notes name), or that nothing marks it."""
    from hvlab.spec.names import show

    owner = other_lab(val(rec, "Notes"))
    if owner:
        whose = f"it belongs to lab {show(owner)}: its Notes carry that lab's mark"
        fix = (
            "Give this lab a vm_prefix of its own in the lab file (R-145), "
            "or take that lab down first"
        )
    else:
        whose = "its Notes carry no hvlab mark"
        fix = "Rename or remove it, or change the VM name or vm_prefix in the lab file"
    return (
        f"a VM named {vm.host_name} already exists on the host and is not part of lab "
        f"{lab.name} ({whose}). {fix}; hvlab will not touch it."
    )


def mark_owner(lines: Iterable[Any]) -> str:
    """The lab a folder's mark file names (its first line), or ''."""
    for line in lines:
        return text(line).strip()
    return ""


def lab_folder_is_ours(host: Any, lab: Any) -> bool:
    """The lab folder carries a mark file naming the lab (written by the folder step)."""
    marker = host.run("Get-Content", Path=lab.marker_path, ErrorAction="SilentlyContinue")
    return mark_owner(marker) == lab.name


# What the lab records creating, one line each in <root>\.hvlab-created: the kind and
# the path (or name). lab.down removes what is recorded and nothing else; adcomputer
# names a computer object the lab created in an existing domain, adreused one that was
# there before and that the lab only used (lab.down leaves it and says so, R-125).
RECORD_KINDS = ("folder", "file", "nat", "adcomputer", "adreused")


def record_line(kind: str, what: str) -> str:
    assert kind in RECORD_KINDS
    return f"{kind} {what}"


def parse_record(lines: Iterable[Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for line in lines:
        kind, _, what = text(line).strip().partition(" ")
        if kind in RECORD_KINDS and what.strip():
            out.append((kind, what.strip()))
    return out


def record_created(ctx: Any, kind: str, *items: str) -> None:
    """Write down, on the host next to the mark, what the lab is about to create.
    Called inside ctx.change, just before the call that creates it (a plan records
    nothing): a run killed in between leaves a record of something that may not
    exist, which lab.down skips, never something of ours without a record."""
    lines = [record_line(kind, item) for item in items]
    ctx.host.run("Add-Content", Path=ctx.lab.record_path, Value=lines)


def notes_text(lab_name: str) -> str:
    return f"{mark(lab_name)}\nCreated by hvlab for lab {lab_name}; removed by 'invoke lab.down'."


def val(rec: Any, key: str, default: Any = None) -> Any:
    """A property of a record, whatever its kind (mapping, or an object with attributes)."""
    if rec is None:
        return default
    if isinstance(rec, Mapping):
        return rec.get(key, default)
    getter = getattr(rec, "get", None)
    if callable(getter):
        return getter(key, default)
    return getattr(rec, key, default)


def first(records: Iterable[Any]) -> Any:
    for rec in records:
        return rec
    return None


def text(value: Any) -> str:
    return "" if value is None else str(value)


def same_path(a: Any, b: Any) -> bool:
    return text(a).rstrip("\\").lower() == text(b).rstrip("\\").lower()


# --- guests -----------------------------------------------------------------


def together(*calls: Callable[[], Any]) -> list[Any]:
    """Run independent reads side by side (each over its own connection); results in
    order; the first failure, in call order, is raised once all have finished."""
    if len(calls) == 1:
        return [calls[0]()]
    with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="hvlab-read") as pool:
        futures = [pool.submit(call) for call in calls]
    for future in futures:
        exc = future.exception()
        if exc is not None:
            raise exc
    return [f.result() for f in futures]


def guest(ctx: StepContext, vm: str) -> Guest:
    """A session to a VM with the credential that last worked for it (R-38)."""
    return Guest(ctx.host, vm, ctx.creds.current(vm), ctx.lab.on_host(vm))


def _with_fallback(ctx: StepContext, vm: str, call: Any) -> list[Any]:
    return as_whoever_logs_on(ctx.host, ctx.creds, vm, call)


def in_guest(ctx: StepContext, vm: str, command: str, **params: Any) -> list[Any]:
    """Run a cmdlet in a VM as the account that logs on there."""
    return _with_fallback(ctx, vm, lambda g: g.run(command, **params))


def guest_script(ctx: StepContext, vm: str, name: str, **params: Any) -> list[Any]:
    """Run a constant guest script in a VM as the account that logs on there."""
    return _with_fallback(ctx, vm, lambda g: g.script(name, **params))


# Get-GuestFacts.ps1's parameters, and the facts they name in its answer.
_GUEST_FACTS = {
    "OperatingSystem": "OperatingSystem",
    "ComputerSystem": "ComputerSystem",
    "AdapterNames": "AdapterNames",
    "NetAdapter": "NetAdapter",
    "Path": "Path",
    "Feature": "Feature",
    "DnsClient": "DnsClient",
    "RegistryPath": "Registry",
    "Service": "Service",
    "VMHost": "VMHost",
    "DomainController": "DomainController",
    "VMSwitch": None,  # only written where Hyper-V runs
}


def guest_facts(ctx: StepContext, vm: str, **asked: Any) -> GuestFacts:
    """Several facts inside a VM in one PowerShell Direct call (Get-GuestFacts.ps1), as
    the account that logs on there. Parameters name the facts (switches) and what to
    read them for (paths, features, ...); each fact's objects come back typed."""
    params = {k: v for k, v in asked.items() if v not in (None, False, [], ())}
    unknown = [k for k in params if k not in _GUEST_FACTS and k != "RegistryValue"]
    if unknown:
        raise ValueError(f"{GUEST_FACTS} reads no fact {', '.join(unknown)}")
    names = [_GUEST_FACTS[k] for k in params if _GUEST_FACTS.get(k)]
    return _read_facts(ctx, vm, GUEST_FACTS, params, names)


def cluster_facts(ctx: StepContext, vm: str, **asked: Any) -> GuestFacts:
    """The facts of the cluster `vm` is in, in one PowerShell Direct call
    (Get-ClusterFacts.ps1): "Cluster" always (empty when there is none), the others
    asked for only when there is a cluster."""
    params = {k: v for k, v in asked.items() if v not in (None, False, [], ())}
    return _read_facts(ctx, vm, CLUSTER_FACTS, params, ["Cluster"])


def _read_facts(
    ctx: StepContext, vm: str, script: str, params: dict[str, Any], names: list[str]
) -> GuestFacts:
    """A facts script in `vm`; the reading is kept for later steps (hvlab.facts)."""
    generation = ctx.run.generation
    out = guest_script(ctx, vm, script, **params)
    try:
        facts = GuestFacts.parse(out, names, params)
    except ValueError as err:
        raise HostError(f"{script} @{vm}", str(err), error_id="hvlab.GuestFacts") from None
    keep_guest_facts(ctx, script, vm, generation, facts)
    return facts


def known_guest_facts(ctx: StepContext, vm: str, **asked: Any) -> GuestFacts:
    """guest_facts, answered from an earlier step's reading while the run has changed
    nothing since it was made (not for waits: they look again each time)."""
    params = {k: v for k, v in asked.items() if v not in (None, False, [], ())}
    kept = kept_guest_facts(ctx, GUEST_FACTS, vm, params)
    return kept if kept is not None else guest_facts(ctx, vm, **asked)


def tolerant(probe: Callable[[], tuple[bool, str]]) -> Callable[[], tuple[bool, str]]:
    """A wait's probe that keeps waiting through the errors of a lab in trouble or a
    guest that is starting (a node that does not answer, a session cut by a restart)."""

    def run() -> tuple[bool, str]:
        try:
            return probe()
        except HostError as err:
            return False, f"no answer: {err.message[:160]}"

    return run


def probe(ctx: StepContext, vm: str, *, missing: bool = False, **asked: Any) -> tuple[bool, Any]:
    """A PowerShell Direct round trip (R-35) that reads the guest's facts on the way:
    (True, GuestFacts with OperatingSystem and what was asked) when the guest
    answers, else (False, why not). A VM the host does not have is an error, unless
    `missing` (the caller looks at the VM's state then)."""
    try:
        facts = guest_facts(ctx, vm, **{**asked, "OperatingSystem": True})
    except HostError as err:
        kind = classify(err)
        if kind in (NOT_READY, BAD_CREDENTIAL) or (missing and kind == NO_SUCH_VM):
            return False, f"{kind}: {err.message}"
        if kind == NO_SUCH_VM:
            raise StepError(
                f"wait {vm}", f"the host has no VM {vm} to reach: {err.message}"
            ) from err
        raise
    return True, facts


def probe_os(ctx: StepContext, vm: str) -> tuple[bool, Any]:
    """(True, Win32_OperatingSystem) when the guest answers, else (False, why not)."""
    answered, seen = probe(ctx, vm)
    return answered, seen.one("OperatingSystem") if answered else seen


def boot_marker(ctx: StepContext, vm: str) -> tuple[bool, str]:
    """(answered, LastBootUpTime or the reason the guest did not answer)."""
    answered, seen = probe_os(ctx, vm)
    return answered, text(val(seen, "LastBootUpTime")) if answered else seen


def vm_state(ctx: StepContext, vm: str) -> str:
    rec = first(ctx.host.run("Get-VM", Name=ctx.lab.on_host(vm), **SILENT))
    return text(val(rec, "State")) if rec is not None else "Missing"


def wait_ready(
    ctx: StepContext, vm: str, *, deadline: float, after: str | None = None, **asked: Any
) -> GuestFacts:
    """Wait until the guest answers, and (after a reboot) with a new boot marker (R-37).

    Returns the facts the answering probe read: the guest's Win32_OperatingSystem
    and what `asked` names (see guest_facts). The VM's state is read only while the
    guest does not answer: a VM that is off cannot become ready."""
    answer: dict[str, Any] = {}

    def ready() -> tuple[bool, str]:
        answered, seen = probe(ctx, vm, missing=True, **asked)
        if not answered:
            state = vm_state(ctx, vm)
            if state in ("Off", "Missing", "Saved", "Paused"):
                raise StepError(f"wait {vm}", f"VM {vm} is {state}; it cannot become ready")
            return False, f"VM {state}; {seen}"
        marker = text(val(seen.one("OperatingSystem"), "LastBootUpTime"))
        if after is not None and marker == after:
            return False, "still the boot before the restart (same LastBootUpTime)"
        answer["facts"] = seen
        return True, marker

    what = f"{vm} to answer over PowerShell Direct" + (" after its restart" if after else "")
    ctx.wait(what, ready, deadline=deadline, poll=READY_POLL)
    return answer["facts"]


def restart_and_wait(ctx: StepContext, vm: str, *, deadline: float, why: str) -> str:
    """A clean restart from inside the guest, then wait for the new boot (R-37).

    Restart-VM is a hard reset: a feature install, a promotion or a registry write
    waiting for this restart would be left undone. `Restart-Computer -Force` shuts
    Windows down first; it ends the PowerShell Direct session that asked for it, and
    that abort is the expected answer (R-82). The hard reset is kept for a guest that
    never answered (first_boot)."""
    answered, before = boot_marker(ctx, vm)
    ctx.change(f"Restart-Computer in {vm} ({why})", lambda: restart_inside(ctx, vm))
    return wait_ready(ctx, vm, deadline=deadline, after=before if answered else None)


def restart_inside(ctx: StepContext, vm: str) -> None:
    """Restart-Computer -Force in the guest; the session it ends is the expected answer."""
    try:
        in_guest(ctx, vm, "Restart-Computer", Force=True)
    except HostError as err:
        if classify(err) != NOT_READY:
            raise
        # The session ended because the guest went down: the restart is under way.
