"""The WinRM server: HTTP(S) listener around hvsim.wsman and hvsim.psrp.

`serve_in_thread` runs it in-process on an ephemeral port (tests, hvlab's
embedded host); `hvsim.cli.serve` runs it in the foreground for `invoke sim.serve`.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import logging
import os
import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

from hvsim.psrp import PSRPService
from hvsim.wsman import Accounts, ServerConfig, WSManHandler, WSManService

log = logging.getLogger(__name__)

DEFAULT_USER = "hvadmin"
# The longest round trip a modelled link may have: a satellite link is about 600 ms.
MAX_LATENCY_MS = 10_000.0


def check_latency_ms(value: Any) -> float:
    """A link's round-trip time in milliseconds: a number from 0 to MAX_LATENCY_MS."""
    try:
        ms = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"the latency must be a number of milliseconds, not {value!r}") from None
    if not 0 <= ms <= MAX_LATENCY_MS:  # also refuses NaN
        raise ValueError(f"the latency must be between 0 and {MAX_LATENCY_MS:g} ms, not {value!r}")
    return ms


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Many clients open a connection per pipeline thread; keep the backlog roomy.
    request_queue_size = 128
    config: ServerConfig
    tls: ssl.SSLContext | None = None

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.settimeout(30)
                request.do_handshake()
                request.settimeout(None)
            except (OSError, ssl.SSLError):
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


def self_signed(common_name: str = "localhost") -> tuple[str, str]:
    """A fresh self-signed certificate for localhost/127.0.0.1: (cert path, key path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tempfile.mkdtemp(prefix="hvsim-tls-")
    cert_path = os.path.join(folder, "cert.pem")
    key_path = os.path.join(folder, "key.pem")
    with open(cert_path, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


@dataclass
class RunningServer:
    """A started server: where it listens and what it serves."""

    url: str
    port: int
    world: Any
    https: bool
    cert_path: str | None
    _http: _HTTPServer
    _thread: threading.Thread | None
    _accounts: Accounts
    _psrp: PSRPService
    # The folder of a self-signed certificate made for this server, removed at stop.
    _generated: str | None = None

    def __repr__(self) -> str:
        return f"RunningServer(url={self.url!r})"

    @property
    def exchanges(self) -> int:
        """HTTP exchanges answered so far (each request, NTLM handshake steps too)."""
        return self._http.config.exchanges

    @property
    def latency_ms(self) -> float:
        return self._http.config.latency * 1000

    @property
    def link_seconds(self) -> float:
        """The latency the exchanges so far were given, in seconds."""
        return self._http.config.link_seconds

    def drop_connections(self, count: int = 1) -> None:
        """Cut the connection of the next `count` requests without an answer
        (fault injection); a negative count takes back pending drops."""
        self._http.config.add_drops(count)

    @property
    def shells(self) -> int:
        return len(self._psrp.shells)

    def serve_forever(self) -> None:
        # stop() waits for this loop to look at its flag: every task on the embedded
        # host ends with it, so it looks often.
        self._http.serve_forever(poll_interval=0.05)

    def stop(self) -> None:
        self._psrp.stop()
        self._http.shutdown()
        self._http.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._accounts.cleanup()
        if self._generated:
            # The self-signed key must not outlive the server.
            shutil.rmtree(self._generated, ignore_errors=True)
            self._generated = None


def start(
    world: Any = None,
    *,
    auth: str = "ntlm",
    https: bool = False,
    user: str = DEFAULT_USER,
    password: str,
    port: int = 0,
    host: str = "127.0.0.1",
    cert: str | None = None,
    key: str | None = None,
    in_thread: bool = True,
    allow_unencrypted: bool = False,
    latency_ms: float = 0.0,
) -> RunningServer:
    """Bind and (with in_thread) start serving. The caller stops it.

    allow_unencrypted is WinRM's AllowUnencrypted: off (the default, as on
    Windows) refuses Basic over plain HTTP and SOAP bodies that are not sealed.
    latency_ms models a link that is not loopback: every HTTP exchange takes that
    many milliseconds more, a new connection one round trip more (two with TLS).
    """
    latency = check_latency_ms(latency_ms) / 1000
    auth = auth.lower()
    if auth not in ("basic", "ntlm", "negotiate"):
        raise ValueError(f"auth must be basic or ntlm, not {auth!r}")
    if not password:
        raise ValueError("a password is required")
    machine = getattr(world, "host", None)
    computer = str(getattr(machine, "name", None) or "HVSIM")
    accounts = Accounts({user: password}, computer)
    psrp = PSRPService(world, machine, computer)
    http = _HTTPServer((host, port), WSManHandler, bind_and_activate=True)
    bound = http.server_address[1]
    scheme = "https" if https else "http"
    url = f"{scheme}://{host}:{bound}/wsman"
    cert_path = None
    generated: str | None = None
    if https:
        if cert is None:
            cert, key = self_signed()
            generated = os.path.dirname(cert)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        http.tls = ctx
        cert_path = cert
    http.config = ServerConfig(
        auth="basic" if auth == "basic" else "ntlm",
        accounts=accounts,
        service=WSManService(psrp, url),
        computer_name=computer,
        allow_unencrypted=allow_unencrypted,
        latency=latency,
    )
    thread = None
    server = RunningServer(
        url, bound, world, https, cert_path, http, None, accounts, psrp, _generated=generated
    )
    if in_thread:
        thread = threading.Thread(target=server.serve_forever, name="hvsim-server", daemon=True)
        thread.start()
        server._thread = thread
    return server


@contextlib.contextmanager
def serve_in_thread(
    world: Any = None,
    *,
    auth: str = "ntlm",
    https: bool = False,
    user: str = DEFAULT_USER,
    password: str,
    port: int = 0,
    cert: str | None = None,
    key: str | None = None,
    allow_unencrypted: bool = False,
    latency_ms: float = 0.0,
) -> Iterator[RunningServer]:
    """Serve `world` on 127.0.0.1 (an ephemeral port by default) for the `with` block;
    `latency_ms` delays every HTTP exchange as a link of that round-trip time would."""
    server = start(
        world,
        auth=auth,
        https=https,
        user=user,
        password=password,
        port=port,
        cert=cert,
        key=key,
        allow_unencrypted=allow_unencrypted,
        latency_ms=latency_ms,
    )
    try:
        yield server
    finally:
        server.stop()
