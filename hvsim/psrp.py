"""Runspace pools and pipelines (PSRP, via psrpcore's server classes).

One `Shell` per WSMan shell: a psrpcore ServerRunspacePool plus the pipelines
created in it. psrpcore objects are not thread safe, so every touch happens under
the shell's condition lock; the model runs on a worker thread per pipeline and
writes its streams back through that lock.

Outgoing PSRP data is drained from psrpcore in bounded fragments into one outbox
per target (the pool, or a pipeline), so a Receive for one pipeline never takes
another's data, and a large output is split over as many Receives as the
client's MaxEnvelopeSize needs.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
import time
import uuid
from typing import Any

from psrpcore import (
    CreatePipelineEvent,
    EndOfPipelineInputEvent,
    GetAvailableRunspacesEvent,
    GetCommandMetadataEvent,
    PipelineInputEvent,
    PSRPPayload,
    ResetRunspaceStateEvent,
    ServerPipeline,
    ServerRunspacePool,
    SetMaxRunspacesEvent,
    SetMinRunspacesEvent,
    StreamType,
)
from psrpcore.types import (
    PipelineResultTypes,
    PSInvocationState,
    RunspacePoolState,
)

from hvsim import clixml, executor
from hvsim.errors import PSError, not_modelled
from hvsim.faults import DropConnection

log = logging.getLogger(__name__)

# Size of the fragments drained from psrpcore. A Receive packs as many as fit in
# the client's MaxEnvelopeSize, so this only bounds the unit of packing.
FRAGMENT_BYTES = 32 * 1024
IDLE_TIMEOUT = 7200.0


class ShellGone(Exception):
    """The shell was deleted (or the server stopped) while a request waited on it."""


class ConnectionDropped(Exception):
    """Fault injection cut the connection while this pipeline ran (hvsim.faults)."""


class UnknownCommand(Exception):
    """A Send, Receive or Signal named a CommandId this shell does not have."""


class _Run:
    """One pipeline: its psrpcore object, its input and its worker."""

    def __init__(self, shell: Shell, command_id: str) -> None:
        self.shell = shell
        self.command_id = command_id
        self.pipeline = ServerPipeline(shell.pool, uuid.UUID(command_id))
        self.input: list[Any] = []
        self.started = False
        self.finished = False
        self.dropped = False
        self.thread: threading.Thread | None = None

    @property
    def key(self) -> uuid.UUID:
        return self.pipeline.pipeline_id


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

    def information(self, data: Any) -> None:
        self._write(
            self.run.pipeline.write_information,
            clixml.to_ps(data),
            self.command,
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
            )
        )
        if raw.end_of_statement:
            out.append([])
    return [s for s in out if s]


class Shell:
    """A WSMan shell holding one PSRP runspace pool."""

    def __init__(self, service: PSRPService, shell_id: str, owner: str) -> None:
        self.service = service
        self.id = shell_id
        self.owner = owner
        self.pool = ServerRunspacePool()
        self.cond = threading.Condition()
        self.outbox: dict[uuid.UUID | None, collections.deque[bytes]] = collections.defaultdict(
            collections.deque
        )
        self.runs: dict[str, _Run] = {}
        self.retired: collections.deque[str] = collections.deque(maxlen=1024)
        self.closed = False
        self.last_used = time.monotonic()
        self._slots: threading.BoundedSemaphore | None = None

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
        if isinstance(event, SetMaxRunspacesEvent | SetMinRunspacesEvent | ResetRunspaceStateEvent):
            self.pool.runspace_availability_response(event.ci, True)
        elif isinstance(event, GetAvailableRunspacesEvent):
            busy = sum(1 for r in self.runs.values() if r.started and not r.finished)
            self.pool.runspace_availability_response(
                event.ci, max(0, self.pool.max_runspaces - busy)
            )
        elif isinstance(event, CreatePipelineEvent):
            run = self._run_for(event.pipeline_id)
            if run.pipeline.metadata is not None and run.pipeline.metadata.no_input:
                self._start(run)
        elif isinstance(event, PipelineInputEvent):
            self._run_for(event.pipeline_id).input.append(clixml.from_ps(event.data))
        elif isinstance(event, EndOfPipelineInputEvent):
            self._start(self._run_for(event.pipeline_id))
        elif isinstance(event, GetCommandMetadataEvent):
            run = self._run_for(event.pipeline_id)
            run.pipeline.start()
            self._fail(run, not_modelled("command metadata (Get-Command over remoting)"))

    def _run_for(self, pipeline_id: uuid.UUID) -> _Run:
        for run in self.runs.values():
            if run.key == pipeline_id:
                return run
        raise UnknownCommand(str(pipeline_id))

    def _fail(self, run: _Run, err: PSError) -> None:
        # psrpcore has no public way to fail a pipeline; this is the one place that
        # sets the Failed state with the error record the client will read.
        record = clixml.error_record(err, None)
        run.pipeline._change_state(PSInvocationState.Failed, error=record)
        run.finished = True
        self.flush()

    # -- pipelines -----------------------------------------------------------

    def _start(self, run: _Run) -> None:
        if run.started:
            return
        run.started = True
        run.pipeline.start()
        if self._slots is None:
            # The pool runs at most MaxRunspaces pipelines at once; the rest wait,
            # as in a real runspace pool.
            self._slots = threading.BoundedSemaphore(max(1, self.pool.max_runspaces or 1))
        run.thread = threading.Thread(
            target=self._work, args=(run,), name=f"hvsim-pipeline-{run.command_id[:8]}", daemon=True
        )
        run.thread.start()

    def _work(self, run: _Run) -> None:
        assert self._slots is not None
        with self._slots:
            label = "script"
            outputs: list[Any] = []
            error: PSError | None = None
            try:
                statements = _statements(run.pipeline.metadata)
                first = statements[0][0] if statements and statements[0] else None
                label = "script" if first is None or first.is_script else first.name
                sink = _Sink(run, label)
                piped: list[Any] | None = None if run.pipeline.metadata.no_input else run.input
                for cmds in statements:
                    sink.command = "script" if cmds[0].is_script else cmds[0].name
                    outputs.extend(
                        executor.run_pipeline(
                            self.service.world,
                            self.service.machine,
                            self.owner,
                            cmds,
                            sink,
                            input=piped,
                        )
                    )
                    piped = None
            except PSError as err:
                error = err
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

    def _write_outputs(self, run: _Run, outputs: list[Any], label: str) -> None:
        for i, value in enumerate(outputs, 1):
            if isinstance(value, PSError):
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
                if run.pipeline.state == PSInvocationState.Running:
                    run.pipeline.stop()
                    run.finished = True
                    self.flush()
                return
            # terminate: the client is done with the command.
            self._drop(run)

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
        if run.pipeline.state == PSInvocationState.Running:
            run.pipeline.stop()
        run.finished = True
        run.pipeline.close()
        self.runs.pop(run.command_id, None)
        self.outbox.pop(run.key, None)
        # Discard anything still queued for a pipeline that is gone.
        self.flush()
        self.outbox.pop(run.key, None)

    def close(self) -> None:
        with self.cond:
            for run in list(self.runs.values()):
                self._drop(run)
            self.closed = True
            if self.pool.state == RunspacePoolState.Opened:
                self.pool.close()
            self.cond.notify_all()


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

    def create(self, shell_id: str | None, owner: str, creation_xml: bytes) -> Shell:
        self._reap()
        sid = (shell_id or str(uuid.uuid4())).upper()
        shell = Shell(self, sid, owner)
        shell.create(creation_xml)
        with self.lock:
            self.shells[sid] = shell
        return shell

    def _reap(self) -> None:
        """Close shells nobody used for IdleTimeOut (clients that vanished without
        a Delete), as WinRM does."""
        now = time.monotonic()
        with self.lock:
            idle = [
                sid
                for sid, sh in self.shells.items()
                if now - sh.last_used > self.idle_timeout
                and not any(r.started and not r.finished for r in sh.runs.values())
            ]
        for sid in idle:
            log.info("closing shell %s after %.0f s idle", sid, self.idle_timeout)
            self.delete(sid)

    def get(self, shell_id: str) -> Shell | None:
        with self.lock:
            return self.shells.get(shell_id.upper())

    def delete(self, shell_id: str) -> bool:
        with self.lock:
            shell = self.shells.pop(shell_id.upper(), None)
        if shell is None:
            return False
        shell.close()
        return True

    def stop(self) -> None:
        self.stopping = True
        with self.lock:
            shells = list(self.shells.values())
            self.shells.clear()
        for shell in shells:
            shell.close()
