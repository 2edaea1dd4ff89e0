"""Runspace pools and pipelines (PSRP, via psrpcore's server classes).

One `Shell` per WSMan shell: a psrpcore ServerRunspacePool plus the pipelines
created in it. psrpcore objects are not thread safe, so every touch happens under
the shell's condition lock; the model runs on a worker thread per pipeline and
writes its streams back through that lock.

Outgoing PSRP data is drained from psrpcore in bounded fragments into one outbox
per target (the pool, or a pipeline), so a Receive for one pipeline never takes
another's data, and a large output is split over as many Receives as the
client's MaxEnvelopeSize needs.

A pipeline starts when its CREATE_PIPELINE arrives ([MS-PSRP] 3.2.5.4.10,
3.2.1.3.2), not when its input ends: it can fail or write output while the
client still sends input. Structured calls of modelled cmdlets and the known
constant scripts run through hvsim.executor; anything else a client sends
(scripts, utility cmdlets such as Write-Output or Set-Variable) runs through
hvsim.pwsh_run, the small PowerShell subset, with the pool's variables.
"""

from __future__ import annotations

import collections
import logging
import re
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from psrpcore import (
    CreatePipelineEvent,
    EndOfPipelineInputEvent,
    GetAvailableRunspacesEvent,
    GetCommandMetadataEvent,
    PipelineHostResponseEvent,
    PipelineInputEvent,
    PSRPPayload,
    ResetRunspaceStateEvent,
    RunspacePoolHostResponseEvent,
    ServerPipeline,
    ServerRunspacePool,
    SetMaxRunspacesEvent,
    SetMinRunspacesEvent,
    StreamType,
)
from psrpcore.types import (
    CommandMetadataCount,
    PipelineResultTypes,
    PSInvocationState,
    PSSecureString,
    RunspacePoolState,
)

from hvsim import clixml, executor, pwsh_run
from hvsim.errors import PSError
from hvsim.faults import DropConnection

log = logging.getLogger(__name__)

# Size of the fragments drained from psrpcore. A Receive packs as many as fit in
# the client's MaxEnvelopeSize, so this only bounds the unit of packing.
FRAGMENT_BYTES = 32 * 1024
# The shell IdleTimeOut of the Microsoft.PowerShell configuration (7200000 ms).
IDLE_TIMEOUT = 7200.0
# Its MaxShellsPerUser quota.
MAX_SHELLS_PER_USER = 25
# How often abandoned and expired shells are looked for.
REAP_INTERVAL = 1.0
# Longest wait for the client's answer to a host call (ReadLine and friends).
HOST_CALL_SECONDS = 300.0


class ShellGone(Exception):
    """The shell was deleted (or the server stopped) while a request waited on it."""


class ConnectionDropped(Exception):
    """Fault injection cut the connection while this pipeline ran (hvsim.faults)."""


class UnknownCommand(Exception):
    """A Send, Receive or Signal named a CommandId this shell does not have."""


class ShellDisconnected(Exception):
    """The shell was disconnected while a Receive waited on it."""


class QuotaExceeded(Exception):
    """The user already holds MaxShellsPerUser shells."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class _Run:
    """One pipeline: its psrpcore object, its input and its worker."""

    def __init__(self, shell: Shell, command_id: str) -> None:
        self.shell = shell
        self.command_id = command_id
        self.pipeline = ServerPipeline(shell.pool, uuid.UUID(command_id))
        self.input: collections.deque[Any] = collections.deque()
        self.input_done = False
        self.started = False
        self.finished = False
        self.dropped = False
        self.metadata_request: Any = None  # GET_COMMAND_METADATA's request
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    @property
    def key(self) -> uuid.UUID:
        return self.pipeline.pipeline_id

    def inputs(self) -> Iterator[Any]:
        """Pipeline input as it arrives, until the client ends it (or a stop)."""
        cond = self.shell.cond
        while True:
            with cond:
                while not self.input and not self.input_done and not self.stopped():
                    cond.wait(1.0)
                if self.input:
                    item = self.input.popleft()
                elif self.stopped():
                    raise PipelineStopped()
                else:
                    return
            yield item

    def stopped(self) -> bool:
        return self.stop.is_set() or self.shell.closed


class PipelineStopped(Exception):
    """The pipeline was stopped (Signal, Delete) while it ran."""


class _Sink:
    """hvsim.registry.Streams for a running pipeline: writes through the shell lock."""

    def __init__(self, run: _Run, command: str) -> None:
        self.run = run
        self.command = command

    def _write(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        shell = self.run.shell
        with shell.cond:
            if self.run.pipeline.state != PSInvocationState.Running:
                return
            fn(*args, **kwargs)
            shell.flush()

    def host_call(self, method: str, params: list[Any]) -> Any:
        """A call on the client's host ([MS-PSRP] 2.2.2.15-2.2.2.28): PIPELINE_HOST_CALL
        to the pipeline's host, or RUNSPACEPOOL_HOST_CALL when the pipeline uses the
        pool's. Waits (bounded, stop-aware) for the answer of a non-void method."""
        from psrpcore.types import HostMethodIdentifier

        shell = self.run.shell
        mi = HostMethodIdentifier[method]
        with shell.cond:
            if self.run.pipeline.state != PSInvocationState.Running:
                raise PipelineStopped()
            target = shell.host_of(self.run)
            if target is None:
                if mi.is_void():
                    return None  # no client host: output goes nowhere
                raise PSError(
                    "A command that prompts the user failed because the host program or the "
                    "command type does not support user interaction. The host was attempting "
                    f"to request confirmation with the following message: {method}",
                    fqid="HostException",
                    category="ResourceUnavailable",
                    exception="System.Management.Automation.Host.HostException",
                )
            args = [clixml.to_ps(p) for p in params]
            if target == "pipeline":
                ci = self.run.pipeline.host_call(mi, args)
            else:
                ci = shell.pool.host_call(mi, args)
            shell.flush()
            if mi.is_void():
                return None
            deadline = time.monotonic() + HOST_CALL_SECONDS
            while ci not in shell.host_answers:
                if self.run.stopped():
                    raise PipelineStopped()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PSError(
                        f"The client's host did not answer {method} within {HOST_CALL_SECONDS:.0f} s.",
                        fqid="HostCallTimedOut,hvsim",
                        category="OperationTimeout",
                        exception="System.TimeoutException",
                    )
                shell.cond.wait(min(left, 1.0))
            answer = shell.host_answers.pop(ci)
        error = answer.error
        if error is not None:
            text = str(getattr(error.Exception, "Message", None) or error)
            raise PSError(
                f'Exception calling "{_host_method_name(method)}" with "{len(params)}" '
                f'argument(s): "{text}"',
                fqid="HostException",
                category="NotSpecified",
                exception="System.Management.Automation.MethodInvocationException",
            )
        result = answer.result
        if mi == HostMethodIdentifier.ReadLineAsSecureString and isinstance(result, str):
            # The answer is a SecureString encrypted with the session key.
            result = PSSecureString(result, shell.pool._cipher)
        return clixml.from_ps(result)

    def user_event(self, source_id: str, sender: Any, args: list[Any], data: Any) -> None:
        """A forwarded engine event: USER_EVENT ([MS-PSRP] 2.2.2.12) to the client."""
        from psrpcore.types import PSDateTime, UserEvent

        shell = self.run.shell
        with shell.cond:
            shell.event_count += 1
            shell.pool.prepare_message(
                UserEvent(
                    EventIdentifier=shell.event_count,
                    SourceIdentifier=source_id,
                    TimeGenerated=PSDateTime.now(),
                    Sender=clixml.to_ps(sender),
                    SourceArgs=[clixml.to_ps(a) for a in args],
                    MessageData=clixml.to_ps(data),
                    ComputerName=None,
                    RunspaceId=shell.pool.runspace_pool_id,
                )
            )
            shell.flush()

    def output(self, value: Any) -> None:
        """One output object, sent at once (scripts stream their output)."""
        if isinstance(value, PSError):
            self._write(self.run.pipeline.write_output, clixml.error_record(value, self.command))
        else:
            self._write(self.run.pipeline.write_output, clixml.to_ps(value))

    def debug(self, text: str) -> None:
        self._write(self.run.pipeline.write_debug, str(text))

    def error(self, err: PSError) -> None:
        rec = clixml.error_record(err, self.command)
        self._write(
            self.run.pipeline.write_error,
            rec.Exception,
            rec.CategoryInfo,
            rec.TargetObject,
            rec.FullyQualifiedErrorId,
        )

    def warning(self, text: str) -> None:
        self._write(self.run.pipeline.write_warning, str(text))

    def verbose(self, text: str) -> None:
        self._write(self.run.pipeline.write_verbose, str(text))

    def information(self, data: Any, tags: list[str] | None = None) -> None:
        self._write(
            self.run.pipeline.write_information,
            clixml.to_ps(data),
            self.command,
            tags=tags,
            computer=self.run.shell.service.computer_name,
            user=self.run.shell.owner,
        )

    def progress(self, activity: str, status: str, percent: int = -1) -> None:
        self._write(
            self.run.pipeline.write_progress,
            str(activity),
            0,
            str(status),
            percent_complete=int(percent),
        )


_PSINT = re.compile(r"Cannot create PS(U?Int\d*|Byte|SByte) with value '([^']*)'")
_CLR = {"Int": "Int32", "UInt": "UInt32", "Int16": "Int16", "UInt16": "UInt16", "Int64": "Int64"}


def _undeserializable(exc: ValueError) -> PSError:
    """The ErrorRecord for a value the client typed wrongly on the wire.

    pypsrp 0.9.1 sends every Python int as <I32>; 4 GiB does not fit. Windows does
    not accept such an Int32 either; the text is the one PowerShell uses for a
    value that does not fit System.Int32.
    """
    m = _PSINT.search(str(exc))
    if m:
        clr = _CLR.get(m.group(1), m.group(1))
        return PSError(
            f'Cannot convert value "{m.group(2)}" to type "System.{clr}". Error: "Value was '
            f'either too large or too small for an {clr}."',
            fqid="InvalidCastIConvertible",
            category="InvalidArgument",
            exception="System.Management.Automation.PSInvalidCastException",
            target=m.group(2),
        )
    return PSError(
        f"The data sent to the server could not be deserialized: {exc}",
        fqid="InvalidData,hvsim",
        category="InvalidData",
        exception="System.Xml.XmlException",
    )


def _pool_message_keys(data: bytes) -> bytes:
    """Pool-level messages with the call-id key spelled as psrpcore reads it.

    PowerShell reads CLIXML property names case-insensitively; psrpcore 0.3.1 does
    not, and pypsrp 0.9.1 writes the call id of SET_MAX_RUNSPACES,
    SET_MIN_RUNSPACES and GET_AVAILABLE_RUNSPACES as "CI" where psrpcore expects
    "ci". The rename keeps the length, so fragment headers stay valid; it is only
    applied to data for the pool, which carries no user objects.
    """
    return data.replace(b'N="CI"', b'N="ci"')


def _statements(metadata: Any) -> list[list[executor.Command]]:
    """The pipeline's commands, split into statements, values made plain."""
    out: list[list[executor.Command]] = [[]]
    for raw in metadata.commands:
        merge = raw.merge_error == PipelineResultTypes.Output or (
            raw.merge_my == PipelineResultTypes.Error and raw.merge_to == PipelineResultTypes.Output
        )
        out[-1].append(
            executor.Command(
                name=str(raw.command_text),
                args=[
                    (None if n is None else str(n), clixml.from_ps(v)) for n, v in raw.parameters
                ],
                is_script=bool(raw.is_script),
                merge_error_to_output=merge,
                use_local_scope=raw.use_local_scope,
            )
        )
        if raw.end_of_statement:
            out.append([])
    return [s for s in out if s]


class Shell:
    """A WSMan shell holding one PSRP runspace pool."""

    def __init__(
        self,
        service: PSRPService,
        shell_id: str,
        owner: str,
        *,
        idle_timeout: float | None = None,
        resource_uri: str = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell",
        client_ip: str = "",
    ) -> None:
        self.service = service
        self.id = shell_id
        self.owner = owner
        self.resource_uri = resource_uri
        self.client_ip = client_ip
        # The client's IdleTimeOut, if it asked for one; else the service's.
        self._idle_timeout = idle_timeout
        self.pool = ServerRunspacePool()
        self.cond = threading.Condition()
        self.outbox: dict[uuid.UUID | None, collections.deque[bytes]] = collections.defaultdict(
            collections.deque
        )
        self.runs: dict[str, _Run] = {}
        self.retired: collections.deque[str] = collections.deque(maxlen=1024)
        self.closed = False
        self.disconnected = False
        self.last_used = time.monotonic()
        self.running = 0  # pipelines holding a runspace (at most MaxRunspaces)
        self.host_answers: dict[int, Any] = {}  # host call id -> the client's answer
        self.event_count = 0
        self._session: Any = None  # hvsim.pwsh_run.Session, made on first script

    @property
    def idle_timeout(self) -> float:
        return self._idle_timeout or self.service.idle_timeout

    # -- psrpcore plumbing (call with self.cond held) --------------------------

    def flush(self) -> None:
        """Move everything psrpcore has queued into the per-target outboxes."""
        while True:
            payload = self.pool.data_to_send(FRAGMENT_BYTES)
            if payload is None:
                break
            self.outbox[payload.pipeline_id].append(payload.data)
        self.cond.notify_all()

    def _feed(self, data: bytes, pipeline_id: uuid.UUID | None) -> None:
        self.pool.receive_data(PSRPPayload(data, StreamType.default, pipeline_id))
        while True:
            event = self.pool.next_event()
            if event is None:
                break
            self._on_event(event)
        self.flush()

    def _on_event(self, event: Any) -> None:
        if isinstance(event, SetMaxRunspacesEvent):
            # [MS-PSRP] 2.2.2.9: refused (False) below MinRunspaces or below 1.
            ok = event.count >= max(1, self.pool.min_runspaces)
            self.pool.runspace_availability_response(event.ci, ok)
            self.cond.notify_all()  # a larger pool lets waiting pipelines run
        elif isinstance(event, SetMinRunspacesEvent):
            # [MS-PSRP] 2.2.2.10: refused below 1 or above MaxRunspaces.
            ok = 1 <= event.count <= self.pool.max_runspaces
            self.pool.runspace_availability_response(event.ci, ok)
        elif isinstance(event, ResetRunspaceStateEvent):
            # [MS-PSRP] 2.2.2.30: the runspace's variables go back to their defaults.
            if self._session is not None:
                self._session.reset()
            self.pool.runspace_availability_response(event.ci, True)
        elif isinstance(event, GetAvailableRunspacesEvent):
            self.pool.runspace_availability_response(
                event.ci, max(0, self.pool.max_runspaces - self.running)
            )
        elif isinstance(event, CreatePipelineEvent):
            # [MS-PSRP] 3.2.5.4.10: the pipeline is invoked now; its input, if
            # any, follows in PIPELINE_INPUT messages.
            run = self._run_for(event.pipeline_id)
            run.input_done = bool(
                run.pipeline.metadata is not None and run.pipeline.metadata.no_input
            )
            self._start(run)
        elif isinstance(event, PipelineInputEvent):
            self._run_for(event.pipeline_id).input.append(clixml.from_ps(event.data))
            self.cond.notify_all()
        elif isinstance(event, EndOfPipelineInputEvent):
            self._run_for(event.pipeline_id).input_done = True
            self.cond.notify_all()
        elif isinstance(event, PipelineHostResponseEvent | RunspacePoolHostResponseEvent):
            self.host_answers[event.ci] = event
            self.cond.notify_all()
        elif isinstance(event, GetCommandMetadataEvent):
            run = self._run_for(event.pipeline_id)
            run.metadata_request = event.pipeline
            run.input_done = True
            self._start(run)

    def _run_for(self, pipeline_id: uuid.UUID) -> _Run:
        for run in self.runs.values():
            if run.key == pipeline_id:
                return run
        raise UnknownCommand(str(pipeline_id))

    def _fail(self, run: _Run, err: PSError) -> None:
        # psrpcore has no public way to fail a pipeline; this is the one place that
        # sets the Failed state with the error record the client will read.
        record = clixml.error_record(err, None)
        if run.pipeline.state == PSInvocationState.NotStarted:
            _running(run.pipeline)
        run.pipeline._change_state(PSInvocationState.Failed, error=record)
        run.finished = True
        self.flush()

    # -- pipelines -----------------------------------------------------------

    def _start(self, run: _Run) -> None:
        if run.started:
            return
        run.started = True
        _running(run.pipeline)
        run.thread = threading.Thread(
            target=self._work, args=(run,), name=f"hvsim-pipeline-{run.command_id[:8]}", daemon=True
        )
        run.thread.start()

    def _take_runspace(self, run: _Run) -> bool:
        """Wait for a free runspace: the pool runs at most MaxRunspaces pipelines at
        once and the rest wait, as in a real runspace pool; a changed MaxRunspaces
        applies to the waiting ones."""
        with self.cond:
            while self.running >= max(1, self.pool.max_runspaces or 1):
                if run.stopped():
                    return False
                self.cond.wait(1.0)
            self.running += 1
            return True

    def _release_runspace(self) -> None:
        with self.cond:
            self.running -= 1
            self.cond.notify_all()

    def host_of(self, run: _Run) -> str | None:
        """Whose host a pipeline's host calls go to: "pipeline", "pool" or None.
        A pipeline without a host of its own uses the pool's when it says so
        (HostInfo.UseRunspaceHost, [MS-PSRP] 2.2.3.14)."""
        info = getattr(run.pipeline.metadata, "host", None)
        if info is not None and not getattr(info, "IsHostNull", True):
            return "pipeline"
        if info is None or getattr(info, "UseRunspaceHost", True):
            pool_host = self.pool.host
            if pool_host is not None and not getattr(pool_host, "IsHostNull", True):
                return "pool"
        return None

    def session(self) -> Any:
        with self.cond:
            if self._session is None:
                self._session = pwsh_run.Session(
                    owner=self.owner,
                    computer=self.service.computer_name,
                    application_arguments=clixml.from_ps(self.pool.application_arguments or {}),
                    machine=self.service.machine,
                )
            return self._session

    def _work(self, run: _Run) -> None:
        if not self._take_runspace(run):
            return
        try:
            self._work_in_runspace(run)
        finally:
            self._release_runspace()

    def _work_in_runspace(self, run: _Run) -> None:
        label = "script"
        outputs: list[Any] = []
        error: PSError | None = None
        try:
            if run.metadata_request is not None:
                outputs = command_metadata(run.metadata_request)
            else:
                statements = _statements(run.pipeline.metadata)
                first = statements[0][0] if statements and statements[0] else None
                label = "script" if first is None or first.is_script else first.name
                sink = _Sink(run, label)
                if _executor_only(statements):
                    outputs = self._run_structured(run, statements, sink)
                else:
                    pwsh_run.run(
                        statements,
                        pwsh_run.Host(
                            world=self.service.world,
                            machine=self.service.machine,
                            user=self.owner,
                            sink=sink,
                            session=self.session(),
                            input=None if run.pipeline.metadata.no_input else run.inputs(),
                            stop=run.stop,
                        ),
                    )
        except PSError as err:
            error = err
        except (PipelineStopped, pwsh_run.Stopped):
            self._journal(label)  # what ran before the stop stays done
            return
        except DropConnection:
            self._journal(label)
            with self.cond:
                run.dropped = True
                self.cond.notify_all()
            return
        except Exception as exc:  # never let a model bug kill the worker silently
            log.exception("pipeline %s failed", run.command_id)
            error = executor.internal_error(executor.Command(label), exc)
        # What the pipeline changed is on disk before the client hears of it.
        journal_error = self._journal(label)
        if journal_error is not None and error is None:
            error = journal_error
        with self.cond:
            if run.pipeline.state != PSInvocationState.Running:
                return  # stopped by a signal or the shell was deleted
            try:
                self._write_outputs(run, outputs, label)
            except Exception as exc:  # an output psrpcore cannot serialize
                log.exception("pipeline %s: output not serializable", run.command_id)
                error = executor.internal_error(executor.Command(label), exc)
            if error is not None:
                self._fail(run, error)
            else:
                run.pipeline.complete()
                run.finished = True
                self.flush()

    def _journal(self, label: str) -> PSError | None:
        journal = getattr(self.service.world, "journal", None)
        if journal is None:
            return None
        try:
            journal()
        except Exception as exc:  # a full or read-only disk: the client must know
            log.exception("saving the host state after %s failed", label)
            return PSError(
                f"hvsim could not save its state after {label}: {type(exc).__name__}: {exc}",
                fqid="hvsim.StateNotSaved",
                category="WriteError",
                exception="System.IO.IOException",
            )
        return None

    def _run_structured(
        self, run: _Run, statements: list[list[executor.Command]], sink: _Sink
    ) -> list[Any]:
        """Modelled cmdlets and the known scripts, through hvsim.executor."""
        # A command that cannot run fails the pipeline now, before its input ends.
        for cmds in statements:
            for cmd in cmds:
                if not cmd.is_script:
                    _check_command(cmd.name)
        piped: list[Any] | None = None if run.pipeline.metadata.no_input else list(run.inputs())
        outputs: list[Any] = []
        for cmds in statements:
            sink.command = "script" if cmds[0].is_script else cmds[0].name
            outputs.extend(
                executor.run_pipeline(
                    self.service.world, self.service.machine, self.owner, cmds, sink, input=piped
                )
            )
            piped = None
        return outputs

    def _write_outputs(self, run: _Run, outputs: list[Any], label: str) -> None:
        for i, value in enumerate(outputs, 1):
            if isinstance(value, _Raw):
                run.pipeline.write_output(value.value)
            elif isinstance(value, PSError):
                run.pipeline.write_output(clixml.error_record(value, label))
            else:
                run.pipeline.write_output(clixml.to_ps(value))
            if i % 64 == 0:
                # Let a waiting Receive start on large outputs.
                self.flush()

    # -- WSMan operations ----------------------------------------------------

    def create(self, creation_xml: bytes) -> None:
        with self.cond:
            self._feed(creation_xml, None)

    def command(self, command_id: str, data: bytes) -> str:
        self.last_used = time.monotonic()
        command_id = command_id.upper() if command_id else str(uuid.uuid4()).upper()
        with self.cond:
            # The ServerPipeline must exist before its CreatePipeline fragment is fed.
            run = _Run(self, command_id)
            self.runs[command_id] = run
            if data:
                try:
                    self._feed(data, run.key)
                except ValueError as exc:
                    # The CreatePipeline message did not deserialize: fail this
                    # pipeline with an ErrorRecord; the shell stays usable.
                    self._fail(run, _undeserializable(exc))
        return command_id

    def send(self, command_id: str | None, data: bytes) -> None:
        self.last_used = time.monotonic()
        with self.cond:
            key = None
            if command_id:
                run = self.runs.get(command_id.upper())
                if run is None:
                    if command_id.upper() in self.retired:
                        # Input racing the pipeline's end (a client sends while the
                        # final state is on its way): dropped, as for Signal.
                        return
                    raise UnknownCommand(command_id)
                key = run.key
            else:
                data = _pool_message_keys(data)
            self._feed(data, key)

    def receive(self, command_id: str | None, timeout: float, max_bytes: int) -> tuple[bytes, bool]:
        """Data for the pool or a pipeline, waiting at most `timeout` seconds for some.

        Returns (data, done); raises TimeoutError when nothing came in time.
        """
        deadline = time.monotonic() + timeout
        self.last_used = time.monotonic()
        with self.cond:
            key: uuid.UUID | None = None
            run: _Run | None = None
            if command_id:
                run = self.runs.get(command_id.upper())
                if run is None:
                    if command_id.upper() in self.retired:
                        return b"", True
                    raise UnknownCommand(command_id)
                key = run.key
            while True:
                if self.closed or self.service.stopping:
                    raise ShellGone(self.id)
                if self.disconnected:
                    raise ShellDisconnected(self.id)
                if run is not None and run.dropped:
                    raise ConnectionDropped(run.command_id)
                box = self.outbox.get(key)
                if box:
                    break
                if run is not None and run.finished:
                    self._retire(run)
                    return b"", True
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no data for {command_id or 'the pool'}")
                self.cond.wait(left)
            data = bytearray()
            while box and (not data or len(data) + len(box[0]) <= max_bytes):
                data += box.popleft()
            done = run is not None and run.finished and not box
            if done and run is not None:
                self._retire(run)
            self.last_used = time.monotonic()
            return bytes(data), done

    def signal(self, command_id: str, code: str) -> None:
        self.last_used = time.monotonic()
        with self.cond:
            run = self.runs.get(command_id.upper())
            if run is None:
                if command_id.upper() in self.retired:
                    return  # already delivered and cleaned up
                raise UnknownCommand(command_id)
            if code.endswith("crtl_c") or code.endswith("ctrl_c"):
                run.stop.set()
                if run.pipeline.state == PSInvocationState.Running:
                    run.pipeline.stop()
                    run.finished = True
                    self.flush()
                return
            # terminate: the client is done with the command.
            self._drop(run)

    def disconnect(self, idle_timeout: float | None) -> None:
        """[MS-WSMV] 3.1.4.15: the client goes away; pipelines go on, output is kept."""
        with self.cond:
            self.disconnected = True
            if idle_timeout is not None:
                self._idle_timeout = idle_timeout
            self.last_used = time.monotonic()
            if self.pool.state == RunspacePoolState.Opened:
                self.pool.state = RunspacePoolState.Disconnected
            self.cond.notify_all()  # a waiting Receive ends (stream disconnected)

    def reconnect(self) -> None:
        """[MS-WSMV] 3.1.4.16: the same client resumes its shell."""
        with self.cond:
            self.disconnected = False
            self.last_used = time.monotonic()
            if self.pool.state == RunspacePoolState.Disconnected:
                self.pool.state = RunspacePoolState.Opened

    def connect(self, connect_xml: bytes, client_ip: str) -> bytes:
        """[MS-PSRP] 3.1.5.3.16-17: a new client takes over a disconnected pool.
        Returns the PSRP answer (SESSION_CAPABILITY, RUNSPACEPOOL_INIT_DATA,
        APPLICATION_PRIVATE_DATA) for connectResponseXml."""
        with self.cond:
            self.pool.connect()
            # What was queued for the old client's pool is not the new client's.
            self.outbox.pop(None, None)
            self.pool.prepare_message(self.pool.our_capability)
            self._feed(connect_xml, None)
            # connectResponseXml carries SESSION_CAPABILITY and RUNSPACEPOOL_INIT_DATA
            # ([MS-PSRP] 3.1.5.3.17); APPLICATION_PRIVATE_DATA and the state follow
            # on the pool's next Receive, which is what lets the client go on.
            answer, rest = _split_connect_answer(
                b"".join(self.outbox.pop(None, collections.deque()))
            )
            if rest:
                self.outbox[None].append(rest)
            self.disconnected = False
            self.client_ip = client_ip or self.client_ip
            self.last_used = time.monotonic()
            return answer

    def connect_command(self, command_id: str) -> None:
        """[MS-PSRP] 3.1.5.3.18: a connected client takes up a pipeline's output."""
        with self.cond:
            if command_id.upper() not in self.runs:
                raise UnknownCommand(command_id)
            self.last_used = time.monotonic()

    def commands(self) -> list[tuple[str, str]]:
        """(CommandId, CommandState) of the pipelines whose output is not all received."""
        with self.cond:
            return [
                (cid, STATE_DONE if run.finished else STATE_RUNNING)
                for cid, run in self.runs.items()
            ]

    def busy(self) -> bool:
        return any(r.started and not r.finished for r in self.runs.values())

    def _retire(self, run: _Run) -> None:
        """Forget a pipeline whose last data the client has received.

        pypsrp 0.9.1 does not always send Signal terminate after a pipeline, so a
        long-lived pool would otherwise keep every pipeline it ever ran. Its id is
        remembered for a while so a late Signal or Receive still gets an answer.
        """
        run.pipeline.close()
        self.runs.pop(run.command_id, None)
        self.outbox.pop(run.key, None)
        self.retired.append(run.command_id)

    def _drop(self, run: _Run) -> None:
        run.stop.set()
        if run.pipeline.state == PSInvocationState.Running:
            run.pipeline.stop()
        run.finished = True
        run.pipeline.close()
        self.runs.pop(run.command_id, None)
        self.outbox.pop(run.key, None)
        # Discard anything still queued for a pipeline that is gone.
        self.flush()
        self.outbox.pop(run.key, None)
        self.retired.append(run.command_id)

    def close(self) -> None:
        with self.cond:
            for run in list(self.runs.values()):
                self._drop(run)
            self.closed = True
            if self.pool.state in (RunspacePoolState.Opened, RunspacePoolState.Disconnected):
                self.pool.state = RunspacePoolState.Opened
                self.pool.close()
            self.cond.notify_all()


# PSRP message types ([MS-PSRP] 2.2.1) that answer a Connect directly.
_CONNECT_ANSWER_TYPES = {0x00010002, 0x0002100B}  # SESSION_CAPABILITY, RUNSPACEPOOL_INIT_DATA


def _split_connect_answer(data: bytes) -> tuple[bytes, bytes]:
    """Split PSRP fragments ([MS-PSRP] 2.2.4: ObjectId, FragmentId, flags,
    BlobLength, blob) into those of the Connect answer's message types and the rest."""
    answer, rest = bytearray(), bytearray()
    kinds: dict[int, bool] = {}
    i = 0
    while i + 21 <= len(data):
        object_id = struct.unpack(">Q", data[i : i + 8])[0]
        start = data[i + 16] & 0x1
        length = struct.unpack(">I", data[i + 17 : i + 21])[0]
        blob = data[i + 21 : i + 21 + length]
        if start and len(blob) >= 8:
            kinds[object_id] = struct.unpack("<I", blob[4:8])[0] in _CONNECT_ANSWER_TYPES
        (answer if kinds.get(object_id) else rest).extend(data[i : i + 21 + length])
        i += 21 + length
    return bytes(answer), bytes(rest)


def _host_method_name(method: str) -> str:
    return method.rstrip("0123456789")


def _running(pipeline: ServerPipeline) -> None:
    """Mark a pipeline Running without telling the client: PowerShell sends
    PIPELINE_STATE only when a pipeline ends ([MS-PSRP] 2.2.2.21: Completed,
    Failed, Stopped), and clients count those. psrpcore's start() would send a
    Running one, so the state is set through its private setter, here only."""
    pipeline._change_state(PSInvocationState.Running, emit=False)


STATE_DONE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
STATE_RUNNING = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"


def _check_command(name: str) -> None:
    """Fail now, as PowerShell does when it prepares the pipeline, for a command
    that does not exist or that the model does not implement."""
    from hvsim import bind, registry
    from hvsim.errors import not_modelled

    cmd = bind.resolve_command(name)
    if registry.lookup(cmd.name) is None:
        raise not_modelled(f"the cmdlet {cmd.name}")


def _executor_only(statements: list[list[executor.Command]]) -> bool:
    """True when every command is a modelled cmdlet or a known constant script:
    such pipelines run as they always did, through hvsim.executor. Utility
    cmdlets the model does not register (Write-Output ...) and other scripts go
    to hvsim.pwsh_run."""
    from hvsim import bind, filetransfer, pwsh_run, registry, scripts

    for cmds in statements:
        for cmd in cmds:
            if cmd.is_script:
                if filetransfer.find(cmd.name) is None and scripts.find(cmd.name, "host") is None:
                    return False
                continue
            try:
                resolved = bind.resolve_command(cmd.name)
            except PSError:
                continue  # fails as "not recognized" in _check_command
            if registry.lookup(resolved.name) is None and pwsh_run.is_utility(resolved.name):
                return False
    return True


def command_metadata(request: Any) -> list[Any]:
    """GET_COMMAND_METADATA ([MS-PSRP] 2.2.2.14, 3.2.5.4.13): the count, then one
    CommandMetadata ([MS-PSRP] 2.2.3.22) per catalog cmdlet that matches the
    names, command types and namespaces asked for."""
    from hvsim import pwsh_meta

    found = pwsh_meta.find_commands(
        list(request.name or ["*"]),
        int(getattr(request.command_type, "value", request.command_type) or 0),
        list(request.namespace or []),
    )
    return [_Raw(CommandMetadataCount(Count=len(found)))] + [_Raw(m) for m in found]


class _Raw:
    """An output object that is already a psrpcore value (no clixml conversion)."""

    def __init__(self, value: Any) -> None:
        self.value = value


class PSRPService:
    """Every shell of one server, and what pipelines run against."""

    def __init__(self, world: Any, machine: Any, computer_name: str) -> None:
        self.world = world
        self.machine = machine
        self.computer_name = computer_name
        self.shells: dict[str, Shell] = {}
        self.lock = threading.Lock()
        self.stopping = False
        # WinRM's default shell IdleTimeOut (the Create response says PT7200S).
        self.idle_timeout = IDLE_TIMEOUT
        self.max_shells_per_user = MAX_SHELLS_PER_USER
        self._reaper: threading.Thread | None = None
        self._stop = threading.Event()

    def create(
        self,
        shell_id: str | None,
        owner: str,
        creation_xml: bytes,
        *,
        idle_timeout: float | None = None,
        resource_uri: str = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell",
        client_ip: str = "",
    ) -> Shell:
        self._start_reaper()
        self.reap()
        with self.lock:
            held = sum(1 for sh in self.shells.values() if sh.owner.lower() == owner.lower())
        if held >= self.max_shells_per_user:
            raise QuotaExceeded(self.max_shells_per_user)
        sid = (shell_id or str(uuid.uuid4())).upper()
        shell = Shell(
            self,
            sid,
            owner,
            idle_timeout=idle_timeout,
            resource_uri=resource_uri,
            client_ip=client_ip,
        )
        shell.create(creation_xml)
        with self.lock:
            self.shells[sid] = shell
        return shell

    def _start_reaper(self) -> None:
        with self.lock:
            if self._reaper is None and not self.stopping:
                self._reaper = threading.Thread(
                    target=self._reap_loop, name="hvsim-reaper", daemon=True
                )
                self._reaper.start()

    def _reap_loop(self) -> None:
        while not self._stop.wait(REAP_INTERVAL):
            try:
                self.reap()
            except Exception:  # the reaper must outlive any one bad shell
                log.exception("reaping shells failed")

    def reap(self) -> list[str]:
        """Close shells nobody used for their IdleTimeOut (clients that vanished
        without a Delete, disconnected shells nobody came back for), as WinRM does."""
        now = time.monotonic()
        with self.lock:
            idle = [
                sid
                for sid, sh in self.shells.items()
                if now - sh.last_used > sh.idle_timeout and (sh.disconnected or not sh.busy())
            ]
        for sid in idle:
            log.info("closing shell %s after its IdleTimeOut", sid)
            self.delete(sid)
        return idle

    def get(self, shell_id: str) -> Shell | None:
        with self.lock:
            return self.shells.get(shell_id.upper())

    def shells_of(self, user: str) -> list[Shell]:
        with self.lock:
            return [sh for sh in self.shells.values() if sh.owner.lower() == user.lower()]

    def delete(self, shell_id: str) -> bool:
        with self.lock:
            shell = self.shells.pop(shell_id.upper(), None)
        if shell is None:
            return False
        shell.close()
        return True

    def stop(self) -> None:
        self.stopping = True
        self._stop.set()
        with self.lock:
            shells = list(self.shells.values())
            self.shells.clear()
        for shell in shells:
            shell.close()
