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

from hvlab.engine import StepResult

_MARK = {
    "ok": "ok",
    "changed": "changed",
    "failed": "FAILED",
    "would-change": "would change",
    "blocked": "pending",
    "skipped": "skipped",
}


class PlainReporter:
    """Timestamped lines, one per event: good for logs and CI."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.t0 = time.monotonic()
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        with self._lock:
            elapsed = time.monotonic() - self.t0
            stamp = time.strftime("%H:%M:%S")
            print(f"{stamp} +{elapsed:6.1f}s {text}", file=self.stream, flush=True)

    def started(self, result: StepResult) -> None:
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
        self.line(f"[{result.name}] {status}{detail} in {result.wall_s:.1f}s")

    def close(self) -> None:
        pass


class LiveReporter:
    """A rich live table: one row per scope (VM, cluster), its phase and last note."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=stream or sys.stderr)
        self.rows: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self.t0 = time.monotonic()
        self.live = Live(self._table(), console=self.console, refresh_per_second=8, transient=False)
        self.live.start()

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title=f"hvlab  {time.monotonic() - self.t0:5.1f}s", expand=False)
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

    def started(self, result: StepResult) -> None:
        self._set(result, "running", "")

    def note(self, result: StepResult, text: str) -> None:
        self._set(result, "running", text)

    def finished(self, result: StepResult) -> None:
        status = _MARK.get(result.status, result.status)
        self._set(
            result,
            status,
            result.error
            or (result.changes[-1] if result.changes else "; ".join(result.reasons[-1:])),
        )

    def close(self) -> None:
        self.live.stop()


def reporter(stream: IO[str] | None = None) -> PlainReporter | LiveReporter:
    out = stream or sys.stderr
    if out.isatty():
        return LiveReporter(out)
    return PlainReporter(out)


def summary_lines(results: list[StepResult]) -> list[str]:
    changed = sum(1 for r in results if r.changed)
    failed = [r for r in results if r.status == "failed"]
    lines = [f"{len(results)} steps, {changed} changed, {len(failed)} failed"]
    if not changed and not failed:
        lines.append("nothing to change: the lab is complete")
    return lines
