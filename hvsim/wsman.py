"""WS-Management over HTTP(S): SOAP envelopes, faults, Basic/NTLM and message encryption.

The shapes follow MS-WSMV (WS-Management Protocol Extensions for Windows) as
seen from pypsrp: Create/Delete of a PowerShell shell, Command, Send, Receive
(a long poll answered with the TimedOut fault when idle), Signal, and Get of
the service config. Faults carry the WinRM error codes of winerror.h
(ERROR_WSMAN_*), with HTTP status 500 as WinRM sends them.

Authentication: Basic checks the header on every request. NTLM authenticates
the TCP connection (keep-alive is required) with pyspnego as the acceptor, and
with it bodies are sealed as multipart/encrypted ([MS-WSMV] 2.2.9.1).

The listener behaves as a default Windows endpoint does: the logon is checked
before any body is read, a body is never read past what MaxEnvelopeSizekb
allows, idle connections and slow bodies time out (http.sys's 120 s), and
unencrypted traffic (Basic over plain HTTP, unsealed bodies) is refused unless
the server was started with allow_unencrypted (WinRM's AllowUnencrypted=true).
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
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

import spnego

from hvsim.psrp import (
    ConnectionDropped,
    PSRPService,
    QuotaExceeded,
    ShellDisconnected,
    ShellGone,
    UnknownCommand,
)

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
    "n": "http://schemas.xmlsoap.org/ws/2004/09/enumeration",
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
A_DISCONNECT = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Disconnect"
A_RECONNECT = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Reconnect"
A_CONNECT = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Connect"
A_ENUMERATE = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
A_PULL = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull"
SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
COMMAND_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command"
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
# A sealed body carries the envelope plus the multipart framing and the NTLM
# signature; this much room is allowed above MaxEnvelopeSizekb for it.
SEAL_OVERHEAD = 4096
# An authenticated request above the limit is read and thrown away in chunks (so
# the client sees the fault, not a reset) up to this size; beyond it the
# connection is closed after the fault, unread.
DISCARD_LIMIT = 16 * 1024 * 1024
# Longest Receive long poll, whatever OperationTimeout the client asks for
# (MaxTimeoutms, 60000 by default).
MAX_POLL_SECONDS = 60.0
# http.sys's default ConnectionTimeout (idle keep-alive connection) and
# EntityBody timeout (the whole body must arrive within it): 120 s each.
IDLE_SECONDS = 120.0
BODY_SECONDS = 120.0

_ENCRYPTED_TYPES = ("multipart/encrypted", "multipart/x-multi-encrypted")
SPNEGO_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
# The body of an NTLM handshake step (a client repeats its request with each
# token) is read and dropped up to this size to keep the connection; a larger
# one closes it.
HANDSHAKE_BODY_LIMIT = MAX_ENVELOPE_KB * 1024 + SEAL_OVERHEAD


@dataclass(frozen=True)
class Fault(Exception):
    """A WSMan fault: SOAP code/subcode, the WinRM error code and its message."""

    subcode: str
    code: int
    message: str
    sender: bool = True
    # s:Reason when WinRM's differs from the WSManFault message, and w:FaultDetail.
    reason: str | None = None
    detail: str | None = None

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
    # The same code for a CommandId the shell does not know, with the texts of
    # pypsrp's recorded Windows responses (test_winrs_bad_cmd_id.yml).
    return Fault(
        "w:InvalidSelectors",
        2150858843,
        "The Windows Remote Shell received a request to perform an operation on a command "
        "identifier that does not exist. Either the command has completed execution or the "
        "client specified an invalid command identifier.",
        reason="The WS-Management service cannot process the request because the request "
        "contained invalid selectors for the resource.",
        detail="http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors",
    )


def invalid_header(detail: str) -> Fault:
    # ERROR_WSMAN_INVALID_MESSAGE_INFORMATION_HEADER (0x8033800F): WS-Addressing's
    # InvalidMessageInformationHeader, e.g. an OperationTimeout that is no duration.
    return Fault(
        "a:InvalidMessageInformationHeader",
        2150858767,
        "The WS-Management service cannot process the request. The request contains one or "
        f"more invalid SOAP headers. {detail}",
    )


def shell_disconnected() -> Fault:
    # ERROR_WSMAN_SHELL_DISCONNECTED (0x803381C4): a request other than Connect,
    # Reconnect, Delete or Enumerate for a disconnected shell ([MS-WSMV] 3.1.4.15).
    return Fault(
        "w:InvalidSelectors",
        2150859204,
        "The WinRM service cannot process the request because the WinRS shell instance is "
        "currently disconnected.",
    )


def stream_disconnected() -> Fault:
    # ERROR_WSMAN_SERVICE_STREAM_DISCONNECTED (0x803381DE): the answer to a Receive
    # that was waiting when its shell was disconnected.
    return Fault(
        "w:InvalidSelectors",
        2150859230,
        "The WS-Management service cannot process the request because the stream is "
        "currently disconnected.",
        sender=False,
    )


def shell_quota(limit: int) -> Fault:
    # ERROR_WSMAN_QUOTA_MAX_SHELLS_PPQ (0x803381E4): the session configuration's
    # MaxShellsPerUser (25 for Microsoft.PowerShell).
    return Fault(
        "w:QuotaLimit",
        2150859236,
        "The WS-Management service cannot process the request. This user is allowed a maximum "
        f"number of {limit} concurrent shells, which has been exceeded. Close existing shells "
        "or raise the quota for this user.",
    )


def shell_busy(shell_id: str) -> Fault:
    # Connect or Reconnect of a shell that is not disconnected ([MS-WSMV] 3.1.4.16,
    # 3.1.4.17 only allow a disconnected shell). Which fault Windows sends here is
    # not documented; modelled: the unknown-shell code, saying why.
    return Fault(
        "w:InvalidSelectors",
        2150858843,
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the "
        "shell is not disconnected: it is connected to a client.",
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


def dtd_refused() -> Fault:
    # A document type declaration is not SOAP ([SOAP 1.2] part 1, 5: "A SOAP
    # message MUST NOT contain a Document Type Declaration"); WinRM's parser refuses
    # it like any other invalid XML (ERROR_WSMAN_INVALID_XML).
    return invalid_xml("The request contains a document type declaration (DTD).")


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


_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")


def duration(text: str) -> float | None:
    """Seconds of an xs:duration as WSMan uses them (PT20S, PT20.500S, PT1M,
    P0DT0H0M0S), or None when the text is not one (PT-1S, P, PTS, 20)."""
    text = text.strip()
    m = _DURATION.fullmatch(text)
    if not m or text in ("P", "PT") or text.endswith("T"):
        return None
    d, h, mi, s = m.groups()
    if d is None and h is None and mi is None and s is None:
        return None
    return int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


def parse(data: bytes) -> Request:
    # Checked on the raw bytes: ElementTree would expand the entities a DTD declares.
    if b"<!DOCTYPE" in data or b"<!doctype" in data or b"<!ENTITY" in data:
        raise dtd_refused()
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
    timeout_text = text("w:OperationTimeout")
    timeout = 60.0
    if timeout_text:
        parsed = duration(timeout_text)
        if parsed is None:
            raise invalid_header(f"wsman:OperationTimeout {timeout_text[:64]!r} is not a duration.")
        timeout = parsed
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
        operation_timeout=timeout,
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
    reason = fault.reason or fault.message
    detail = f"<w:FaultDetail>{escape(fault.detail)}</w:FaultDetail>" if fault.detail else ""
    body = (
        f"<s:Fault><s:Code><s:Value>{code}</s:Value><s:Subcode><s:Value>{fault.subcode}</s:Value>"
        f'</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{escape(reason)}</s:Text>'
        f'</s:Reason><s:Detail>{detail}<f:WSManFault xmlns:f="{NS["f"]}" Code="{fault.code}" '
        f'Machine="{escape(machine)}"><f:Message>{escape(fault.message)}</f:Message>'
        f"</f:WSManFault></s:Detail></s:Fault>"
    )
    return envelope(A_FAULT, relates_to, body)


# ------------------------------------------------------------------ operations


class WSManService:
    """Answers parsed WSMan requests from the PSRP shells of one server."""

    # The session configurations this host serves ([MS-PSRP] 3.1.4.1: the shell's
    # resource URI names one). A Hyper-V host's default endpoint; any other name is
    # refused as an unknown resource, as WinRM does for a configuration that is not
    # registered.
    CONFIGURATIONS = ("microsoft.powershell",)

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
            A_DISCONNECT: self._disconnect,
            A_RECONNECT: self._reconnect,
            A_CONNECT: self._connect,
            A_ENUMERATE: self._enumerate,
        }.get(req.action)
        if handler is None:
            raise action_not_supported(req.action)
        return handler(req, user, client_ip)

    def _shell(self, req: Request, user: str | None = None, *, connected: bool = True) -> Any:
        sid = req.selectors.get("ShellId", "")
        shell = self.psrp.get(sid) if sid else None
        if shell is None or (user is not None and not _same_owner(shell.owner, user)):
            # Another user's shell is as unknown to this one as a missing shell.
            raise shell_not_found(sid)
        if connected and shell.disconnected:
            raise shell_disconnected()
        return shell

    def _configuration(self, uri: str) -> str:
        if not uri.lower().startswith(SHELL_URI_PREFIX.lower()):
            raise unsupported_resource(uri)
        name = uri[len(SHELL_URI_PREFIX) :]
        if name.lower() not in self.CONFIGURATIONS:
            raise unsupported_resource(uri)
        return name

    def _create(self, req: Request, user: str, client_ip: str) -> bytes:
        self._configuration(req.resource_uri)
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
        idle = _idle_timeout(shell_el.find("rsp:IdleTimeOut", NS))
        try:
            shell = self.psrp.create(
                shell_el.get("ShellId"),
                user,
                data,
                idle_timeout=idle,
                resource_uri=req.resource_uri,
                client_ip=client_ip,
            )
        except QuotaExceeded as exc:
            raise shell_quota(exc.limit) from None
        body = (
            f"<x:ResourceCreated><a:Address>{escape(self.url)}</a:Address><a:ReferenceParameters>"
            f"<w:ResourceURI>{escape(req.resource_uri)}</w:ResourceURI><w:SelectorSet>"
            f'<w:Selector Name="ShellId">{escape(shell.id)}</w:Selector></w:SelectorSet>'
            f"</a:ReferenceParameters></x:ResourceCreated>{_shell_xml(shell)}"
        )
        return envelope(A_CREATE + "Response", req.message_id, body)

    def _delete(self, req: Request, user: str, client_ip: str) -> bytes:
        self._shell(req, user, connected=False)
        if not self.psrp.delete(req.selectors.get("ShellId", "")):
            raise shell_not_found(req.selectors.get("ShellId", ""))
        return envelope(A_DELETE + "Response", req.message_id, "")

    def _disconnect(self, req: Request, user: str, client_ip: str) -> bytes:
        # [MS-WSMV] 3.1.4.15; [MS-PSRP] 3.1.5.3.14: the shell and its pipelines go
        # on; output is kept for a later Reconnect or Connect.
        shell = self._shell(req, user)
        body = req.body.find("rsp:Disconnect", NS)
        idle_el = None
        if body is not None:
            idle_el = body.find("rsp:IdleTimeOut", NS)
            if idle_el is None:
                idle_el = body.find("rsp:IdleTimeout", NS)
        shell.disconnect(_idle_timeout(idle_el))
        return envelope(A_DISCONNECT + "Response", req.message_id, "<rsp:DisconnectResponse/>")

    def _reconnect(self, req: Request, user: str, client_ip: str) -> bytes:
        # [MS-WSMV] 3.1.4.16: the same client takes its disconnected shell back.
        shell = self._shell(req, user, connected=False)
        if not shell.disconnected:
            raise shell_busy(shell.id)
        shell.reconnect()
        return envelope(A_RECONNECT + "Response", req.message_id, "<rsp:ReconnectResponse/>")

    def _connect(self, req: Request, user: str, client_ip: str) -> bytes:
        # [MS-WSMV] 3.1.4.17; [MS-PSRP] 3.1.5.3.16-18: a new client connects to a
        # disconnected shell (connectXml carries its SESSION_CAPABILITY and
        # CONNECT_RUNSPACEPOOL), then to each pipeline by CommandId.
        body = req.body.find("rsp:Connect", NS)
        if body is None:
            raise invalid_xml("Connect has no rsp:Connect.")
        cid = body.get("CommandId")
        if cid:
            shell = self._shell(req, user)
            try:
                shell.connect_command(cid)
            except UnknownCommand:
                raise command_not_found(cid) from None
            return envelope(A_CONNECT + "Response", req.message_id, "<rsp:ConnectResponse/>")
        shell = self._shell(req, user, connected=False)
        if not shell.disconnected:
            raise shell_busy(shell.id)
        xml = body.find("pwsh:connectXml", NS)
        if xml is None or not (xml.text or "").strip():
            raise invalid_xml("Connect of a PowerShell shell needs connectXml.")
        try:
            data = base64.b64decode(xml.text or "", validate=True)
        except ValueError:
            raise invalid_xml("connectXml is not base64.") from None
        answer = shell.connect(data, client_ip)
        response = (
            f'<rsp:ConnectResponse><pwsh:connectResponseXml xmlns:pwsh="{NS["pwsh"]}">'
            f"{base64.b64encode(answer).decode()}</pwsh:connectResponseXml></rsp:ConnectResponse>"
        )
        return envelope(A_CONNECT + "Response", req.message_id, response)

    def _enumerate(self, req: Request, user: str, client_ip: str) -> bytes:
        # [MS-WSMV] 3.1.4.8 (WS-Enumeration of shells and of a shell's commands),
        # answered in one response (wsman:OptimizeEnumeration, EndOfSequence).
        items: list[str] = []
        if req.resource_uri == SHELL_URI:
            for shell in self.psrp.shells_of(user):
                items.append(_shell_xml(shell, state=True))
        elif req.resource_uri == COMMAND_URI:
            wanted = {
                s.get("Name", ""): (s.text or "").strip()
                for s in req.body.findall("n:Enumerate/w:Filter/w:SelectorSet/w:Selector", NS)
            }
            shell = self.psrp.get(wanted.get("ShellId", ""))
            if shell is not None and _same_owner(shell.owner, user):
                for cid, state in shell.commands():
                    items.append(
                        f"<rsp:Command><rsp:CommandId>{escape(cid)}</rsp:CommandId>"
                        f"<rsp:CommandState>{escape(state)}</rsp:CommandState></rsp:Command>"
                    )
        else:
            raise unsupported_resource(req.resource_uri)
        body = (
            f'<n:EnumerateResponse xmlns:n="{NS["n"]}"><n:EnumerationContext/>'
            f"<w:Items>{''.join(items)}</w:Items><w:EndOfSequence/></n:EnumerateResponse>"
        )
        return envelope(A_ENUMERATE + "Response", req.message_id, body)

    def _command(self, req: Request, user: str, client_ip: str) -> bytes:
        shell = self._shell(req, user)
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
        shell = self._shell(req, user)
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
        shell = self._shell(req, user)
        desired = req.body.find("rsp:Receive/rsp:DesiredStream", NS)
        cid = desired.get("CommandId") if desired is not None else None
        limit = min(req.max_envelope, MAX_ENVELOPE_KB * 1024)
        max_bytes = max(1024, (limit - RECEIVE_OVERHEAD) * 3 // 4)
        timeout = min(max(req.operation_timeout, 0.0), MAX_POLL_SECONDS)
        try:
            data, done = shell.receive(cid, timeout, max_bytes)
        except TimeoutError:
            raise timed_out() from None
        except ShellDisconnected:
            raise stream_disconnected() from None
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
        shell = self._shell(req, user)
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


def _same_owner(owner: str, user: str) -> bool:
    return owner.lower() == user.lower()


# A client may ask for a shell IdleTimeOut up to the configuration's
# MaxIdleTimeoutms (43200000 ms, 12 h, for Microsoft.PowerShell); less than
# 60 s is not accepted by WinRM's schema checks, so it is raised to that.
MAX_IDLE_SECONDS = 43200.0
MIN_IDLE_SECONDS = 60.0


def _idle_timeout(el: ET.Element | None) -> float | None:
    """The client's rsp:IdleTimeOut in seconds, within what the endpoint allows."""
    if el is None or not (el.text or "").strip():
        return None
    seconds = duration(el.text or "")
    if seconds is None:
        raise invalid_xml(f"rsp:IdleTimeOut {(el.text or '')[:64]!r} is not a duration.")
    return min(max(seconds, MIN_IDLE_SECONDS), MAX_IDLE_SECONDS)


def _iso_duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"


def _shell_xml(shell: Any, state: bool = False) -> str:
    sid = escape(shell.id)
    parts = [
        f"<rsp:Shell><rsp:ShellId>{sid}</rsp:ShellId><rsp:Name>WinRM1</rsp:Name>",
        f"<rsp:ResourceUri>{escape(shell.resource_uri)}</rsp:ResourceUri>",
        f"<rsp:Owner>{escape(shell.owner)}</rsp:Owner>",
        f"<rsp:ClientIP>{escape(shell.client_ip)}</rsp:ClientIP>",
        f"<rsp:IdleTimeOut>{_iso_duration(shell.idle_timeout)}</rsp:IdleTimeOut>",
        "<rsp:InputStreams>stdin pr</rsp:InputStreams><rsp:OutputStreams>stdout</rsp:OutputStreams>",
        f"<rsp:MaxIdleTimeOut>{_iso_duration(MAX_IDLE_SECONDS)}</rsp:MaxIdleTimeOut>",
    ]
    if state:
        parts.append(
            f"<rsp:State>{'Disconnected' if shell.disconnected else 'Connected'}</rsp:State>"
        )
    parts.append(
        "<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>"
        "<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>"
    )
    return "".join(parts)


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
        # An idle keep-alive connection (and a request line or headers that never
        # come) is dropped after http.sys's ConnectionTimeout.
        cfg = self.server.config  # type: ignore[attr-defined]
        self.connection.settimeout(cfg.idle_seconds)
        self.ntlm: NTLMAcceptor | None = None
        self._auth_reply: str | None = None
        self._answer_delay = 0.0
        # A new TCP connection costs the client one round trip (SYN, SYN-ACK) before
        # its first request can leave, and TLS 1.3 one more for its handshake: the
        # first answer comes that much later.
        tls = getattr(self.server, "tls", None) is not None
        self._connect_delay = cfg.latency * (2 if tls else 1)

    def parse_request(self) -> bool:
        cfg = self.server.config  # type: ignore[attr-defined]
        ok = super().parse_request()
        self._answer_delay = 0.0
        if ok:
            # The link's latency (ServerConfig.latency): the request reached the
            # server half a round trip after the client sent it, and the answer
            # reaches the client half a round trip after the server writes it.
            delay = cfg.latency + self._connect_delay if cfg.latency > 0 else 0.0
            cfg.count_exchange(delay)
            if delay > 0:
                time.sleep(delay - cfg.latency / 2)
                self._connect_delay = 0.0
                self._answer_delay = cfg.latency / 2
        return ok

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    # -- helpers -------------------------------------------------------------

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        if self._answer_delay > 0:
            time.sleep(self._answer_delay)
            self._answer_delay = 0.0
        self.send_response(status)
        if self._auth_reply and status != 401:
            self.send_header("WWW-Authenticate", self._auth_reply)
            self._auth_reply = None
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _deny(self, challenge: str | None = None, length: int = 0) -> None:
        cfg = self.server.config  # type: ignore[attr-defined]
        header = challenge or ('Basic realm="WSMAN"' if cfg.auth == "basic" else "Negotiate")
        # A request that failed logon is not read: its body (if any) would have to
        # be, to keep the connection, and only a handshake step may do that.
        refused = challenge is None and (cfg.auth == "basic" or length > 0)
        if refused or (length > 0 and not self._drain(length, HANDSHAKE_BODY_LIMIT)):
            self.close_connection = True
        self._reply(401, b"", {"WWW-Authenticate": header})

    def _content_length(self) -> int | None:
        """The declared body length; None after a 400/411 was sent (connection closed)."""
        if self.headers.get("Transfer-Encoding"):
            # WinRM clients send Content-Length; a chunked body is not accepted here.
            self._bad(400, "chunked bodies are not accepted")
            return None
        values = self.headers.get_all("Content-Length") or []
        if not values:
            self._bad(411, "Content-Length is required")
            return None
        text = values[0].strip()
        if len(set(v.strip() for v in values)) != 1 or not text.isdigit() or len(text) > 12:
            self._bad(400, "bad Content-Length")
            return None
        return int(text)

    def _bad(self, status: int, why: str) -> None:
        log.info("%s: %s (%s)", self.address_string(), why, status)
        self.close_connection = True
        self._reply(status)

    def _read(self, length: int) -> bytes | None:
        """The body, read within BODY_SECONDS; None if it did not come in time."""
        cfg = self.server.config  # type: ignore[attr-defined]
        deadline = time.monotonic() + cfg.body_seconds
        chunks: list[bytes] = []
        left = length
        try:
            while left > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.connection.settimeout(min(remaining, cfg.idle_seconds))
                chunk = self.rfile.read1(min(left, 65536))
                if not chunk:
                    return None
                chunks.append(chunk)
                left -= len(chunk)
        except (TimeoutError, OSError):
            return None
        finally:
            with contextlib.suppress(OSError):
                self.connection.settimeout(cfg.idle_seconds)
        return b"".join(chunks)

    def _drain(self, length: int, limit: int) -> bool:
        """Read and drop `length` bytes (at most `limit`) in chunks; False if not done."""
        if length > limit:
            return False
        cfg = self.server.config  # type: ignore[attr-defined]
        deadline = time.monotonic() + cfg.body_seconds
        left = length
        try:
            while left > 0:
                if time.monotonic() > deadline:
                    return False
                chunk = self.rfile.read1(min(left, 65536))
                if not chunk:
                    return False
                left -= len(chunk)
        except (TimeoutError, OSError):
            return False
        return True

    # -- entry ---------------------------------------------------------------

    def do_GET(self) -> None:
        self._reply(405, b"", {"Allow": "POST"})

    def do_POST(self) -> None:
        cfg = self.server.config  # type: ignore[attr-defined]
        if cfg.take_drop():
            self._cut()
            return
        length = self._content_length()
        if length is None:
            return
        if self.path.rstrip("/").lower() != "/wsman":
            self.close_connection = length > 0
            self._reply(404)
            return
        # The logon is checked on the headers alone, before any body is read.
        user = self._authenticate(length)
        if user is None:
            return
        ctype = self.headers.get("Content-Type", "")
        encrypted = ctype.startswith(_ENCRYPTED_TYPES)
        limit = MAX_ENVELOPE_KB * 1024 + (SEAL_OVERHEAD if encrypted else 0)
        if length > limit:
            fault = encoding_limit("The request is larger than MaxEnvelopeSizekb.")
            if not self._drain(length, DISCARD_LIMIT):
                self.close_connection = True
            self._fault(fault, "", user, encrypted and self._sealing())
            return
        body = self._read(length) if length else b""
        if body is None:
            log.info(
                "%s: the body did not arrive in time; connection closed", self.address_string()
            )
            self.close_connection = True
            return
        if encrypted:
            if not self._sealing():
                self._deny()
                return
            m = re.search(r'boundary="?([^";]+)"?', ctype)
            try:
                body = self.ntlm.unwrap(body, m.group(1) if m else "Encrypted Boundary")  # type: ignore[union-attr]
            except Exception:
                log.debug("could not unseal a request", exc_info=True)
                self._deny()
                return
        if not body:
            # The empty POST that sets up the NTLM context before sealed messages.
            self._reply(200)
            return
        if not encrypted and not self.server.tls and not cfg.allow_unencrypted:  # type: ignore[attr-defined]
            # AllowUnencrypted=false (the default): a SOAP body in clear over HTTP is
            # refused with HTTP 500 and no body, as users of clients without message
            # encryption report from Windows (docs/transport.md).
            log.info(
                "%s: unencrypted request refused (AllowUnencrypted is false; seal the "
                "messages, use HTTPS, or start the server with allow_unencrypted)",
                self.address_string(),
            )
            self._reply(500)
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

    def _sealing(self) -> bool:
        return self.ntlm is not None and self.ntlm.complete

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

    def _authenticate(self, length: int) -> str | None:
        """The logged-on user, or None after a 401 was sent."""
        cfg = self.server.config  # type: ignore[attr-defined]
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if cfg.auth == "basic":
            if scheme != "basic":
                self._deny(length=length)
                return None
            if not self.server.tls and not cfg.allow_unencrypted:  # type: ignore[attr-defined]
                # Basic sends the password in clear: over plain HTTP WinRM only takes
                # it with AllowUnencrypted=true; otherwise the logon is refused (401).
                log.info(
                    "Basic logon over HTTP refused: AllowUnencrypted is false "
                    "(use HTTPS, NTLM, or start the server with allow_unencrypted)"
                )
                self._deny(length=length)
                return None
            try:
                user, _, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                self._deny(length=length)
                return None
            who = cfg.accounts.check_basic(user, password)
            if who is None:
                log.info("Basic logon refused for %s", user)
                self._deny(length=length)
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
                self._deny(length=length)
                return None
            if not self.ntlm.complete:
                challenge = f"{header.split(' ')[0]} {base64.b64encode(out or b'').decode()}"
                self._deny(challenge, length)
                return None
            if out:
                # SPNEGO's last token (mechListMIC) rides on the answer to this request.
                self._auth_reply = f"{header.split(' ')[0]} {base64.b64encode(out).decode()}"
            return self.ntlm.user
        if self.ntlm is not None and self.ntlm.complete and self.ntlm.user is not None:
            return self.ntlm.user
        self._deny(length=length)
        return None


@dataclass
class ServerConfig:
    """What the HTTP handler needs from its server."""

    auth: str
    accounts: Accounts
    service: WSManService
    computer_name: str
    # WinRM's AllowUnencrypted: false refuses Basic over HTTP and unsealed bodies.
    allow_unencrypted: bool = False
    idle_seconds: float = IDLE_SECONDS
    body_seconds: float = BODY_SECONDS
    # Fault hook: this many coming requests get their connection cut, no answer.
    drops: int = 0
    _drops_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # A link's latency in seconds (modelled): a round trip of every HTTP exchange
    # takes this long more, and a new connection one more (its TCP handshake).
    latency: float = 0.0
    # HTTP exchanges answered so far (requests whose request line was read), and the
    # seconds of latency they were given.
    exchanges: int = 0
    link_seconds: float = 0.0

    def count_exchange(self, delay: float) -> None:
        with self._drops_lock:
            self.exchanges += 1
            self.link_seconds += delay

    def add_drops(self, count: int) -> None:
        with self._drops_lock:
            self.drops = max(0, self.drops + count)

    def take_drop(self) -> bool:
        with self._drops_lock:
            if self.drops > 0:
                self.drops -= 1
                return True
            return False
