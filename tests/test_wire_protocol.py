"""PSRP and WS-Management operations hvsim serves, driven by unmodified clients.

pypsrp 0.9.1 (sealed NTLM, the way hvlab talks) covers runspace limits,
Disconnect/Reconnect/Connect, WS-Enumeration, command metadata and the shell
quota; pypsrp 1.0.0b1 (a child process, as in test_wire_psrp10) covers a
pipeline that fails or writes output before its input ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import SIM_PASSWORD, SIM_USER, pypsrp_wsman
from pypsrp.exceptions import WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool

# ------------------------------------------------------------------ runspaces


def test_min_and_max_runspaces_are_validated_and_max_sets_capacity(sim_server: Any) -> None:
    """[MS-PSRP] 2.2.2.9-10: min below 1 or above max, and max below min, are refused."""
    from pypsrp.exceptions import InvalidPSRPOperation

    server = sim_server(auth="ntlm")
    with RunspacePool(pypsrp_wsman(server, "ntlm")) as pool:
        assert pool.get_available_runspaces() == 1
        with pytest.raises(InvalidPSRPOperation):
            pool.min_runspaces = 2  # above max (1): refused, unchanged
        assert pool.min_runspaces == 1
        pool.max_runspaces = 3
        assert pool.max_runspaces == 3
        pool.min_runspaces = 2
        assert pool.min_runspaces == 2
        with pytest.raises(InvalidPSRPOperation):
            pool.max_runspaces = 1  # below min (2): refused
        assert pool.max_runspaces == 3
        with pytest.raises(InvalidPSRPOperation):
            pool.min_runspaces = 0  # below 1: refused
        assert pool.min_runspaces == 2
        assert pool.get_available_runspaces() == 3
        shell = server._psrp.shells[pool.shell.id.upper()]
        assert shell.pool.max_runspaces == 3 and shell.pool.min_runspaces == 2


# ------------------------------------------------------------------ disconnect


def test_disconnect_reconnect_and_connect_as_a_new_client(sim_server: Any) -> None:
    """[MS-WSMV] 3.1.4.15-17, [MS-PSRP] 3.1.5.3.14-18: a pipeline runs on while the
    pool is disconnected; the same client reconnects; another one finds the pool
    by enumeration ([MS-WSMV] 3.1.4.8), connects, and takes up the pipeline."""
    server = sim_server(auth="ntlm")
    pool = RunspacePool(pypsrp_wsman(server, "ntlm"))
    pool.open()
    pool.disconnect()
    shell = server._psrp.shells[pool.shell.id.upper()]
    assert shell.disconnected
    pool.connect()  # the same client: Reconnect
    assert not shell.disconnected
    ps = PowerShell(pool)
    ps.add_script("1; Start-Sleep -Milliseconds 300; 'after the sleep'")
    ps.begin_invoke()
    pool.disconnect()

    found = RunspacePool.get_runspace_pools(pypsrp_wsman(server, "ntlm"))
    (other,) = [p for p in found if p.id.upper() == shell.id]
    (pipeline,) = other.create_disconnected_power_shells()
    other.connect()  # a new client: Connect with connectXml
    pipeline.connect()
    assert pipeline.output == [1, "after the sleep"]
    other.close()
    assert server.shells == 0


def test_requests_for_a_disconnected_shell_are_refused(sim_server: Any) -> None:
    server = sim_server(auth="ntlm")
    pool = RunspacePool(pypsrp_wsman(server, "ntlm"))
    pool.open()
    pool.disconnect()
    with pytest.raises(WSManFaultError) as info:
        pool.shell.receive("stdout", timeout=1)
    assert info.value.code == 2150859204  # ERROR_WSMAN_SHELL_DISCONNECTED
    pool.connect()
    pool.close()


def test_a_disconnected_shell_lives_for_the_idle_timeout_the_client_asked(
    sim_server: Any,
) -> None:
    server = sim_server(auth="basic", allow_unencrypted=True)
    pool = RunspacePool(pypsrp_wsman(server, "basic"))
    pool.open()
    shell = server._psrp.shells[pool.shell.id.upper()]
    shell.disconnect(0.3)  # what a Disconnect with rsp:IdleTimeOut PT0.3S asks
    deadline = time.monotonic() + 5
    while server.shells and time.monotonic() < deadline:
        time.sleep(0.1)
    # Closed by the reaper's timer: no new Create came to trigger it.
    assert server.shells == 0


def test_abandoned_shells_are_reaped_on_a_timer(sim_server: Any) -> None:
    server = sim_server(auth="basic", allow_unencrypted=True)
    server._psrp.idle_timeout = 0.3
    RunspacePool(pypsrp_wsman(server, "basic")).open()  # never closed
    assert server.shells == 1
    deadline = time.monotonic() + 5
    while server.shells and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.shells == 0


def test_shell_quota_per_user(sim_server: Any) -> None:
    """MaxShellsPerUser of the Microsoft.PowerShell configuration (25 by default)."""
    server = sim_server(auth="basic", allow_unencrypted=True)
    server._psrp.max_shells_per_user = 3
    pools = [RunspacePool(pypsrp_wsman(server, "basic")) for _ in range(3)]
    for p in pools:
        p.open()
    with pytest.raises(WSManFaultError) as info:
        RunspacePool(pypsrp_wsman(server, "basic")).open()
    assert info.value.code == 2150859236  # ERROR_WSMAN_QUOTA_MAX_SHELLS_PPQ
    assert "maximum number of 3 concurrent shells" in str(info.value)
    pools[0].close()
    with RunspacePool(pypsrp_wsman(server, "basic")) as again:
        assert again.state


# ------------------------------------------------------------------ metadata


def test_command_metadata_comes_from_the_catalog(sim_server: Any) -> None:
    """GET_COMMAND_METADATA ([MS-PSRP] 2.2.2.14), what Get-Command over remoting uses."""
    server = sim_server(auth="ntlm")
    with RunspacePool(pypsrp_wsman(server, "ntlm")) as pool:
        found = pool.get_command_metadata(["Get-VM*"], namespace=["Hyper-V"])
    names = {m.name for m in found}
    assert "Get-VM" in names and "Get-VMHost" in names
    assert all(n.startswith("Get-VM") for n in names)


# ------------------------------------------------------------------ housekeeping


def test_profile_folders_exist_and_relative_copies_land_in_documents(
    sim_server: Any, tmp_path: Path
) -> None:
    from pypsrp.client import Client

    server = sim_server(auth="ntlm")
    src = tmp_path / "notes.txt"
    src.write_bytes(b"hello")
    client = Client(
        "127.0.0.1",
        port=server.port,
        ssl=False,
        auth="ntlm",
        username=SIM_USER,
        password=SIM_PASSWORD,
        operation_timeout=5,
    )
    client.copy(str(src), "notes.txt")
    fs = server.world.host.fs
    assert fs.is_dir(f"C:\\Users\\{SIM_USER}\\Desktop")
    assert bytes(fs.read(f"C:\\Users\\{SIM_USER}\\Documents\\notes.txt")) == b"hello"


def test_self_signed_key_files_are_removed_at_stop() -> None:
    from hvsim.server import serve_in_thread

    with serve_in_thread(None, https=True, user=SIM_USER, password=SIM_PASSWORD) as server:
        assert server.cert_path is not None
        folder = os.path.dirname(server.cert_path)
        assert os.path.exists(os.path.join(folder, "key.pem"))
    assert not os.path.exists(folder)


# ------------------------------------------------------------------ pypsrp 1.0.0b1

CLIENT = """
import sys, threading
sys.path.insert(0, sys.argv[1])
import psrp

info = psrp.WSManInfo(
    "127.0.0.1", scheme="http", port=int(sys.argv[2]), auth="ntlm",
    username=sys.argv[3], password=sys.argv[4], operation_timeout=5,
)
with psrp.SyncRunspacePool(info) as rp:
    # The pipeline fails in begin while its input is still coming: the client,
    # which waits for a state change before it sends, must not deadlock.
    changed = threading.Event()
    ps = psrp.SyncPowerShell(rp)
    ps.add_script("param([Parameter(ValueFromPipeline)]$InputObject) begin { throw 'failure msg' } process { $_ }")
    ps.state_changed += lambda e: changed.set()
    def gen():
        changed.wait(20)
        yield 1
    try:
        ps.invoke(gen())
    except psrp.PipelineFailed as exc:
        print("FAILED", exc)
    # Output streams before the pipeline ends; a stop ends the sleep.
    out = psrp.SyncPSDataCollection()
    got = threading.Event()
    out.data_added += lambda e: got.set()
    ps = psrp.SyncPowerShell(rp)
    ps.add_script("1; Start-Sleep -Seconds 60; 2")
    task = ps.invoke_async(output_stream=out)
    got.wait(20)
    ps.stop()
    try:
        task.wait()
    except psrp.PipelineStopped:
        print("STOPPED", list(out))
    gcm = psrp.SyncCommandMetaPipeline(rp, name="Get-*Item", namespace=["Microsoft.PowerShell.Management"])
    found = gcm.invoke()
    print("META", type(found[0]).__name__, sorted(m.Name for m in found[1:]))
    ps = psrp.SyncPowerShell(rp)
    ps.add_command("Get-ComputerInfo")
    print("TOSTRING", repr(ps.invoke()[0].PSObject.to_string))
"""


@pytest.fixture(scope="module")
def psrp10(request: pytest.FixtureRequest) -> Path:
    from test_wire_psrp10 import install_psrp10

    return install_psrp10(request)


@pytest.mark.slow
@pytest.mark.network
def test_pipelines_start_at_create_pipeline(sim_server: Any, psrp10: Path, tmp_path: Path) -> None:
    """[MS-PSRP] 3.2.5.4.10, 3.2.1.3.2: a pipeline runs from CREATE_PIPELINE on.
    Also: <ToString> is encoded as [MS-PSRP] 2.2.5.2.4 encodes strings, so a CR
    survives XML's end-of-line handling (psrpcore 0.3.1 alone writes it raw)."""
    from hvsim import objects, registry

    if registry.lookup("Get-ComputerInfo") is None:

        @registry.cmdlet("Get-ComputerInfo", params=[])
        def _info(ctx: Any, call: Any) -> list[Any]:
            return [objects.PSObj(["Hvsim.Test.Lines"], {"A": 1}, "line1\r\nline2_x")]

    server = sim_server(auth="ntlm")
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    proc = subprocess.run(
        [sys.executable, str(script), str(psrp10), str(server.port), SIM_USER, SIM_PASSWORD],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert "FAILED Pipeline failed while sending input: failure msg" in lines, proc.stdout
    assert "STOPPED [1]" in lines, proc.stdout
    meta = next(line for line in lines if line.startswith("META"))
    assert meta.startswith("META CommandMetadataCount") and "'Get-ChildItem'" in meta
    assert "TOSTRING 'line1\\r\\nline2_x'" in lines, proc.stdout
