"""hvsim's listener against hostile and malformed requests, over real sockets.

The logon is checked before any body is read, bodies are capped at
MaxEnvelopeSizekb, bad framing gets 400/411, idle connections and slow bodies
are dropped, unencrypted traffic is refused (AllowUnencrypted=false), and the
server's memory stays bounded through all of it.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import psutil
import pytest
import requests
from conftest import SIM_PASSWORD, SIM_USER, pypsrp_wsman
from pypsrp.powershell import PowerShell, RunspacePool

ROOT = Path(__file__).resolve().parent.parent
NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}
SHELL_URI = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"


def _envelope(
    action: str,
    body: str = "",
    extra: str = "",
    timeout: str = "PT5S",
    resource: str = SHELL_URI,
) -> bytes:
    return (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
        'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">'
        f"<s:Header><a:Action>{action}</a:Action>"
        f"<a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
        "<w:MaxEnvelopeSize>153600</w:MaxEnvelopeSize>"
        f"<w:OperationTimeout>{timeout}</w:OperationTimeout>"
        f"<w:ResourceURI>{resource}</w:ResourceURI>"
        f"{extra}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _basic() -> str:
    return "Basic " + base64.b64encode(f"{SIM_USER}:{SIM_PASSWORD}".encode()).decode()


def _raw(server: Any, head: bytes, body: bytes = b"", read_timeout: float = 10) -> bytes:
    """Send raw bytes on a fresh connection and return everything the server says."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=read_timeout) as sock:
        sock.sendall(head + body)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
                if b"\r\n\r\n" in out and b"Connection: close" not in out:
                    break
        except (TimeoutError, ConnectionResetError):
            pass
        return out


def _fault(resp: requests.Response) -> tuple[int, str, str]:
    root = ET.fromstring(resp.content)
    fault = root.find("s:Body/s:Fault/s:Detail/f:WSManFault", NS)
    sub = root.find("s:Body/s:Fault/s:Code/s:Subcode/s:Value", NS)
    assert fault is not None and sub is not None, resp.text
    message = fault.find("f:Message", NS)
    return (
        int(fault.get("Code", "0")),
        sub.text or "",
        (message.text if message is not None else ""),
    )


def _post(server: Any, data: bytes) -> requests.Response:
    return requests.post(
        server.url,
        data=data,
        auth=(SIM_USER, SIM_PASSWORD),
        headers={"Content-Type": "application/soap+xml;charset=UTF-8"},
        timeout=10,
    )


def _still_serves(server: Any) -> None:
    with RunspacePool(pypsrp_wsman(server, "basic")) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-VMHost")
        assert ps.invoke() and not ps.had_errors


# ------------------------------------------------------------------ framing


@pytest.mark.parametrize(
    ("length", "status"),
    [
        pytest.param(b"Content-Length: abc\r\n", b" 400 ", id="not-a-number"),
        pytest.param(b"Content-Length: -5\r\n", b" 400 ", id="negative"),
        pytest.param(b"Content-Length: 4\r\nContent-Length: 9\r\n", b" 400 ", id="two-lengths"),
        pytest.param(b"Transfer-Encoding: chunked\r\n", b" 400 ", id="chunked"),
        pytest.param(b"", b" 411 ", id="no-length"),
    ],
)
def test_bad_framing_gets_400_or_411_and_the_connection_closes(
    sim_server: Any, length: bytes, status: bytes
) -> None:
    server = sim_server(auth="basic", allow_unencrypted=True)
    head = (
        b"POST /wsman HTTP/1.1\r\nHost: x\r\nAuthorization: " + _basic().encode() + b"\r\n"
        b"Content-Type: application/soap+xml\r\n" + length + b"\r\n"
    )
    reply = _raw(server, head, b"4\r\nabcd\r\n0\r\n\r\n")
    assert status in reply.split(b"\r\n", 1)[0], reply[:200]
    assert b"Connection: close" in reply
    _still_serves(server)


def test_logon_is_checked_before_the_body_is_read(sim_server: Any) -> None:
    """A request without credentials announcing 15 MiB is answered 401 at once,
    without the server reading (or waiting for) the body."""
    server = sim_server(auth="ntlm")
    head = (
        b"POST /wsman HTTP/1.1\r\nHost: x\r\nContent-Type: application/soap+xml\r\n"
        b"Content-Length: 15728640\r\n\r\n"
    )
    t0 = time.monotonic()
    reply = _raw(server, head, b"<s:Envelope", read_timeout=5)
    assert reply.startswith(b"HTTP/1.1 401"), reply[:200]
    assert b"Connection: close" in reply
    assert time.monotonic() - t0 < 3


def test_oversized_authenticated_body_gets_the_encoding_limit_fault(sim_server: Any) -> None:
    server = sim_server(auth="basic", allow_unencrypted=True)
    resp = _post(server, b"<x>" + b"A" * (600 * 1024) + b"</x>")
    assert resp.status_code == 500
    assert _fault(resp)[0] == 2150858805  # ERROR_WSMAN_ENCODING_LIMIT
    _still_serves(server)


def test_idle_connection_and_slow_body_are_dropped(sim_server: Any) -> None:
    server = sim_server(auth="basic", allow_unencrypted=True)
    # http.sys's 120 s, shortened for the test.
    server._http.config.idle_seconds = 0.5
    server._http.config.body_seconds = 0.5
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as idle:
        time.sleep(1.0)
        assert idle.recv(1) == b""  # closed by the server, nothing sent
    head = (
        b"POST /wsman HTTP/1.1\r\nHost: x\r\nAuthorization: " + _basic().encode() + b"\r\n"
        b"Content-Type: application/soap+xml\r\nContent-Length: 1000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as slow:
        slow.sendall(head + b"<s:Envelope")
        t0 = time.monotonic()
        for _ in range(10):  # a trickle: a byte every 0.2 s never completes the body
            time.sleep(0.2)
            try:
                slow.sendall(b" ")
            except OSError:
                break
        try:
            data = slow.recv(100)
        except ConnectionResetError:
            data = b""
        assert data == b""
        assert time.monotonic() - t0 < 4
    _still_serves(server)


# ------------------------------------------------------------------ AllowUnencrypted


def test_basic_over_http_is_refused_by_default(sim_server: Any) -> None:
    server = sim_server(auth="basic")
    resp = _post(server, _envelope("http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"))
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Basic")
    https = sim_server(auth="basic", https=True)
    with RunspacePool(
        pypsrp_wsman(https, "basic", encryption="never")  # TLS encrypts: accepted
    ) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-VMHost")
        assert ps.invoke()


def test_unsealed_body_after_ntlm_logon_is_refused_by_default(sim_server: Any) -> None:
    from pypsrp.exceptions import WinRMTransportError

    server = sim_server(auth="ntlm")
    with pytest.raises(WinRMTransportError) as info:
        RunspacePool(pypsrp_wsman(server, "ntlm", encryption="never")).open()
    assert info.value.code == 500
    assert not info.value.response_text  # no SOAP body, as Windows answers
    allowed = sim_server(auth="ntlm", allow_unencrypted=True)
    with RunspacePool(pypsrp_wsman(allowed, "ntlm", encryption="never")) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-VMHost")
        assert ps.invoke()


# ------------------------------------------------------------------ SOAP


def test_malformed_operation_timeout_gets_invalid_message_information_header(
    sim_server: Any,
) -> None:
    server = sim_server(auth="basic", allow_unencrypted=True)
    for bad in ("PT-1S", "P", "20", "PTS"):
        resp = _post(
            server, _envelope("http://schemas.xmlsoap.org/ws/2004/09/transfer/Get", timeout=bad)
        )
        assert resp.status_code == 500
        code, sub, _ = _fault(resp)
        assert (code, sub) == (2150858767, "a:InvalidMessageInformationHeader"), bad


def test_document_type_declarations_are_refused_unexpanded(sim_server: Any) -> None:
    server = sim_server(auth="basic", allow_unencrypted=True)
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(
            f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i else "&lol;" * 10}">'.encode()
            for i in range(9)
        )
        + b"]><lolz>&lol8;</lolz>"
    )
    resp = _post(server, bomb)
    assert resp.status_code == 500
    code, _, message = _fault(resp)
    assert code == 2150858819 and "DTD" in message
    assert len(resp.content) < 4096  # nothing was expanded into the answer
    _still_serves(server)


def test_unknown_session_configuration_is_refused(sim_server: Any) -> None:
    server = sim_server(auth="basic", allow_unencrypted=True)
    resp = _post(
        server,
        _envelope(
            "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create",
            "<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams></rsp:Shell>",
            resource="http://schemas.microsoft.com/powershell/Evil.Endpoint",
        ),
    )
    assert resp.status_code == 500
    assert _fault(resp)[0] == 2150858752  # ERROR_WSMAN_RESOURCE_NOT_FOUND
    assert server.shells == 0


def test_unknown_command_id_gets_windows_own_fault_text(sim_server: Any) -> None:
    server = sim_server(auth="basic", allow_unencrypted=True)
    with RunspacePool(pypsrp_wsman(server, "basic")) as pool:
        sid = pool.shell.id
        resp = _post(
            server,
            _envelope(
                "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send",
                '<rsp:Send><rsp:Stream Name="stdin" CommandId="11111111-2222-3333-4444-555555555555">'
                "AAAA</rsp:Stream></rsp:Send>",
                f'<w:SelectorSet><w:Selector Name="ShellId">{sid}</w:Selector></w:SelectorSet>',
            ),
        )
    code, sub, message = _fault(resp)
    assert (code, sub) == (2150858843, "w:InvalidSelectors")
    # pypsrp's recorded Windows response (test_winrs_bad_cmd_id.yml).
    assert message.startswith(
        "The Windows Remote Shell received a request to perform an operation on a command "
        "identifier that does not exist."
    )
    assert b"faultDetail/UnexpectedSelectors" in resp.content


# ------------------------------------------------------------------ memory


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_server_memory_stays_bounded_through_hostile_requests() -> None:
    """Twenty unauthenticated 15 MiB posts, slow and malformed requests and bad
    XML: the server process stays under 100 MB (it used to grow to 272 MB)."""
    port = _free_port()
    env = dict(os.environ, HVSIM_PASSWORD=SIM_PASSWORD, HVSIM_USER=SIM_USER, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", f"from hvsim.cli import serve; serve(port={port}, auth='ntlm')"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("hvsim listening on")
        server = psutil.Process(proc.pid)
        before = server.memory_info().rss
        big = b"<" * (15 * 1024 * 1024)
        peak = before
        for i in range(20):
            head = (
                b"POST /wsman HTTP/1.1\r\nHost: x\r\nContent-Type: application/soap+xml\r\n"
                + (
                    b"Authorization: Negotiate TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw==\r\n"
                    if i % 2
                    else b""
                )
                + f"Content-Length: {len(big)}\r\n\r\n".encode()
            )
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                    sock.sendall(head)
                    sock.sendall(big)
                    sock.recv(1024)
            except OSError:
                pass  # the server closes before the body is through: expected
            peak = max(peak, server.memory_info().rss)
        for junk in (b"GARBAGE\r\n\r\n", b"POST /wsman HTTP/1.1\r\nContent-Length: x\r\n\r\n"):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                    sock.sendall(junk)
                    sock.recv(1024)
            except OSError:
                pass
        after = server.memory_info().rss
        peak = max(peak, after)
        assert peak < 100 * 1024 * 1024, f"RSS {before / 2**20:.0f} -> peak {peak / 2**20:.0f} MiB"
    finally:
        proc.terminate()
        proc.wait(10)
