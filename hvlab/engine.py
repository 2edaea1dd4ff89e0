"""Ordering, parallel execution, bounded waits and the record of what happened.

A lab is built by steps. Each step reads the facts it needs, decides what is
missing, and makes only the calls that close the difference (ctx.change). A step
that finds nothing missing says why (ctx.ok). Plan runs the same steps with
`planning=True`: the first change a step would make is recorded and the step
stops there, because what comes after depends on it; steps that depend on a
changed step are shown as pending. Apply runs them for real, in parallel where
they are independent, and stops scheduling new work at the first failure.
"""

from __future__ import annotations

import dataclasses
import graphlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol

from hvlab.errors import (
    ConfigError,
    HostError,
    HvlabError,
    Interrupted,
    OwnershipError,
    PreflightError,
    ResponseLost,
    StepError,
    WaitTimeout,
    is_transient,
)

log = logging.getLogger("hvlab.run")

# How often a step starts over after the answer to one of its changes was lost.
CONVERGE_ATTEMPTS = 3


class PlanStop(Exception):
    """Raised inside a step in plan mode at its first change: the rest depends on it."""


@dataclasses.dataclass
class StepResult:
    name: str
    scope: str
    phase: str
    status: str = "pending"  # ok | changed | drift | failed | skipped | would-change | blocked
    changes: list[str] = dataclasses.field(default_factory=list)
    reasons: list[str] = dataclasses.field(default_factory=list)
    # What differs from the lab file and cannot change while the VM runs, and
    # what applying it takes: shown by plan, applied by lab.up --allow-restart.
    drift: list[str] = dataclasses.field(default_factory=list)
    to_apply: str | None = None
    error: str | None = None
    wall_s: float = 0.0
    # On the host's clock (modelled seconds on a simulated host), from the run's start:
    # what a timeline of the run draws.
    start_s: float | None = None
    host_s: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "scope": self.scope,
            "phase": self.phase,
            "status": self.status,
            "changed": self.changed,
            "changes": self.changes,
            "reasons": self.reasons,
            "drift": self.drift,
            "to_apply": self.to_apply,
            "error": self.error,
            "wall_seconds": round(self.wall_s, 3),
            "start_seconds": None if self.start_s is None else round(self.start_s, 3),
            "host_seconds": round(self.host_s, 3),
        }


class Reporter(Protocol):
    def started(self, result: StepResult) -> None: ...
    def note(self, result: StepResult, text: str) -> None: ...
    def finished(self, result: StepResult) -> None: ...


@dataclasses.dataclass
class Step:
    name: str
    scope: str  # a VM name, or "lab"
    phase: str  # preflight, network, vms, boot, domain, roles, cluster, s2d, ha
    fn: Callable[[StepContext], None]
    needs: tuple[str, ...] = ()
    # Every step reads the host before it changes it, so running it again after a
    # transient error is safe; a step that is not must say so.
    retry: bool = True


# A step that failed on a transient host error runs again this many times, after
# these host seconds (doubling), before the run fails.
STEP_RETRIES = 3
STEP_BACKOFF_S = 5.0


class StepContext:
    """What a step function gets: the run's shared objects and its own result."""

    def __init__(self, run: Run, result: StepResult) -> None:
        self.run = run
        self.result = result

    @property
    def planning(self) -> bool:
        return self.run.planning

    def __getattr__(self, name: str) -> Any:
        # Steps reach the run's services (host, lab, secrets, state...) directly.
        return self.run.services[name]

    def ok(self, reason: str) -> None:
        """Record why nothing had to change here."""
        self.result.reasons.append(reason)
        log.debug("[%s] no change: %s", self.result.name, reason)

    def drift(self, what: str) -> None:
        """Record a difference from the lab file that this run does not change here: it
        needs the VM off (R-140). The step goes on with the rest."""
        self.result.drift.append(what)
        log.info("[%s] drift: %s", self.result.name, what)

    def note(self, text: str) -> None:
        log.info("[%s] %s", self.result.name, text)
        self.run.reporter.note(self.result, text)

    def change(self, what: str, do: Callable[[], Any]) -> Any:
        """Make one change (or, when planning, record it and stop the step)."""
        self.run.check_cancelled()
        self.result.changes.append(what)
        if self.planning:
            raise PlanStop(what)
        self.note(what)
        # What was read of the host before (or while) this change is out of date.
        self.run.changed()
        try:
            return do()
        finally:
            self.run.changed()

    def wait(
        self,
        what: str,
        probe: Callable[[], tuple[bool, str]],
        *,
        deadline: float,
        poll: float = 5.0,
    ) -> str:
        """Poll `probe` until it says done. `deadline` and `poll` are in host seconds
        (scaled by the run's time factor on a simulated host); the wait is bounded
        and fails with the last thing it saw."""
        factor = self.run.time_factor
        limit = max(deadline * factor, self.run.min_deadline)
        interval = max(poll * factor, 0.01)
        start = time.monotonic()
        last = "nothing yet"
        self.note(f"waiting for {what}")
        while True:
            self.run.check_cancelled()
            done, last = probe()
            log.debug("[%s] %s: %s", self.result.name, what, last)
            if done:
                log.info(
                    "[%s] %s: done after %.1fs", self.result.name, what, time.monotonic() - start
                )
                return last
            if time.monotonic() - start > limit:
                log.warning(
                    "[%s] gave up waiting for %s after %.0fs", self.result.name, what, limit
                )
                raise WaitTimeout(what, limit, last)
            self.run.cancelled.wait(interval)


class Run:
    """One execution of a list of steps (apply or plan)."""

    def __init__(
        self,
        steps: Iterable[Step],
        services: dict[str, Any],
        reporter: Reporter,
        *,
        planning: bool = False,
        parallel: int = 0,
        time_factor: float = 1.0,
        min_deadline: float = 30.0,
        on_step_done: Callable[[StepResult], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.steps = {s.name: s for s in steps}
        for step in self.steps.values():
            for need in step.needs:
                if need not in self.steps:
                    raise ValueError(f"step {step.name} needs unknown step {need}")
        try:
            self._order().prepare()
        except graphlib.CycleError as err:
            raise ValueError(f"steps wait for each other in a circle: {err.args[1]}") from None
        self.services = services
        self.reporter = reporter
        self.planning = planning
        self.parallel = parallel if parallel > 0 else max(1, len(self.steps))
        self.time_factor = time_factor
        self.min_deadline = min_deadline
        self.on_step_done = on_step_done
        # The host's clock: modelled time on a simulated host, real time otherwise.
        self.clock = clock or time.monotonic
        self.t0 = self.clock()
        self.cancelled = threading.Event()
        self.results = {s.name: StepResult(s.name, s.scope, s.phase) for s in self.steps.values()}
        # Counts the run's changes as they start and end: a reading of the host made at
        # one generation stands for the host only while the generation stays the same
        # (hvlab.facts). Plan never changes anything, so its readings never age.
        self.generation = 0
        self._generation_lock = threading.Lock()

    def changed(self) -> None:
        with self._generation_lock:
            self.generation += 1

    def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise Interrupted("interrupted")

    def _order(self) -> graphlib.TopologicalSorter[str]:
        return graphlib.TopologicalSorter({name: s.needs for name, s in self.steps.items()})

    def execute(self) -> list[StepResult]:
        """Run every step once its needs are done (graphlib's topological order, in
        parallel up to `parallel`). Returns results in step order."""
        self.t0 = self.clock()
        begin = getattr(self.reporter, "begin", None)
        if begin is not None:  # reporters that estimate what is left want the graph
            begin(list(self.steps.values()))
        order = self._order()
        order.prepare()
        ready: list[str] = []
        running: dict[Future[None], str] = {}
        failure: BaseException | None = None
        pool = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="hvlab-step")
        try:
            while True:
                if failure is None:
                    ready.extend(order.get_ready())
                    while ready and len(running) < self.parallel:
                        name = ready.pop(0)
                        if self._waits_on_a_change(name):
                            # Plan: what it would find depends on changes not made yet; it
                            # stays pending, and so do the steps after it.
                            order.done(name)
                            ready.extend(order.get_ready())
                            continue
                        running[pool.submit(self._run_step, self.steps[name])] = name
                if not running:
                    break
                finished, _ = wait(list(running), timeout=0.2, return_when=FIRST_COMPLETED)
                for fut in finished:
                    name = running.pop(fut)
                    order.done(name)
                    exc = fut.exception()
                    if exc is not None and failure is None:
                        failure = exc
        except KeyboardInterrupt:
            self.cancelled.set()
            wait(list(running))
            failure = Interrupted("interrupted")
        finally:
            pool.shutdown(wait=True)
        for name, result in self.results.items():
            if result.status == "pending":
                result.status = "skipped" if failure else "blocked"
                if not failure and self.planning:
                    blockers = [n for n in self.steps[name].needs if self.results[n].changed]
                    result.reasons.append(
                        "runs after " + ", ".join(blockers)
                        if blockers
                        else "runs after earlier steps"
                    )
        if failure is not None:
            if isinstance(failure, HvlabError):
                raise failure
            raise failure
        return list(self.results.values())

    def _waits_on_a_change(self, name: str) -> bool:
        """In plan mode, a step after a step that would change, or after one that itself
        waits, does not run."""
        if not self.planning:
            return False
        return any(
            self.results[n].changed or self.results[n].status == "pending"
            for n in self.steps[name].needs
        )

    def _attempts(self, step: Step, ctx: StepContext) -> None:
        """Run the step, and run it again, bounded and said, after either of two
        failures; every step reads its facts first (check-then-act, R-90) and does
        only what is still missing, so running it again converges:

        - the answer to one of its changes was lost, so the change may have happened
          (R-92): at once, at most CONVERGE_ATTEMPTS runs in all;
        - an error Windows classes as transient (R-102): after a backoff, at most
          STEP_RETRIES more runs.
        """
        lost = retries = 0
        while True:
            try:
                # A step run again finds the drift again: say it once.
                ctx.result.drift.clear()
                step.fn(ctx)
                return
            except ResponseLost as err:
                lost += 1
                if lost >= CONVERGE_ATTEMPTS:
                    raise
                ctx.note(f"{err}; reading the facts again")
            except HostError as err:
                if self.planning or not step.retry or not is_transient(err):
                    raise
                if retries == STEP_RETRIES:
                    raise StepError(
                        step.name, f"{err} (still failing after {STEP_RETRIES} retries, R-102)"
                    ) from err
                wait = STEP_BACKOFF_S * 2**retries
                retries += 1
                ctx.note(
                    f"transient error, running the step again in {wait:g}s "
                    f"(retry {retries} of {STEP_RETRIES}, R-102): {err.message[:120]}"
                )
                self.cancelled.wait(max(wait * self.time_factor, 0.05))
                self.check_cancelled()

    def _run_step(self, step: Step) -> None:
        result = self.results[step.name]
        ctx = StepContext(self, result)
        log.info("[%s] start", step.name)
        self.reporter.started(result)
        start = time.monotonic()
        host_start = self.clock()
        result.start_s = host_start - self.t0
        try:
            self._attempts(step, ctx)
            result.status = "changed" if result.changes else ("drift" if result.drift else "ok")
        except PlanStop:
            result.status = "would-change"
        except Interrupted:
            result.status = "failed"
            result.error = "interrupted"
            raise
        except (PreflightError, OwnershipError, ConfigError) as err:
            # These say what is wrong with the host or the settings in full already.
            result.status = "failed"
            result.error = str(err)
            raise
        except StepError as err:
            # Said once: "step boot:x failed: wait x: ...", never "step .. failed: step .. failed".
            result.status = "failed"
            reason = err.reason if err.step == step.name else f"{err.step}: {err.reason}"
            result.error = reason
            raise StepError(step.name, reason) from err
        except HvlabError as err:
            result.status = "failed"
            result.error = str(err)
            raise StepError(step.name, str(err)) from err
        except Exception as err:  # a bug or a library failure: report it with the step
            result.status = "failed"
            result.error = f"{type(err).__name__}: {err}"
            raise StepError(step.name, result.error) from err
        finally:
            result.wall_s = time.monotonic() - start
            result.host_s = self.clock() - host_start
            (log.error if result.status == "failed" else log.info)(
                "[%s] %s in %.1fs%s",
                step.name,
                result.status,
                result.wall_s,
                f": {result.error}" if result.error else "",
            )
            self.reporter.finished(result)
            if self.on_step_done is not None:
                self.on_step_done(result)
