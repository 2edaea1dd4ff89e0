"""The example test bed (examples/) passes through hvlab's pytest plugin against the
simulated host, and the plugin keeps what it did not build."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from project import ROOT

pytestmark = pytest.mark.slow


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HVLAB_", "HVSIM_"))}
    env.update(HVSIM_TIMESCALE="0", PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(ROOT / "examples"),
            "--hvlab-home",
            str(tmp_path / "state"),
            *args,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _vms(state: Path) -> list[str]:
    from hvsim import persist

    world = persist.load(state / "sim" / "host.state")
    return sorted(vm.name for vm in world.host.hyperv.vms)


def test_the_examples_pass_and_the_lab_goes_when_the_session_built_it(tmp_path: Path) -> None:
    run = _pytest(tmp_path, "--hvlab-lab", "s2d-2node")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "3 passed" in run.stdout
    assert _vms(tmp_path / "state") == []  # built by the session, taken down at its end


def test_a_kept_lab_is_reused_and_stays(tmp_path: Path) -> None:
    kept = _pytest(tmp_path, "--hvlab-lab", "s2d-2node", "--hvlab-keep")
    assert kept.returncode == 0, kept.stdout[-3000:] + kept.stderr[-3000:]
    assert _vms(tmp_path / "state") == ["dc01", "hvhost01", "hvhost02"]
    # The next session finds it complete: it builds nothing and leaves it up.
    again = _pytest(tmp_path, "--hvlab-lab", "s2d-2node")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert _vms(tmp_path / "state") == ["dc01", "hvhost01", "hvhost02"]
    log = (tmp_path / "state" / "sim" / "s2d-2node" / "run.log").read_text()
    assert log.count("---- lab.up ") == 1  # the second session found it healthy: no build


def test_a_bad_lab_is_a_usage_error(tmp_path: Path) -> None:
    run = _pytest(tmp_path, "--hvlab-lab", str(tmp_path / "missing.yaml"))
    assert run.returncode != 0
    assert "hvlab_lab:" in run.stdout + run.stderr
