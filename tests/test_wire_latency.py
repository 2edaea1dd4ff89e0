"""hvsim's link latency: every HTTP exchange takes the round trip it would over a real
link (ServerConfig.latency), so a benchmark pays for round trips; `sim.serve
--latency` and the embedded host's HVSIM_LATENCY_MS set it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from typing import Any

import pytest
from conftest import SIM_PASSWORD, SIM_USER, pypsrp_wsman
from project import ROOT

LATENCY_MS = 200.0


def _serve(world: Any, latency_ms: float) -> Any:
    from hvsim.server import serve_in_thread

    return serve_in_thread(world, user=SIM_USER, password=SIM_PASSWORD, latency_ms=latency_ms)


def _timed(server: Any, action: Any) -> tuple[float, int, float]:
    """(seconds, HTTP exchanges, seconds of latency the server gave them) of an action."""
    before, delayed = server.exchanges, server.link_seconds
    t0 = time.monotonic()
    action()
    return time.monotonic() - t0, server.exchanges - before, server.link_seconds - delayed


def test_every_exchange_takes_one_round_trip(sim_world: Any) -> None:
    from pypsrp.powershell import PowerShell, RunspacePool

    latency = LATENCY_MS / 1000
    with _serve(sim_world, LATENCY_MS) as server:
        assert server.latency_ms == LATENCY_MS
        pool = RunspacePool(pypsrp_wsman(server, "ntlm"))
        # A new connection: its TCP handshake is one more round trip than its exchanges.
        seconds, exchanges, delayed = _timed(server, pool.open)
        assert exchanges >= 3  # NTLM negotiate, authenticate with Create, Receive
        assert delayed == pytest.approx((exchanges + 1) * latency)
        assert seconds >= delayed, (seconds, exchanges)
        try:
            for _ in range(3):
                ps = PowerShell(pool)
                ps.add_cmdlet("Get-VMHost")
                seconds, exchanges, delayed = _timed(server, ps.invoke)
                assert ps.output and not ps.had_errors
                # Each exchange is given the round trip, and only that: the delay is per
                # exchange, not per call or per connection; the client waits for all of it.
                assert exchanges == 2  # Command, Receive
                assert delayed == pytest.approx(exchanges * latency)
                assert seconds >= delayed, seconds
        finally:
            pool.close()


def test_no_latency_by_default(sim_world: Any) -> None:
    from pypsrp.powershell import PowerShell, RunspacePool

    with _serve(sim_world, 0) as server:
        pool = RunspacePool(pypsrp_wsman(server, "ntlm"))
        pool.open()
        try:
            ps = PowerShell(pool)
            ps.add_cmdlet("Get-VMHost")
            _, exchanges, delayed = _timed(server, ps.invoke)
        finally:
            pool.close()
    assert exchanges == 2 and delayed == 0.0


@pytest.mark.parametrize("bad", [-1, "fast", float("nan"), 10_001])
def test_a_latency_outside_its_range_is_refused(sim_world: Any, bad: Any) -> None:
    from hvsim.server import start

    with pytest.raises(ValueError, match="latency"):
        start(sim_world, user=SIM_USER, password=SIM_PASSWORD, latency_ms=bad)


def test_sim_serve_takes_latency_and_says_it(tmp_path: Any) -> None:
    with socket.socket() as probe:  # a free port: sim.serve takes 0 as its default, 5985
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = f"from hvsim.cli import serve; serve(port={port}, password='Pw-Serve-1!', latency=12.5)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=str(ROOT),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(10)
    assert line.startswith("hvsim listening on") and "latency 12.5 ms per exchange" in line, line
    bad = subprocess.run(
        [sys.executable, "-c", "from hvsim.cli import serve; serve(password='x', latency='slow')"],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "--latency" in bad.stderr


def test_the_embedded_host_takes_hvsim_latency_ms(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hvlab.errors import ConfigError
    from hvlab.session import embedded_latency_ms, open_session

    assert embedded_latency_ms({}) == 0.0
    assert embedded_latency_ms({"HVSIM_LATENCY_MS": "50"}) == 50.0
    with pytest.raises(ConfigError, match="HVSIM_LATENCY_MS"):
        embedded_latency_ms({"HVSIM_LATENCY_MS": "-5"})
    monkeypatch.setenv("HVSIM_TIMESCALE", "0")
    monkeypatch.setenv("HVSIM_LATENCY_MS", str(LATENCY_MS))
    monkeypatch.delenv("HVLAB_HOST", raising=False)
    with open_session(None, state_base=tmp_path, writes=False, verb="status") as session:
        assert "latency 200 ms" in session.description
        t0 = time.monotonic()
        assert session.host.run("Get-VMHost")
        seconds = time.monotonic() - t0
    # A call is two exchanges (Command, Receive), each one round trip.
    assert seconds >= 2 * LATENCY_MS / 1000, seconds
