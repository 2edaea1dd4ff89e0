"""`invoke sim.serve`: the one line it prints, the password rule, state on exit."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

ROOT = Path(__file__).resolve().parent.parent
INVOKE = Path(sys.executable).with_name("invoke")
PASSWORD = "Cli-Test-Passw0rd!"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HVSIM_", "HVLAB_"))}
    env.update(extra)
    return env


def test_without_a_password_it_exits_2_and_says_how() -> None:
    proc = subprocess.run(
        [str(INVOKE), "sim.serve", "--port", str(_free_port())],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "HVSIM_PASSWORD" in proc.stderr and "--password" in proc.stderr
    assert "listening" not in proc.stdout


def test_serves_prints_one_line_and_saves_state_on_interrupt(tmp_path: Path) -> None:
    port = _free_port()
    state = tmp_path / "host.state"
    proc = subprocess.Popen(
        [
            str(INVOKE),
            "sim.serve",
            "--port",
            str(port),
            "--auth",
            "basic",
            "--state",
            str(state),
            "--allow-unencrypted",
        ],
        cwd=ROOT,
        env=_env(HVSIM_PASSWORD=PASSWORD, HVSIM_USER="labadmin"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # bounded by the pytest timeout
        assert line == (
            f"hvsim listening on http://127.0.0.1:{port}/wsman "
            "(user labadmin, password from HVSIM_PASSWORD, auth basic)\n"
        )
        wsman = WSMan(
            "127.0.0.1",
            port=port,
            ssl=False,
            auth="basic",
            username="labadmin",
            password=PASSWORD,
            encryption="never",
            operation_timeout=5,
        )
        with RunspacePool(wsman) as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet("New-VHD").add_parameter("Path", "C:\\kept.vhdx")
            ps.add_parameter("SizeBytes", "1073741824").add_parameter("Dynamic", True)
            ps.invoke()
            assert not ps.had_errors, ps.streams.error
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert PASSWORD not in out + err
    assert state.exists()
    from hvsim import persist

    world = persist.load(state)
    assert world.host.fs.exists("C:\\kept.vhdx")
    # Ctrl-C is the normal way to stop it.
    assert proc.returncode == 0, err


def test_https_with_a_generated_certificate() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", f"from hvsim.cli import serve; serve(port={port}, https=True)"],
        cwd=ROOT,
        env=_env(HVSIM_PASSWORD=PASSWORD, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(
            f"hvsim listening on https://127.0.0.1:{port}/wsman "
        )
        wsman = WSMan(
            "127.0.0.1",
            port=port,
            ssl=True,
            auth="ntlm",
            username="hvadmin",
            password=PASSWORD,
            cert_validation=False,
            operation_timeout=5,
        )
        with RunspacePool(wsman) as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet("Get-VMHost")
            assert ps.invoke()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
