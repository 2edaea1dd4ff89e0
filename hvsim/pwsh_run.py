"""Runs the small PowerShell subset (hvsim.pwsh_parse) that clients send.

What runs: literals, arrays and hashtables, variables in the pool's session
(`$x = ...`, `$global:x`, `$env:X`, `$args`, `$input`, `$_`, `$PSSenderInfo`),
operators, strings with `$var` and `$(...)`, `[PSCustomObject]` and simple
casts, if/while/throw/return, scripts with param() and begin/process/end
blocks, and pipelines whose commands are either utility cmdlets implemented
here (hvsim.pwsh_utility: Write-Output, Set-Variable, Select-Object,
ConvertTo-SecureString, Start-Sleep ...) or cmdlets the model implements,
which run through the same binder and model as structured calls
(hvsim.executor). Anything else fails as "not modelled", naming the construct.

Not modelled on purpose: host UI calls ($Host.UI...), user events
($Host.Runspace.Events), .NET calls beyond a few static members, functions,
try/catch, loops other than while, redirection and splatting.

Errors follow about_Throw and about_Preference_Variables: a cmdlet's error ends
its statement and is written to the error stream, the script goes on; `throw`,
a "not modelled" refusal and any error under $ErrorActionPreference = 'Stop'
end the script and fail the pipeline.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from hvsim import executor, objects
from hvsim import pwsh_parse as P
from hvsim import pwsh_values as V
from hvsim.errors import PSError, not_modelled


class Stopped(Exception):
    """The pipeline was stopped (Signal) while a script ran."""


class Terminating(Exception):
    """An error that ends the whole script (throw, Stop, not modelled)."""

    def __init__(self, error: PSError) -> None:
        super().__init__(error.message)
        self.error = error


class _Return(Exception):
    def __init__(self, values: list[Any]) -> None:
        super().__init__("return")
        self.values = values


PREFERENCES = {
    "erroractionpreference": "Continue",
    "warningpreference": "Continue",
    "verbosepreference": "SilentlyContinue",
    "debugpreference": "SilentlyContinue",
    "informationpreference": "SilentlyContinue",
    "progresspreference": "Continue",
}


class Session:
    """A runspace's state that outlives one pipeline: global variables, the
    environment. RESET_RUNSPACE_STATE ([MS-PSRP] 2.2.2.30) puts it back."""

    def __init__(
        self, owner: str, computer: str, application_arguments: Any, machine: Any = None
    ) -> None:
        self.machine = machine
        self.owner = owner
        self.computer = computer
        self.application_arguments = application_arguments or {}
        self.lock = threading.RLock()
        self.first_pipeline = True
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.globals: dict[str, tuple[str, Any]] = {}
            # Engine event subscriptions: source identifier -> forwarded to the client.
            self.event_forward: dict[str, bool] = {}
            for name, value in PREFERENCES.items():
                self.globals[name] = (_PREF_NAMES[name], value)
            user = self.owner.rsplit("\\", 1)[-1].split("@", 1)[0] or "Administrator"
            self.user_name = user
            self.env: dict[str, tuple[str, str]] = {
                k.lower(): (k, v)
                for k, v in {
                    "COMPUTERNAME": self.computer,
                    "USERNAME": user,
                    "USERPROFILE": f"C:\\Users\\{user}",
                    "TEMP": f"C:\\Users\\{user}\\AppData\\Local\\Temp",
                    "TMP": f"C:\\Users\\{user}\\AppData\\Local\\Temp",
                    "SystemRoot": "C:\\Windows",
                    "windir": "C:\\Windows",
                    "SystemDrive": "C:",
                    "ProgramData": "C:\\ProgramData",
                    "ProgramFiles": "C:\\Program Files",
                }.items()
            }

    def sender_info(self) -> objects.PSObj:
        return objects.PSObj(
            ["System.Management.Automation.Remoting.PSSenderInfo", "System.Object"],
            {
                "ApplicationArguments": dict(self.application_arguments),
                "ConnectedUser": self.owner,
                "RunAsUser": None,
                "ConfigurationName": "Microsoft.PowerShell",
            },
            "System.Management.Automation.Remoting.PSSenderInfo",
        )


_PREF_NAMES = {
    "erroractionpreference": "ErrorActionPreference",
    "warningpreference": "WarningPreference",
    "verbosepreference": "VerbosePreference",
    "debugpreference": "DebugPreference",
    "informationpreference": "InformationPreference",
    "progresspreference": "ProgressPreference",
}


@dataclasses.dataclass
class Host:
    """What a script runs against: the model, the streams, the session, its input."""

    world: Any
    machine: Any
    user: str
    sink: Any  # hvsim.psrp._Sink: output() and the other streams
    session: Session
    input: Iterator[Any] | None  # None: the pipeline takes no input
    stop: threading.Event


class Scope:
    """Variables of one script invocation; lookups fall back to the session's."""

    def __init__(self, session: Session, local: bool) -> None:
        self.session = session
        self.vars: dict[str, tuple[str, Any]] = {} if local else session.globals

    def get(self, var: P.Var) -> Any:
        key = var.name.lower()
        if var.scope == "env":
            hit = self.session.env.get(key)
            return hit[1] if hit else None
        if var.scope == "global":
            hit = self.session.globals.get(key)
            return hit[1] if hit else None
        if key in self.vars:
            return self.vars[key][1]
        hit = self.session.globals.get(key)
        if hit is not None:
            return hit[1]
        return _automatic(self, key)

    def has(self, name: str) -> bool:
        key = name.lower()
        return key in self.vars or key in self.session.globals

    def set(self, var: P.Var, value: Any) -> None:
        key = var.name.lower()
        if key in _READ_ONLY:
            raise PSError(
                f"Cannot overwrite variable {var.name} because it is read-only or constant.",
                fqid="VariableNotWritable",
                category="WriteError",
                exception="System.Management.Automation.SessionStateUnauthorizedAccessException",
                target=var.name,
            )
        if var.scope == "env":
            if value is None or value == "":
                self.session.env.pop(key, None)
            else:
                self.session.env[key] = (var.name, V.to_str(value))
            return
        table = self.session.globals if var.scope == "global" else self.vars
        table[key] = (var.name, value)

    def preference(self, name: str) -> str:
        value = self.get(P.Var(name))
        return str(getattr(value, "name", value) or "Continue")


class HostProxy:
    """$Host of a remote session (ServerRemoteHost): its UI calls go to the
    client's host as host calls; Runspace.Events forwards engine events."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get_member(self, name: str) -> Any:
        key = name.lower()
        if key == "ui":
            return _HostUI()
        if key == "name":
            return "ServerRemoteHost"
        if key == "runspace":
            return _Runspace(self.session)
        raise not_modelled(f"$Host.{name}")


# PSHostUserInterface methods by (name, argument count) -> HostMethodIdentifier
# ([MS-PSRP] 2.2.3.17).
_UI_METHODS = {
    ("writeline", 0): "WriteLine1",
    ("writeline", 1): "WriteLine2",
    ("writeline", 3): "WriteLine3",
    ("write", 1): "Write1",
    ("write", 3): "Write2",
    ("readline", 0): "ReadLine",
    ("readlineassecurestring", 0): "ReadLineAsSecureString",
    ("writeerrorline", 1): "WriteErrorLine",
    ("writedebugline", 1): "WriteDebugLine",
    ("writeverboseline", 1): "WriteVerboseLine",
    ("writewarningline", 1): "WriteWarningLine",
}


class _HostUI:
    def get_member(self, name: str) -> Any:
        raise not_modelled(f"$Host.UI.{name}")

    def call_method(self, runner: Runner, name: str, args: list[Any]) -> Any:
        from psrpcore.types import HostMethodIdentifier

        method = _UI_METHODS.get((name.lower(), len(args)))
        if method is None:
            raise not_modelled(f"$Host.UI.{name}() with {len(args)} argument(s)")
        result = runner.host.sink.host_call(method, list(args))
        return V.VOID if HostMethodIdentifier[method].is_void() else result


class _Runspace:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_member(self, name: str) -> Any:
        if name.lower() == "events":
            return _Events(self.session)
        raise not_modelled(f"$Host.Runspace.{name}")


class _Events:
    """PSEventManager: SubscribeEvent with forward=$true makes GenerateEvent send
    a USER_EVENT to the client ([MS-PSRP] 2.2.2.12)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get_member(self, name: str) -> Any:
        raise not_modelled(f"$Host.Runspace.Events.{name}")

    def call_method(self, runner: Runner, name: str, args: list[Any]) -> Any:
        key = name.lower()
        if key == "subscribeevent" and len(args) >= 3:
            source = V.to_str(args[2]).lower()
            self.session.event_forward[source] = len(args) >= 7 and V.truthy(args[6])
            return V.VOID
        if key == "generateevent" and len(args) == 4:
            source = V.to_str(args[0])
            if self.session.event_forward.get(source.lower()):
                event_args = args[2] if isinstance(args[2], list) else [args[2]]
                runner.host.sink.user_event(source, args[1], event_args, args[3])
            return V.VOID
        raise not_modelled(f"$Host.Runspace.Events.{name}()")


_READ_ONLY = {"true", "false", "null", "host", "pssenderinfo", "pid", "psversiontable", "home"}


def _automatic(scope: Scope, key: str) -> Any:
    if key == "true":
        return True
    if key == "false":
        return False
    if key == "null":
        return None
    if key == "pssenderinfo":
        return scope.session.sender_info()
    if key == "home":
        return f"C:\\Users\\{scope.session.user_name}"
    if key == "host":
        return HostProxy(scope.session)
    if key == "psversiontable":
        return {
            "PSVersion": "5.1.20348.2849",
            "PSEdition": "Desktop",
            "PSRemotingProtocolVersion": "2.3",
            "SerializationVersion": "1.1.0.1",
        }
    return None


# ------------------------------------------------------------------ entry points


def is_utility(name: str) -> bool:
    """Is `name` (or its alias) a cmdlet this module implements?"""
    from hvsim import pwsh_utility

    return pwsh_utility.lookup(name) is not None


def run(statements: list[list[executor.Command]], host: Host) -> None:
    """Run the wire pipeline's statements; output goes to host.sink as it comes."""

    runner = Runner(host)
    if host.session.first_pipeline:
        host.session.first_pipeline = False
        # Windows PowerShell's first command in a new runspace reports module
        # loading as a progress record (pypsrp's tests drop it: "WSMan always adds
        # another progress record"). Modelled: one such record per pool.
        host.sink.progress("Preparing modules for first use.", " ", -1)
    first_input: Iterator[Any] | None = host.input
    for cmds in statements:
        values: Iterable[Any] | None = first_input
        first_input = None
        for i, cmd in enumerate(cmds):
            last = i == len(cmds) - 1
            emit = runner.emit if last else None
            values = runner.wire_command(cmd, values, emit)
        if values is not None:
            for value in values:
                runner.emit(value)


class Runner:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.session = host.session

    # -- output ----------------------------------------------------------------

    def emit(self, value: Any) -> None:
        self.check_stop()
        self.host.sink.output(value)

    def check_stop(self) -> None:
        if self.host.stop.is_set():
            raise Stopped()

    # -- commands from the wire ------------------------------------------------

    def wire_command(
        self, cmd: executor.Command, values: Iterable[Any] | None, emit: Any
    ) -> list[Any] | None:
        """One command of a wire pipeline. Returns its output as a list when it
        is not the last command (emit is None); otherwise streams it."""
        out: list[Any] = []
        sink: Callable[[Any], None] = emit if emit is not None else out.append
        if cmd.is_script:
            try:
                script = P.parse(cmd.name)
            except P.Unsupported as exc:
                raise not_modelled(f"{exc.construct} (in a script)") from None
            except P.ParseError as exc:
                raise PSError(
                    str(exc),
                    fqid="ParseException",
                    category="ParserError",
                    exception="System.Management.Automation.ParseException",
                ) from None
            local = getattr(cmd, "use_local_scope", None) is not False
            try:
                self.invoke_script(script, cmd.args, values, sink, Scope(self.session, local))
            except Terminating as exc:
                raise exc.error from None
            return None if emit is not None else out
        inputs = None if values is None else list(values)
        self.invoke(
            cmd.name,
            cmd.args,
            inputs,
            sink,
            Scope(self.session, False),
            wire=True,
            merge=cmd.merge_error_to_output,
        )
        return None if emit is not None else out

    # -- scripts ---------------------------------------------------------------

    def invoke_script(
        self,
        script: P.Script,
        args: list[tuple[str | None, Any]],
        values: Iterable[Any] | None,
        emit: Callable[[Any], None],
        scope: Scope,
    ) -> None:
        positional = self.bind_script(script, args, scope)
        scope.vars["args"] = ("args", positional)
        piped = [p for p in script.params if p.from_pipeline]
        try:
            if script.begin is not None:
                self.block(script.begin, scope, emit)
            if script.process is not None:
                items: Iterable[Any] = values if values is not None else [None]
                for item in items:
                    self.check_stop()
                    scope.vars["_"] = ("_", item)
                    scope.vars["psitem"] = ("PSItem", item)
                    for p in piped:
                        scope.vars[p.name.lower()] = (p.name, item)
                    self.block(script.process, scope, emit)
            elif values is not None:
                # $input enumerates the input as it arrives: the body runs at once
                # and blocks only where it reads $input (a pipeline's input still
                # streams in from the client meanwhile).
                scope.vars["input"] = ("input", LiveInput(values))
            if script.end is not None:
                if script.process is not None:
                    scope.vars["input"] = ("input", [])
                self.block(script.end, scope, emit)
        except _Return as ret:
            for value in ret.values:
                emit(value)

    def bind_script(
        self, script: P.Script, args: list[tuple[str | None, Any]], scope: Scope
    ) -> list[Any]:
        """param() binding: named by (prefix of) name, then positional in order.
        Returns what is left for $args."""
        bound: dict[str, Any] = {}
        positional: list[Any] = []
        for name, value in args:
            if name is None:
                positional.append(value)
                continue
            key = name.lstrip("-").lower()
            matches = [p for p in script.params if p.name.lower().startswith(key)]
            exact = [p for p in matches if p.name.lower() == key]
            matches = exact or matches
            if len(matches) == 1:
                p = matches[0]
                is_switch = (p.type_name or "").lower() in ("switch", "switchparameter")
                bound[p.name] = (value is None or bool(value)) if is_switch else value
            elif key in ("verbose", "debug", "erroraction", "warningaction", "informationaction"):
                self._script_common(key, value, scope)
            else:
                raise PSError(
                    f"A parameter cannot be found that matches parameter name '{name}'.",
                    fqid="NamedParameterNotFound",
                    category="InvalidArgument",
                    exception="System.Management.Automation.ParameterBindingException",
                )
        for p in script.params:
            if p.name in bound:
                continue
            if positional and not p.from_pipeline:
                bound[p.name] = positional.pop(0)
        for p in script.params:
            if p.name in bound:
                value = bound[p.name]
            elif (p.type_name or "").lower() in ("switch", "switchparameter"):
                value = False
            elif p.default is not None:
                value = self.value(p.default, scope)
            else:
                value = None
            if p.type_name and value is not None:
                value = V.cast(p.type_name, value)
            scope.vars[p.name.lower()] = (p.name, value)
        return positional

    def _script_common(self, key: str, value: Any, scope: Scope) -> None:
        if key == "verbose":
            scope.vars["verbosepreference"] = (
                "VerbosePreference",
                "Continue" if value is None or value else "SilentlyContinue",
            )
        elif key == "debug":
            scope.vars["debugpreference"] = (
                "DebugPreference",
                "Continue" if value is None or value else "SilentlyContinue",
            )
        else:
            name = {
                "erroraction": "ErrorActionPreference",
                "warningaction": "WarningPreference",
                "informationaction": "InformationPreference",
            }[key]
            scope.vars[name.lower()] = (name, str(getattr(value, "name", value)))

    # -- statements ------------------------------------------------------------

    def block(self, statements: list[Any], scope: Scope, emit: Callable[[Any], None]) -> None:
        for stmt in statements:
            self.check_stop()
            try:
                self.statement(stmt, scope, emit)
            except PSError as err:
                if err.fqid == "NotModelled,hvsim":
                    raise Terminating(err) from None
                if scope.preference("ErrorActionPreference").lower() == "stop":
                    raise Terminating(err) from None
                # A statement-terminating error: written, and the script goes on.
                self.host.sink.error(err)

    def statement(self, stmt: Any, scope: Scope, emit: Callable[[Any], None]) -> None:
        if isinstance(stmt, P.Pipeline):
            self.pipeline(stmt, scope, emit)
        elif isinstance(stmt, P.Assign):
            self.assign(stmt, scope)
        elif isinstance(stmt, P.If):
            for cond, body in stmt.clauses:
                if V.truthy(self.collect(cond, scope)):
                    self.block(body, scope, emit)
                    return
            if stmt.otherwise is not None:
                self.block(stmt.otherwise, scope, emit)
        elif isinstance(stmt, P.While):
            while V.truthy(self.collect(stmt.condition, scope)):
                self.check_stop()
                self.block(stmt.body, scope, emit)
        elif isinstance(stmt, P.Throw):
            raise Terminating(self.thrown(stmt, scope))
        elif isinstance(stmt, P.Return):
            values = [] if stmt.value is None else _enumerate(self.collect(stmt.value, scope))
            raise _Return(values)
        else:
            raise not_modelled(f"the statement {type(stmt).__name__}")

    def thrown(self, stmt: P.Throw, scope: Scope) -> PSError:
        value = None if stmt.value is None else self.collect(stmt.value, scope)
        if isinstance(value, PSError):
            return value
        text = "ScriptHalted" if value is None else V.to_str(value)
        return PSError(
            text,
            fqid=text,
            category="OperationStopped",
            exception="System.Management.Automation.RuntimeException",
            target=value,
        )

    def collect(self, stmt: Any, scope: Scope) -> Any:
        """A statement's output as a value: nothing -> None, one -> it, more -> a list."""
        out: list[Any] = []
        if (
            isinstance(stmt, P.Pipeline)
            and len(stmt.elements) == 1
            and not isinstance(stmt.elements[0], P.Command)
        ):
            return self.value(stmt.elements[0], scope)
        self.statement(stmt, scope, out.append)
        if not out:
            return None
        return out[0] if len(out) == 1 else out

    def assign(self, stmt: P.Assign, scope: Scope) -> None:
        if stmt.op in ("++", "--"):
            current = self.value(stmt.target, scope)
            new = V.binary("+" if stmt.op == "++" else "-", current, 1)
        else:
            value = self.collect(stmt.value, scope)
            if stmt.op == "=":
                new = value
            else:
                new = V.binary(stmt.op[0], self.value(stmt.target, scope), value)
        if new is V.VOID:
            new = None
        target = stmt.target
        if isinstance(target, P.Var):
            if target.name.lower() == "null" and not target.scope:
                return  # $null = ... discards
            scope.set(target, new)
        elif isinstance(target, P.Member):
            obj = self.value(target.target, scope)
            V.set_member(obj, target.name, new)
        elif isinstance(target, P.Index):
            obj = self.value(target.target, scope)
            V.set_index(obj, self.value(target.index, scope), new)

    def pipeline(self, stmt: P.Pipeline, scope: Scope, emit: Callable[[Any], None]) -> None:
        elements = stmt.elements
        values: list[Any] | None = None
        for i, element in enumerate(elements):
            last = i == len(elements) - 1
            if isinstance(element, P.Command):
                out: list[Any] = []
                args = _pair_arguments(
                    element.name,
                    [
                        (a.name, None if a.value is None else self.value(a.value, scope), a.colon)
                        for a in element.args
                    ],
                )
                self.invoke(element.name, args, values, emit if last else out.append, scope)
                values = out
            else:
                value = self.value(element, scope)
                values = _enumerate(value)
                if last:
                    for v in values:
                        emit(v)

    # -- commands --------------------------------------------------------------

    def invoke(
        self,
        name: str,
        args: list[tuple[str | None, Any]],
        inputs: list[Any] | None,
        emit: Callable[[Any], None],
        scope: Scope,
        *,
        wire: bool = False,
        merge: bool = False,
    ) -> None:
        from hvsim import bind, pwsh_utility, registry

        self.check_stop()
        env = pwsh_utility.env_item(name, args)
        if env is not None:
            scope.set(P.Var(env[0], "env"), env[1])
            emit(
                objects.PSObj(
                    ["System.Collections.DictionaryEntry", "System.ValueType", "System.Object"],
                    {"Name": env[0], "Key": env[0], "Value": env[1]},
                    env[1],
                )
            )
            return
        cmd = bind.resolve_command(name)  # raises "not recognized"
        if registry.lookup(cmd.name) is None:
            # The model's cmdlets come first; utilities fill in what it lacks.
            utility = pwsh_utility.lookup(cmd.name)
            if utility is None:
                raise not_modelled(f"the cmdlet {cmd.name}")
            pwsh_utility.call(utility, self, scope, args, inputs, emit)
            return
        given = {(n or "").lower() for n, _ in args}
        args = list(args)
        # The script's preference variables apply to the cmdlets it calls
        # (about_Preference_Variables) unless the call names the common parameter.
        for param, variable in (
            ("ErrorAction", "ErrorActionPreference"),
            ("WarningAction", "WarningPreference"),
        ):
            pref = scope.preference(variable)
            if param.lower() not in given and pref.lower() != "continue":
                args.append((param, pref))
        if "verbose" not in given and scope.preference("VerbosePreference").lower() == "continue":
            args.append(("Verbose", True))
        command = executor.Command(cmd.name, args, merge_error_to_output=merge)
        outputs = executor.run_pipeline(
            self.host.world,
            self.host.machine,
            self.host.user,
            [command],
            self.host.sink,
            input=inputs,
        )
        for value in outputs:
            emit(value)

    # -- expressions -----------------------------------------------------------

    def value(self, node: Any, scope: Scope) -> Any:
        if isinstance(node, P.Const):
            return node.value
        if isinstance(node, P.Var):
            return scope.get(node)
        if isinstance(node, P.Expandable):
            return "".join(
                part if isinstance(part, str) else V.to_str(self.value(part, scope))
                for part in node.parts
            )
        if isinstance(node, P.ArrayLit):
            return [self.value(item, scope) for item in node.items]
        if isinstance(node, P.HashLit):
            table: dict[Any, Any] = {}
            for key, stmt in node.pairs:
                table[self.value(key, scope)] = self.collect(stmt, scope)
            return table
        if isinstance(node, P.SubExpr):
            out: list[Any] = []
            for stmt in node.body:
                if isinstance(stmt, P.Assign):
                    self.assign(stmt, scope)
                else:
                    self.statement(stmt, scope, out.append)
            if node.array:
                return out
            if len(node.body) == 1 and isinstance(node.body[0], P.Pipeline):
                inner = node.body[0]
                if len(inner.elements) == 1 and not isinstance(inner.elements[0], P.Command):
                    return self.value(inner.elements[0], scope)
            if not out:
                return None
            return out[0] if len(out) == 1 else out
        if isinstance(node, P.Unary):
            return V.unary(node.op, self.value(node.operand, scope))
        if isinstance(node, P.Binary):
            if node.op == "and":
                return V.truthy(self.value(node.left, scope)) and V.truthy(
                    self.value(node.right, scope)
                )
            if node.op == "or":
                return V.truthy(self.value(node.left, scope)) or V.truthy(
                    self.value(node.right, scope)
                )
            return V.binary(node.op, self.value(node.left, scope), self.value(node.right, scope))
        if isinstance(node, P.Member):
            if node.static:
                if not isinstance(node.target, P.TypeLit):
                    raise not_modelled("static members of a value that is not a type")
                args = [self.value(a, scope) for a in node.args or []]
                return V.static(
                    node.target.type_name, node.name, node.args is not None, args, self.session
                )
            target = self.value(node.target, scope)
            if node.args is not None:
                args = [self.value(a, scope) for a in node.args]
                if hasattr(target, "call_method"):
                    return target.call_method(self, node.name, args)
                return V.method(target, node.name, args)
            if hasattr(target, "get_member"):
                return target.get_member(node.name)
            return V.member(target, node.name)
        if isinstance(node, P.Index):
            return V.index(self.value(node.target, scope), self.value(node.index, scope))
        if isinstance(node, P.Cast):
            return V.cast(node.type_name, self.value(node.operand, scope))
        if isinstance(node, P.TypeLit):
            raise not_modelled(f"the type literal [{node.type_name}] as a value")
        if isinstance(node, P.ScriptBlockLit):
            return V.Block(node.text, node.script)
        raise not_modelled(f"the expression {type(node).__name__}")

    def run_block(self, block: V.Block, item: Any, scope: Scope) -> list[Any]:
        """A script block argument (ForEach-Object, Where-Object) for one object."""
        inner = Scope(self.session, True)
        inner.vars = dict(scope.vars)
        inner.vars["_"] = ("_", item)
        inner.vars["psitem"] = ("PSItem", item)
        out: list[Any] = []
        body = block.script.end or []
        try:
            self.block(body, inner, out.append)
        except _Return as ret:
            out.extend(ret.values)
        return out


class LiveInput:
    """$input: the pipeline's input objects, read as they arrive (once)."""

    def __init__(self, source: Iterable[Any]) -> None:
        self._source = iter(source)
        self._seen: list[Any] = []
        self._done = False

    def items(self) -> list[Any]:
        if not self._done:
            self._seen.extend(self._source)
            self._done = True
        return list(self._seen)

    def get_member(self, name: str) -> Any:
        return V.member(self.items(), name)


def _enumerate(value: Any) -> list[Any]:
    """What a value writes to the pipeline: arrays enumerate, a void method's
    result is nothing, anything else (also $null) is itself."""
    if value is V.VOID:
        return []
    if isinstance(value, LiveInput):
        return value.items()
    if isinstance(value, list):
        return list(value)
    if isinstance(value, tuple):
        return list(value)
    return [value]


def _pair_arguments(
    command: str, given: list[tuple[str | None, Any, bool]]
) -> list[tuple[str | None, Any]]:
    """`-Name value` in argument mode: the value belongs to the parameter unless
    the parameter is a switch (about_Parsing); the binder's view decides."""
    from hvsim import bind

    try:
        cmd = bind.resolve_command(command)
    except PSError:
        cmd = None
    out: list[tuple[str | None, Any]] = []
    i = 0
    while i < len(given):
        name, value, colon = given[i]
        nxt = given[i + 1] if i + 1 < len(given) else None
        if name is not None and not colon and nxt is not None and nxt[0] is None:
            switch = False
            if cmd is not None:
                try:
                    switch = bind.resolve_parameter(cmd, name).is_switch
                except PSError:
                    switch = False
            if not switch:
                out.append((name, nxt[1]))
                i += 2
                continue
        out.append((name, value))
        i += 1
    return out
