"""hvsim driven by pypsrp 1.0.0b1's asyncio API (the `psrp` package).

pypsrp 1.0.0b1 cannot be installed beside 0.9.1 in one environment, so it is
installed once into pytest's cache folder and runs in a child process. These are
the suite's only tests that need the network (PyPI, the first time; marked
`network`): without it they are skipped and say so.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import SIM_PASSWORD, SIM_USER

pytestmark = pytest.mark.network

CLIENT = """
import asyncio, sys
sys.path.insert(0, sys.argv[1])
import psrp

async def main(port, auth, user, password):
    if auth == "ntlm-url":
        # Given a full URL, 1.0.0b1 sends NTLM without message encryption.
        info = psrp.WSManInfo(
            f"http://127.0.0.1:{port}/wsman", auth="ntlm", username=user, password=password,
            operation_timeout=5,
        )
    else:
        info = psrp.WSManInfo(
            "127.0.0.1", scheme="http", port=port, auth=auth, username=user, password=password,
            encryption="never" if auth == "basic" else "auto", operation_timeout=5,
        )
    async with psrp.AsyncRunspacePool(info) as rp:
        ps = psrp.AsyncPowerShell(rp)
        ps.add_command("Get-VMHost")
        out = await ps.invoke()
        print("TYPE", out[0].PSObject.type_names[0])
        ps = psrp.AsyncPowerShell(rp)
        ps.add_command("Get-VM").add_parameter("Name", "ghost")
        await ps.invoke()
        print("ERROR", ps.streams.error[0].FullyQualifiedErrorId)

asyncio.run(main(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]))
"""


@pytest.fixture(scope="module")
def psrp10(request: pytest.FixtureRequest) -> Path:
    return install_psrp10(request)


def install_psrp10(request: pytest.FixtureRequest) -> Path:
    """pypsrp 1.0.0b1 in pytest's cache folder (installed once); skips offline."""
    folder = Path(request.config.cache.mkdir("pypsrp-1.0.0b1"))
    if not (folder / "psrp" / "__init__.py").exists():
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--target",
                str(folder),
                "pypsrp==1.0.0b1",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0 or not (folder / "psrp" / "__init__.py").exists():
            pytest.skip(
                "needs the network: pypsrp 1.0.0b1 could not be installed from PyPI "
                f"({proc.stderr.strip().splitlines()[-1:] or 'no output'})"
            )
    return folder


def _client(psrp10: Path, tmp_path: Path, port: int, auth: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    return subprocess.run(
        [sys.executable, str(script), str(psrp10), str(port), auth, SIM_USER, SIM_PASSWORD],
        capture_output=True,
        text=True,
        timeout=120,
        # Only the installed 1.0.0b1 and its dependencies, never the 0.9.1 ones.
        env={"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"},
    )


@pytest.mark.slow
@pytest.mark.parametrize("auth", ["ntlm", "ntlm-url", "basic"])
def test_asyncio_client(sim_server: Any, psrp10: Path, tmp_path: Path, auth: str) -> None:
    # "ntlm-url" and "basic" send their messages in clear over HTTP: they need the
    # server's allow_unencrypted (WinRM's AllowUnencrypted=true).
    server = sim_server(auth=auth.split("-")[0], allow_unencrypted=auth != "ntlm")
    proc = _client(psrp10, tmp_path, server.port, auth)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    # 1.0.0b1 marks objects it does not rehydrate as Deserialized, as PowerShell does.
    assert "TYPE Deserialized.Microsoft.HyperV.PowerShell.VMHost" in lines
    assert "ERROR InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM" in lines


@pytest.mark.slow
@pytest.mark.parametrize("auth", ["ntlm-url", "basic"])
def test_unencrypted_clients_are_refused_by_default(
    sim_server: Any, psrp10: Path, tmp_path: Path, auth: str
) -> None:
    """AllowUnencrypted=false: Basic over HTTP gets 401, an unsealed body after an
    NTLM logon gets HTTP 500; sealed NTLM (test_asyncio_client) still works."""
    server = sim_server(auth=auth.split("-")[0])
    proc = _client(psrp10, tmp_path, server.port, auth)
    assert proc.returncode != 0
    expected = "401" if auth == "basic" else "500"
    assert expected in proc.stderr, proc.stderr[-2000:]
    assert "TYPE" not in proc.stdout
