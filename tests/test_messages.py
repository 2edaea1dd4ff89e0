"""Messages say a thing once and say what is there: leftovers of killed writes are
cleared, a failed wait inside a step is not wrapped twice, an empty host says so."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

from hvlab.engine import Run, Step
from hvlab.errors import StepError
from hvlab.report import PlainReporter
from hvlab.state import LabState


def test_leftovers_of_a_killed_write_are_removed(tmp_path: Path) -> None:
    folder = tmp_path / "lab"
    folder.mkdir()
    (folder / "state.json").write_text("{}")
    old = folder / ".state.json.k3j2h1"
    old.write_text('{"half')
    past = time.time() - 3600
    os.utime(old, (past, past))
    fresh = folder / ".state.json.a1b2c3"  # a write in progress right now
    fresh.write_text("{")
    LabState(folder)
    assert not old.exists() and fresh.exists()


def test_a_failed_wait_is_not_wrapped_twice() -> None:
    def step(ctx) -> None:  # type: ignore[no-untyped-def]
        raise StepError("wait dc01", "VM dc01 is Off; it cannot become ready")

    run = Run([Step("boot:dc01", "dc01", "boot", step)], {}, PlainReporter(io.StringIO()))
    with pytest.raises(StepError) as info:
        run.execute()
    assert str(info.value) == (
        "step boot:dc01 failed: wait dc01: VM dc01 is Off; it cannot become ready"
    )


def test_status_on_an_empty_host_says_the_lab_is_not_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hvlab import status as lab_status

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HVSIM_TIMESCALE", "0")
    for key in ("HVLAB_HOST", "HVSIM_FAULTS"):
        monkeypatch.delenv(key, raising=False)
    lab_status.status(None)
    out = capsys.readouterr().out
    assert "lab s2d-2node is not on the host" in out


def test_a_step_error_of_the_step_itself_is_said_once() -> None:
    """The message issue 15 saw: 'step vm:x failed: step vm:x failed: ...'."""

    def step(ctx) -> None:  # type: ignore[no-untyped-def]
        raise StepError("vm:hvhost01", "2 VMs are named hvhost01 (R-20)")

    run = Run([Step("vm:hvhost01", "hvhost01", "vm", step)], {}, PlainReporter(io.StringIO()))
    with pytest.raises(StepError) as info:
        run.execute()
    assert str(info.value) == "step vm:hvhost01 failed: 2 VMs are named hvhost01 (R-20)"
    assert run.results["vm:hvhost01"].error == "2 VMs are named hvhost01 (R-20)"


def test_drift_is_not_a_failure() -> None:
    """A step that records drift ends with status drift and the run goes on (R-140)."""

    def step(ctx) -> None:  # type: ignore[no-untyped-def]
        ctx.drift("memory 8 GiB -> 10 GiB static (R-05)")

    def after(ctx) -> None:  # type: ignore[no-untyped-def]
        ctx.ok("ran")

    run = Run(
        [Step("vm:a", "a", "vm", step), Step("boot:a", "a", "boot", after, needs=("vm:a",))],
        {},
        PlainReporter(io.StringIO()),
    )
    results = {r.name: r for r in run.execute()}
    assert results["vm:a"].status == "drift"
    assert results["vm:a"].to_json()["drift"] == ["memory 8 GiB -> 10 GiB static (R-05)"]
    assert results["boot:a"].status == "ok"
