"""WS-Management over HTTP(S): SOAP envelopes, faults, Basic/NTLM and message encryption.

The shapes follow MS-WSMV (WS-Management Protocol Extensions for Windows) as
seen from pypsrp: Create/Delete of a PowerShell shell, Command, Send, Receive
(a long poll answered with the TimedOut fault when idle), Signal, and Get of
the service config. Faults carry the WinRM error codes of winerror.h
(ERROR_WSMAN_*), with HTTP status 500 as WinRM sends them.

Authentication: Basic checks the header on every request. NTLM authenticates
the TCP connection (keep-alive is required) with pyspnego as the acceptor, and
with it bodies are sealed as multipart/encrypted (MS-WSMV 2.2.9.1).
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import logging
import os
import re
import socket
import struct
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

import spnego

from hvsim.psrp import ConnectionDropped, PSRPService, ShellGone, UnknownCommand

log = logging.getLogger(__name__)

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "cfg": "http://schemas.microsoft.com/wbem/wsman/1/config",
    "pwsh": "http://schemas.microsoft.com/powershell",
}
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
SHELL_URI_PREFIX = "http://schemas.microsoft.com/powershell/"
CONFIG_URI = "http://schemas.microsoft.com/wbem/wsman/1/config"

A_CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
A_DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
A_GET = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
A_COMMAND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command"
A_SEND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send"
A_RECEIVE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive"
A_SIGNAL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal"
A_FAULT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
STATE_DONE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
STATE_RUNNING = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"

# MaxEnvelopeSizekb: 500 is the documented default (MS-WSMV 2.2.4.10). It caps the
# responses (together with the client's wsman:MaxEnvelopeSize) and the requests.
MAX_ENVELOPE_KB = 500
# A client may not ask for responses smaller than this (MS-WSMV 3.1.4.1.7).
MIN_ENVELOPE = 8192
# Room for the Receive response around its base64 payload.
RECEIVE_OVERHEAD = 2048
# Bodies above this are not read at all; the connection is closed after the fault.
DISCARD_LIMIT = 16 * 1024 * 1024
# Longest Receive long poll, whatever OperationTimeout the client asks for.
MAX_POLL_SECONDS = 60.0

_ENCRYPTED_TYPES = ("multipart/encrypted", "multipart/x-multi-encrypted")
SPNEGO_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"


@dataclass(frozen=True)
class Fault(Exception):
    """A WSMan fault: SOAP code/subcode, the WinRM error code and its message."""

    subcode: str
    code: int
    message: str
    sender: bool = True

    def __str__(self) -> str:
        return f"{self.subcode} ({self.code}): {self.message}"


def timed_out() -> Fault:
    # ERROR_WSMAN_OPERATION_TIMEDOUT (0x80338029); clients treat it as "poll again".
    return Fault(
        "w:TimedOut",
        2150858793,
        "The WS-Management service cannot complete the operation within the time "
        "specified in OperationTimeout.",
        sender=False,
    )


def shell_not_found(shell_id: str) -> Fault:
    # ERROR_WSMAN_UNEXPECTED_SELECTORS (0x8033805B) is what WinRM answers for a
    # ShellId it does not know, with this text.
    return Fault(
        "w:InvalidSelectors",
        2150858843,
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because "
        "the shell was not found on the server. Possible causes are: the specified ShellId "
        "is incorrect or the shell no longer exists on the server. Provide the correct "
        "ShellId or create a new shell and retry the operation.",
    )


def command_not_found(command_id: str) -> Fault:
    # The same code for a CommandId the shell does not know.
    return Fault(
        "w:InvalidSelectors",
        2150858843,
        f"The request for the Windows Remote Shell command with CommandId {command_id} "
        "failed because the command was not found.",
    )


def action_not_supported(action: str) -> Fault:
    # ERROR_WSMAN_ACTION_NOT_SUPPORTED (0x80338013), subcode a:ActionNotSupported.
    return Fault(
        "a:ActionNotSupported",
        2150858771,
        f"The WS-Management service does not support the action specified in the request: {action}",
    )


def invalid_xml(detail: str) -> Fault:
    # ERROR_WSMAN_INVALID_XML (0x80338043).
    return Fault(
        "w:SchemaValidationError",
        2150858819,
        f"The WS-Management service cannot process the request because the XML is invalid. {detail}",
    )


def encoding_limit(detail: str) -> Fault:
    # ERROR_WSMAN_ENCODING_LIMIT (0x80338035), subcode w:EncodingLimit.
    return Fault(
        "w:EncodingLimit",
        2150858805,
        "The WS-Management service cannot process the request because the encoding of the "
        f"request exceeds an internal encoding limit. {detail}",
    )


def unsupported_resource(uri: str) -> Fault:
    # ERROR_WSMAN_RESOURCE_NOT_FOUND (0x80338000), subcode w:DestinationUnreachable.
    return Fault(
        "w:DestinationUnreachable",
        2150858752,
        "The WS-Management service cannot process the request. The service cannot find the "
        f"resource identified by the resource URI and selectors: {uri}",
    )


# ------------------------------------------------------------------ SOAP


@dataclass
class Request:
    action: str
    message_id: str
    resource_uri: str
    selectors: dict[str, str]
    options: dict[str, str]
    operation_timeout: float
    max_envelope: int
    body: ET.Element


def _duration(text: str | None, default: float) -> float:
    # xs:duration as WSMan uses it: PT20S, PT20.500S, PT1M.
    if not text:
        return default
    m = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?", text.strip())
    if not m:
        return default
    h, mi, s = m.groups()
    return int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


def parse(data: bytes) -> Request:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise invalid_xml(str(exc)) from None
    if root.tag != f"{{{NS['s']}}}Envelope":
        raise invalid_xml("The root element is not a SOAP 1.2 Envelope.")
    header = root.find("s:Header", NS)
    body = root.find("s:Body", NS)
    if header is None or body is None:
        raise invalid_xml("The envelope has no Header or no Body.")

    def text(path: str) -> str:
        el = header.find(path, NS)
        return (el.text or "").strip() if el is not None else ""

    action = text("a:Action")
    if not action:
        raise invalid_xml("The wsa:Action header is missing.")
    selectors = {
        s.get("Name", ""): (s.text or "").strip()
        for s in header.findall("w:SelectorSet/w:Selector", NS)
    }
    options = {
        o.get("Name", ""): (o.text or "").strip()
        for o in header.findall("w:OptionSet/w:Option", NS)
    }
    max_env_text = text("w:MaxEnvelopeSize")
    try:
        max_envelope = int(max_env_text) if max_env_text else MAX_ENVELOPE_KB * 1024
    except ValueError:
        raise invalid_xml("wsman:MaxEnvelopeSize is not a number.") from None
    return Request(
        action=action,
        message_id=text("a:MessageID"),
        resource_uri=text("w:ResourceURI"),
        selectors=selectors,
        options=options,
        operation_timeout=_duration(text("w:OperationTimeout"), 60.0),
        max_envelope=max_envelope,
        body=body,
    )


def envelope(action: str, relates_to: str, body: str) -> bytes:
    return (
        f'<s:Envelope xml:lang="en-US" xmlns:s="{NS["s"]}" xmlns:a="{NS["a"]}" '
        f'xmlns:x="{NS["x"]}" xmlns:w="{NS["w"]}" xmlns:rsp="{NS["rsp"]}" xmlns:p="{NS["p"]}">'
        f"<s:Header><a:Action>{escape(action)}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        f"<a:To>{ANONYMOUS}</a:To>"
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header>"
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def fault_envelope(fault: Fault, relates_to: str, machine: str) -> bytes:
    code = "s:Sender" if fault.sender else "s:Receiver"
    body = (
        f"<s:Fault><s:Code><s:Value>{code}</s:Value><s:Subcode><s:Value>{fault.subcode}</s:Value>"
        f'</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{escape(fault.message)}</s:Text>'
        f'</s:Reason><s:Detail><f:WSManFault xmlns:f="{NS["f"]}" Code="{fault.code}" '
        f'Machine="{escape(machine)}"><f:Message>{escape(fault.message)}</f:Message>'
        f"</f:WSManFault></s:Detail></s:Fault>"
    )
    return envelope(A_FAULT, relates_to, body)


# ------------------------------------------------------------------ operations


class WSManService:
    """Answers parsed WSMan requests from the PSRP shells of one server."""

    def __init__(self, psrp: PSRPService, url: str) -> None:
        self.psrp = psrp
        self.url = url

    def handle(self, req: Request, user: str, client_ip: str) -> bytes:
        if req.max_envelope < MIN_ENVELOPE:
            raise encoding_limit(
                f"wsman:MaxEnvelopeSize {req.max_envelope} is below {MIN_ENVELOPE}."
            )
        handler = {
            A_CREATE: self._create,
            A_DELETE: self._delete,
            A_COMMAND: self._command,
            A_SEND: self._send,
            A_RECEIVE: self._receive,
            A_SIGNAL: self._signal,
            A_GET: self._get,
        }.get(req.action)
        if handler is None:
            raise action_not_supported(req.action)
        return handler(req, user, client_ip)

    def _shell(self, req: Request) -> Any:
        sid = req.selectors.get("ShellId", "")
        shell = self.psrp.get(sid) if sid else None
        if shell is None:
            raise shell_not_found(sid)
        return shell

    def _create(self, req: Request, user: str, client_ip: str) -> bytes:
        if not req.resource_uri.startswith(SHELL_URI_PREFIX):
            raise unsupported_resource(req.resource_uri)
        shell_el = req.body.find("rsp:Shell", NS)
        if shell_el is None:
            raise invalid_xml("Create has no rsp:Shell.")
        creation = shell_el.find("pwsh:creationXml", NS)
        if creation is None or not (creation.text or "").strip():
            raise invalid_xml("Create of a PowerShell shell needs creationXml.")
        try:
            data = base64.b64decode(creation.text or "", validate=True)
        except ValueError:
            raise invalid_xml("creationXml is not base64.") from None
        shell = self.psrp.create(shell_el.get("ShellId"), user, data)
        sid = escape(shell.id)
        uri = escape(req.resource_uri)
        body = (
            f"<x:ResourceCreated><a:Address>{escape(self.url)}</a:Address><a:ReferenceParameters>"
            f"<w:ResourceURI>{uri}</w:ResourceURI><w:SelectorSet>"
            f'<w:Selector Name="ShellId">{sid}</w:Selector></w:SelectorSet>'
            f"</a:ReferenceParameters></x:ResourceCreated>"
            f"<rsp:Shell><rsp:ShellId>{sid}</rsp:ShellId><rsp:Name>WinRM1</rsp:Name>"
            f"<rsp:ResourceUri>{uri}</rsp:ResourceUri><rsp:Owner>{escape(user)}</rsp:Owner>"
            f"<rsp:ClientIP>{escape(client_ip)}</rsp:ClientIP>"
            f"<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut>"
            f"<rsp:InputStreams>stdin pr</rsp:InputStreams><rsp:OutputStreams>stdout</rsp:OutputStreams>"
            f"<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>"
            f"<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>"
        )
        return envelope(A_CREATE + "Response", req.message_id, body)

    def _delete(self, req: Request, user: str, client_ip: str) -> bytes:
        sid = req.selectors.get("ShellId", "")
        if not sid or not self.psrp.delete(sid):
            raise shell_not_found(sid)
        return envelope(A_DELETE + "Response", req.message_id, "")

    def _command(self, req: Request, user: str, client_ip: str) -> bytes:
        shell = self._shell(req)
        line = req.body.find("rsp:CommandLine", NS)
        if line is None:
            raise invalid_xml("Command has no rsp:CommandLine.")
        args = line.find("rsp:Arguments", NS)
        try:
            data = base64.b64decode((args.text or "") if args is not None else "", validate=True)
        except ValueError:
            raise invalid_xml("Arguments are not base64.") from None
        try:
            cid = shell.command(line.get("CommandId", ""), data)
        except ShellGone:
            raise shell_not_found(shell.id) from None
        body = f"<rsp:CommandResponse><rsp:CommandId>{escape(cid)}</rsp:CommandId></rsp:CommandResponse>"
        return envelope(A_COMMAND + "Response", req.message_id, body)

    def _send(self, req: Request, user: str, client_ip: str) -> bytes:
        shell = self._shell(req)
        streams = req.body.findall("rsp:Send/rsp:Stream", NS)
        if not streams:
            raise invalid_xml("Send has no rsp:Stream.")
        for st in streams:
            try:
                data = base64.b64decode(st.text or "", validate=True)
            except ValueError:
                raise invalid_xml("Stream data is not base64.") from None
            cid = st.get("CommandId")
            try:
                shell.send(cid, data)
            except UnknownCommand:
                raise command_not_found(cid or "") from None
        return envelope(A_SEND + "Response", req.message_id, "<rsp:SendResponse/>")

    def _receive(self, req: Request, user: str, client_ip: str) -> bytes:
        shell = self._shell(req)
        desired = req.body.find("rsp:Receive/rsp:DesiredStream", NS)
        cid = desired.get("CommandId") if desired is not None else None
        limit = min(req.max_envelope, MAX_ENVELOPE_KB * 1024)
        max_bytes = max(1024, (limit - RECEIVE_OVERHEAD) * 3 // 4)
        timeout = min(max(req.operation_timeout, 0.0), MAX_POLL_SECONDS)
        try:
            data, done = shell.receive(cid, timeout, max_bytes)
        except TimeoutError:
            raise timed_out() from None
        except ShellGone:
            raise shell_not_found(shell.id) from None
        except UnknownCommand:
            raise command_not_found(cid or "") from None
        attr = f' CommandId="{escape(cid)}"' if cid else ""
        parts = ["<rsp:ReceiveResponse>"]
        if data:
            parts.append(
                f'<rsp:Stream Name="stdout"{attr}>{base64.b64encode(data).decode()}</rsp:Stream>'
            )
        if cid:
            state = STATE_DONE if done else STATE_RUNNING
            parts.append(f'<rsp:CommandState{attr} State="{state}"/>')
        parts.append("</rsp:ReceiveResponse>")
        return envelope(A_RECEIVE + "Response", req.message_id, "".join(parts))

    def _signal(self, req: Request, user: str, client_ip: str) -> bytes:
        shell = self._shell(req)
        sig = req.body.find("rsp:Signal", NS)
        if sig is None:
            raise invalid_xml("Signal has no rsp:Signal.")
        code_el = sig.find("rsp:Code", NS)
        cid = sig.get("CommandId", "")
        try:
            shell.signal(cid, (code_el.text or "") if code_el is not None else "")
        except UnknownCommand:
            raise command_not_found(cid) from None
        return envelope(A_SIGNAL + "Response", req.message_id, "<rsp:SignalResponse/>")

    def _get(self, req: Request, user: str, client_ip: str) -> bytes:
        if req.resource_uri != CONFIG_URI:
            raise unsupported_resource(req.resource_uri)
        body = (
            f'<cfg:Config xmlns:cfg="{NS["cfg"]}"><cfg:MaxEnvelopeSizekb>{MAX_ENVELOPE_KB}'
            f"</cfg:MaxEnvelopeSizekb><cfg:MaxTimeoutms>60000</cfg:MaxTimeoutms>"
            f"<cfg:MaxBatchItems>32000</cfg:MaxBatchItems>"
            f"<cfg:MaxProviderRequests>4294967295</cfg:MaxProviderRequests></cfg:Config>"
        )
        return envelope(A_GET + "Response", req.message_id, body)


# ------------------------------------------------------------------ authentication


@dataclass
class Accounts:
    """Who may log on: user name (with or without a domain part) and password."""

    users: dict[str, str]
    computer_name: str
    _ntlm_file: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:  # never show passwords
        return f"Accounts(users={sorted(self.users)!r})"

    def check_basic(self, user: str, password: str) -> str | None:
        for known, secret in self.users.items():
            if _same_user(known, user, self.computer_name) and hmac.compare_digest(
                secret.encode("utf-8"), password.encode("utf-8")
            ):
                return user
        return None

    def ntlm_file(self) -> str:
        """A credential file in the smbpasswd format pyspnego's acceptor reads.

        It holds NT hashes only, never passwords, one line per accepted spelling
        of each user (user, .\\user, COMPUTER\\user).
        """
        if self._ntlm_file is None:
            from spnego._ntlm_raw.crypto import ntowfv1

            lines = []
            for user, password in self.users.items():
                nt = ntowfv1(password).hex().upper()
                domain, _, name = user.rpartition("\\")
                spellings = (
                    [user]
                    if domain and domain not in (".",)
                    else [
                        name,
                        f".\\{name}",
                        f"{self.computer_name}\\{name}",
                    ]
                )
                for spelled in spellings:
                    lines.append(f"{spelled}:1000:{'0' * 32}:{nt}:[U]:LCT-00000000")
            fd, path = tempfile.mkstemp(prefix="hvsim-ntlm-", suffix=".txt")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
            self._ntlm_file = path
        return self._ntlm_file

    def cleanup(self) -> None:
        if self._ntlm_file:
            with contextlib.suppress(OSError):
                os.unlink(self._ntlm_file)
            self._ntlm_file = None


def _same_user(known: str, given: str, computer: str) -> bool:
    kd, _, kn = known.rpartition("\\")
    gd, _, gn = given.rpartition("\\")
    if kn.lower() != gn.lower():
        return False
    local = {"", ".", computer.lower()}
    if kd.lower() in local:
        return gd.lower() in local
    return kd.lower() == gd.lower()


# pyspnego's NTLM acceptor reads its credentials from the file named by the
# NTLM_USER_FILE environment variable. Several servers in one process (tests)
# have different accounts, so each NTLM step runs with that variable set to its
# server's file, one step at a time.
_NTLM_ENV_LOCK = threading.Lock()
# Present from import on (before any server or client thread runs), so that later
# only its value ever changes; see _ntlm_env.
os.environ.setdefault("NTLM_USER_FILE", os.devnull)


@contextlib.contextmanager
def _ntlm_env(path: str) -> Iterator[None]:
    # The variable is set and left set: removing it while a client thread of the
    # same process walks os.environ (requests does, for proxies) breaks that walk.
    # Only its value changes, and only under the lock.
    with _NTLM_ENV_LOCK:
        os.environ["NTLM_USER_FILE"] = path
        yield


class NTLMAcceptor:
    """One connection's NTLM (or Negotiate wrapping NTLM) security context."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts
        path = accounts.ntlm_file()
        with _ntlm_env(path):
            self.ctx = spnego.server(protocol="negotiate")
        self.user: str | None = None

    def step(self, token: bytes) -> bytes | None:
        with _ntlm_env(self.accounts.ntlm_file()):
            out = self.ctx.step(token)
        if self.ctx.complete:
            self.user = str(self.ctx.client_principal or "")
        return out

    @property
    def complete(self) -> bool:
        return bool(self.ctx.complete)

    def unwrap(self, body: bytes, boundary: str) -> bytes:
        """The SOAP text of a multipart/encrypted body (MS-WSMV 2.2.9.1)."""
        parts = [
            p
            for p in re.split(rb"--\s*" + re.escape(boundary.encode()) + rb"(?:--)?\r\n", body)
            if p
        ]
        out = b""
        for i in range(0, len(parts) - 1, 2):
            header, payload = parts[i], parts[i + 1]
            m = re.search(rb"Length=(\d+)", header)
            if not m:
                raise invalid_xml("The encrypted part has no Length.")
            expected = int(m.group(1))
            payload = payload.replace(b"\tContent-Type: application/octet-stream\r\n", b"", 1)
            (hlen,) = struct.unpack("<i", payload[:4])
            plain = self.ctx.unwrap_winrm(payload[4 : 4 + hlen], payload[4 + hlen :])
            if len(plain) != expected:
                raise invalid_xml("The decrypted length does not match the declared one.")
            out += plain
        return out

    def wrap(self, data: bytes) -> tuple[str, bytes]:
        res = self.ctx.wrap_winrm(data)
        sealed = struct.pack("<i", len(res.header)) + res.header + res.data
        length = len(data) + res.padding_length
        body = (
            b"--Encrypted Boundary\r\n"
            + f"\tContent-Type: {SPNEGO_PROTOCOL}\r\n".encode()
            + f"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={length}\r\n".encode()
            + b"--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n"
            + sealed
            + b"--Encrypted Boundary--\r\n"
        )
        ctype = f'multipart/encrypted;protocol="{SPNEGO_PROTOCOL}";boundary="Encrypted Boundary"'
        return ctype, body


# ------------------------------------------------------------------ HTTP


class WSManHandler(BaseHTTPRequestHandler):
    """One client connection. Keep-alive: NTLM authenticates the connection."""

    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        # With Nagle on, each small response waits for the delayed ACK (~40-200 ms).
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.ntlm: NTLMAcceptor | None = None
        self._auth_reply: str | None = None

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    # -- helpers -------------------------------------------------------------

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if self._auth_reply and status != 401:
            self.send_header("WWW-Authenticate", self._auth_reply)
            self._auth_reply = None
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _deny(self, challenge: str | None = None) -> None:
        cfg = self.server.config  # type: ignore[attr-defined]
        header = challenge or ('Basic realm="WSMAN"' if cfg.auth == "basic" else "Negotiate")
        self.close_connection = challenge is None and cfg.auth == "basic"
        self._reply(401, b"", {"WWW-Authenticate": header})

    def _read_body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > DISCARD_LIMIT:
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    # -- entry ---------------------------------------------------------------

    def do_GET(self) -> None:
        self._reply(405, b"", {"Allow": "POST"})

    def do_POST(self) -> None:
        cfg = self.server.config  # type: ignore[attr-defined]
        if cfg.take_drop():
            self._cut()
            return
        if self.path.rstrip("/").lower() != "/wsman":
            self._reply(404)
            return
        body = self._read_body()
        user = self._authenticate()
        if user is None:
            return
        if body is None:
            self._fault(encoding_limit("The request is larger than the service accepts."), "", user)
            return
        ctype = self.headers.get("Content-Type", "")
        encrypted = ctype.startswith(_ENCRYPTED_TYPES)
        if encrypted:
            if self.ntlm is None or not self.ntlm.complete:
                self._deny()
                return
            m = re.search(r'boundary="?([^";]+)"?', ctype)
            try:
                body = self.ntlm.unwrap(body, m.group(1) if m else "Encrypted Boundary")
            except Exception:
                log.debug("could not unseal a request", exc_info=True)
                self._deny()
                return
        if not body:
            # The empty POST that sets up the NTLM context before sealed messages.
            self._reply(200)
            return
        if len(body) > MAX_ENVELOPE_KB * 1024:
            self._fault(
                encoding_limit("The request is larger than MaxEnvelopeSizekb."), "", user, encrypted
            )
            return
        relates = ""
        try:
            req = parse(body)
            relates = req.message_id
            out = cfg.service.handle(req, user, self.client_address[0])
        except ConnectionDropped:
            self._cut()
            return
        except Fault as fault:
            self._fault(fault, relates, user, encrypted)
            return
        except Exception:
            log.exception("WSMan request failed")
            self._fault(
                Fault(
                    "w:InternalError",
                    # E_FAIL: hvsim itself failed; no WinRM error code claims this case.
                    2147500037,
                    "The WS-Management service failed internally.",
                    sender=False,
                ),
                relates,
                user,
                encrypted,
            )
            return
        self._send_soap(200, out, encrypted)

    def _cut(self) -> None:
        """Injected fault: the connection goes away without an answer."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _fault(self, fault: Fault, relates: str, user: str, encrypted: bool = False) -> None:
        cfg = self.server.config  # type: ignore[attr-defined]
        self._send_soap(500, fault_envelope(fault, relates, cfg.computer_name), encrypted)

    def _send_soap(self, status: int, data: bytes, encrypted: bool) -> None:
        if encrypted and self.ntlm is not None:
            ctype, payload = self.ntlm.wrap(data)
            self._reply(status, payload, {"Content-Type": ctype})
        else:
            self._reply(status, data, {"Content-Type": "application/soap+xml;charset=UTF-8"})

    def _authenticate(self) -> str | None:
        """The logged-on user, or None after a 401 was sent."""
        cfg = self.server.config  # type: ignore[attr-defined]
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if cfg.auth == "basic":
            if scheme != "basic":
                self._deny()
                return None
            try:
                user, _, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                self._deny()
                return None
            who = cfg.accounts.check_basic(user, password)
            if who is None:
                log.info("Basic logon refused for %s", user)
                self._deny()
            return who
        # NTLM / Negotiate: a token steps the connection's context; without one the
        # connection must already be authenticated.
        if scheme in ("negotiate", "ntlm") and value.strip():
            try:
                token = base64.b64decode(value.strip())
                if self.ntlm is None or self.ntlm.complete:
                    self.ntlm = NTLMAcceptor(cfg.accounts)
                out = self.ntlm.step(token)
            except Exception as exc:
                log.info("NTLM logon refused: %s", type(exc).__name__)
                self.ntlm = None
                self._deny()
                return None
            if not self.ntlm.complete:
                challenge = f"{header.split(' ')[0]} {base64.b64encode(out or b'').decode()}"
                self._deny(challenge)
                return None
            if out:
                # SPNEGO's last token (mechListMIC) rides on the answer to this request.
                self._auth_reply = f"{header.split(' ')[0]} {base64.b64encode(out).decode()}"
            return self.ntlm.user
        if self.ntlm is not None and self.ntlm.complete and self.ntlm.user is not None:
            return self.ntlm.user
        self._deny()
        return None


@dataclass
class ServerConfig:
    """What the HTTP handler needs from its server."""

    auth: str
    accounts: Accounts
    service: WSManService
    computer_name: str
    # Fault hook: this many coming requests get their connection cut, no answer.
    drops: int = 0
    _drops_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_drops(self, count: int) -> None:
        with self._drops_lock:
            self.drops = max(0, self.drops + count)

    def take_drop(self) -> bool:
        with self._drops_lock:
            if self.drops > 0:
                self.drops -= 1
                return True
            return False
