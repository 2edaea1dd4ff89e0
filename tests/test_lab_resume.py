"""An interrupted lab.up converges when run again.

hvsim serves in this process (the host outlives the controller, as a real host
would); `invoke lab.up` runs as a separate process against it over WinRM and is
interrupted at several points, by Ctrl-C (SIGINT) or by being killed outright.
A second lab.up must then finish the lab, and a third must change nothing.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from project import ROOT

from hvlab import lab as labs

TIMESCALE = 0.002  # the default lab takes about 3 s of real time on the host's clock
USER, PASSWORD = "hvadmin", "Resume-Host-Pa55!"
PASSWORDS = {
    "HVLAB_ADMIN_PASSWORD": "Resume-Admin-Pa55!",
    "HVLAB_DSRM_PASSWORD": "Resume-Dsrm-Pa55!",
}


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HVLAB_", "HVSIM_"))}
    env.update(PASSWORDS)
    env.update(
        HVLAB_HOST=url,
        HVLAB_USER=USER,
        HVLAB_PASSWORD=PASSWORD,
        HVLAB_AUTH="ntlm",
        HVLAB_TIME_FACTOR=str(TIMESCALE),
    )
    return env


def _steps_done(workdir: Path, url: str) -> list[str]:
    from hvlab.paths import host_id, state_dir

    # Local state is kept per host (the served hvsim is named by its address).
    state = state_dir("s2d-2node", workdir / ".hvlab", host_id({"host": url})) / "state.json"
    try:
        steps = json.loads(state.read_text())["steps"]
    except (FileNotFoundError, ValueError):
        return []
    return sorted(name for name, s in steps.items() if s["status"] in ("ok", "changed"))


# The step whose completion triggers the interruption, and how the controller is stopped.
# A seeded extra delay lets the signal land somewhere inside the steps that follow.
POINTS = [
    ("switches", signal.SIGKILL),
    ("vm:hvhost01", signal.SIGINT),
    ("domain:dc01", signal.SIGKILL),
    ("roles:hvhost02", signal.SIGINT),
    ("cluster", signal.SIGKILL),
]


@pytest.mark.parametrize(("after", "how"), POINTS, ids=[f"{a}-{s.name}" for a, s in POINTS])
def test_interrupted_up_converges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, after: str, how: signal.Signals
) -> None:
    from hvsim.model.world import World
    from hvsim.server import serve_in_thread

    extra = random.Random(after).uniform(0, 0.3)
    world = World.create(timescale=TIMESCALE)
    with serve_in_thread(world, auth="ntlm", user=USER, password=PASSWORD) as server:
        env = _env(server.url)
        proc = subprocess.Popen(
            [sys.executable, "-m", "invoke", "-r", str(ROOT), "lab.up", "--yes"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while after not in _steps_done(tmp_path, server.url) and proc.poll() is None:
            assert time.monotonic() < deadline, f"step {after} never finished"
            time.sleep(0.02)
        time.sleep(extra)
        proc.send_signal(how)
        output, _ = proc.communicate(timeout=120)
        if how == signal.SIGINT and proc.returncode != 0:
            assert proc.returncode == 130, output[-2000:]
        interrupted_after = _steps_done(tmp_path, server.url)
        assert after in interrupted_after
        assert "ha:havm01" not in interrupted_after, "the run was interrupted before its end"

        monkeypatch.chdir(tmp_path)
        for key, value in env.items():
            if key.startswith("HVLAB_"):
                monkeypatch.setenv(key, value)
        report = labs.up(None, yes=True, as_json=True)
        assert report["result"] == "ok", (interrupted_after, report["error"])
        again = labs.up(None, yes=True, as_json=True)
        assert again["changed"] == 0, [s for s in again["steps"] if s["changed"]]

        cluster = world.cluster("hvcluster")
        assert sorted(cluster.up_nodes(world)) == ["HVHOST01", "HVHOST02"] or sorted(
            n.lower() for n in cluster.up_nodes(world)
        ) == ["hvhost01", "hvhost02"]
        assert cluster.pool is not None and cluster.pool.virtual_disk("Volume01") is not None
        group = cluster.group("havm01")
        assert group is not None and cluster.group_state(world, group) == "Online"


def test_a_dropped_change_is_not_resent_and_its_step_converges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection drops while New-VHD runs: the client cannot tell whether it ran,
    so hvlab does not send it again (R-92); the step reads its facts and converges."""
    from hvlab.paths import host_id, state_dir
    from hvsim import faults
    from hvsim.model.world import World
    from hvsim.server import serve_in_thread

    world = World.create(timescale=0.0)
    world.faults = faults.parse("drop:cmdlet=New-VHD,nth=2;seed=3")
    with serve_in_thread(world, auth="ntlm", user=USER, password=PASSWORD) as server:
        monkeypatch.chdir(tmp_path)
        for key, value in _env(server.url).items():
            if key.startswith("HVLAB_"):
                monkeypatch.setenv(key, value)
        monkeypatch.setenv("HVLAB_TIME_FACTOR", "0")
        report = labs.up(None, yes=True, as_json=True)
        assert report["result"] == "ok"
        trace = [
            json.loads(x)
            for x in (state_dir("s2d-2node", tmp_path / ".hvlab", host_id()) / "trace.jsonl")
            .read_text()
            .splitlines()
        ]
        assert "drop New-VHD call 2" in world.faults.log, world.faults.log
        lost = [e for e in trace if e["outcome"] == "lost"]
        assert [e["cmdlet"] for e in lost] == ["New-VHD"] and lost[0]["attempts"] == 1
