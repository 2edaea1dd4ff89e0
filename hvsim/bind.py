"""Binding a cmdlet call against the catalog, as PowerShell's parameter binder does.

A call arrives as a cmdlet name and an ordered list of (name, value) pairs, as
PSRP carries them: (name, value) for a named parameter, (None, value) for a
positional argument, and (name, None) for a switch given without a value. The
result is a hvsim.registry.Call with the catalog's spelling of the cmdlet and of
every parameter, the chosen parameter set, and values converted to each
parameter's type. Anything PowerShell would refuse raises the ErrorRecord it
would write (hvsim.errors.PSError); docs/binding.md lists the texts and which
ones were confirmed against published output.

Order of work, as in PowerShell: resolve the command; bind named parameters in
the order given (name resolution, duplicate check, type conversion); bind the
positional arguments in position order within the sets still possible; pick the
parameter set; check mandatory parameters. Binding never prompts: over remoting
there is no host to prompt with, so a missing mandatory parameter fails.
Pipeline input objects are then bound one by one in hvsim.bind_pipeline.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from hvsim import objects
from hvsim.catalog import Cmdlet, Parameter, catalog
from hvsim.errors import PSError
from hvsim.registry import Call

__all__ = [
    "ACTION_PREFERENCES",
    "bind",
    "command_type_name",
    "resolve_command",
    "resolve_parameter",
    "sets_accepting",
]

BINDING_EXCEPTION = "System.Management.Automation.ParameterBindingException"
TRANSFORMATION_EXCEPTION = (
    "System.Management.Automation.ParameterBindingArgumentTransformationException"
)
VALIDATION_EXCEPTION = "System.Management.Automation.ParameterBindingValidationException"

# System.Management.Automation.ActionPreference in Windows PowerShell 5.1, in
# declaration order (values 0..5); the order of the names in its conversion error.
ACTION_PREFERENCES = ("SilentlyContinue", "Stop", "Continue", "Inquire", "Ignore", "Suspend")

# ---------------------------------------------------------------------------
# Who reports the error: the FullyQualifiedErrorId ends with the command's type.
# Compiled cmdlets report their .NET class; CDXML and script modules define
# functions, and a function's errors end with the function name
# ("NamedParameterNotFound,Get-NetIPAddress" is published output).

_FUNCTION_MODULES = frozenset(
    {
        "BranchCache",
        "DcbQos",
        "Defender",
        "DhcpServer",
        "DnsClient",
        "DnsServer",
        "iSCSI",
        "MsDtc",
        "NetAdapter",
        "NetConnection",
        "NetEventPacketCapture",
        "NetLbfo",
        "NetLldpAgent",
        "NetNat",
        "NetQoS",
        "NetSecurity",
        "NetSwitchTeam",
        "NetTCPIP",
        "NetworkConnectivityStatus",
        "NetworkTransition",
        "PnpDevice",
        "ScheduledTasks",
        "SmbShare",
        "SmbWitness",
        "Storage",
        "VpnClient",
    }
)

# Module -> format of the cmdlet class name. Hyper-V's class names have no
# "Command" suffix (R-21: "...Commands.GetVM"); ServerManager's Install- and
# Uninstall-WindowsFeature are the classes of their older names (R-07: FQID
# "...AddWindowsFeatureCommand"). The rest follow each module's namespace as it
# appears in published error output; modules not listed fall back to the core
# namespace, which is right for Microsoft.PowerShell.* and a guess otherwise.
_CLASS_FORMATS = {
    "Hyper-V": "Microsoft.HyperV.PowerShell.Commands.{vn}",
    "FailoverClusters": "Microsoft.FailoverClusters.PowerShell.{vn}Command",
    "ServerManager": "Microsoft.Windows.ServerManager.Commands.{vn}Command",
    "CimCmdlets": "Microsoft.Management.Infrastructure.CimCmdlets.{vn}Command",
    "ActiveDirectory": "Microsoft.ActiveDirectory.Management.Commands.{vn}",
    "ADDSDeployment": "Microsoft.DirectoryServices.Deployment.PowerShell.Commands.{vn}Command",
    "Dism": "Microsoft.Dism.Commands.{vn}Command",
    "Microsoft.WSMan.Management": "Microsoft.WSMan.Management.{vn}Command",
}
_CLASS_VERBS = {"Install-WindowsFeature": "Add", "Uninstall-WindowsFeature": "Remove"}


def is_function(cmd: Cmdlet) -> bool:
    """CDXML/script functions convert arguments in an argument transformation."""
    return cmd.module in _FUNCTION_MODULES


def command_type_name(cmd: Cmdlet) -> str:
    """What follows the comma in a FullyQualifiedErrorId raised while binding `cmd`."""
    if is_function(cmd):
        return cmd.name
    verb = _CLASS_VERBS.get(cmd.name, cmd.verb)
    fmt = _CLASS_FORMATS.get(cmd.module, "Microsoft.PowerShell.Commands.{vn}Command")
    return fmt.format(vn=verb + cmd.noun.replace("-", ""))


def _binding_error(
    cmd: Cmdlet,
    error_id: str,
    message: str,
    *,
    category: str = "InvalidArgument",
    exception: str = BINDING_EXCEPTION,
) -> PSError:
    return PSError(
        message,
        fqid=f"{error_id},{command_type_name(cmd)}",
        category=category,
        exception=exception,
        activity=cmd.name,
    )


# ---------------------------------------------------------------------------
# Command and parameter names


def resolve_command(name: str) -> Cmdlet:
    """The catalog entry for a cmdlet name or alias (case-insensitive)."""
    cmd = catalog().get(name)
    if cmd is None:
        raise PSError(
            f"The term '{name}' is not recognized as the name of a cmdlet, function, script "
            "file, or operable program. Check the spelling of the name, or if a path was "
            "included, verify that the path is correct and try again.",
            fqid="CommandNotFoundException",
            category="ObjectNotFound",
            exception="System.Management.Automation.CommandNotFoundException",
            target=name,
        )
    return cmd


def resolve_parameter(cmd: Cmdlet, given: str) -> Parameter:
    """The parameter a name given on a call means: an exact name or alias wins;
    otherwise the one parameter whose name or alias starts with it (several names
    of the same parameter count once). Common parameters take part like any other."""
    key = given.lower()
    hit = cmd.resolved.get(key)
    if hit is not None:
        return hit
    found = cmd.by_exact.get(key)
    if found is None:
        matches: list[Parameter] = []
        for candidate, param in cmd.name_keys:
            if candidate.startswith(key) and all(m.name != param.name for m in matches):
                matches.append(param)
        if not matches:
            raise _binding_error(
                cmd,
                "NamedParameterNotFound",
                f"A parameter cannot be found that matches parameter name '{given}'.",
            )
        if len(matches) > 1:
            listed = "".join(f" -{m.name}" for m in matches)
            raise _binding_error(
                cmd,
                "AmbiguousParameter",
                f"Parameter cannot be processed because the parameter name '{given}' is "
                f"ambiguous. Possible matches include:{listed}.",
            )
        found = matches[0]
    if len(cmd.resolved) < 1000:  # bounded: names come from clients
        cmd.resolved[key] = found
    return found


def sets_accepting(cmd: Cmdlet, params: Iterable[Parameter]) -> list[str]:
    """The parameter sets (catalog order) that contain every one of `params`."""
    valid = list(cmd.sets)
    for p in params:
        if p.common:
            continue
        valid = [s for s in valid if s in p.sets]
    return valid


# ---------------------------------------------------------------------------
# Type conversion

_SIZE_SUFFIX = {"kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4, "pb": 1024**5}
_NUMBER = re.compile(
    r"^\s*(?P<sign>[+-]?)(?:0x(?P<hex>[0-9a-f]+)|(?P<num>(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?))"
    r"(?P<suffix>kb|mb|gb|tb|pb)?\s*$",
    re.IGNORECASE,
)

# (CLR name, low, high, article + name in .NET's OverflowException text)
_INTEGERS: dict[str, tuple[str, int, int, str]] = {
    "Byte": ("System.Byte", 0, 255, "an unsigned byte"),
    "SByte": ("System.SByte", -128, 127, "a signed byte"),
    "Int16": ("System.Int16", -(2**15), 2**15 - 1, "an Int16"),
    "UInt16": ("System.UInt16", 0, 2**16 - 1, "a UInt16"),
    "Int32": ("System.Int32", -(2**31), 2**31 - 1, "an Int32"),
    "UInt32": ("System.UInt32", 0, 2**32 - 1, "a UInt32"),
    "Int64": ("System.Int64", -(2**63), 2**63 - 1, "an Int64"),
    "UInt64": ("System.UInt64", 0, 2**64 - 1, "a UInt64"),
}
_WRAPPERS: dict[str, type[objects._Typed]] = {
    "Byte": objects.Byte,
    "Int32": objects.Int32,
    "Int64": objects.Int64,
    "UInt16": objects.UInt16,
    "UInt32": objects.UInt32,
    "UInt64": objects.UInt64,
}

# Short catalog names -> .NET full names, for messages.
_FULL_NAMES = {
    "String": "System.String",
    "Boolean": "System.Boolean",
    "Double": "System.Double",
    "Single": "System.Single",
    "Decimal": "System.Decimal",
    "Object": "System.Object",
    "Guid": "System.Guid",
    "TimeSpan": "System.TimeSpan",
    "DateTime": "System.DateTime",
    "Hashtable": "System.Collections.Hashtable",
    "IDictionary": "System.Collections.IDictionary",
    "SecureString": "System.Security.SecureString",
    "PSCredential": "System.Management.Automation.PSCredential",
    "ScriptBlock": "System.Management.Automation.ScriptBlock",
    "SwitchParameter": "System.Management.Automation.SwitchParameter",
    "PSObject": "System.Management.Automation.PSObject",
    "ActionPreference": "System.Management.Automation.ActionPreference",
    **{short: spec[0] for short, spec in _INTEGERS.items()},
}


def _base_type(type_name: str) -> tuple[str, bool]:
    """('UInt64', False) for 'System.UInt64'; ('String', True) for 'String[]'."""
    is_array = type_name.endswith("[]")
    base = type_name[:-2] if is_array else type_name
    base = base.rsplit(".", 1)[-1]
    if base == "StringCollection":
        # System.Collections.Specialized.StringCollection (New-Cluster -Node): PowerShell
        # fills it from a string or an array of strings.
        return "String", True
    return base, is_array


def _full_name(cmd: Cmdlet, type_name: str) -> str:
    base, is_array = _base_type(type_name)
    if "." in type_name:
        full = type_name[:-2] if is_array else type_name
    elif base in _FULL_NAMES:
        full = _FULL_NAMES[base]
    elif cmd.module == "Hyper-V":
        full = f"Microsoft.HyperV.PowerShell.{base}"
    else:
        full = base  # namespace unknown to the catalog
    return full + ("[]" if is_array else "")


def _clr_name(value: Any) -> str:
    """The .NET type a value arrives as, for "value of type" messages."""
    if isinstance(value, objects._Typed):
        return value.clr
    if isinstance(value, bool):
        return "System.Boolean"
    if isinstance(value, int):
        return "System.Int32" if -(2**31) <= value < 2**31 else "System.Int64"
    if isinstance(value, float):
        return "System.Double"
    if isinstance(value, str):
        return "System.String"
    if isinstance(value, (list, tuple)):
        return "System.Object[]"
    if isinstance(value, dict):
        return "System.Collections.Hashtable"
    if isinstance(value, objects.SecureString):
        return "System.Security.SecureString"
    if isinstance(value, objects.Credential):
        return "System.Management.Automation.PSCredential"
    if isinstance(value, objects.ScriptBlock):
        return "System.Management.Automation.ScriptBlock"
    if isinstance(value, objects.PSEnum):
        return value.type_name
    if isinstance(value, objects.PSObj):
        return value.type_names[0] if value.type_names else "System.Management.Automation.PSObject"
    if isinstance(value, uuid.UUID):
        return "System.Guid"
    return "System.Object"


def _text(value: Any) -> str:
    """A value as PowerShell prints it inside an error message."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (list, tuple, dict, objects.SecureString, objects.Credential)):
        return _clr_name(value)  # these print as their type name
    if isinstance(value, objects.ScriptBlock):
        return value.text
    if isinstance(value, objects.PSObj):
        return value.to_string or _clr_name(value)
    if isinstance(value, objects._Typed):
        return str(int(value))
    return str(value)


class _ConversionFailed(Exception):
    """Inner failure; turned into the ErrorRecord by _convert_error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _cannot_convert(value: Any, full_type: str, error: str) -> _ConversionFailed:
    # PowerShell's form when the conversion itself threw (overflow, bad format, enum name).
    return _ConversionFailed(
        f'Cannot convert value "{_text(value)}" to type "{full_type}". Error: "{error}"'
    )


def _no_conversion(value: Any, full_type: str, shown: str | None = None) -> _ConversionFailed:
    # PowerShell's form when no conversion exists between the two types.
    return _ConversionFailed(
        f'Cannot convert the "{shown if shown is not None else _text(value)}" value of type '
        f'"{_clr_name(value)}" to type "{full_type}".'
    )


def _to_integer(value: Any, short: str) -> int:
    full, lo, hi, article = _INTEGERS[short]
    if isinstance(value, objects.PSEnum):
        number = value.value
    elif isinstance(value, int):  # bool included: $true converts to 1
        number = int(value)
    elif isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise _cannot_convert(
                value, full, f"Value was either too large or too small for {article}."
            )
        number = round(value)  # .NET Convert rounds half to even, as round() does
    elif isinstance(value, str):
        number = _parse_number(value, full)
    else:
        raise _no_conversion(value, full)
    if not lo <= number <= hi:
        raise _cannot_convert(
            value, full, f"Value was either too large or too small for {article}."
        )
    return number


def _parse_number(text: str, full: str) -> int:
    """PowerShell converts numeric strings, hex (0x10) and size suffixes (256GB,
    powers of 1024) to numbers."""
    m = _NUMBER.match(text)
    if not m:
        raise _cannot_convert(text, full, "Input string was not in a correct format.")
    if m.group("hex") is not None:
        number: float | int = int(m.group("hex"), 16)
    else:
        literal = m.group("num")
        number = int(literal) if literal.isdigit() else float(literal)
    multiplier = _SIZE_SUFFIX.get((m.group("suffix") or "").lower(), 1)
    number = number * multiplier
    if isinstance(number, float):
        if not number.is_integer():
            number = round(number)
        number = int(number)
    return -number if m.group("sign") == "-" else number


def _match_value(value: Any, allowed: Sequence[str]) -> str | None:
    text = value.name if isinstance(value, objects.PSEnum) else value
    if not isinstance(text, str):
        return None
    lowered = text.strip().lower()
    for item in allowed:
        if item.lower() == lowered:
            return item
    return None


def _convert_scalar(cmd: Cmdlet, p: Parameter, base: str, value: Any) -> Any:
    full = _full_name(cmd, base)
    if base == "SwitchParameter" or base == "Boolean":
        if value is None or isinstance(value, bool):
            return True if value is None and base == "SwitchParameter" else bool(value)
        if isinstance(value, (int, float)) and not isinstance(value, objects.PSEnum):
            return bool(value)
        raise _ConversionFailed(
            f'Cannot convert value "{_clr_name(value)}" to type "{full}". Boolean parameters '
            "accept only Boolean values and numbers, such as $True, $False, 1 or 0."
        )
    if base in _INTEGERS:
        number = _to_integer(value, base)
        if p.values and str(number) not in p.values:
            raise _ValidateSet(str(number), p.values)
        wrapper = _WRAPPERS.get(base)
        return wrapper(number) if wrapper else number
    if base in ("Double", "Single", "Decimal"):
        if isinstance(value, bool | int | float) and not isinstance(value, objects.PSEnum):
            return float(value)
        if isinstance(value, str):
            m = _NUMBER.match(value)
            if m and m.group("hex") is None:
                magnitude = float(m.group("num")) * _SIZE_SUFFIX.get(
                    (m.group("suffix") or "").lower(), 1
                )
                return -magnitude if m.group("sign") == "-" else magnitude
            raise _cannot_convert(value, full, "Input string was not in a correct format.")
        raise _no_conversion(value, full)
    if base == "String":
        if value is None:
            return None
        if isinstance(value, objects.SecureString):
            text = "System.Security.SecureString"
        elif isinstance(value, (list, tuple)):
            # An array becomes one string joined by $OFS (a space).
            text = " ".join(_text(v) for v in value)
        else:
            text = _text(value)
        if p.values:
            matched = _match_value(text, p.values)
            if matched is None:
                raise _ValidateSet(text, p.values)
            return matched
        return text
    if base == "SecureString":
        if isinstance(value, objects.SecureString):
            return value
        # PowerShell prints the rejected value; it is a password, so hvsim masks it.
        raise _no_conversion(value, full, shown="********" if isinstance(value, str) else None)
    if base == "PSCredential":
        if isinstance(value, objects.Credential):
            return value
        if isinstance(value, str):
            # The Credential attribute would prompt for the password; a remote
            # session has no host that can prompt.
            raise _Transformation(
                "A command that prompts the user failed because the host program or the "
                "command type does not support user interaction. The host was attempting to "
                "request confirmation with the following message: Enter your credentials."
            )
        raise _no_conversion(value, full)
    if base == "Guid":
        if isinstance(value, uuid.UUID):
            return value
        if isinstance(value, str):
            try:
                return uuid.UUID(value.strip())
            except ValueError:
                raise _cannot_convert(
                    value,
                    full,
                    "Guid should contain 32 digits with 4 dashes "
                    "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).",
                ) from None
        raise _no_conversion(value, full)
    if base == "ScriptBlock":
        if isinstance(value, objects.ScriptBlock):
            return value
        raise _no_conversion(value, full)
    if base in ("Hashtable", "IDictionary"):
        if isinstance(value, dict):
            return value
        raise _no_conversion(value, full)
    if base == "TimeSpan":
        return _to_timespan(value, full)
    if base == "DateTime":
        return _to_datetime(value, full)
    if base == "ActionPreference":
        return _to_enum(value, full, ACTION_PREFERENCES, numeric=True)
    if base in _ENUMS_NOT_IN_CATALOG:
        names, numeric = _ENUMS_NOT_IN_CATALOG[base]
        return _to_enum(value, full, names, numeric=numeric)
    if p.values and base not in ("Object", "PSObject"):
        # An enum (or ValidateSet) the catalog lists values for.
        return _to_enum(value, full, p.values, numeric=False)
    return value


# Enums whose accepted values the reference pages do not list, in declaration
# order with values 0..n-1 where `numeric` is True.
_ENUMS_NOT_IN_CATALOG: dict[str, tuple[tuple[str, ...], bool]] = {
    # Microsoft.Win32.RegistryValueKind (Set-ItemProperty -Type): values are not
    # 0..n-1 (None=-1, Unknown=0, String=1, ...), so numbers are not accepted here.
    "RegistryValueKind": (
        ("String", "ExpandString", "Binary", "DWord", "MultiString", "QWord", "Unknown", "None"),
        False,
    ),
}


def _to_enum(value: Any, full: str, names: Sequence[str], *, numeric: bool) -> str:
    if (
        numeric
        and isinstance(value, int)
        and not isinstance(value, bool)
        and 0 <= value < len(names)
    ):
        return names[int(value)]
    matched = _match_value(value, names)
    if matched is not None:
        return matched
    if isinstance(value, int) and not isinstance(value, bool):
        raise _NotModelled(
            f"a number ({int(value)}) given for the enum {full}: the catalog lists the "
            "names but not their numeric values; send the name"
        )
    listed = ", ".join(names)
    raise _cannot_convert(
        value,
        full,
        f"Unable to match the identifier name {_text(value)} to a valid enumerator name. "
        f"Specify one of the following enumerator names and try again:\r\n{listed}",
    )


_TIMESPAN = re.compile(r"^\s*(?:(?P<d>\d+)\.)?(?P<h>\d+):(?P<m>\d+)(?::(?P<s>\d+(?:\.\d+)?))?\s*$")


def _to_timespan(value: Any, full: str) -> _dt.timedelta:
    if isinstance(value, _dt.timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return _dt.timedelta(microseconds=int(value) / 10)  # an integer is ticks (100 ns)
    if isinstance(value, str):
        m = _TIMESPAN.match(value)
        if m:
            return _dt.timedelta(
                days=int(m.group("d") or 0),
                hours=int(m.group("h")),
                minutes=int(m.group("m")),
                seconds=float(m.group("s") or 0),
            )
        raise _cannot_convert(
            value, full, f"String '{value}' was not recognized as a valid TimeSpan."
        )
    raise _no_conversion(value, full)


def _to_datetime(value: Any, full: str) -> _dt.datetime:
    if isinstance(value, _dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return _dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise _cannot_convert(
                value, full, "String was not recognized as a valid DateTime."
            ) from None
    raise _no_conversion(value, full)


class _ValidateSet(Exception):
    def __init__(self, text: str, allowed: Sequence[str]) -> None:
        super().__init__(text)
        self.text = text
        self.allowed = allowed


class _Transformation(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _NotModelled(Exception):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def convert(cmd: Cmdlet, p: Parameter, value: Any) -> Any:
    """`value` converted to the type of parameter `p` of `cmd`, or the ErrorRecord
    PowerShell writes when it cannot be."""
    base, is_array = _base_type(p.type)
    try:
        if is_array:
            items = list(value) if isinstance(value, (list, tuple)) else [value]
            return [_convert_scalar(cmd, p, base, v) for v in items]
        if isinstance(value, (list, tuple)) and (
            base in _KNOWN_SCALARS or base == "String" or p.values
        ):
            # A one-element array converts to its element. A longer one does not
            # convert to a scalar parameter of a cmdlet; a function's argument
            # transformation joins it into one string with $OFS (see String).
            if len(value) == 1:
                return _convert_scalar(cmd, p, base, value[0])
            if not (is_function(cmd) and base == "String"):
                raise _binding_error(
                    cmd,
                    "CannotConvertArgument",
                    f"Cannot convert '{_clr_name(value)}' to the type '{_full_name(cmd, p.type)}' "
                    f"required by parameter '{p.name}'. Specified method is not supported.",
                )
        return _convert_scalar(cmd, p, base, value)
    except _ConversionFailed as err:
        if is_function(cmd):
            raise _binding_error(
                cmd,
                "ParameterArgumentTransformationError",
                f"Cannot process argument transformation on parameter '{p.name}'. {err.message}",
                category="InvalidData",
                exception=TRANSFORMATION_EXCEPTION,
            ) from None
        raise _binding_error(
            cmd,
            "CannotConvertArgumentNoMessage",
            f"Cannot bind parameter '{p.name}'. {err.message}",
        ) from None
    except _ValidateSet as err:
        raise _binding_error(
            cmd,
            "ParameterArgumentValidationError",
            f"Cannot validate argument on parameter '{p.name}'. The argument \"{err.text}\" "
            f'does not belong to the set "{",".join(err.allowed)}" specified by the '
            "ValidateSet attribute. Supply an argument that is in the set and then try the "
            "command again.",
            category="InvalidData",
            exception=VALIDATION_EXCEPTION,
        ) from None
    except _Transformation as err:
        raise _binding_error(
            cmd,
            "ParameterArgumentTransformationError",
            f"Cannot process argument transformation on parameter '{p.name}'. {err.message}",
            category="InvalidData",
            exception=TRANSFORMATION_EXCEPTION,
        ) from None
    except _NotModelled as err:
        raise PSError(
            f"hvsim does not model {err.what} (parameter '{p.name}' of {cmd.name}). "
            "The simulated host refuses it rather than guess.",
            fqid="NotModelled,hvsim",
            category="NotImplemented",
            exception="System.NotImplementedException",
        ) from None


_KNOWN_SCALARS = frozenset(
    {
        "SwitchParameter",
        "Boolean",
        "Double",
        "Single",
        "Decimal",
        "SecureString",
        "PSCredential",
        "Guid",
        "ScriptBlock",
        "Hashtable",
        "IDictionary",
        "TimeSpan",
        "DateTime",
        "ActionPreference",
        *_INTEGERS,
    }
)


# ---------------------------------------------------------------------------
# The binder


def _missing_mandatory(
    cmd: Cmdlet, set_name: str, bound: dict[str, Any], has_pipeline_input: bool
) -> list[str]:
    return [
        p.name
        for p in cmd.mandatory.get(set_name, ())
        if p.name not in bound and not (has_pipeline_input and p.pipe)
    ]


def _missing_error(cmd: Cmdlet, missing: list[str]) -> PSError:
    return _binding_error(
        cmd,
        "MissingMandatoryParameter",
        "Cannot process command because of one or more missing mandatory parameters: "
        f"{' '.join(missing)}.",
    )


def _ambiguous_set(cmd: Cmdlet) -> PSError:
    return _binding_error(
        cmd,
        "AmbiguousParameterSet",
        "Parameter set cannot be resolved using the specified named parameters.",
    )


def _bind_positional(
    cmd: Cmdlet, valid: list[str], bound: dict[str, Any], positional: list[Any]
) -> list[str]:
    """Bind positional arguments in position order within the sets still valid.

    For each argument the next position (greater than the last one used) that an
    unbound parameter holds in a valid set is taken; its candidates are tried
    default-set parameters first, then mandatory ones, then the rest, and the
    first that converts the value gets it (PowerShell also moves on to the next
    candidate when a conversion fails). The valid sets narrow to those where that
    parameter sits at that position.
    """
    last = -1
    for value in positional:
        by_position: dict[int, list[Parameter]] = {}
        for p in cmd.params.values():
            if p.common or p.name in bound:
                continue
            for s in valid:
                pos = p.position_in(s)
                if pos is not None and pos > last:
                    group = by_position.setdefault(pos, [])
                    if all(q.name != p.name for q in group):
                        group.append(p)
        if not by_position:
            raise _binding_error(
                cmd,
                "PositionalParameterNotFound",
                f"A positional parameter cannot be found that accepts argument '{_text(value)}'.",
            )
        pos = min(by_position)
        default = cmd.default_set if cmd.default_set in valid else None

        candidates = sorted(
            by_position[pos],
            key=lambda p, pos=pos, default=default, sets=tuple(valid): (
                0 if default is not None and p.position_in(default) == pos else 1,
                0 if any(p.mandatory_in(s) for s in sets) else 1,
            ),
        )
        first_error: PSError | None = None
        for p in candidates:
            try:
                bound[p.name] = convert(cmd, p, value)
            except PSError as err:
                first_error = first_error or err
                continue
            valid = [s for s in valid if p.position_in(s) == pos]
            last = pos
            break
        else:
            assert first_error is not None
            raise first_error
    return valid


def _choose_set(
    cmd: Cmdlet, valid: list[str], bound: dict[str, Any], has_pipeline_input: bool
) -> str:
    if not valid:
        raise _ambiguous_set(cmd)
    if len(valid) == 1:
        missing = _missing_mandatory(cmd, valid[0], bound, has_pipeline_input)
        if missing:
            raise _missing_error(cmd, missing)
        return valid[0]
    satisfied = [s for s in valid if not _missing_mandatory(cmd, s, bound, has_pipeline_input)]
    if len(satisfied) == 1:
        return satisfied[0]
    default = cmd.default_set
    if default in satisfied:
        return default
    if satisfied:
        if default is None:
            # The page marks no default set, but the cmdlet may well have one
            # (README "Layout"): take the first qualifying set in SYNTAX order
            # rather than refuse a call a real host might accept.
            return satisfied[0]
        raise _ambiguous_set(cmd)
    if default in valid:
        # PowerShell would prompt for the default set's mandatory parameters; a
        # remote session cannot prompt.
        raise _missing_error(cmd, _missing_mandatory(cmd, default, bound, has_pipeline_input))
    raise _ambiguous_set(cmd)


def _check_mandatory_values(cmd: Cmdlet, bound: dict[str, Any]) -> None:
    """A parameter that is mandatory in some set refuses null, an empty string and
    an empty array unless it carries AllowNull/AllowEmptyString/AllowEmptyCollection.
    The catalog does not record those attributes, so only String and String[]
    parameters are checked: Object parameters such as Set-Content -Value commonly
    allow empty values."""
    required = cmd.mandatory_somewhere
    for name, value in bound.items():
        if name not in required:
            continue
        p = cmd.params[name]
        if not (p.is_type("String") or p.is_type("String[]")):
            continue
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not value:
            what, error_id = (
                "an empty array",
                "ParameterArgumentValidationErrorEmptyArrayNotAllowed",
            )
        elif any(v is None for v in items):
            what, error_id = "null", "ParameterArgumentValidationErrorNullNotAllowed"
        elif any(v == "" for v in items):
            what, error_id = (
                "an empty string",
                "ParameterArgumentValidationErrorEmptyStringNotAllowed",
            )
        else:
            continue
        raise _binding_error(
            cmd,
            error_id,
            f"Cannot bind argument to parameter '{p.name}' because it is {what}.",
            category="InvalidData",
            exception=VALIDATION_EXCEPTION,
        )


def bind(
    name: str,
    args: list[tuple[str | None, Any]],
    has_pipeline_input: bool = False,
    pipeline_input: list[Any] | None = None,
) -> Call:
    """Bind one command of a pipeline. Raises PSError as PowerShell would fail.

    With `pipeline_input` (the objects the previous command wrote, possibly
    none) the result is a hvsim.bind_pipeline.PipelineCall: the command-line
    binding plus, per input object, the parameters it bound or the
    non-terminating error it gave. Without it, `has_pipeline_input` only lets
    mandatory parameters that take pipeline input count as supplied.
    """
    cmd = resolve_command(name)
    bound: dict[str, Any] = {}
    positional: list[Any] = []
    named: list[Parameter] = []
    for given, value in args:
        if given is None:
            positional.append(value)
            continue
        p = resolve_parameter(cmd, given)
        if p.name in bound:
            raise _binding_error(
                cmd,
                "ParameterAlreadyBound",
                f"Cannot bind parameter because parameter '{p.name}' is specified more than "
                "once. To provide multiple values to parameters that can accept multiple "
                'values, use the array syntax. For example, "-parameter value1,value2,value3".',
            )
        if value is None and not p.is_switch:
            # A parameter name with no value (PSRP sends Nil, as for a switch).
            raise _binding_error(
                cmd,
                "MissingArgument",
                f"Missing an argument for parameter '{p.name}'. Specify a parameter of type "
                f"'{_full_name(cmd, p.type)}' and try again.",
            )
        bound[p.name] = convert(cmd, p, value)
        named.append(p)
    valid = sets_accepting(cmd, named)
    if not valid:
        raise _ambiguous_set(cmd)
    if positional:
        valid = _bind_positional(cmd, valid, bound, positional)
    _check_mandatory_values(cmd, bound)
    if pipeline_input is None:
        chosen = _choose_set(cmd, valid, bound, has_pipeline_input)
        return Call(name=cmd.name, parameter_set=chosen, params=bound)
    return _bind_with_input(cmd, valid, bound, pipeline_input)


def _bind_with_input(
    cmd: Cmdlet, valid: list[str], bound: dict[str, Any], inputs: list[Any]
) -> Call:
    from hvsim import bind_pipeline

    # Before any input arrives, the sets still possible are those whose missing
    # mandatory parameters can all come from the pipeline. None left fails now,
    # for the whole command, as without input.
    possible = [s for s in valid if not _missing_mandatory(cmd, s, bound, True)]
    try:
        chosen = _choose_set(cmd, valid, bound, True)
    except PSError:
        if not possible:
            raise
        # Ambiguous without input; each object's binding settles its own set.
        chosen = possible[0]
    return bind_pipeline.PipelineCall(
        name=cmd.name,
        parameter_set=chosen,
        params=bound,
        pipeline=bind_pipeline.bind_inputs(cmd, possible, bound, inputs),
        array_params=bind_pipeline.array_params(cmd),
    )
