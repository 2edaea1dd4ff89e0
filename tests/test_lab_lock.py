"""One run at a time per lab (R-131), lab.status without the DSRM password, and local
state kept per host. Over the wire: the embedded hvsim, and hvsim served on loopback
as a host other controllers reach (HVLAB_HOST)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from project import LABS

from hvlab import lab as labs
from hvlab import lifecycle, locking, teardown
from hvlab import status as lab_status
from hvlab.errors import EXIT_BAD_INPUT, ConfigError, LockedError
from hvlab.paths import host_id, state_dir
from hvlab.session import sim_state_path

LAB_FILE = LABS / "s2d-2node.yaml"
ROOT_DIR = "C:\\hvlab\\s2d-2node"
LOCK = ROOT_DIR + "\\.hvlab-lock"
PASSWORDS = {
    "HVLAB_ADMIN_PASSWORD": "Adm1n-Xyzzy-7731!",
    "HVLAB_DSRM_PASSWORD": "Dsrm-Plugh-4417!",
}
USER, PASSWORD = "hvadmin", "Lock-Host-Pa55!"


def _host(world: Any, name: str, **params: Any) -> list[Any]:
    from hvsim.executor import Command, run_pipeline

    return run_pipeline(
        world, world.host, "HV01\\Administrator", [Command(name, list(params.items()))], None
    )


def _marked_folder(workdir: Path, lock: dict[str, Any] | str | None) -> Path:
    """The embedded host with the lab's marked folder, and a lock file in it."""
    from hvsim import persist
    from hvsim.model.world import World

    world = World.create()
    _host(world, "New-Item", ItemType="Directory", Path=ROOT_DIR)
    _host(world, "Set-Content", Path=ROOT_DIR + "\\.hvlab-lab", Value="s2d-2node")
    if lock is not None:
        text = lock if isinstance(lock, str) else json.dumps(lock)
        _host(world, "New-Item", ItemType="File", Path=LOCK, Value=text)
    path = sim_state_path(workdir / ".hvlab")
    persist.save(world, path)
    return path


def _holder(**changes: Any) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    record = {
        "lab": "s2d-2node",
        "controller": "ci-runner-7",
        "pid": 4242,
        "user": "alice",
        "command": "lab.up",
        "since": now,
        "heartbeat": now,
        "token": "0123456789abcdef",
    }
    record.update(changes)
    return record


def _world(workdir: Path) -> Any:
    from hvsim import persist

    return persist.load(sim_state_path(workdir / ".hvlab"))


TASKS = {
    "up": lambda: labs.up(None, lab=str(LAB_FILE)),
    "down": lambda: teardown.down(None, lab=str(LAB_FILE), yes=True),
    "stop": lambda: lifecycle.stop(None, lab=str(LAB_FILE)),
    "start": lambda: lifecycle.start(None, lab=str(LAB_FILE)),
    "checkpoint": lambda: lifecycle.checkpoint(None, "base", lab=str(LAB_FILE)),
    "restore": lambda: lifecycle.restore(None, "base", lab=str(LAB_FILE)),
}


@pytest.mark.parametrize("task", sorted(TASKS))
def test_a_live_lock_refuses_every_changing_task_at_once(workdir: Path, task: str) -> None:
    _marked_folder(workdir, _holder())
    before = _world(workdir).snapshot()
    with pytest.raises(LockedError) as err:
        TASKS[task]()
    text = str(err.value)
    for part in ("lab.up by alice on controller ci-runner-7 (pid 4242) since", "R-131", LOCK):
        assert part in text, text
    assert err.value.exit_code == EXIT_BAD_INPUT
    assert _world(workdir).snapshot() == before, "nothing was changed"


def _dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    return int(proc.stdout)


@pytest.mark.parametrize(
    "lock",
    [
        pytest.param("dead", id="same-controller-process-gone"),
        pytest.param("old", id="heartbeat-too-old"),
        pytest.param("garbage", id="no-readable-record"),
    ],
)
def test_a_lock_left_by_a_killed_run_is_taken_over(
    workdir: Path, lock: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if lock == "dead":
        record: Any = _holder(controller=locking.controller_name(), pid=_dead_pid())
    elif lock == "old":
        record = _holder(heartbeat="2020-01-01T00:00:00Z")
    else:
        record = ""
    _marked_folder(workdir, record)
    report = lifecycle.stop(None, lab=str(LAB_FILE))
    assert report["result"] == "ok"
    assert "took over the lock of lab s2d-2node" in capsys.readouterr().out
    assert not _world(workdir).host.fs.exists(LOCK), "the run gave its lock back at its end"


def test_a_fresh_lock_of_this_controller_is_not_taken_over(workdir: Path) -> None:
    # A run of this controller whose process is alive (this one, another token).
    _marked_folder(workdir, _holder(controller=locking.controller_name(), pid=os.getpid()))
    with pytest.raises(LockedError):
        lifecycle.stop(None, lab=str(LAB_FILE))


def hvlab_proc(workdir: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hvlab", *args],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_a_second_run_on_the_embedded_host_is_refused_at_once(workdir: Path) -> None:
    env = {**os.environ, "HVSIM_TIMESCALE": "0.004"}
    first = hvlab_proc(workdir, "lab.up", env=env)
    owner = sim_state_path(workdir / ".hvlab").with_name("host.state.owner")
    deadline = time.monotonic() + 60
    while first.poll() is None and time.monotonic() < deadline:
        if owner.exists() and '"locks_lab": true' in owner.read_text():
            break
        time.sleep(0.05)
    started = time.monotonic()
    second = hvlab_proc(workdir, "lab.down", "--yes", env=env)
    _, err = second.communicate(timeout=120)
    assert second.returncode == EXIT_BAD_INPUT, err
    assert "in use by another run: lab.up by" in err and f"(pid {first.pid})" in err
    assert time.monotonic() - started < 30, "refused at once, not after waiting for the host"
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]


@pytest.fixture
def served(workdir: Path) -> Iterator[tuple[Any, dict[str, str]]]:
    """hvsim served on loopback: a host that several controllers can reach."""
    from hvsim.model.world import World
    from hvsim.server import serve_in_thread

    world = World.create(timescale=0.002)
    with serve_in_thread(world, auth="ntlm", user=USER, password=PASSWORD) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HVLAB_", "HVSIM_"))}
        env.update(
            PASSWORDS,
            HVLAB_HOST=server.url,
            HVLAB_USER=USER,
            HVLAB_PASSWORD=PASSWORD,
            HVLAB_AUTH="ntlm",
            HVLAB_TIME_FACTOR="0.002",
        )
        yield world, env


@pytest.mark.slow
def test_a_second_controller_is_refused_while_a_run_holds_the_lab(
    workdir: Path, served: tuple[Any, dict[str, str]]
) -> None:
    world, env = served
    first = hvlab_proc(workdir, "lab.up", "--yes", env=env)
    deadline = time.monotonic() + 60
    while not world.host.fs.exists(LOCK) and first.poll() is None:
        assert time.monotonic() < deadline, "the first run never took the lock"
        time.sleep(0.02)
    other = workdir / "controller-b"
    other.mkdir()
    second = hvlab_proc(other, "lab.up", "--yes", env=env)
    _, err = second.communicate(timeout=120)
    assert second.returncode == EXIT_BAD_INPUT, err
    assert f"lab.up by {os.environ.get('USER', '')}"[:12] in err or "lab.up by" in err
    assert f"(pid {first.pid})" in err and "R-131" in err
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    assert not world.host.fs.exists(LOCK)


def test_the_holder_refreshes_its_heartbeat(
    workdir: Path, served: tuple[Any, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hvlab.config import Settings
    from hvlab.remote import Host
    from hvlab.spec import load_lab

    world, env = served
    _host(world, "New-Item", ItemType="Directory", Path=ROOT_DIR)
    _host(world, "Set-Content", Path=ROOT_DIR + "\\.hvlab-lab", Value="s2d-2node")
    monkeypatch.setenv("HVLAB_LOCK_HEARTBEAT", "0.2")
    settings = Settings(
        host=env["HVLAB_HOST"], user=USER, password=PASSWORD, auth="ntlm", cert_validation=False
    )
    spec = load_lab(LAB_FILE)
    with Host.connect(settings) as host:
        lock = locking.LabLock(host, spec, "lab.test", simulated=False)
        assert lock.acquire_if_marked()
        first = json.loads(world.host.fs.read(LOCK))
        time.sleep(1.6)
        beat = json.loads(world.host.fs.read(LOCK))
        assert beat["token"] == first["token"] and beat["heartbeat"] > first["since"]
        lock.release()
    assert not world.host.fs.exists(LOCK)


def test_status_needs_no_dsrm_password(
    workdir: Path, served: tuple[Any, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, env = served
    for key, value in env.items():
        if key.startswith("HVLAB_"):
            monkeypatch.setenv(key, value)
    monkeypatch.delenv("HVLAB_DSRM_PASSWORD")
    data = lab_status.status(None, lab=str(LAB_FILE))
    assert [vm["state"] for vm in data["vms"]] == ["Missing"] * 3
    monkeypatch.delenv("HVLAB_ADMIN_PASSWORD")
    with pytest.raises(ConfigError) as err:
        lab_status.status(None, lab=str(LAB_FILE))
    assert "HVLAB_ADMIN_PASSWORD" in str(err.value) and "DSRM" not in str(err.value)
    with pytest.raises(ConfigError, match="HVLAB_DSRM_PASSWORD"):
        labs.plan(None, lab=str(LAB_FILE))  # a build promotes the DC: it needs it


def test_local_state_is_kept_per_host(
    workdir: Path, served: tuple[Any, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    labs.plan(None, lab=str(LAB_FILE))  # the embedded host
    _, env = served
    for key, value in env.items():
        if key.startswith("HVLAB_"):
            monkeypatch.setenv(key, value)
    labs.plan(None, lab=str(LAB_FILE))  # the served one
    port = env["HVLAB_HOST"].split(":")[2].split("/")[0]
    embedded = workdir / ".hvlab" / "sim" / "s2d-2node" / "run.log"
    served_log = workdir / ".hvlab" / f"127.0.0.1_{port}" / "s2d-2node" / "run.log"
    assert embedded.is_file() and served_log.is_file()
    assert "simulated host (hvsim, embedded" in embedded.read_text()
    assert "simulated host (hvsim, embedded" not in served_log.read_text()
    assert state_dir("s2d-2node", workdir / ".hvlab", host_id()) == served_log.parent


@pytest.mark.parametrize(
    ("host", "ident"),
    [
        (None, "sim"),
        ("hv01.contoso.com", "hv01.contoso.com"),
        ("https://HV01.contoso.com:5986/wsman", "hv01.contoso.com"),
        ("http://hv01:5985/wsman", "hv01"),
        ("http://127.0.0.1:41234/wsman", "127.0.0.1_41234"),
        ("https://sim", "sim_5986"),
    ],
)
def test_host_ids(host: str | None, ident: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HVLAB_HOST", raising=False)
    assert host_id({"host": host}) == ident


def test_the_lock_module_imports_on_its_own() -> None:
    """The embedded host's session imports it before anything else of hvlab (the
    Python API's first call)."""
    for module in ("hvlab.locking", "hvlab.session", "hvlab.lifecycle"):
        run = subprocess.run(
            [sys.executable, "-c", f"import {module}"], capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
