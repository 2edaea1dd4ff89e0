"""lab.up, lab.plan (against a host), lab.status and lab.down."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from hvlab import log as hvlog
from hvlab import report as progress
from hvlab.creds import CredentialBook
from hvlab.engine import Run, StepResult
from hvlab.errors import ChangesWaiting, ConfigError, HvlabError
from hvlab.paths import home, host_id, state_dir
from hvlab.session import Session, open_session
from hvlab.state import LabState
from hvlab.steps import build as build_steps

# Tasks that only read the host: on the embedded host they never write its state.
READ_ONLY_VERBS = frozenset({"status", "plan", "list", "checkpoints", "connect"})
# Tasks that change a lab: they hold its lock on the host (hvlab.locking, R-131).
LOCKING_VERBS = frozenset({"up", "down", "checkpoint", "restore", "stop", "start", "api"})

# `out` left to the task: stdout, or stderr when stdout carries the JSON report.
AUTO: Any = "auto"


def load_spec(config: Any, lab: str | None) -> Any:
    return load_spec_from(config, lab)[0]


def load_spec_from(config: Any, lab: str | None) -> tuple[Any, str]:
    """The lab, and which file it came from as the task's first line shows it."""
    from hvlab.cli import described
    from hvlab.paths import lab_path
    from hvlab.spec import load_lab

    path, how = lab_path(config, lab)
    return load_lab(path), described(path, how)


def lab_secrets(spec: Any, session: Session, *, dsrm: bool = True) -> Any:
    """The lab's passwords; `dsrm=False` for tasks that only log on to the guests."""
    from hvlab.secrets import resolve_secrets

    prompt = None if session.simulated or not sys.stdin.isatty() else True
    return resolve_secrets(spec, prompt=prompt, simulated=session.simulated, dsrm=dsrm)


def credential(user: str, secret: Any) -> Any:
    from hvlab.remote import Credential

    return Credential(user, secret)


def say(stream: IO[str] | None, line: str) -> None:
    """A line for the person at the terminal (and the run log); -q keeps it off screen,
    and without a stream (the Python API, unless asked) only the run log has it."""
    hvlog.log.info("%s", line)
    if stream is not None and not hvlog.quiet():
        print(line, file=stream, flush=True)


@dataclasses.dataclass
class Target:
    """What the Python API hands a task: the lab already loaded, where its text goes
    (None: nowhere), and an open session to reuse instead of opening one."""

    spec: Any
    source: str
    out: IO[str] | None = None
    session: Session | None = None


@contextlib.contextmanager
def on_host(
    verb: str,
    config: Any,
    lab: str | None,
    as_json: bool,
    state_base: Path | None,
    parallel: int = 0,
    target: Target | None = None,
) -> Iterator[tuple[Any, Session, IO[str] | None]]:
    """Load the lab, open the host, and say first which host it is (simulated or not).
    With --json the text goes to stderr so stdout holds only the report. A `target`
    from the API brings the lab, the stream and maybe an open session."""
    if target is not None:
        spec, source, out = target.spec, target.source, target.out
    else:
        spec, source = load_spec_from(config, lab)
        out = sys.stderr if as_json else sys.stdout
    folder = state_dir(spec.name, state_base or home(config), host_id(config))
    with contextlib.ExitStack() as stack:
        stack.enter_context(hvlog.run_log(folder, f"lab.{verb} {spec.name} from {source}"))
        if target is not None and target.session is not None:
            session = target.session
        else:
            session = stack.enter_context(
                open_session(
                    config,
                    parallel=parallel,
                    state_base=state_base,
                    writes=verb not in READ_ONLY_VERBS,
                    verb=verb,
                    notice=lambda line: say(sys.stderr if out is not None else None, line),
                    vms=spec.fault_names,
                    lab_lock=spec.name if verb in LOCKING_VERBS else None,
                    # Steps run side by side about one per VM: their connections open
                    # once the first one logged on (status reads in turn and needs none).
                    warm=len(spec.vms) if verb in ("up", "plan") else 0,
                )
            )
        say(out, f"hvlab lab.{verb} {spec.name} from {source} on {session.description}")
        yield spec, session, out


def services(
    spec: Any,
    session: Session,
    secrets: Any,
    state: LabState,
    config: Any = None,
    *,
    planning: bool = False,
) -> dict[str, Any]:
    from hvlab.config import flag_setting
    from hvlab.facts import FactStore
    from hvlab.render import render_unattend
    from hvlab.waits import Waits

    return {
        # One power cycle for a first boot that never answers; hvlab.hard_reset.
        "hard_reset": flag_setting(config, "hard_reset", True),
        "waits": Waits.load(config),
        # The run's last reading of the host, standing while nothing changes (hvlab.facts).
        "facts": FactStore(),
        "host": session.host,
        "lab": spec,
        "secrets": secrets,
        # Which account logged on to each VM last time: tried first, so a re-run does not
        # begin with a logon the DC refuses. A hint only: the guest decides.
        "creds": CredentialBook(
            spec,
            secrets,
            credential,
            domain=state.get_fact("logons", "domain") or (),
            on_change=None if planning else lambda vms: state.set_fact("logons", "domain", vms),
        ),
        "state": state,
        "render_unattend": lambda vm: render_unattend(spec, vm, secrets),
    }


def up(
    config: Any = None,
    *,
    lab: str | None = None,
    parallel: int = 0,
    as_json: bool = False,
    yes: bool = False,
    trace: str | None = None,
    state_base: Path | None = None,
    target: Target | None = None,
    allow_restart: bool = False,
    junit: str | None = None,
) -> dict[str, Any]:
    """Build the lab, or finish it. Changes that need a VM off are made only with
    `allow_restart` (R-141); without it the run does the rest and then raises
    ChangesWaiting (exit 1) naming them. `junit`: also write the run as a JUnit XML
    report there."""
    started = time.monotonic()
    with on_host("up", config, lab, as_json, state_base, parallel, target) as (
        spec,
        session,
        out,
    ):
        folder = state_dir(spec.name, state_base or home(config), host_id(config))
        if not session.simulated and not yes:
            confirm(f"Build lab {spec.name} on {session.description}?")
        from hvlab.locking import LabLock

        lock = LabLock(session.host, spec, "lab.up", simulated=session.simulated, out=out)
        # Refused at once, before anything is written, when another run holds it; a
        # lab without its folder yet is locked right after the folder step makes it.
        lock.acquire_if_marked()
        with lock.holding():
            return _up_locked(
                config,
                spec,
                session,
                out,
                folder,
                lock,
                parallel,
                as_json,
                trace,
                target,
                started,
                allow_restart,
                junit,
            )
    raise AssertionError("unreachable")


def _up_locked(
    config: Any,
    spec: Any,
    session: Session,
    out: IO[str] | None,
    folder: Path,
    lock: Any,
    parallel: int,
    as_json: bool,
    trace: str | None,
    target: Target | None,
    started: float,
    allow_restart: bool = False,
    junit: str | None = None,
) -> dict[str, Any]:
    state = LabState(folder)
    say(out, "Nested virtualization is for labs and evaluation, not production clusters.")
    secrets = lab_secrets(spec, session)
    warm_connections(spec, session)
    last = state.read_json("report.json")
    reporter = progress.reporter(
        out, progress.Estimate(progress.expected_from(last), session.time_factor)
    )
    shared = {**services(spec, session, secrets, state, config), "lab_lock": lock}
    run = Run(
        build_steps(spec, allow_restart=allow_restart),
        shared,
        reporter,
        parallel=parallel,
        time_factor=session.time_factor,
        min_deadline=min_wait(),
        on_step_done=state.record_step,
        clock=session.clock,
    )
    error: HvlabError | None = None
    try:
        results = run.execute()
    except HvlabError as err:
        error = err
        results = list(run.results.values())
    finally:
        reporter.close()
        _write_trace(session, folder, trace)
    waiting = {} if allow_restart else drift_of(results)
    if error is None and waiting:
        error = ChangesWaiting({vm: d["drift"] for vm, d in waiting.items()})
    payload = _report(spec, session, results, time.monotonic() - started, error)
    if waiting:
        payload["waiting"] = waiting
    if error is None or isinstance(error, ChangesWaiting):
        payload["endpoints"] = endpoints(spec)
    else:
        from hvlab.diagnostics import collect

        collect(session, spec, state, results, error, creds=shared["creds"], secrets=secrets)
    state.write_json("report.json", payload)
    if junit:
        from hvlab.up_junit import write_up_junit

        written = write_up_junit(junit, spec, session, results, shared.get("validation"), secrets)
        payload["junit"] = str(written)
    for line in progress.summary_lines(results):
        say(out, line)
    for line in drift_lines(waiting):
        say(out, line)
    if as_json and target is None:
        print(json.dumps(payload, indent=2, default=str))
    if error is not None:
        error.report = payload  # type: ignore[attr-defined]
        raise error
    return payload


def drift_of(results: list[StepResult]) -> dict[str, dict[str, Any]]:
    """What differs from the lab file and needs a VM off, per VM (R-140): from the
    readings the VM steps made anyway (no call of its own)."""
    return {
        r.scope: {"drift": list(r.drift), "to_apply": r.to_apply}
        for r in results
        if r.drift and r.name.startswith("vm:")
    }


def drift_lines(drift: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for vm, d in drift.items():
        lines.append(f"  {vm} differs from the lab file: {'; '.join(d['drift'])}")
        lines.append(f"      to apply: {d['to_apply']}")
    return lines


def warm_connections(spec: Any, session: Session) -> None:
    """Open the connections the steps will use side by side (about one per VM), each with
    the session key that guest credentials need: over a slow link a logon and a new
    RunspacePool cost several round trips each. A session of its own opened them
    already, once its first connection logged on; one from the API gets them here."""
    warm = getattr(session.host, "warm", None)
    if warm is not None:
        warm(len(spec.vms) + 1, keys=True)


def min_wait() -> float:
    """The shortest any wait may be (real seconds), however fast the simulated clock runs.

    HVLAB_MIN_WAIT lowers it for tests that make a guest hang on purpose."""
    raw = os.environ.get("HVLAB_MIN_WAIT", "30")
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise ConfigError(f"HVLAB_MIN_WAIT must be a number of seconds, not {raw!r}") from None


def confirm(question: str) -> None:
    if not sys.stdin.isatty():
        raise ConfigError(f"{question} Pass --yes to confirm when not on a terminal.")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise ConfigError("not confirmed; nothing was changed")


def _report(
    spec: Any, session: Session, results: list[StepResult], wall: float, error: Exception | None
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "lab": spec.name,
        "host": {"simulated": session.simulated, "description": session.description},
        "result": "ok" if error is None else getattr(error, "result", "failed"),
        "error": str(error) if error else None,
        "changed": sum(1 for r in results if r.changed),
        "wall_seconds": round(wall, 3),
        "round_trips": len(getattr(session.host, "trace", []) or []),
        "steps": [r.to_json() for r in results],
    }
    modelled = session.modelled_seconds()
    # Which clock the steps' start_seconds and host_seconds were read from.
    payload["clock"] = "real" if modelled is None else "modelled"
    if modelled is not None:
        payload["modelled_clock_seconds"] = round(modelled, 1)
    return payload


def endpoints(spec: Any) -> dict[str, Any]:
    def ip(vm: Any) -> str | None:
        return str(vm.nics[0].ip) if vm.nics and vm.nics[0].ip else None

    return {
        "dc": {"name": spec.dc.name, "ip": ip(spec.dc)} if spec.dc else None,
        "nodes": [{"name": n.name, "ip": ip(n)} for n in spec.nodes],
        "cluster": {"name": spec.cluster.name, "address": str(spec.cluster.address)},
        "csv": [v.csv_path for v in spec.volumes],
        "ha_vms": [h.name for h in spec.ha_vms],
    }


def _write_trace(session: Session, folder: Path, extra: str | None) -> None:
    writer = getattr(session.host, "write_trace", None)
    if writer is None:
        return
    writer(folder / "trace.jsonl")
    if extra:
        writer(Path(extra))


def plan(
    config: Any = None,
    *,
    lab: str | None = None,
    as_json: bool = False,
    state_base: Path | None = None,
    target: Target | None = None,
) -> dict[str, Any]:
    """The same steps with every change recorded instead of made."""
    with on_host("plan", config, lab, as_json, state_base, target=target) as (
        spec,
        session,
        out,
    ):
        secrets = lab_secrets(spec, session)
        state = LabState(state_dir(spec.name, state_base or home(config), host_id(config)))
        warm_connections(spec, session)
        run = Run(
            build_steps(spec),
            services(spec, session, secrets, state, config, planning=True),
            progress.PlainReporter(open_devnull()),
            planning=True,
            time_factor=session.time_factor,
        )
        results = run.execute()
    ahead = _planned_resources(spec, results)
    drift = drift_of(results)
    payload = {
        "lab": spec.name,
        "changes": sum(1 for r in results if r.changed),
        # Drift is not a failure: what differs and needs a VM off, and what applying takes.
        "drift": drift,
        "steps": [{**r.to_json(), "resources": ahead.get(r.name, [])} for r in results],
    }
    if as_json and target is None:
        print(json.dumps(payload, indent=2))
    else:
        for r in results:
            if r.status == "would-change":
                say(out, f"  {r.name:<22} would change: {r.changes[0]} (then the rest of the step)")
            elif r.status == "blocked":
                say(out, f"  {r.name:<22} pending: {'; '.join(r.reasons)}")
            elif r.status == "drift":
                say(out, f"  {r.name:<22} drift: {'; '.join(r.drift)}")
            else:
                say(out, f"  {r.name:<22} no change: {'; '.join(r.reasons[:3])}")
            if r.drift and r.status != "drift":
                say(out, f"  {'':<22} drift: {'; '.join(r.drift)}")
            if r.to_apply:
                say(out, f"  {'':<22} to apply: {r.to_apply}")
            for res in ahead.get(r.name, []):
                say(out, f"      + {res['kind']:<15} {res['name']}  {res['detail']}")
        say(
            out,
            "nothing to change"
            if not payload["changes"]
            else f"{payload['changes']} step(s) would change",
        )
        if drift:
            say(
                out,
                f"{len(drift)} VM(s) differ from the lab file in what needs them off: "
                "lab.up --allow-restart applies it",
            )
    return payload


# Which phases of the offline inventory each kind of step creates.
_STEP_PHASES = {
    "switches": ("switches", "NAT"),
    "folder": ("folders",),
    "vm": ("disks", "VMs", "NICs"),
    "boot": ("boot",),
    "promote": ("domain",),
    "domain": ("domain",),
    "roles": ("features",),
    "cluster": ("cluster",),
    "s2d": ("S2D", "volumes"),
    "ha": ("HA VM",),
}


def _planned_resources(spec: Any, results: list[StepResult]) -> dict[str, list[dict[str, str]]]:
    """For each step that would change or waits on a change: what it will create,
    as on an empty host (the host cannot be asked about what does not exist yet)."""
    from hvlab.spec.inventory import inventory

    phases = {p["name"]: p["resources"] for p in inventory(spec)}
    out: dict[str, list[dict[str, str]]] = {}
    for r in results:
        if r.status not in ("would-change", "blocked"):
            continue
        kind = r.name.split(":", 1)[0]
        items = [res for ph in _STEP_PHASES.get(kind, ()) for res in phases.get(ph, [])]
        if ":" in r.name:
            scope = r.scope.lower()
            items = [res for res in items if scope in f"{res['name']} {res['detail']}".lower()]
        out[r.name] = items
    return out


def open_devnull() -> IO[str]:
    return open(os.devnull, "w", encoding="utf-8")
