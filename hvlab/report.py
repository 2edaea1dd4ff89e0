"""Progress while a lab builds, and the reports it leaves.

On a terminal: a live table (rich) of every VM and phase. Otherwise (CI, pipes):
plain timestamped lines. With --json, progress goes to stderr and the JSON report
to stdout.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any

from hvlab.engine import Step, StepResult

# What a step of each phase typically takes on a host, in host seconds, when no
# earlier run says better (hyperv-facts §11; docs/timing.md models the same).
TYPICAL_SECONDS = {
    "preflight": 2,
    "network": 10,
    "vm": 60,
    "boot": 120,
    "domain": 420,
    "roles": 300,
    "cluster": 150,
    "s2d": 210,
    "ha": 40,
}


class Estimate:
    """Steps done of all, time elapsed, and what is left: the longest chain of
    unfinished steps, each expected to take what it took last time (or the typical
    time of its phase)."""

    def __init__(self, expected: dict[str, float] | None = None, factor: float = 1.0) -> None:
        self.expected = dict(expected or {})
        self.factor = factor
        self.steps: dict[str, Step] = {}
        self.done: set[str] = set()
        self.started: dict[str, float] = {}
        self.t0 = time.monotonic()

    def begin(self, steps: list[Step]) -> None:
        self.steps = {s.name: s for s in steps}
        self.t0 = time.monotonic()

    def start(self, name: str) -> None:
        self.started[name] = time.monotonic()

    def finish(self, name: str) -> None:
        self.done.add(name)

    def _cost(self, name: str) -> float:
        step = self.steps[name]
        if name in self.expected:
            full = self.expected[name]
        else:
            full = TYPICAL_SECONDS.get(step.phase, 30) * self.factor
        if name in self.started:
            return max(full - (time.monotonic() - self.started[name]), 0.0)
        return full

    def left(self) -> float | None:
        """Seconds until the last step ends, if every step takes what it is expected to."""
        if not self.steps:
            return None
        finish: dict[str, float] = {}

        def end(name: str) -> float:
            if name not in finish:
                before = [end(n) for n in self.steps[name].needs if n in self.steps]
                own = 0.0 if name in self.done else self._cost(name)
                finish[name] = max(before, default=0.0) + own
            return finish[name]

        return max(end(n) for n in self.steps)

    def status(self) -> str:
        elapsed = time.monotonic() - self.t0
        text = f"step {len(self.done)} of {len(self.steps)}, {_clock(elapsed)} elapsed"
        left = self.left()
        if left is not None and len(self.done) < len(self.steps):
            text += f", about {_clock(left)} left"
        return text


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02}:{rest % 60:02}" if hours else f"{rest // 60}:{rest % 60:02}"


def expected_from(report: dict[str, Any] | None) -> dict[str, float]:
    """Each step's wall time in the last run that did it (a changed step; a step that
    found nothing to do says little about the next build)."""
    out: dict[str, float] = {}
    for step in (report or {}).get("steps", []):
        if step.get("status") == "changed" and step.get("wall_seconds") is not None:
            out[step["step"]] = float(step["wall_seconds"])
    return out


_MARK = {
    "ok": "ok",
    "changed": "changed",
    "failed": "FAILED",
    "would-change": "would change",
    "blocked": "pending",
    "skipped": "skipped",
}


class PlainReporter:
    """Timestamped lines, one per event: good for logs and CI. Each finished step
    says how many are done and about how long is left."""

    def __init__(self, stream: IO[str] | None = None, estimate: Estimate | None = None) -> None:
        self.stream = stream or sys.stderr
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self.estimate = estimate or Estimate()

    def begin(self, steps: list[Step]) -> None:
        self.estimate.begin(steps)

    def line(self, text: str) -> None:
        with self._lock:
            elapsed = time.monotonic() - self.t0
            stamp = time.strftime("%H:%M:%S")
            print(f"{stamp} +{elapsed:6.1f}s {text}", file=self.stream, flush=True)

    def started(self, result: StepResult) -> None:
        self.estimate.start(result.name)
        self.line(f"[{result.name}] start")

    def note(self, result: StepResult, text: str) -> None:
        self.line(f"[{result.name}] {text}")

    def finished(self, result: StepResult) -> None:
        status = _MARK.get(result.status, result.status)
        detail = (
            f" ({len(result.changes)} change{'s' if len(result.changes) != 1 else ''})"
            if result.changes
            else ""
        )
        if result.error:
            detail += f": {result.error}"
        self.estimate.finish(result.name)
        self.line(
            f"[{result.name}] {status}{detail} in {result.wall_s:.1f}s ({self.estimate.status()})"
        )

    def close(self) -> None:
        pass


class LiveReporter:
    """A rich live table: one row per scope (VM, cluster), its phase and last note."""

    def __init__(self, stream: IO[str] | None = None, estimate: Estimate | None = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=stream or sys.stderr)
        self.rows: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self.t0 = time.monotonic()
        self.estimate = estimate or Estimate()
        self.live = Live(self._table(), console=self.console, refresh_per_second=8, transient=False)
        self.live.start()

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title=f"hvlab  {self.estimate.status()}", expand=False)
        for col in ("scope", "step", "status", "last"):
            table.add_column(col, overflow="fold", max_width=70 if col == "last" else None)
        for scope, (step, status, last) in self.rows.items():
            style = (
                "red" if status == "FAILED" else ("green" if status in ("ok", "changed") else "")
            )
            table.add_row(scope, step, f"[{style}]{status}[/]" if style else status, last)
        return table

    def _set(self, result: StepResult, status: str, last: str) -> None:
        with self._lock:
            self.rows[result.scope] = [result.name, status, last]
            self.live.update(self._table())

    def begin(self, steps: list[Step]) -> None:
        self.estimate.begin(steps)

    def started(self, result: StepResult) -> None:
        self.estimate.start(result.name)
        self._set(result, "running", "")

    def note(self, result: StepResult, text: str) -> None:
        self._set(result, "running", text)

    def finished(self, result: StepResult) -> None:
        self.estimate.finish(result.name)
        status = _MARK.get(result.status, result.status)
        self._set(
            result,
            status,
            result.error
            or (result.changes[-1] if result.changes else "; ".join(result.reasons[-1:])),
        )

    def close(self) -> None:
        self.live.stop()


class QuietReporter:
    """-q: nothing on the terminal (the run log still records every event)."""

    def started(self, result: StepResult) -> None:
        pass

    def note(self, result: StepResult, text: str) -> None:
        pass

    def finished(self, result: StepResult) -> None:
        pass

    def close(self) -> None:
        pass


def reporter(
    stream: IO[str] | None = None, estimate: Estimate | None = None
) -> PlainReporter | LiveReporter | QuietReporter:
    from hvlab.log import quiet

    if stream is None or quiet():
        # No stream: the Python API prints nothing unless asked (the run log records).
        return QuietReporter()
    out = stream
    if out.isatty():
        return LiveReporter(out, estimate)
    return PlainReporter(out, estimate)


def summary_lines(results: list[StepResult]) -> list[str]:
    changed = sum(1 for r in results if r.changed)
    failed = [r for r in results if r.status == "failed"]
    lines = [f"{len(results)} steps, {changed} changed, {len(failed)} failed"]
    if not changed and not failed and not any(r.drift for r in results):
        lines.append("nothing to change: the lab is complete")
    return lines
