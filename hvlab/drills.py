"""lab.drill: prove the lab's high availability, with measured downtime (R-113).

A drill runs on a complete, healthy lab (otherwise it refuses with what is wrong and
changes nothing), does one thing to it (hvlab.drill_kinds), measures what the cluster
does, and brings the lab back to healthy: the restore phases run whatever happened
before them. Every phase is a step of hvlab.engine (bounded waits that say what they
wait for); the phases become the test cases of a JUnit report. `--recover` runs the
restore alone: it brings every VM, link and drive of the lab back, resumes paused
nodes, starts roles that are down and waits for the storage to be healthy.

Times are read on the host's clock: modelled seconds on the simulated host.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from hvlab import junit
from hvlab import report as progress
from hvlab.creds import CredentialBook
from hvlab.drill_facts import LabView
from hvlab.engine import Run, Step, StepContext, StepResult
from hvlab.errors import ConfigError, HvlabError, Interrupted, StepError
from hvlab.lab import credential, lab_secrets, min_wait, on_host, say
from hvlab.steps.common import tolerant

KINDS = ("node-failure", "maintenance", "rolling-update", "disk-failure", "network")

# Bounded waits, host seconds (scaled on a simulated host).
DETECT_DEADLINE = 5 * 60  # a lost node or route is noticed (heartbeat timeout, R-105)
FAILOVER_DEADLINE = 15 * 60  # resiliency period (240 s) plus a VM start
NODE_DEADLINE = 15 * 60  # a node restarts and rejoins
DRAIN_DEADLINE = 15 * 60
REPAIR_DEADLINE = 60 * 60  # a resync "may take many minutes"
CAU_DEADLINE = 4 * 60 * 60


class DrillRefused(ConfigError):
    """The lab is not complete or not healthy: the drill changed nothing (exit 2)."""

    def __init__(self, lab: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"lab {lab} is not healthy, so no drill runs and nothing was changed (R-113):\n"
            f"{lines}\nRun `lab.drill --recover` (or lab.up) to bring it back, then try again."
        )


class DrillFailed(HvlabError):
    """The drill ran and the lab did not do what was expected (exit 1)."""


@dataclasses.dataclass
class Check:
    what: str
    ok: bool
    detail: str = ""


@dataclasses.dataclass
class DrillState:
    """What the phases of one drill share: the timeline, the checks, the figures."""

    kind: str
    expectation: str
    clock: Callable[[], float]
    t0: float = 0.0
    timeline: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    checks: list[Check] = dataclasses.field(default_factory=list)
    figures: dict[str, Any] = dataclasses.field(default_factory=dict)
    per_node: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)

    def now(self) -> float:
        return self.clock() - self.t0

    def mark(self, ctx: StepContext, event: str, at: float | None = None) -> float:
        t = self.now() if at is None else at
        self.timeline.append({"t": round(t, 1), "event": event})
        ctx.note(f"t={t:.1f}s {event}")
        return t

    def expect(self, what: str, ok: bool, detail: str = "") -> None:
        """Record a check of the expectation; a failed one fails its phase."""
        self.checks.append(Check(what, ok, detail))
        if not ok:
            raise StepError("drill", f"expected {what}: {detail}")


def drill(
    config: Any = None,
    *,
    lab: str | None = None,
    kind: str | None = None,
    recover: bool = False,
    as_json: bool = False,
    junit_file: str | None = None,
    state_base: Path | None = None,
) -> dict[str, Any]:
    from hvlab.drill_kinds import expectation, phases
    from hvlab.drill_restore import recovery

    if recover and kind:
        raise ConfigError("lab.drill takes --kind KIND or --recover, not both")
    if not recover and kind not in KINDS:
        raise ConfigError(
            f"lab.drill needs --kind, one of {', '.join(KINDS)} (or --recover); got {kind!r}"
        )
    name = "recover" if recover else str(kind)
    with on_host("drill", config, lab, as_json, state_base) as (spec, session, out):
        secrets = lab_secrets(spec, session)
        creds = CredentialBook(spec, secrets, credential)
        view = LabView(spec, session.host, creds)
        state = DrillState(name, "" if recover else expectation(kind or ""), session.clock)
        state.t0 = session.clock()
        from hvlab.waits import Waits

        services = {
            "host": session.host,
            "lab": spec,
            "waits": Waits.load(config),
            "creds": creds,
            "view": view,
            "drill": state,
            "secrets": secrets,
        }
        results: list[StepResult] = []
        error: HvlabError | None = None
        try:
            if not recover:
                problems = view.problems() + _lab_requirements(spec, kind or "")
                if problems:
                    raise DrillRefused(spec.name, problems)
                say(out, f"drill {name} on lab {spec.name}: {state.expectation}")
                results, error = _run(phases(kind or "", spec), services, out, session, results)
            if not isinstance(error, Interrupted):
                # The restore runs whatever the drill phases did, unless someone stopped
                # the drill: then they asked for nothing more (lab.drill --recover).
                results, restore_error = _run(
                    recovery(spec, kind if not recover else None), services, out, session, results
                )
                error = error or restore_error
        except KeyboardInterrupt:
            error = Interrupted(
                "interrupted; run `lab.drill --recover` (or lab.up) to bring the lab back"
            )
        payload = _payload(spec, session, state, results, error)
        if junit_file:
            junit.write(junit_file, [_suite(spec, session, state, results)], name="hvlab lab.drill")
        _print(out, payload)
        if as_json:
            print(json.dumps(payload, indent=2, default=str))
        if isinstance(error, Interrupted):
            raise Interrupted(
                "interrupted; run `lab.drill --recover` (or lab.up) to bring the lab back"
            )
        if error is not None:
            raise DrillFailed(
                f"drill {name} on lab {spec.name} failed: {payload['error']}"
                + ("" if payload["healthy_after"] else "; the lab is not healthy after it")
            )
        return payload


def _lab_requirements(spec: Any, kind: str) -> list[str]:
    out = []
    if not spec.ha_vms:
        out.append("the lab has no HA VM (ha_vms) to watch")
    if len(spec.nodes) < 2:
        out.append("the lab has fewer than two cluster nodes")
    if kind == "rolling-update" and spec.updates and spec.dc is None:
        out.append("updates: needs the lab's own DC to coordinate Cluster-Aware Updating (R-112)")
    return out


def _run(
    steps: list[Step],
    services: dict[str, Any],
    out: IO[str],
    session: Any,
    done: list[StepResult],
) -> tuple[list[StepResult], HvlabError | None]:
    """Run phases one after the other (each needs the one before)."""
    reporter = progress.reporter(out)
    run = Run(
        steps,
        services,
        reporter,
        parallel=1,
        time_factor=session.time_factor,
        min_deadline=min_wait(),
        clock=session.clock,
    )
    try:
        results = run.execute()
        error: HvlabError | None = None
    except KeyboardInterrupt:
        results, error = (
            list(run.results.values()),
            Interrupted("interrupted; run `lab.drill --recover` (or lab.up) to bring the lab back"),
        )
    except HvlabError as err:
        results, error = list(run.results.values()), err
    finally:
        reporter.close()
    return done + results, error


def _payload(
    spec: Any, session: Any, state: DrillState, results: list[StepResult], error: Exception | None
) -> dict[str, Any]:
    healthy = not any(r.status == "failed" for r in results if r.name == "lab healthy") and any(
        r.name == "lab healthy" and r.status in ("ok", "changed") for r in results
    )
    return {
        "lab": spec.name,
        "drill": state.kind,
        "expectation": state.expectation,
        "result": "pass" if error is None else "fail",
        "error": str(error) if error else None,
        "healthy_after": healthy,
        "clock": "real" if session.modelled_seconds() is None else "modelled",
        "figures": state.figures,
        "per_node": state.per_node,
        "timeline": state.timeline,
        "checks": [dataclasses.asdict(c) for c in state.checks],
        "phases": [r.to_json() for r in results],
    }


def _suite(spec: Any, session: Any, state: DrillState, results: list[StepResult]) -> junit.Suite:
    clock = "real" if session.modelled_seconds() is None else "modelled"
    suite = junit.Suite(
        f"lab.drill {state.kind} {spec.name}",
        properties={"lab": spec.name, "drill": state.kind, "clock": clock},
        hostname=session.description.split(" (")[0],
    )
    for r in results:
        case = junit.step_case(r, f"hvlab.drill.{state.kind}.{spec.name}", clock)
        if r.status == "failed":
            error = r.error or "failed"
            if "expected " in error or "gave up waiting" in error:
                case.failure = error
            else:
                case.error = error
        elif r.status in ("skipped", "blocked", "pending"):
            case.skipped = "an earlier phase failed"
        suite.cases.append(case)
    return suite


def _print(out: IO[str], payload: dict[str, Any]) -> None:
    unit = "modelled s" if payload["clock"] == "modelled" else "s"
    say(
        out,
        f"drill {payload['drill']} on lab {payload['lab']}: "
        f"{'PASS' if payload['result'] == 'pass' else 'FAIL'}"
        + (f" ({payload['error']})" if payload["error"] else ""),
    )
    if payload["expectation"]:
        say(out, f"  expected: {payload['expectation']}")
    for key, value in payload["figures"].items():
        shown = f"{value:.1f} {unit}" if isinstance(value, int | float) else str(value)
        say(out, f"  {key.replace('_', ' ')}: {shown}")
    for row in payload["per_node"]:
        parts = ", ".join(
            f"{k.replace('_s', '')} {v:.1f}" for k, v in row.items() if isinstance(v, float)
        )
        say(out, f"  node {row['node']}: {parts} ({unit})")
    for event in payload["timeline"]:
        say(out, f"  t={event['t']:>7.1f}  {event['event']}")
    say(out, f"  lab healthy after the drill: {'yes' if payload['healthy_after'] else 'NO'}")


# -- helpers the phases share --------------------------------------------------------------


def wait_for(
    ctx: StepContext, what: str, probe: Callable[[], tuple[bool, str]], deadline: float
) -> float:
    """A bounded wait on the host's clock; returns when (drill time) it was seen done."""
    ctx.wait(what, tolerant(probe), deadline=deadline, poll=2.0)
    return ctx.drill.now()


def uptime_gap(before: tuple[float, float], after: tuple[float, float]) -> float:
    """Downtime between two (drill time, uptime) observations of a VM: the time that
    passed minus the uptime it gained; 0 when it ran throughout."""
    (t1, u1), (t2, u2) = before, after
    return max(0.0, (t2 - t1) - (u2 - u1))


def ha_name(spec: Any) -> str:
    return str(spec.ha_vms[0].name)


def owner_of(ctx: StepContext, via: str | None = None) -> str:
    view: LabView = ctx.view
    ha = view.ha_vm(via or view.control(), ha_name(ctx.lab))
    return ha.owner
