"""hvsim's WSMan layer: logon, message sealing, and faults for bad requests."""

from __future__ import annotations

import base64
import contextlib
import re
import socket
import threading
import uuid
from typing import Any
from xml.etree import ElementTree as ET

import pytest
import requests
from conftest import SIM_PASSWORD, SIM_USER, pypsrp_wsman
from pypsrp.exceptions import AuthenticationError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}


def _envelope(action: str, body: str = "", extra_header: str = "", max_env: int = 153600) -> bytes:
    return (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
        'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">'
        f"<s:Header><a:Action>{action}</a:Action>"
        f"<a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
        f"<w:MaxEnvelopeSize>{max_env}</w:MaxEnvelopeSize>"
        "<w:OperationTimeout>PT1S</w:OperationTimeout>"
        "<w:ResourceURI>http://schemas.microsoft.com/powershell/Microsoft.PowerShell</w:ResourceURI>"
        f"{extra_header}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _post(server: Any, data: bytes, password: str = SIM_PASSWORD) -> requests.Response:
    return requests.post(
        server.url,
        data=data,
        auth=(SIM_USER, password),
        headers={"Content-Type": "application/soap+xml;charset=UTF-8"},
        timeout=10,
        verify=False,
    )


def _fault_code(resp: requests.Response) -> int:
    root = ET.fromstring(resp.content)
    fault = root.find("s:Body/s:Fault/s:Detail/f:WSManFault", NS)
    assert fault is not None, resp.text
    return int(fault.get("Code", "0"))


def _still_serves(server: Any, auth: str = "basic") -> None:
    with RunspacePool(pypsrp_wsman(server, auth)) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-VMHost")
        assert ps.invoke() and not ps.had_errors


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
def test_wrong_password_gets_401(sim_server: Any, auth: str) -> None:
    server = sim_server(auth=auth, allow_unencrypted=auth == "basic")
    with pytest.raises(AuthenticationError):
        RunspacePool(pypsrp_wsman(server, auth, password="wrong-password")).open()
    _still_serves(server, auth)


def test_no_credentials_get_401_with_the_scheme(sim_server: Any) -> None:
    basic = sim_server(auth="basic", allow_unencrypted=True)
    ntlm = sim_server(auth="ntlm")
    r1 = requests.post(basic.url, data=b"<x/>", timeout=5)
    r2 = requests.post(ntlm.url, data=b"<x/>", timeout=5)
    assert r1.status_code == 401 and r1.headers["WWW-Authenticate"].startswith("Basic")
    assert r2.status_code == 401 and r2.headers["WWW-Authenticate"] == "Negotiate"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        pytest.param(b"<s:Envelope this is not xml", 2150858819, id="malformed-xml"),
        pytest.param(b"<Envelope/>", 2150858819, id="not-soap"),
        pytest.param(_envelope("http://example.invalid/Explode"), 2150858771, id="unknown-action"),
        pytest.param(
            _envelope("http://schemas.xmlsoap.org/ws/2004/09/transfer/Create", max_env=4096),
            2150858805,
            id="maxenvelope-below-8192",
        ),
        pytest.param(
            _envelope(
                "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive",
                "<rsp:Receive><rsp:DesiredStream>stdout</rsp:DesiredStream></rsp:Receive>",
                '<w:SelectorSet><w:Selector Name="ShellId">11111111-2222-3333-4444-555555555555'
                "</w:Selector></w:SelectorSet>",
            ),
            2150858843,
            id="unknown-shell",
        ),
        pytest.param(b"<x>" + b"A" * (600 * 1024) + b"</x>", 2150858805, id="oversize-body"),
    ],
)
def test_bad_requests_get_a_wsman_fault_and_the_server_goes_on(
    sim_server: Any, data: bytes, code: int
) -> None:
    server = sim_server(auth="basic", allow_unencrypted=True)
    resp = _post(server, data)
    assert resp.status_code == 500
    assert _fault_code(resp) == code
    _still_serves(server)


def test_idle_receive_answers_timed_out_and_the_client_polls_again(sim_server: Any) -> None:
    server = sim_server(auth="basic", allow_unencrypted=True)
    wsman = pypsrp_wsman(server, "basic")
    with RunspacePool(wsman) as pool:
        with pytest.raises(WSManFaultError) as info:
            # Nothing is queued for the pool: the long poll ends with TimedOut.
            pool.shell.receive("stdout", timeout=1)
        assert info.value.code == 2150858793
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-VMHost")
        assert ps.invoke()


class _Tap:
    """A loopback TCP relay that keeps every byte it passes on."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.seen = bytearray()
        self.replies = bytearray()  # server to client only
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for a, b, back in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pipe, args=(a, b, back), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, back: bool) -> None:
        try:
            while data := src.recv(65536):
                with self.lock:
                    self.seen += data
                    if back:
                        self.replies += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


def _run_through_tap(server: Any, auth: str) -> bytes:
    from pypsrp.wsman import WSMan

    tap = _Tap(server.port)
    try:
        wsman = WSMan(
            "127.0.0.1",
            port=tap.port,
            ssl=False,
            auth=auth,
            username=SIM_USER,
            password=SIM_PASSWORD,
            encryption="never" if auth == "basic" else "auto",
            operation_timeout=5,
        )
        with RunspacePool(wsman) as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet("Get-VMHost")
            out = ps.invoke()
            assert out and not ps.had_errors
    finally:
        tap.close()
    return bytes(tap.seen)


def _readable(capture: bytes) -> bytes:
    """The capture plus every base64 run in it decoded (PSRP rides base64 in SOAP)."""
    out = bytearray(capture)
    for run in re.findall(rb">([A-Za-z0-9+/=]{16,})<", capture):
        with contextlib.suppress(ValueError):
            out += base64.b64decode(run)
    return bytes(out)


def test_ntlm_seals_every_message_on_the_wire(sim_server: Any) -> None:
    # Control: without sealing, the tap reads the cmdlet name and the reply's
    # type names, so the tap and the search work.
    clear = _readable(_run_through_tap(sim_server(auth="basic", allow_unencrypted=True), "basic"))
    for needle in (b"Get-VMHost", b"Microsoft.HyperV.PowerShell.VMHost", b"<s:Envelope"):
        assert needle in clear, needle
    sealed = _readable(_run_through_tap(sim_server(auth="ntlm"), "ntlm"))
    assert b"multipart/encrypted" in sealed
    for needle in (b"Get-VMHost", b"Microsoft.HyperV", b"ShellId", b"creationXml", b"<s:Envelope"):
        assert needle not in sealed, needle


def test_responses_fit_the_clients_max_envelope_size(sim_server: Any) -> None:
    """A 3 MB output is split over Receives that each fit wsman:MaxEnvelopeSize
    (pypsrp 0.9.1 asks for 512000 octets once the pool speaks protocol 2.2+)."""
    from pypsrp.wsman import WSMan

    from hvsim import objects, registry

    if registry.lookup("Get-Random") is None:

        @registry.cmdlet("Get-Random", params=["Count", "Maximum"])
        def _bulk(ctx: Any, call: Any) -> list[Any]:
            size = int(call.get("Maximum"))
            return [
                objects.PSObj(["Hvsim.Test.Blob"], {"Index": i, "Data": "x" * size}, f"blob {i}")
                for i in range(int(call.get("Count")))
            ]

    server = sim_server(auth="basic", allow_unencrypted=True)
    tap = _Tap(server.port)
    try:
        wsman = WSMan(
            "127.0.0.1",
            port=tap.port,
            ssl=False,
            auth="basic",
            username=SIM_USER,
            password=SIM_PASSWORD,
            encryption="never",
            operation_timeout=5,
        )
        with RunspacePool(wsman) as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet("Get-Random").add_parameter("Count", 30).add_parameter("Maximum", 100_000)
            out = ps.invoke()
            assert len(out) == 30
    finally:
        tap.close()
    sizes = [int(n) for n in re.findall(rb"Content-Length: (\d+)", bytes(tap.replies))]
    assert max(sizes) <= 512000
    # The output did need several large Receives.
    assert len([n for n in sizes if n > 300_000]) >= 4
