"""The embedded host's state: one task at a time, read-only tasks never write it,
and each change is on disk as soon as it is made (issue: lost and resurrected labs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from project import ROOT

from hvlab import lab as labs
from hvlab import status as lab_status
from hvlab import teardown
from hvlab.session import open_session, sim_state_path

PASSWORDS = {
    "HVLAB_ADMIN_PASSWORD": "Adm1n-Xyzzy-7731!",
    "HVLAB_DSRM_PASSWORD": "Dsrm-Plugh-4417!",
}


def _vms(workdir: Path) -> list[str]:
    from hvsim import persist

    return sorted(vm.name for vm in persist.load(sim_state_path(workdir / ".hvlab")).all_vms())


def test_a_reader_overlapping_down_does_not_bring_the_lab_back(workdir: Path) -> None:
    labs.up(None)
    assert "dc01" in _vms(workdir)
    inside = threading.Event()
    release = threading.Event()
    waits: list[str] = []

    def reader() -> None:
        # What lab.status does: open the embedded host read-only and look.
        with open_session(None, writes=False, verb="status"):
            inside.set()
            release.wait(30)

    def down() -> None:
        teardown.down(None, yes=True)

    t_reader = threading.Thread(target=reader)
    t_reader.start()
    assert inside.wait(30)
    # down must wait for the reader (a file lock), then remove the lab.
    from hvlab import session

    original = session.host_state_lock

    def noting(path, verb, notice=None, lab_lock=None):  # type: ignore[no-untyped-def]
        return original(path, verb, lambda line: waits.append(line), lab_lock)

    session.host_state_lock = noting
    try:
        t_down = threading.Thread(target=down)
        t_down.start()
        time.sleep(1.0)
        assert t_down.is_alive(), "down waited for the task that holds the host"
        release.set()
        t_reader.join(30)
        t_down.join(120)
    finally:
        session.host_state_lock = original
    assert waits and "another hvlab task uses it (lab.status" in waits[0]
    assert _vms(workdir) == [], "the reader's end did not write the old host back"


def test_read_only_tasks_never_write_the_state(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labs.up(None)
    path = sim_state_path(workdir / ".hvlab")
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    lab_status.status(None, as_json=True)
    labs.plan(None, as_json=True)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_the_lock_wait_is_bounded_and_says_what_it_waits_for(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hvlab.errors import ConfigError

    monkeypatch.setenv("HVLAB_SIM_LOCK_WAIT", "0.5")
    inside = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with open_session(None, writes=True, verb="up"):
            inside.set()
            release.wait(30)

    t = threading.Thread(target=holder)
    t.start()
    try:
        assert inside.wait(30)
        with (
            pytest.raises(ConfigError, match=r"still in use by another hvlab task \(lab\.up"),
            open_session(None, writes=False, verb="status"),
        ):
            pass
    finally:
        release.set()
        t.join(30)


def test_a_killed_up_keeps_every_change_it_made(workdir: Path) -> None:
    """Killed outright (SIGKILL) mid-build, the embedded host keeps what was made:
    the state on disk already holds the VMs the trace shows were created."""
    env = dict(os.environ)
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "-r", str(ROOT), "lab.up"],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    trace = workdir / ".hvlab" / "sim" / "s2d-2node" / "state.json"
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if trace.exists() and '"vm:dc01"' in trace.read_text(errors="replace"):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert "dc01" in _vms(workdir), "the VM made before the kill is in the saved state"
    report = labs.up(None, as_json=True)
    assert report["result"] == "ok"
