"""Runs a pipeline of commands against the model: the seam between wire and model.

The wire (hvsim.psrp) hands over commands as they arrived; this module binds each
one against the catalog (hvsim.bind), finds its handler (hvsim.registry), applies
the common parameters PowerShell handles for every cmdlet (-ErrorAction,
-WarningAction, -Verbose ...) and runs the handler with the world's lock held.
PowerShell Direct (hvsim.scripts) calls `run_pipeline` again with a guest as the
machine, so guests and host share one code path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from hvsim import registry
from hvsim.errors import PSError, not_modelled
from hvsim.registry import Call, Streams

log = logging.getLogger(__name__)

# Common parameters (about_CommonParameters) the executor itself honours. They are
# taken off the call before the handler sees it.
_PREFERENCES = {
    "silentlycontinue": "SilentlyContinue",
    "stop": "Stop",
    "continue": "Continue",
    "inquire": "Inquire",
    "ignore": "Ignore",
    "suspend": "Suspend",
}
# System.Management.Automation.ActionPreference values, for callers that send the enum.
_PREFERENCE_NUMBERS = {
    0: "SilentlyContinue",
    1: "Stop",
    2: "Continue",
    3: "Inquire",
    4: "Ignore",
    5: "Suspend",
}
_ACCEPTED_COMMON = {
    "erroraction",
    "warningaction",
    "informationaction",
    "verbose",
    "debug",
    "errorvariable",
    "warningvariable",
    "informationvariable",
    "outvariable",
    "outbuffer",
    "pipelinevariable",
    "confirm",
}
_MODULE_LOCK = threading.Lock()
# Verbs of cmdlets that only read (the Approved Verbs' Common/Data/Diagnostic reads):
# a call of any other verb may change the world.
READ_VERBS = frozenset({"get", "test", "measure", "select", "where", "sort", "resolve", "compare"})


def _reads_only(script: str) -> bool:
    """The PowerShell Direct command wrapper changes nothing itself: the cmdlet it runs
    inside the guest is counted on its own. Every other script may change the world."""
    from hvsim import scripts

    known = scripts.find(script, "host")
    return known is not None and known.file.endswith("Invoke-GuestCommand.ps1")


def _pass_through() -> tuple[type[BaseException], ...]:
    from hvsim.faults import DropConnection

    return (DropConnection,)


_PASS_THROUGH = _pass_through()


@dataclasses.dataclass
class Command:
    """One command of a pipeline as it came off the wire (values already plain)."""

    name: str
    args: list[tuple[str | None, Any]] = dataclasses.field(default_factory=list)
    is_script: bool = False
    # PowerShell's stream merging (2>&1 and friends); True merges errors into output.
    merge_error_to_output: bool = False
    # A script's UseLocalScope: False runs it in the runspace's global scope, so
    # its assignments outlive the pipeline (hvsim.pwsh_run).
    use_local_scope: bool | None = None


def _preference(value: Any, parameter: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value in _PREFERENCE_NUMBERS:
        return _PREFERENCE_NUMBERS[value]
    text = str(getattr(value, "name", value)).lower()
    if text in _PREFERENCES:
        return _PREFERENCES[text]
    raise PSError(
        f"Cannot bind parameter '{parameter}'. Cannot convert value \"{value}\" to type "
        '"System.Management.Automation.ActionPreference". Error: "Unable to match the '
        "identifier name "
        f"{value} to a valid enumerator name. Specify one of the following enumerator names "
        'and try again:\nSilentlyContinue, Stop, Continue, Inquire, Ignore, Suspend"',
        fqid="CannotConvertArgumentNoMessage,Microsoft.PowerShell.Commands.InvokeCommand",
        category="InvalidArgument",
        exception="System.Management.Automation.ParameterBindingException",
    )


@dataclasses.dataclass
class _Common:
    error_action: str = "Continue"
    warning_action: str = "Continue"
    information_action: str = "Continue"
    verbose: bool = False
    debug: bool = False


def _take_common(call: Call, entry: registry.Entry) -> _Common:
    """Remove the common parameters from `call` and say how to apply them."""
    common = _Common()
    allowed = {p.lower() for p in entry.params} if entry.params is not None else None
    for name in list(call.params):
        key = name.lower()
        if key == "whatif":
            # WhatIf is only honoured where the model says it is (R-xx are per cmdlet).
            if allowed is None or key not in allowed:
                raise not_modelled(f"-WhatIf on {call.name}")
            continue
        if key not in _ACCEPTED_COMMON:
            continue
        if key == "confirm" and allowed is not None and key in allowed:
            # A handler that models the cmdlet's confirmation prompt reads -Confirm.
            continue
        value = call.params.pop(name)
        if key == "erroraction":
            common.error_action = _preference(value, name)
        elif key == "warningaction":
            common.warning_action = _preference(value, name)
        elif key == "informationaction":
            common.information_action = _preference(value, name)
        elif key == "verbose":
            common.verbose = value is None or bool(value)
        elif key == "debug":
            common.debug = value is None or bool(value)
        # Confirm:$false, OutBuffer and the *Variable parameters change nothing a
        # remote caller can observe here; they are accepted and dropped.
    for pref in (common.error_action, common.warning_action, common.information_action):
        if pref in ("Inquire", "Suspend"):
            raise not_modelled(f"ActionPreference {pref} on {call.name}")
    if allowed is not None:
        extra = [n for n in call.params if n.lower() not in allowed]
        if extra:
            raise not_modelled(f"parameter -{extra[0]} of {call.name}")
    return common


class _Lock:
    """The world's lock, released while modelled time passes (ctx.work)."""

    def __init__(self, world: Any) -> None:
        lock = getattr(world, "lock", None) if world is not None else None
        self.lock: Any = lock if lock is not None else _MODULE_LOCK
        self.world = world if lock is not None else None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        # The guest wrapper runs a nested pipeline from inside a handler that
        # already holds the lock; an RLock lets it re-enter, a plain Lock must not
        # be taken twice by the same thread.
        if _owned(self.lock):
            yield
            return
        with self.lock:
            _OWNER.held = [*getattr(_OWNER, "held", []), id(self.lock)]
            try:
                yield
            finally:
                _OWNER.held = _OWNER.held[:-1]

    @contextlib.contextmanager
    def released(self) -> Iterator[None]:
        if not _owned(self.lock):
            yield
            return
        stack = _OWNER.held
        _OWNER.held = [i for i in stack if i != id(self.lock)]
        world = self.world
        if world is not None:
            world.busy = getattr(world, "busy", 0) + 1
        self.lock.release()
        try:
            yield
        finally:
            self.lock.acquire()
            if world is not None:
                world.busy -= 1
            _OWNER.held = stack


_OWNER = threading.local()


def _owned(lock: Any) -> bool:
    return id(lock) in getattr(_OWNER, "held", [])


class Context:
    """What a handler sees (implements hvsim.registry.Context)."""

    def __init__(
        self,
        world: Any,
        machine: Any,
        user: str,
        input: list[Any],
        sink: Streams,
        common: _Common,
        command: str,
        lock: _Lock,
    ) -> None:
        self.world = world
        self.machine = machine
        self.user = user
        self.input = input
        self.command = command
        self._sink = sink
        self._common = common
        self._lock = lock

    def error(self, err: PSError) -> None:
        """A non-terminating error, handled as -ErrorAction says."""
        if err.activity is None:
            # CategoryInfo.Activity names the cmdlet that wrote the record.
            err.activity = self.command
        action = self._common.error_action
        if action == "Stop":
            raise err
        if action in ("SilentlyContinue", "Ignore"):
            return
        self._sink.error(err)

    def warning(self, text: str) -> None:
        if self._common.warning_action == "Stop":
            raise PSError(
                "The running command stopped because the preference variable "
                '"WarningPreference" or common parameter is set to Stop: ' + text,
                fqid="ActionPreferenceStop",
                category="OperationStopped",
                exception="System.Management.Automation.ActionPreferenceStopException",
            )
        if self._common.warning_action in ("SilentlyContinue", "Ignore"):
            return
        self._sink.warning(text)

    def verbose(self, text: str) -> None:
        # $VerbosePreference defaults to SilentlyContinue: only -Verbose shows them.
        if self._common.verbose:
            self._sink.verbose(text)

    def information(self, data: Any) -> None:
        if self._common.information_action == "Ignore":
            return
        self._sink.information(data)

    def progress(self, activity: str, status: str, percent: int = -1) -> None:
        self._sink.progress(activity, status, percent)

    def work(self, seconds: float, what: str) -> None:
        clock = getattr(self.world, "clock", None)
        if clock is None:
            return
        log.debug("%s: %s takes %.1f modelled s", self.command, what, seconds)
        with self._lock.released():
            clock.sleep(seconds)


class Forward:
    """Streams that pass warnings, verbose, information and progress on to `outer`
    and hand errors to `on_error` (collect them, or raise them)."""

    def __init__(self, outer: Streams, on_error: Callable[[PSError], None]) -> None:
        self._outer = outer
        self._on_error = on_error

    def error(self, err: PSError) -> None:
        self._on_error(err)

    def warning(self, text: str) -> None:
        self._outer.warning(text)

    def verbose(self, text: str) -> None:
        self._outer.verbose(text)

    def information(self, data: Any) -> None:
        self._outer.information(data)

    def progress(self, activity: str, status: str, percent: int = -1) -> None:
        self._outer.progress(activity, status, percent)


def raise_error(err: PSError) -> None:
    """Errors of a block that runs with $ErrorActionPreference = 'Stop' end it."""
    raise err


class Nested(Forward):
    """A context for model work done on behalf of another one, on another machine
    (a node, a guest) or as another user: its errors are terminating, its other
    streams and its modelled time are the outer context's."""

    def __init__(self, outer: Any, machine: Any, user: str | None = None) -> None:
        super().__init__(outer, raise_error)
        self.world = outer.world
        self.machine = machine
        self.user = outer.user if user is None else user
        self.input: list[Any] = []

    def work(self, seconds: float, what: str) -> None:
        self._outer.work(seconds, what)


def _bind(name: str, args: list[tuple[str | None, Any]], piped: list[Any] | None) -> Call:
    from hvsim import bind

    # With input, each object binds by type or property name (hvsim.bind_pipeline).
    return bind.bind(name, args, piped is not None, piped)


def _runs(call: Call, entry: registry.Entry, piped: list[Any] | None) -> list[Any]:
    """Handler runs (PipelineRun) and per-object binding errors (PSError), in input
    order. Without input, one run of the call as bound."""
    from hvsim.bind_pipeline import PipelineCall, PipelineRun

    if isinstance(call, PipelineCall):
        return call.runs(keep=entry.params)
    return [PipelineRun(call, piped or [])]


def _script_params(args: list[tuple[str | None, Any]]) -> tuple[dict[str, Any], list[Any]]:
    named: dict[str, Any] = {}
    positional: list[Any] = []
    for name, value in args:
        if name is None:
            positional.append(value)
        else:
            named[name.lstrip("-")] = value
    return named, positional


def _run_script(ctx: Context, cmd: Command) -> Iterable[Any] | None:
    from hvsim import filetransfer, scripts

    named, positional = _script_params(cmd.args)
    transfer = filetransfer.find(cmd.name)
    if transfer is not None:
        return transfer(ctx, positional)
    if positional:
        # The known scripts take named parameters only (param blocks, add_parameter).
        raise not_modelled("positional arguments to a script")
    return scripts.run_script(ctx, cmd.name, named)


def _run_one(
    world: Any,
    machine: Any,
    user: str,
    cmd: Command,
    piped: list[Any] | None,
    sink: Streams,
    lock: _Lock,
) -> list[Any]:
    out: list[Any] = []
    stream: Streams = Forward(sink, out.append) if cmd.merge_error_to_output else sink
    if cmd.is_script:
        ctx = Context(world, machine, user, piped or [], stream, _Common(), "script", lock)
        with lock.held():
            if world is not None and not _reads_only(cmd.name):
                world.revision = getattr(world, "revision", 0) + 1
            result = _run_script(ctx, cmd)
            if result is not None:
                out.extend(result)
        return out
    call = _bind(cmd.name, cmd.args, piped)
    entry = registry.lookup(call.name)
    if entry is None:
        raise not_modelled(f"the cmdlet {call.name}")
    common = _take_common(call, entry)
    ctx = Context(world, machine, user, piped or [], stream, common, call.name, lock)
    # A PSError the handler raises is terminating: -ErrorAction does not hide it.
    try:
        _call_handler(world, ctx, call, entry, piped, out, lock)
    except PSError as err:
        if err.activity is None:
            err.activity = call.name
        raise
    return out


def _call_handler(
    world: Any,
    ctx: Context,
    call: Call,
    entry: registry.Entry,
    piped: list[Any] | None,
    out: list[Any],
    lock: _Lock,
) -> None:
    with lock.held():
        faults = getattr(world, "faults", None)
        if faults is not None:
            # Seeded fault injection (hvsim.faults): a PSError, or DropConnection
            # which the transport turns into a cut connection.
            faults.check(ctx, call)
        if world is not None and call.name.split("-", 1)[0].lower() not in READ_VERBS:
            # The world may change from here on: the journal saves it after the pipeline.
            world.revision = getattr(world, "revision", 0) + 1
        for run in _runs(call, entry, piped):
            if isinstance(run, PSError):
                # An input object that bound nothing, or failed binding: written
                # for that object (non-terminating), the others go on.
                ctx.error(run)
                continue
            # A run's input: the objects whose bound values are in run.call (all of
            # the previous command's output unless objects failed or differed).
            ctx.input = run.inputs
            result = entry.handler(ctx, run.call)
            if result is not None:
                # Handlers may be generators: drain them while the lock is held.
                out.extend(result)
        if faults is not None:
            # The call has run; a "lost" fault cuts the connection before its answer.
            faults.after(ctx, call)


def run_pipeline(
    world: Any,
    machine: Any,
    user: str,
    commands: list[Command],
    streams: Streams,
    input: list[Any] | None = None,
) -> list[Any]:
    """Run `commands` as one pipeline; return the last command's output.

    A raised PSError is terminating and fails the pipeline (the caller reports
    it). Any other exception from a handler becomes an ErrorRecord with FQID
    hvsim.InternalError, so a model bug never takes the server down.
    """
    lock = _Lock(world)
    piped: list[Any] | None = input
    for cmd in commands:
        try:
            piped = _run_one(world, machine, user, cmd, piped, streams, lock)
        except PSError:
            raise
        except _PASS_THROUGH:
            raise
        except Exception as exc:  # the model's bug must not end the connection
            log.exception("handler for %s failed", cmd.name if not cmd.is_script else "script")
            raise internal_error(cmd, exc) from exc
    return piped or []


def internal_error(cmd: Command, exc: BaseException) -> PSError:
    what = "a script" if cmd.is_script else cmd.name
    return PSError(
        f"hvsim failed inside {what}: {type(exc).__name__}: {exc}",
        fqid="hvsim.InternalError",
        category="NotSpecified",
        exception="System.InvalidOperationException",
    )


# The guest wrapper (PowerShell Direct) runs cmdlets inside a guest with the same
# rules: same binding, same streams, same lock.
run_in_machine = run_pipeline
