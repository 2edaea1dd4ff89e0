"""pypsrp's Client.copy / Client.fetch against hvsim: its fixed scripts are
recognised by hash and act on the simulated machine's file system."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from conftest import SIM_PASSWORD, SIM_USER
from pypsrp._utils import get_pwsh_script
from pypsrp.client import Client
from pypsrp.exceptions import WinRMError

from hvsim import filetransfer
from hvsim.scripts import digest


def _client(server: Any, auth: str) -> Client:
    return Client(
        "127.0.0.1",
        port=server.port,
        ssl=server.https,
        auth=auth,
        username=SIM_USER,
        password=SIM_PASSWORD,
        cert_validation=False,
        encryption="never" if auth == "basic" else "auto",
        operation_timeout=5,
    )


def test_known_digests_match_the_installed_pypsrp() -> None:
    assert digest(get_pwsh_script("copy.ps1")) == filetransfer.COPY_SHA256
    assert digest(get_pwsh_script("fetch.ps1")) == filetransfer.FETCH_SHA256
    assert filetransfer.find(get_pwsh_script("copy.ps1")) is filetransfer.copy
    assert filetransfer.find("Get-ChildItem") is None


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
def test_copy_then_fetch_roundtrip(sim_server: Any, tmp_path: Path, auth: str) -> None:
    server = sim_server(auth=auth, allow_unencrypted=auth == "basic")
    payload = os.urandom(300_000)  # several PSRP input fragments
    src = tmp_path / "unattend.bin"
    src.write_bytes(payload)
    client = _client(server, auth)
    remote = client.copy(str(src), "C:\\upload.bin")
    assert remote == "C:\\upload.bin"
    assert bytes(server.world.host.fs.read("C:\\upload.bin")) == payload
    back = tmp_path / "back.bin"
    client.fetch("C:\\upload.bin", str(back))
    assert back.read_bytes() == payload


def test_fetch_of_a_missing_file_fails_with_the_script_text(
    sim_server: Any, tmp_path: Path
) -> None:
    server = sim_server(auth="basic", allow_unencrypted=True)
    with pytest.raises(WinRMError, match=r"The path at 'C:\\nope.txt' does not exist"):
        _client(server, "basic").fetch("C:\\nope.txt", str(tmp_path / "x"))


def test_other_scripts_are_not_modelled(sim_server: Any) -> None:
    server = sim_server(auth="basic", allow_unencrypted=True)
    out, streams, had_errors = _client(server, "basic").execute_ps("Get-Process")
    assert out == ""
    # execute_ps wraps the text in Invoke-Expression, which hvsim refuses.
    assert had_errors or streams.error
    assert any("hvsim does not model" in str(e) for e in streams.error)
