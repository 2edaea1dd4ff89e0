"""What a person sees while a lab builds: step n of N, elapsed and left; -v/-q on the
terminal; and the run log under .hvlab/<host>/<lab>/ that records every step, wait and call."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from project import LABS

from hvlab.engine import Step, StepResult
from hvlab.report import Estimate, PlainReporter, expected_from


def _steps() -> list[Step]:
    def nothing(ctx: object) -> None:
        return None

    return [
        Step("a", "lab", "preflight", nothing),
        Step("b", "vm1", "boot", nothing, needs=("a",)),
        Step("c", "vm2", "boot", nothing, needs=("a",)),
        Step("d", "lab", "cluster", nothing, needs=("b", "c")),
    ]


def test_what_is_left_is_the_longest_chain_of_unfinished_steps() -> None:
    estimate = Estimate({"a": 10.0, "b": 100.0, "c": 30.0, "d": 50.0})
    estimate.begin(_steps())
    assert estimate.left() == pytest.approx(160.0)  # a + b + d: c runs beside b
    estimate.finish("a")
    assert estimate.left() == pytest.approx(150.0)
    estimate.finish("b")
    assert estimate.left() == pytest.approx(80.0)  # c has not run yet, and d waits for it
    estimate.finish("c")
    assert estimate.left() == pytest.approx(50.0)
    estimate.finish("d")
    assert estimate.left() == 0.0
    assert estimate.status().startswith("step 4 of 4, 0:00 elapsed")
    assert "left" not in estimate.status()


def test_a_running_step_counts_what_it_has_left() -> None:
    estimate = Estimate({"a": 1000.0, "b": 0.0, "c": 0.0, "d": 0.0})
    estimate.begin(_steps())
    estimate.start("a")
    estimate.started["a"] -= 400  # began 400 s ago
    assert estimate.left() == pytest.approx(600.0, abs=1.0)


def test_without_an_earlier_run_the_phase_times_scale_with_the_host() -> None:
    from hvlab.report import TYPICAL_SECONDS

    estimate = Estimate({}, factor=0.5)
    estimate.begin(_steps())
    expected = 0.5 * (
        TYPICAL_SECONDS["preflight"] + TYPICAL_SECONDS["boot"] + TYPICAL_SECONDS["cluster"]
    )
    assert estimate.left() == pytest.approx(expected)


def test_expected_times_come_from_steps_that_did_work() -> None:
    report = {
        "steps": [
            {"step": "a", "status": "changed", "wall_seconds": 12.5},
            {"step": "b", "status": "ok", "wall_seconds": 0.1},  # found nothing to do
            {"step": "c", "status": "failed", "wall_seconds": 3.0},
        ]
    }
    assert expected_from(report) == {"a": 12.5}
    assert expected_from(None) == {}


def test_plain_lines_say_how_far_the_run_is() -> None:
    out = io.StringIO()
    reporter = PlainReporter(out, Estimate({"a": 5.0, "b": 5.0, "c": 5.0, "d": 5.0}))
    reporter.begin(_steps())
    result = StepResult("a", "lab", "preflight", status="ok", wall_s=0.2)
    reporter.started(result)
    reporter.finished(result)
    line = out.getvalue().splitlines()[-1]
    assert "[a] ok in 0.2s (step 1 of 4, 0:00 elapsed, about 0:10 left)" in line


def _hvlab(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HVLAB_", "HVSIM_"))}
    env.update(HVSIM_TIMESCALE="0")
    return subprocess.run(
        [sys.executable, "-m", "hvlab", *args, "--lab", str(LABS / "s2d-2node.yaml")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_quiet_verbose_and_the_run_log(tmp_path: Path) -> None:
    quiet = _hvlab(tmp_path, "lab.up", "-q")
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert quiet.stdout == "" and quiet.stderr == ""
    log = tmp_path / ".hvlab" / "sim" / "s2d-2node" / "run.log"
    text = log.read_text()
    # Every step's start and end, its changes, the waits, and every host call (names only).
    for needle in (
        "---- lab.up s2d-2node",
        "[preflight] start",
        "[ha:havm01] changed in",
        "waiting for",
        ": done after",
        "New-VM -Name -Generation -MemoryStartupBytes",
    ):
        assert needle in text, needle
    # -v shows on the terminal what the run log has at info level, not the calls.
    verbose = _hvlab(tmp_path, "lab.status", "-v")
    assert verbose.returncode == 0
    assert "lab.status s2d-2node" in verbose.stderr and "Get-VM" not in verbose.stderr
    very = _hvlab(tmp_path, "lab.status", "-vv")
    assert "Get-VM" in very.stderr
    assert text.count("---- ") == 1 and log.read_text().count("---- ") == 3


def test_the_run_log_rotates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hvlab import log

    monkeypatch.setattr(log, "_RUN_LOG_BYTES", 2000)
    for n in range(6):
        with log.run_log(tmp_path, f"run {n}"):
            log.log.info("x" * 900)
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["run.log", "run.log.1", "run.log.2"]
    assert "---- run 5" in (tmp_path / "run.log").read_text()
    assert all(p.stat().st_size <= 2000 + 1200 for p in tmp_path.iterdir())
