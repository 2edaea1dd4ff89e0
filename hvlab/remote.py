"""The one way hvlab calls a host: structured cmdlets over PSRP (pypsrp 0.9.1).

    with Host.connect(settings, max_runspaces=8) as host:
        vms = host.run("Get-VM", ErrorAction="SilentlyContinue")
        host.run("New-VHD", Path=p, SizeBytes=256 * 2**30, Dynamic=True)
        host.pipeline([("Get-VM", {"Name": "x"}), ("Stop-VM", {"Force": True})])
        host.script(constant_text, VMName="x", Credential=Credential(user, secret))
        host.map([("Get-VM", {"Name": a}), ("Get-VM", {"Name": b})])
        vms, switches = host.batch([("Get-VM", {}), ("Get-VMSwitch", {})])

Nothing is pasted into PowerShell text: cmdlets and parameters go as PSRP
structures, scripts are constant files that take their data as parameters.

Values on the wire. pypsrp 0.9.1 sends a Python int as Int32; sizes and
anything outside Int32 go as explicit 64-bit values (any int in a parameter
whose name ends in Bytes or Size as UInt64). A `Secret` becomes a SecureString
and a `Credential` a PSCredential, both encrypted with the PSRP session key.

Errors. Every ErrorRecord, also the non-terminating ones (pypsrp only marks a
pipeline failed when it stopped), raises HostError, unless the caller passed
ErrorAction SilentlyContinue or Ignore (existence checks, R-21). A transport
failure is retried on a fresh connection `settings.retries` times, then raises
TransportError naming the host and the cmdlet, but only when repeating is safe
(R-92): the call only reads (Get-*, Test-*), or it failed before its request
left (no connection could be opened). A call that changes something and whose
answer was lost may have run on the host (New-VM allows duplicate names): it
raises ResponseLost at once, and the step re-reads its facts and converges.

Parallelism. pypsrp 0.9.1's transport is one requests session with one NTLM
sealing context whose sequence numbers must stay in order, so one connection
cannot carry two requests at once. A Host therefore keeps up to `max_runspaces`
connections, each with its own RunspacePool, opened when first needed (or ahead
of need by `warm`); `map` runs calls on them in parallel.

Round trips. Every call costs at least two HTTP exchanges (Command, Receive), and
over a real link each one a network round trip. `batch` sends independent reads
as the statements of one pipeline ([MS-PSRP] 2.2.3.11, ExtraCmds): one call,
and the answer split per statement (see `batch`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import tenacity

from hvlab.config import Settings
from hvlab.errors import ConfigError, HostError, ResponseLost, TransportError
from hvlab.secrets import Secret

log = logging.getLogger(__name__)

SILENT_ACTIONS = {"silentlycontinue", "ignore"}
# Verbs whose cmdlets only read: repeating one after a lost answer changes nothing.
READ_VERBS = {"get", "test"}


def reads_only(command: str) -> bool:
    """Does a cmdlet only read (by its verb)? Unknown text counts as a change."""
    verb, dash, _ = command.strip().partition("-")
    return bool(dash) and verb.lower() in READ_VERBS


INT32 = range(-(2**31), 2**31)
# ErrorCategory member names by number (System.Management.Automation.ErrorCategory).
_CATEGORIES = [
    "NotSpecified",
    "OpenError",
    "CloseError",
    "DeviceError",
    "DeadlockDetected",
    "InvalidArgument",
    "InvalidData",
    "InvalidOperation",
    "InvalidResult",
    "InvalidType",
    "MetadataError",
    "NotImplemented",
    "NotInstalled",
    "ObjectNotFound",
    "OperationStopped",
    "OperationTimeout",
    "SyntaxError",
    "ParserError",
    "PermissionDenied",
    "ResourceBusy",
    "ResourceExists",
    "ResourceUnavailable",
    "ReadError",
    "WriteError",
    "FromStdErr",
    "SecurityError",
    "ProtocolError",
    "ConnectionError",
    "AuthenticationError",
    "LimitsExceeded",
    "QuotaExceeded",
    "NotEnabled",
]


class Credential:
    """A user name and a Secret, sent as a PSCredential. Its repr hides the password."""

    __slots__ = ("secret", "user")

    def __init__(self, user: str, secret: Secret | str) -> None:
        self.user = user
        self.secret = secret if isinstance(secret, Secret) else Secret(secret)

    def __repr__(self) -> str:
        return f"Credential({self.user!r}, ****)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Credential) and (self.user, self.secret) == (
            other.user,
            other.secret,
        )

    def __hash__(self) -> int:
        return hash((self.user, self.secret))


class Record(Mapping[str, Any]):
    """One object the host returned: its properties (adapted and extended merged,
    looked up case-insensitively as PowerShell does), its .NET type names and its
    ToString. Enums are their member name; nested objects are Records or text."""

    __slots__ = ("_index", "_props", "to_string", "type_names")

    def __init__(
        self, props: dict[str, Any], type_names: Sequence[str] = (), to_string: str | None = None
    ) -> None:
        self._props = dict(props)
        self._index = {k.lower(): k for k in self._props}
        self.type_names = list(type_names)
        self.to_string = to_string

    def __getitem__(self, key: str) -> Any:
        return self._props[self._index.get(key.lower(), key)]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._props)

    def __len__(self) -> int:
        return len(self._props)

    def __repr__(self) -> str:
        kind = self.type_names[0] if self.type_names else "object"
        return f"Record({kind}, {self._props!r})"

    def __str__(self) -> str:
        return self.to_string if self.to_string is not None else repr(self)


def plain(value: Any) -> Any:
    """A value pypsrp deserialized, as plain Python: Records, lists, dicts, text for enums."""
    from pypsrp.complex_objects import ComplexObject

    if isinstance(value, ComplexObject):
        types = list(getattr(value, "types", None) or [])
        to_string = getattr(value, "to_string", None)
        if "System.Enum" in types:
            return to_string
        props: dict[str, Any] = {}
        props.update(getattr(value, "adapted_properties", None) or {})
        props.update(getattr(value, "extended_properties", None) or {})
        if not props:
            return to_string
        return Record({k: plain(v) for k, v in props.items()}, types, to_string)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    return value


# ------------------------------------------------------------------ wire values


def _is_size(name: str | None) -> bool:
    return bool(name) and name.lower().endswith(("bytes", "size"))


def wire_value(name: str | None, value: Any) -> Any:
    """A parameter value as pypsrp 0.9.1 must be given it to arrive with the right type."""
    from pypsrp.complex_objects import PSCredential
    from pypsrp.serializer import TaggedValue

    if isinstance(value, Secret):
        return TaggedValue("SS", value.reveal())
    if isinstance(value, Credential):
        return PSCredential(username=value.user, password=value.secret.reveal())
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if _is_size(name) and value >= 0:
            return TaggedValue("U64", int(value))
        if int(value) not in INT32:
            return TaggedValue("U64" if value >= 2**63 else "I64", int(value))
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): wire_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [wire_value(name, v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _has_secret(value: Any) -> bool:
    if isinstance(value, Secret | Credential):
        return True
    if isinstance(value, Mapping):
        return any(_has_secret(v) for v in value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_secret(v) for v in value)
    return False


# ------------------------------------------------------------------ calls


Call = tuple[str, Mapping[str, Any]]
# A statement of a batch: one call, or calls piped into each other.
Statement = Call | Sequence[Call]

# The statement that separates the answers of a batch's statements: Write-Output of
# a string no cmdlet returns (a fresh GUID per batch), so the output can be split
# exactly where one statement ends and the next begins.
SEPARATOR = "Write-Output"


class _Slot:
    """One connection: a pypsrp WSMan transport and its RunspacePool."""

    def __init__(self, host: Host) -> None:
        from pypsrp.powershell import RunspacePool
        from pypsrp.wsman import WSMan

        s = host.settings
        ep = host.endpoint
        basic = s.auth == "basic"
        self.wsman = WSMan(
            ep.server,
            port=ep.port,
            path=ep.path,
            ssl=ep.ssl,
            auth=s.auth,
            username=s.user,
            password=s.secret(),
            cert_validation=s.verify(),
            # pypsrp only sends Basic over HTTP with encryption off (it cannot seal Basic).
            encryption="never" if basic else "auto",
            operation_timeout=min(s.operation_timeout, 60),
            read_timeout=min(s.operation_timeout, 60) + 15,
            connection_timeout=15,
            reconnection_retries=0,
        )
        self.pool = RunspacePool(self.wsman, max_runspaces=1)
        try:
            self.pool.open()
        except BaseException:
            self.wsman.close()
            raise
        session = getattr(self.wsman.transport, "session", None)
        if session is not None:
            # pypsrp read the environment's proxy and CA settings into the session
            # when it built it; requests would read them again on every request.
            session.trust_env = False
        self.keys = False

    def exchange_keys(self) -> None:
        if not self.keys:
            self.pool.exchange_keys()
            self.keys = True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.pool.close()
        with contextlib.suppress(Exception):
            self.wsman.close()


class _Idle:
    """The connections not in use, the last one back handed out first (its socket is
    the likeliest to be alive), or one that holds a session key when a call needs one."""

    def __init__(self) -> None:
        self._slots: list[_Slot] = []
        self._cond = threading.Condition()

    def put(self, slot: _Slot) -> None:
        with self._cond:
            self._slots.append(slot)
            self._cond.notify()

    def _take(self, keys: bool) -> _Slot | None:
        if not self._slots:
            return None
        if keys:
            for i in range(len(self._slots) - 1, -1, -1):
                if self._slots[i].keys:
                    return self._slots.pop(i)
        return self._slots.pop()

    def get_nowait(self, keys: bool = False) -> _Slot | None:
        with self._cond:
            return self._take(keys)

    def get(self, timeout: float, keys: bool = False) -> _Slot | None:
        with self._cond:
            self._cond.wait_for(lambda: bool(self._slots), timeout=timeout)
            return self._take(keys)

    def drain(self) -> list[_Slot]:
        with self._cond:
            slots, self._slots = self._slots, []
            return slots

    def qsize(self) -> int:
        with self._cond:
            return len(self._slots)


def _untrusted_certificate(exc: BaseException) -> bool:
    """A TLS handshake that failed because the host's certificate did not verify."""
    import ssl

    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(
            seen
        ):
            return True
        seen = (
            seen.__cause__
            or seen.__context__
            or (seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None)
        )
    return False


def _transient_errors() -> tuple[type[BaseException], ...]:
    import requests
    from pypsrp.exceptions import WinRMError

    return (requests.exceptions.RequestException, WinRMError, ConnectionError, TimeoutError)


class _Again(Exception):
    """An attempt failed in a way a fresh connection may get past."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _backoff(attempts: int, host: str, what: str) -> tenacity.Retrying:
    """`attempts` tries of what raises _Again, 0.2 s apart at first, doubling up to 5 s."""

    def said(state: tenacity.RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome is not None else None
        cause = failure.cause if isinstance(failure, _Again) else failure
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.info("%s: %s failed (%s), retrying in %.1fs", host, what, type(cause).__name__, wait)

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(_Again),
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=0.2, max=5.0),
        before_sleep=said,
        reraise=True,
    )


class Host:
    """A connection to one Windows host (or hvsim) over WinRM/PSRP."""

    def __init__(self, settings: Settings, *, max_runspaces: int = 4) -> None:
        self.settings = settings
        self.endpoint = settings.endpoint()
        if not settings.user:
            raise ConfigError("no user to log on with: set HVLAB_USER or hvlab.user")
        if not settings.secret():
            raise ConfigError(f"no password for {settings.user}: set HVLAB_PASSWORD")
        self.max_runspaces = max(1, int(max_runspaces))
        self.trace: list[dict[str, Any]] = []
        self._trace_lock = threading.Lock()
        self._idle = _Idle()
        self._open = 0
        self._slots_lock = threading.Lock()
        self._closed = False
        self._warming: list[threading.Thread] = []

    def __repr__(self) -> str:
        return f"Host({self.endpoint.url}, user={self.settings.user!r})"

    @property
    def name(self) -> str:
        return self.endpoint.server

    # -- lifetime -------------------------------------------------------------

    @classmethod
    def connect(
        cls, settings: Settings, *, max_runspaces: int = 4, warm: int = 0, keys: bool = False
    ) -> Host:
        """Open the first connection now, so a wrong address or password fails here;
        then, in the background, `warm` more for the calls that will run in parallel
        (with `keys`, each with its session key), see `warm`. Only after the first
        logon worked: a wrong password is tried once, not once per connection (a
        host's lockout policy counts refused logons)."""
        host = cls(settings, max_runspaces=max_runspaces)._connect()
        host.warm(warm + 1, keys=keys)
        return host

    def _connect(self) -> Host:
        host, settings = self, self.settings
        transient = _transient_errors()
        attempts = settings.retries + 1
        t0 = time.monotonic()
        outcome = "transport"
        try:
            try:
                for attempt in _backoff(attempts, host.name, "connect"):
                    with attempt:
                        try:
                            slot = host._checkout("connect")
                        except transient as exc:
                            if _untrusted_certificate(exc):
                                # Trying again cannot help: say what to trust, at once.
                                raise ConfigError(
                                    f"{host.name}: the host's HTTPS certificate is not trusted "
                                    f"({_short(exc)}). Give the CA that signed it with "
                                    "hvlab.ca_file or HVLAB_CA_FILE (a PEM file), or add it to "
                                    "the system's trust store"
                                ) from None
                            raise _Again(exc) from None
            except _Again as again:
                raise TransportError(
                    f"{host.name}: connect failed after {attempts} attempt(s): "
                    f"{type(again.cause).__name__}: {_short(again.cause)}"
                ) from None
            host._checkin(slot)
            outcome = "ok"
            return host
        except ConfigError:
            outcome = "logon refused"
            raise
        finally:
            host._record("connect", [], time.monotonic() - t0, outcome)

    def __enter__(self) -> Host:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        for thread in self._warming:
            thread.join(timeout=self.settings.call_timeout)
        slots = self._idle.drain()
        # Each close is a few exchanges (the pool's end, the shell's Delete): over a
        # slow link the connections close side by side, not one after the other.
        if len(slots) > 1:
            with concurrent.futures.ThreadPoolExecutor(len(slots)) as pool:
                list(pool.map(_Slot.close, slots))
        else:
            for slot in slots:
                slot.close()
        with self._slots_lock:
            self._open -= len(slots)

    def warm(self, count: int, *, keys: bool = False) -> None:
        """Open up to `count` connections in total now, in the background, so that the
        first parallel calls do not each wait for a logon and a new RunspacePool (and,
        with `keys`, the session key that credentials need). A connection that cannot
        be opened here is opened again when a call needs it."""
        with self._slots_lock:
            wanted = min(count, self.max_runspaces) - self._open
            if self._closed or wanted <= 0:
                return
            self._open += wanted

        def open_one() -> None:
            try:
                slot = self._open_slot("warm")
            except Exception as exc:  # best effort: a call opens its own
                log.debug("%s: opening a connection ahead of need failed: %s", self.name, exc)
                with self._slots_lock:
                    self._open -= 1
                return
            if keys:
                try:
                    slot.exchange_keys()
                except Exception as exc:  # the call that needs it exchanges them
                    log.debug("%s: session key exchange ahead of need failed: %s", self.name, exc)
                    self._discard(slot)
                    return
            self._checkin(slot)

        for _ in range(wanted):
            thread = threading.Thread(target=open_one, name="hvlab-warm", daemon=True)
            thread.start()
            self._warming.append(thread)

    # -- connections ----------------------------------------------------------

    def _open_slot(self, what: str) -> _Slot:
        from pypsrp.exceptions import AuthenticationError

        try:
            return _Slot(self)
        except AuthenticationError:
            raise ConfigError(
                f"{self.endpoint.url} refused the logon of {self.settings.user}: check HVLAB_USER "
                "and HVLAB_PASSWORD (and HVLAB_AUTH)"
            ) from None

    def _checkout(self, what: str, keys: bool = False) -> _Slot:
        """A free connection (with `keys`, preferably one that holds a session key)."""
        if self._closed:
            raise TransportError(f"the connection to {self.name} is closed; cannot run {what}")
        idle = self._idle.get_nowait(keys)
        if idle is not None:
            return idle
        with self._slots_lock:
            may_open = self._open < self.max_runspaces
            if may_open:
                self._open += 1
        if not may_open:
            # Every connection is busy: wait for one, but not forever.
            idle = self._idle.get(self.settings.call_timeout, keys)
            if idle is None:
                raise TransportError(
                    f"no free connection to {self.name} for {what} after {self.settings.call_timeout}s"
                )
            return idle
        try:
            return self._open_slot(what)
        except BaseException:
            with self._slots_lock:
                self._open -= 1
            raise

    def _checkin(self, slot: _Slot) -> None:
        if self._closed:
            slot.close()
            with self._slots_lock:
                self._open -= 1
        else:
            self._idle.put(slot)

    def _discard(self, slot: _Slot) -> None:
        slot.close()
        with self._slots_lock:
            self._open -= 1

    # -- calls ----------------------------------------------------------------

    def run(self, cmdlet: str, **params: Any) -> list[Any]:
        """Run one cmdlet with keyword parameters (True for a switch)."""
        return self._call(
            [[(cmdlet, params)]], script=False, label=cmdlet, read_only=reads_only(cmdlet)
        )[0]

    def pipeline(self, commands: Sequence[Call]) -> list[Any]:
        """Run cmdlets piped into each other: [("Get-VM", {...}), ("Stop-VM", {...})]."""
        if not commands:
            raise ValueError("a pipeline needs at least one command")
        label = " | ".join(name for name, _ in commands)
        read_only = all(reads_only(name) for name, _ in commands)
        return self._call([list(commands)], script=False, label=label, read_only=read_only)[0]

    def batch(self, statements: Sequence[Statement]) -> list[list[Any]]:
        """Run independent statements in one pipeline, one round trip; the output of
        each statement, in order.

        A statement is a call ("Get-VM", {...}) or a list of calls piped into each
        other. PowerShell runs a pipeline's statements one after the other and writes
        all their output to one stream; between two statements hvlab sends
        `Write-Output` of a separator no cmdlet returns (a GUID new for each batch)
        and splits the stream there. Statements that may find nothing pass
        ErrorAction SilentlyContinue (R-21): any error record that still arrives fails
        the whole batch (HostError, named after the cmdlet that wrote it). A batch of
        reads (Get-*, Test-*) is repeated after a lost answer like any read (R-92)."""
        groups = [_statement(s) for s in statements]
        if not groups:
            return []
        if len(groups) == 1:
            commands = groups[0]
            label = " | ".join(name for name, _ in commands)
            read_only = all(reads_only(name) for name, _ in commands)
            return self._call(groups, script=False, label=label, read_only=read_only)
        nonce = uuid.uuid4().hex
        read_only = all(reads_only(name) for cmds in groups for name, _ in cmds)
        label = "; ".join(" | ".join(name for name, _ in cmds) for cmds in groups)
        return self._call(
            groups, script=False, label=label, read_only=read_only, separator=f"hvlab:{nonce}"
        )

    def script(
        self,
        text: str,
        _label: str | None = None,
        _read_only: bool = False,
        _inner: Sequence[str] = (),
        **params: Any,
    ) -> list[Any]:
        """Run a constant script (a file's text) with its data as parameters.

        `_read_only` says the script changes nothing (safe to repeat, R-92);
        `_inner` names the parameters of the command a wrapper runs, for the trace."""
        label = _label or f"script {hashlib.sha256(text.encode()).hexdigest()[:12]}"
        return self._call(
            [[(text, params)]], script=True, label=label, read_only=_read_only, inner=_inner
        )[0]

    def map(self, calls: Sequence[Call], *, workers: int | None = None) -> list[list[Any]]:
        """Run independent cmdlet calls in parallel; results in the order of `calls`.

        Every call runs to its end; then the first failure (in call order) is raised.
        """
        if not calls:
            return []
        n = min(len(calls), workers or self.max_runspaces)
        with concurrent.futures.ThreadPoolExecutor(n, thread_name_prefix="hvlab-host") as pool:
            futures = [pool.submit(self.run, name, **dict(params)) for name, params in calls]
            concurrent.futures.wait(futures)
        for f in futures:
            exc = f.exception()
            if exc is not None:
                raise exc
        return [f.result() for f in futures]

    def _call(
        self,
        statements: list[list[Call]],
        *,
        script: bool,
        label: str,
        read_only: bool = False,
        inner: Sequence[str] = (),
        separator: str | None = None,
    ) -> list[list[Any]]:
        """One pipeline of one or more statements; the output of each statement."""
        commands = [c for cmds in statements for c in cmds]
        silent = any(str(p.get("ErrorAction", "")).lower() in SILENT_ACTIONS for _, p in commands)
        names = [name for _, p in commands for name in p] + [f"Parameters.{n}" for n in inner]
        secret = any(_has_secret(v) for _, p in commands for v in p.values())
        parts = (
            [
                {
                    "cmdlet": " | ".join(n for n, _ in cmds),
                    "params": [k for _, p in cmds for k in p],
                }
                for cmds in statements
            ]
            if separator is not None
            else None
        )
        transient = _transient_errors()
        attempts = self.settings.retries + 1
        t0 = time.monotonic()
        outcome = "ok"
        tries = 0
        try:
            try:
                for attempt in _backoff(attempts, self.name, label):
                    with attempt:
                        tries = attempt.retry_state.attempt_number
                        ps = self._attempt(
                            statements, script, label, secret, read_only, transient, separator
                        )
            except _Again as again:
                raise TransportError(
                    f"{self.name}: {label} failed after {attempts} attempt(s): "
                    f"{type(again.cause).__name__}: {_short(again.cause)}"
                ) from None
            if separator is not None:
                return self._split(
                    self._results(ps, label, False, batch=True),
                    separator,
                    len(statements),
                    label,
                )
            return [self._results(ps, label, silent)]
        except HostError as err:
            outcome = err.error_id or "error"
            raise
        except ResponseLost:
            outcome = "lost"
            raise
        except TransportError:
            outcome = "transport"
            raise
        except BaseException as exc:
            outcome = type(exc).__name__
            raise
        finally:
            self._record(label, names, time.monotonic() - t0, outcome, tries, parts)

    def _attempt(
        self,
        statements: list[list[Call]],
        script: bool,
        label: str,
        secret: bool,
        read_only: bool,
        transient: tuple[type[BaseException], ...],
        separator: str | None,
    ) -> Any:
        """One try on a pooled connection. A transport failure before the request could
        reach the host, or of a read, may be tried again (_Again); a change whose answer
        was lost may have run and is not (R-92)."""
        slot: _Slot | None = None
        sent = False
        try:
            slot = self._checkout(label, keys=secret)
            if secret:
                slot.exchange_keys()
            # From here the request may reach the host.
            sent = True
            ps = self._invoke(slot, statements, script, label, separator)
        except transient as exc:
            if slot is not None:
                self._discard(slot)
            if sent and not read_only and not _never_sent(exc):
                # the host may have run it; repeating could do it twice.
                raise ResponseLost(
                    self.name, label, f"{type(exc).__name__}: {_short(exc, 120)}"
                ) from None
            raise _Again(exc) from None
        except BaseException:
            if slot is not None:
                self._discard(slot)
            raise
        self._checkin(slot)
        return ps

    def _invoke(
        self,
        slot: _Slot,
        statements: list[list[Call]],
        script: bool,
        label: str,
        separator: str | None = None,
    ) -> Any:
        from pypsrp.powershell import PowerShell, PSInvocationState

        ps = PowerShell(slot.pool)
        for index, commands in enumerate(statements):
            if index and separator is not None:
                ps.add_cmdlet(SEPARATOR).add_parameter("InputObject", f"{separator}:{index}")
                ps.add_statement()
            for name, params in commands:
                if script:
                    ps.add_script(name)
                else:
                    ps.add_cmdlet(name)
                for key, value in params.items():
                    ps.add_parameter(key, wire_value(key, value))
            if len(statements) > 1:
                ps.add_statement()
        ps.begin_invoke()
        deadline = time.monotonic() + self.settings.call_timeout
        while ps.state == PSInvocationState.RUNNING:
            if time.monotonic() > deadline:
                with contextlib.suppress(Exception):
                    ps.stop()
                raise TransportError(
                    f"{self.name}: {label} did not finish within {self.settings.call_timeout}s"
                )
            ps.poll_invoke()
        return ps

    def _results(self, ps: Any, label: str, silent: bool, batch: bool = False) -> list[Any]:
        errors = list(ps.streams.error)
        if errors and (ps.had_errors or not silent):
            # In a batch, the record names the cmdlet that wrote it (its activity).
            name = (getattr(errors[0], "activity", None) or label) if batch else label
            raise host_error(name, errors[0])
        return [plain(o) for o in ps.output]

    def _split(self, output: list[Any], separator: str, count: int, label: str) -> list[list[Any]]:
        """The batch's output cut at its separators: one list per statement."""
        parts: list[list[Any]] = [[]]
        for value in output:
            if isinstance(value, str) and value == f"{separator}:{len(parts)}":
                parts.append([])
            else:
                parts[-1].append(value)
        if len(parts) != count:
            raise HostError(
                label,
                f"the answer holds {len(parts)} of the {count} statements sent in one pipeline",
                error_id="hvlab.BatchAnswer",
            )
        return parts

    # -- trace ----------------------------------------------------------------

    def _record(
        self,
        label: str,
        names: list[str],
        seconds: float,
        outcome: str,
        attempts: int = 1,
        statements: list[dict[str, Any]] | None = None,
    ) -> None:
        # Only parameter names: values may be passwords or data nobody should log.
        entry: dict[str, Any] = {
            "at": time.time(),
            "host": self.name,
            "cmdlet": label,
            "params": names,
            "duration_ms": round(seconds * 1000, 1),
            "outcome": outcome,
            "attempts": attempts,
        }
        if statements is not None:
            # A batch: each statement's cmdlets and parameter names, in order.
            entry["statements"] = statements
        with self._trace_lock:
            self.trace.append(entry)
        log.debug(
            "%s: %s -%s: %s in %.0f ms%s",
            self.name,
            label,
            " -".join(names) if names else "",
            outcome,
            seconds * 1000,
            f" after {attempts} attempts" if attempts > 1 else "",
        )

    def write_trace(self, path: str | os.PathLike[str]) -> None:
        """Write the trace as JSON lines, atomically (a reader never sees half a file)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._trace_lock:
            lines = [json.dumps(e, sort_keys=True) for e in self.trace]
        fd, tmp = tempfile.mkstemp(prefix=".trace-", dir=str(target.parent))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + ("\n" if lines else ""))
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def host_error(cmdlet: str, err: Any) -> HostError:
    """HostError from a pypsrp ErrorRecord."""
    message = str(err)
    category = getattr(err, "category", None)
    if isinstance(category, int) and 0 <= category < len(_CATEGORIES):
        category_name = _CATEGORIES[category]
    else:
        category_name = str(category or "")
    target = getattr(err, "target_name", None) or None
    return HostError(
        cmdlet,
        message,
        error_id=str(getattr(err, "fq_error", "") or ""),
        category=category_name,
        target=str(target) if target is not None else None,
    )


# urllib3's names for a connection that never opened: the request did not leave.
_UNSENT = {"NewConnectionError", "NameResolutionError", "ConnectionRefusedError"}


def _never_sent(exc: BaseException) -> bool:
    """Did the request fail before it could reach the host? Only a refused or
    unresolvable connection says so; a reset or a timeout may come after the host
    got the request (R-92)."""
    import requests

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        cur = pending.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        if type(cur).__name__ in _UNSENT:
            return True
        pending += [a for a in getattr(cur, "args", ()) if isinstance(a, BaseException)]
        reason = getattr(cur, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)
        pending += [e for e in (cur.__cause__, cur.__context__) if e is not None]
    return False


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _statement(statement: Statement) -> list[Call]:
    """A batch's statement as a list of piped calls."""
    if isinstance(statement, tuple) and len(statement) == 2 and isinstance(statement[0], str):
        return [statement]  # type: ignore[list-item]
    calls = [tuple(c) for c in statement]  # type: ignore[union-attr]
    if not calls or not all(len(c) == 2 and isinstance(c[0], str) for c in calls):
        raise ValueError(f"a statement is a call or a list of calls, not {statement!r}")
    return calls  # type: ignore[return-value]


def records(values: Iterable[Any]) -> list[Record]:
    """Only the Record values of a result (drops strings and numbers)."""
    return [v for v in values if isinstance(v, Record)]
