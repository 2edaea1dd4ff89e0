"""Utility cmdlets of the PowerShell subset (Microsoft.PowerShell.Utility and a
few of Core): they touch no modelled resource, only streams and variables.

Each is bound by hvsim.bind against the catalog like any cmdlet (names,
aliases, prefixes, positions, types), so `echo 'hi'`, `Write-Output -In x`
and `Select-Object Name, Value` bind as on Windows. The common parameters
-ErrorAction, -WarningAction, -InformationAction, -Verbose and -Debug are
honoured; the handlers follow each cmdlet's documentation
(learn.microsoft.com, Microsoft.PowerShell.Utility).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable
from typing import Any

from hvsim import objects
from hvsim import pwsh_values as V
from hvsim.errors import PSError, not_modelled

Emit = Callable[[Any], None]


@dataclasses.dataclass
class Utility:
    name: str
    handler: Callable[..., None]
    params: frozenset[str]


_TABLE: dict[str, Utility] = {}
_COMMON = {
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
}


def utility(name: str, *params: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def register(fn: Callable[..., None]) -> Callable[..., None]:
        _TABLE[name.lower()] = Utility(name, fn, frozenset(p.lower() for p in params))
        return fn

    return register


def lookup(name: str) -> Utility | None:
    """The utility for a cmdlet name or alias, or None."""
    hit = _TABLE.get(name.lower())
    if hit is not None:
        return hit
    from hvsim import bind

    try:
        resolved = bind.resolve_command(name)
    except PSError:
        return None
    return _TABLE.get(resolved.name.lower())


@dataclasses.dataclass
class Ctx:
    runner: Any  # hvsim.pwsh_run.Runner
    scope: Any  # hvsim.pwsh_run.Scope
    params: dict[str, Any]
    inputs: list[Any] | None
    emit: Emit
    verbose: bool | None = None
    debug: bool | None = None
    error_action: str | None = None
    warning_action: str | None = None
    information_action: str | None = None

    @property
    def sink(self) -> Any:
        return self.runner.host.sink

    def pref(self, given: str | None, variable: str) -> str:
        return (given or self.scope.preference(variable)).lower()

    def error(self, err: PSError) -> None:
        action = self.pref(self.error_action, "ErrorActionPreference")
        if action == "stop":
            raise err
        if action in ("silentlycontinue", "ignore"):
            return
        self.sink.error(err)


def call(
    u: Utility,
    runner: Any,
    scope: Any,
    args: list[tuple[str | None, Any]],
    inputs: list[Any] | None,
    emit: Emit,
) -> None:
    from hvsim import bind

    # PowerShell's binder prefers the set whose positional parameter takes the
    # argument's type as is: a script block goes to -FilterScript / -Process.
    block_param = {"Where-Object": "FilterScript", "ForEach-Object": "Process"}.get(u.name)
    if block_param and not any(n and n.lower() == block_param.lower() for n, _ in args):
        for i, (n, v) in enumerate(args):
            if n is None and isinstance(v, V.Block):
                args = [*args[:i], (block_param, v), *args[i + 1 :]]
                break
    call_ = bind.bind(u.name, args, inputs is not None)
    ctx = Ctx(runner, scope, {}, inputs, emit)
    for name, value in call_.params.items():
        key = name.lower()
        if key in _COMMON:
            _common(ctx, key, value)
        elif key not in u.params:
            raise not_modelled(f"parameter -{name} of {u.name}")
        else:
            ctx.params[key] = value
    u.handler(ctx)


def _common(ctx: Ctx, key: str, value: Any) -> None:
    text = str(getattr(value, "name", value))
    if key == "verbose":
        ctx.verbose = value is None or bool(value)
    elif key == "debug":
        ctx.debug = value is None or bool(value)
    elif key == "erroraction":
        ctx.error_action = text
    elif key == "warningaction":
        ctx.warning_action = text
    elif key == "informationaction":
        ctx.information_action = text


def _items(ctx: Ctx, param: str) -> list[Any]:
    """The objects a cmdlet works on: pipeline input, else the parameter's value."""
    if ctx.inputs is not None:
        return list(ctx.inputs)
    value = ctx.params.get(param)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


# ------------------------------------------------------------------ output


@utility("Write-Output", "InputObject", "NoEnumerate")
def write_output(ctx: Ctx) -> None:
    if ctx.inputs is not None:
        for item in ctx.inputs:
            ctx.emit(item)
        return
    value = ctx.params.get("inputobject")
    if isinstance(value, list) and not ctx.params.get("noenumerate"):
        for item in value:
            ctx.emit(item)
    elif value is not None or "inputobject" in ctx.params:
        ctx.emit(value)


@utility("Out-Null", "InputObject")
def out_null(ctx: Ctx) -> None:
    return None


@utility("Out-String", "InputObject", "Stream", "Width")
def out_string(ctx: Ctx) -> None:
    lines = [V.to_str(x) for x in _items(ctx, "inputobject")]
    if ctx.params.get("stream"):
        for line in lines:
            ctx.emit(line)
    else:
        ctx.emit("".join(line + "\r\n" for line in lines))


@utility("Write-Host", "Object", "Separator", "NoNewline", "ForegroundColor", "BackgroundColor")
def write_host(ctx: Ctx) -> None:
    # Write-Host writes an InformationRecord tagged PSHOST whose MessageData is a
    # HostInformationMessage (about_Information_Stream, PowerShell 5.0 and later).
    items = _items(ctx, "object")
    sep = V.to_str(ctx.params.get("separator", " "))
    message = sep.join(V.to_str(x) for x in items)
    data = objects.PSObj(
        ["System.Management.Automation.HostInformationMessage", "System.Object"],
        {
            "Message": message,
            "NoNewLine": bool(ctx.params.get("nonewline", False)),
            "ForegroundColor": None,
            "BackgroundColor": None,
        },
        message,
    )
    if ctx.pref(ctx.information_action, "InformationPreference") == "ignore":
        return
    ctx.sink.information(data, tags=["PSHOST"])
    # A client that brought a host also sees the text there (a void host call;
    # without a host it goes nowhere).
    nonewline = bool(ctx.params.get("nonewline", False))
    ctx.sink.host_call("Write1" if nonewline else "WriteLine2", [message])


@utility("Write-Information", "MessageData", "Tags")
def write_information(ctx: Ctx) -> None:
    # SilentlyContinue (the default) still records the message in the stream;
    # only Ignore drops it (about_CommonParameters, -InformationAction).
    if ctx.pref(ctx.information_action, "InformationPreference") == "ignore":
        return
    tags = ctx.params.get("tags")
    ctx.sink.information(ctx.params.get("messagedata"), tags=list(tags) if tags else None)


@utility("Write-Verbose", "Message")
def write_verbose(ctx: Ctx) -> None:
    on = (
        ctx.verbose
        if ctx.verbose is not None
        else ctx.pref(None, "VerbosePreference") in ("continue", "inquire", "stop")
    )
    if on:
        ctx.sink.verbose(V.to_str(ctx.params.get("message")))


@utility("Write-Debug", "Message")
def write_debug(ctx: Ctx) -> None:
    on = (
        ctx.debug
        if ctx.debug is not None
        else ctx.pref(None, "DebugPreference") in ("continue", "inquire", "stop")
    )
    if on:
        ctx.sink.debug(V.to_str(ctx.params.get("message")))


@utility("Write-Warning", "Message")
def write_warning(ctx: Ctx) -> None:
    action = ctx.pref(ctx.warning_action, "WarningPreference")
    text = V.to_str(ctx.params.get("message"))
    if action in ("silentlycontinue", "ignore"):
        return
    if action == "stop":
        raise PSError(
            'The running command stopped because the preference variable "WarningPreference" '
            f"or common parameter is set to Stop: {text}",
            fqid="ActionPreferenceStop",
            category="OperationStopped",
            exception="System.Management.Automation.ActionPreferenceStopException",
        )
    ctx.sink.warning(text)


@utility(
    "Write-Error", "Message", "Category", "ErrorId", "TargetObject", "Exception", "ErrorRecord"
)
def write_error(ctx: Ctx) -> None:
    record = ctx.params.get("errorrecord")
    if isinstance(record, PSError):
        ctx.error(record)
        return
    message = ctx.params.get("message")
    if message is None and ctx.params.get("exception") is not None:
        message = ctx.params["exception"]
    err = PSError(
        V.to_str(message),
        fqid=V.to_str(ctx.params.get("errorid"))
        or "Microsoft.PowerShell.Commands.WriteErrorException",
        category=str(
            getattr(ctx.params.get("category"), "name", ctx.params.get("category"))
            or "NotSpecified"
        ),
        exception="Microsoft.PowerShell.Commands.WriteErrorException",
        target=ctx.params.get("targetobject"),
        activity="Write-Error",
    )
    ctx.error(err)


@utility(
    "Write-Progress",
    "Activity",
    "Status",
    "PercentComplete",
    "Completed",
    "Id",
    "CurrentOperation",
    "SecondsRemaining",
    "ParentId",
)
def write_progress(ctx: Ctx) -> None:
    if ctx.scope.preference("ProgressPreference").lower() in ("silentlycontinue", "ignore"):
        return
    percent = ctx.params.get("percentcomplete")
    ctx.sink.progress(
        V.to_str(ctx.params.get("activity")),
        V.to_str(ctx.params.get("status", "Processing")),
        -1 if percent is None else int(percent),
    )


# ------------------------------------------------------------------ flow


@utility("Start-Sleep", "Seconds", "Milliseconds")
def start_sleep(ctx: Ctx) -> None:
    from hvsim.pwsh_run import Stopped

    seconds = (
        float(ctx.params.get("seconds") or 0) + float(ctx.params.get("milliseconds") or 0) / 1000
    )
    # Wall-clock time, as the client asked for it; a stop (Signal) ends it early.
    if ctx.runner.host.stop.wait(max(0.0, seconds)):
        raise Stopped()


@utility("ForEach-Object", "Process", "Begin", "End", "MemberName", "ArgumentList", "InputObject")
def foreach_object(ctx: Ctx) -> None:
    member = ctx.params.get("membername")
    blocks = ctx.params.get("process")
    blocks = blocks if isinstance(blocks, list) else [blocks] if blocks is not None else []
    for item in _items(ctx, "inputobject"):
        if member is not None:
            ctx.emit(V.member(item, V.to_str(member)))
            continue
        for block in blocks:
            if not isinstance(block, V.Block):
                raise not_modelled("ForEach-Object with a -Process that is not a script block")
            for value in ctx.runner.run_block(block, item, ctx.scope):
                ctx.emit(value)


@utility("Where-Object", "FilterScript", "InputObject", "Property", "Value", "EQ")
def where_object(ctx: Ctx) -> None:
    block = ctx.params.get("filterscript")
    prop = ctx.params.get("property")
    for item in _items(ctx, "inputobject"):
        if isinstance(block, V.Block):
            keep = V.truthy(_single(ctx.runner.run_block(block, item, ctx.scope)))
        elif prop is not None:
            value = V.member(item, V.to_str(prop))
            keep = (
                V.binary("eq", value, ctx.params.get("value"))
                if "eq" in ctx.params
                else V.truthy(value)
            )
        else:
            raise not_modelled("Where-Object without a script block or a property")
        if keep:
            ctx.emit(item)


def _single(values: list[Any]) -> Any:
    if not values:
        return None
    return values[0] if len(values) == 1 else values


# ------------------------------------------------------------------ variables


def _variable(name: str, value: Any) -> objects.PSObj:
    return objects.PSObj(
        ["System.Management.Automation.PSVariable", "System.Object"],
        {
            "Name": name,
            "Value": value,
            "Description": "",
            "Options": "None",
            "Visibility": "Public",
        },
        name,
    )


def _scoped(ctx: Ctx, name: str) -> Any:
    from hvsim import pwsh_parse as P

    scope = V.to_str(ctx.params.get("scope") or "").lower()
    if scope not in ("", "global", "script", "local", "0", "1"):
        raise not_modelled(f"the variable scope '{scope}'")
    return P.Var(name, "global" if scope == "global" else "")


@utility("Set-Variable", "Name", "Value", "Scope", "PassThru", "Force", "Option", "Description")
def set_variable(ctx: Ctx) -> None:
    names = ctx.params.get("name")
    value = ctx.params.get("value")
    if ctx.inputs is not None and "value" not in ctx.params:
        value = _single(ctx.inputs)
    for name in names if isinstance(names, list) else [names]:
        ctx.scope.set(_scoped(ctx, V.to_str(name)), value)
        if ctx.params.get("passthru"):
            ctx.emit(_variable(V.to_str(name), value))


@utility("Get-Variable", "Name", "ValueOnly", "Scope", "Include", "Exclude")
def get_variable(ctx: Ctx) -> None:
    names = ctx.params.get("name") or ["*"]
    names = names if isinstance(names, list) else [names]
    table = dict(ctx.scope.session.globals)
    table.update(ctx.scope.vars)
    for pattern in names:
        pattern = V.to_str(pattern)
        if any(ch in pattern for ch in "*?["):
            hits = sorted(
                (v for k, v in table.items() if fnmatch.fnmatchcase(k, pattern.lower())),
                key=lambda nv: nv[0].lower(),
            )
        else:
            hit = table.get(pattern.lower())
            if hit is None:
                ctx.error(
                    PSError(
                        f"Cannot find a variable with the name '{pattern}'.",
                        fqid="VariableNotFound,Microsoft.PowerShell.Commands.GetVariableCommand",
                        category="ObjectNotFound",
                        exception="System.Management.Automation.ItemNotFoundException",
                        target=pattern,
                        activity="Get-Variable",
                    )
                )
                continue
            hits = [hit]
        for name, value in hits:
            ctx.emit(value if ctx.params.get("valueonly") else _variable(name, value))


# ------------------------------------------------------------------ objects


@utility(
    "Select-Object", "Property", "ExpandProperty", "First", "Last", "Skip", "InputObject", "Unique"
)
def select_object(ctx: Ctx) -> None:
    items = _items(ctx, "inputobject")
    skip = int(ctx.params.get("skip") or 0)
    items = items[skip:]
    if "first" in ctx.params:
        items = items[: int(ctx.params["first"])]
    if "last" in ctx.params:
        n = int(ctx.params["last"])
        items = items[-n:] if n else []
    if ctx.params.get("unique"):
        seen: list[Any] = []
        for x in items:
            if not any(V.binary("eq", x, y) is True for y in seen):
                seen.append(x)
        items = seen
    expand = ctx.params.get("expandproperty")
    props = ctx.params.get("property")
    for item in items:
        if expand is not None:
            value = V.member(item, V.to_str(expand))
            for v in value if isinstance(value, list) else [value]:
                ctx.emit(v)
            continue
        if props is None:
            ctx.emit(item)
            continue
        names = props if isinstance(props, list) else [props]
        chosen: dict[str, Any] = {}
        for name in names:
            if isinstance(name, (dict, V.Block)):
                raise not_modelled("calculated properties in Select-Object")
            pattern = V.to_str(name)
            for key, value in _properties(item):
                if fnmatch.fnmatchcase(key.lower(), pattern.lower()) and key not in chosen:
                    chosen[key] = value
            if not any(ch in pattern for ch in "*?") and not any(
                k.lower() == pattern.lower() for k in chosen
            ):
                chosen[pattern] = None
        base = (
            item.type_names[0]
            if isinstance(item, objects.PSObj) and item.type_names
            else ("System.Object")
        )
        selected = V.custom(chosen)
        selected.type_names = [f"Selected.{base}", *V.CUSTOM]
        ctx.emit(selected)


def _properties(item: Any) -> list[tuple[str, Any]]:
    if isinstance(item, objects.PSObj):
        return [*item.props.items(), *item.notes.items()]
    if isinstance(item, dict):
        return [(V.to_str(k), v) for k, v in item.items()]
    if isinstance(item, str):
        return [("Length", len(item))]
    return []


@utility("ConvertTo-SecureString", "String", "AsPlainText", "Force")
def convertto_securestring(ctx: Ctx) -> None:
    for text in _items(ctx, "string"):
        if not ctx.params.get("asplaintext"):
            raise not_modelled("ConvertTo-SecureString of an encrypted standard string (DPAPI)")
        if not ctx.params.get("force"):
            # Windows PowerShell 5.1 insists on -Force with -AsPlainText.
            raise PSError(
                "The system cannot protect plain text input. To suppress this warning and convert "
                "the plain text to a SecureString, reissue the command specifying the Force "
                "parameter. For more information ,type: get-help ConvertTo-SecureString.",
                fqid="ImportSecureString_InvalidArgument,Microsoft.PowerShell.Commands."
                "ConvertToSecureStringCommand",
                category="InvalidArgument",
                exception="System.ArgumentException",
                activity="ConvertTo-SecureString",
            )
        ctx.emit(objects.SecureString(V.to_str(text)))


@utility("Join-Path", "Path", "ChildPath", "AdditionalChildPath")
def join_path(ctx: Ctx) -> None:
    paths = ctx.params.get("path")
    child = V.to_str(ctx.params.get("childpath"))
    for base in paths if isinstance(paths, list) else [paths]:
        text = V.to_str(base).rstrip("\\/")
        ctx.emit(text + "\\" + child.lstrip("\\/"))


def env_item(name: str, args: list[tuple[str | None, Any]]) -> tuple[str, str] | None:
    """New-Item -Path env: -Name X -Value Y: the Environment provider, which the
    file-system model does not cover. (name, value) when that is the call."""
    from hvsim import bind

    try:
        if bind.resolve_command(name).name != "New-Item":
            return None
    except PSError:
        return None
    named = {(k or "").lower(): v for k, v in args if k}
    path = V.to_str(named.get("path", ""))
    if not path.lower().rstrip("\\/").startswith("env:"):
        return None
    var = V.to_str(named.get("name") or path.split(":", 1)[1].strip("\\/"))
    return var, V.to_str(named.get("value", ""))
