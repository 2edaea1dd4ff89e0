"""The engine's ordering, parallelism, plan semantics and bounded waits."""

from __future__ import annotations

import threading
import time

import pytest

from hvlab.engine import Run, Step
from hvlab.errors import StepError, WaitTimeout
from hvlab.report import PlainReporter


class Sink:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        self.lines.append(text)

    def flush(self) -> None:
        pass


def run(steps, planning=False, parallel=0, services=None):
    sink = Sink()
    r = Run(
        steps,
        services or {},
        PlainReporter(sink),
        planning=planning,
        parallel=parallel,
        time_factor=1.0,
    )
    return r, r.execute(), sink


def test_steps_run_after_their_needs():
    order: list[str] = []
    steps = [
        Step("b", "lab", "x", lambda c: order.append("b"), needs=("a",)),
        Step("a", "lab", "x", lambda c: order.append("a")),
        Step("c", "lab", "x", lambda c: order.append("c"), needs=("b",)),
    ]
    run(steps)
    assert order == ["a", "b", "c"]


def test_independent_steps_overlap():
    barrier = threading.Barrier(2, timeout=5)

    def meet(c):
        barrier.wait()  # fails with BrokenBarrierError unless both run at once

    _, results, _ = run([Step("x", "a", "p", meet), Step("y", "b", "p", meet)])
    assert {r.status for r in results} == {"ok"}


def test_parallel_one_serialises():
    active = []
    peak = []

    def work(c):
        active.append(1)
        peak.append(len(active))
        time.sleep(0.02)
        active.pop()

    run([Step(f"s{i}", f"v{i}", "p", work) for i in range(4)], parallel=1)
    assert max(peak) == 1


def test_failure_skips_dependents_and_names_the_step():
    def boom(c):
        raise WaitTimeout("guest", 3, "still booting")

    ran = []
    steps = [
        Step("a", "lab", "x", boom),
        Step("b", "lab", "x", lambda c: ran.append("b"), needs=("a",)),
    ]
    r = Run(steps, {}, PlainReporter(Sink()))
    with pytest.raises(StepError) as info:
        r.execute()
    assert "step a failed" in str(info.value)
    assert "still booting" in str(info.value)
    assert ran == []
    assert r.results["b"].status == "skipped"


def test_change_records_and_plan_stops_at_first_change():
    made = []

    def step(c):
        c.ok("fact read")
        c.change("create thing", lambda: made.append(1))
        c.change("configure thing", lambda: made.append(2))

    _, results, _ = run(
        [Step("a", "lab", "x", step), Step("b", "lab", "x", lambda c: c.ok("x"), needs=("a",))],
        planning=True,
    )
    a, b = results
    assert made == []
    assert a.status == "would-change" and a.changes == ["create thing"]
    assert b.status == "blocked" and "runs after a" in b.reasons[0]

    _, results, _ = run([Step("a", "lab", "x", step)])
    assert made == [1, 2]
    assert results[0].status == "changed" and results[0].changes == [
        "create thing",
        "configure thing",
    ]


def test_no_change_is_ok_with_reason():
    _, results, _ = run([Step("a", "lab", "x", lambda c: c.ok("switch exists"))])
    assert results[0].status == "ok" and not results[0].changed
    assert results[0].reasons == ["switch exists"]


def test_wait_is_bounded_and_reports_last_seen():
    seen = iter(range(1000))

    def step(c):
        c.wait("the thing", lambda: (False, f"poll {next(seen)}"), deadline=0.3, poll=0.05)

    r = Run(
        [Step("a", "lab", "x", step)], {}, PlainReporter(Sink()), time_factor=1.0, min_deadline=0.0
    )
    start = time.monotonic()
    with pytest.raises(StepError) as info:
        r.execute()
    assert time.monotonic() - start < 3
    assert "gave up waiting for the thing" in str(info.value)
    assert "last seen: poll" in str(info.value)


def test_wait_returns_when_done():
    calls = iter([(False, "booting"), (False, "oobe"), (True, "ready")])

    def step(c):
        assert c.wait("guest", lambda: next(calls), deadline=5, poll=0.01) == "ready"

    _, results, _ = run([Step("a", "lab", "x", step)])
    assert results[0].status == "ok"


def test_unknown_need_is_refused():
    with pytest.raises(ValueError, match="needs unknown step"):
        Run([Step("a", "lab", "x", lambda c: None, needs=("nope",))], {}, PlainReporter(Sink()))


def test_a_circle_of_needs_is_refused():
    steps = [
        Step("a", "lab", "x", lambda c: None, needs=("c",)),
        Step("b", "lab", "x", lambda c: None, needs=("a",)),
        Step("c", "lab", "x", lambda c: None, needs=("b",)),
    ]
    with pytest.raises(ValueError, match="wait for each other in a circle"):
        Run(steps, {}, PlainReporter(Sink()))


def test_plan_holds_back_every_step_after_a_change():
    # a would change; b needs a, c needs b: neither runs, both say why.
    ran = []
    steps = [
        Step("a", "lab", "x", lambda c: c.change("make", lambda: None)),
        Step("b", "lab", "x", lambda c: ran.append("b"), needs=("a",)),
        Step("c", "lab", "x", lambda c: ran.append("c"), needs=("b",)),
        Step("d", "lab", "x", lambda c: ran.append("d")),
    ]
    _, results, _ = run(steps, planning=True)
    status = {r.name: r.status for r in results}
    assert ran == ["d"]
    assert status == {"a": "would-change", "b": "blocked", "c": "blocked", "d": "ok"}
    reasons = {r.name: r.reasons for r in results}
    assert reasons["b"] == ["runs after a"] and reasons["c"] == ["runs after earlier steps"]
