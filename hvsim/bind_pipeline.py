"""Binding pipeline input objects to a cmdlet's parameters, as PowerShell does.

hvsim.bind binds the command line (named, then positional). When the command
receives pipeline input, this module binds each input object on top of that,
in PowerShell's order (docs/binding.md, "Pipeline input"):

1. ByValue without coercion: the object's type is the parameter's type, or
   derives from it (an array parameter takes one element of its type).
2. ByPropertyName without coercion: a property named like the parameter (or
   one of its aliases) whose value has the parameter's type.
3. ByValue with coercion: the object converted to the parameter's type.
4. ByPropertyName with coercion.

In each step the parameters of the default set are tried first, while that set
is still possible; only if none of them binds are the other possible sets
tried. Every step that binds something narrows the possible sets to those that
contain all parameters bound so far. An object that binds nothing is reported
as InputObjectNotBound and skipped; a binding error is reported for that object
only. Both are non-terminating, as PowerShell writes them.

hvsim runs a handler once for a run of consecutive objects that bound the same
parameters in the same set (hvsim.registry: a handler gets the whole input);
PipelineCall.runs() gives those runs with the bound values merged.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import uuid
from collections.abc import Iterable
from typing import Any

from hvsim import objects
from hvsim.bind import (
    TRANSFORMATION_EXCEPTION,
    VALIDATION_EXCEPTION,
    _ambiguous_set,
    _base_type,
    _binding_error,
    _check_mandatory_values,
    _clr_name,
    _missing_mandatory,
    convert,
)
from hvsim.catalog import Cmdlet, Parameter
from hvsim.errors import PSError
from hvsim.registry import Call

__all__ = ["BoundInput", "PipelineCall", "PipelineRun", "bind_inputs"]

NOT_BOUND = (
    "The input object cannot be bound to any parameters for the command either because the "
    "command does not take pipeline input or the input and its properties do not match any of "
    "the parameters that take pipeline input."
)
# PowerShell puts a space before each missing name (so two after the colon) and
# no full stop; seen in published output ("...mandatory parameters:  Id").
MISSING_FROM_INPUT = (
    "The input object cannot be bound because it did not contain the information required to "
    "bind all mandatory parameters: "
)

DESERIALIZED = "Deserialized."


@dataclasses.dataclass
class BoundInput:
    """One pipeline input object, the parameters it bound (converted) and its set."""

    input: Any
    params: dict[str, Any]
    parameter_set: str


@dataclasses.dataclass
class PipelineRun:
    """Consecutive input objects that bound the same parameters in the same set,
    as one call: the command-line parameters plus the merged pipeline values."""

    call: Call
    inputs: list[Any]


@dataclasses.dataclass
class PipelineCall(Call):
    """A call of a command that receives pipeline input.

    `params` and `parameter_set` are the command-line binding (the set is the one
    chosen as if the input were absent, as before pipeline binding existed).
    `pipeline` holds, in input order, a BoundInput per object that bound, or the
    non-terminating PSError an object produced instead.
    """

    pipeline: list[BoundInput | PSError] = dataclasses.field(default_factory=list)
    array_params: frozenset[str] = frozenset()

    def runs(self, keep: Iterable[str] | None = None) -> list[PipelineRun | PSError]:
        """What the executor does, in order: handler runs and errors to write.

        Consecutive objects with the same set and the same bound parameters form
        one run. A parameter bound from several objects holds their values in
        input order: an array parameter the concatenation, a scalar one the list
        of values (a single object gives the scalar itself). `keep` limits the
        pipeline-bound parameters that reach the call to those a handler
        declares; handlers that predate pipeline binding read ctx.input instead.
        With no input objects at all, the one run is the command-line call.
        """
        if not self.pipeline:
            return [PipelineRun(Call(self.name, self.parameter_set, dict(self.params)), [])]
        wanted = {k.lower() for k in keep} if keep is not None else None
        out: list[PipelineRun | PSError] = []
        group: list[BoundInput] = []

        def flush() -> None:
            if group:
                out.append(self._merge(group, wanted))
                group.clear()

        for item in self.pipeline:
            if isinstance(item, PSError):
                flush()
                out.append(item)
                continue
            if group and (
                group[0].parameter_set != item.parameter_set
                or group[0].params.keys() != item.params.keys()
            ):
                flush()
            group.append(item)
        flush()
        return out

    def _merge(self, group: list[BoundInput], wanted: set[str] | None) -> PipelineRun:
        params = dict(self.params)
        for name in group[0].params:
            if wanted is not None and name.lower() not in wanted:
                continue
            values = [b.params[name] for b in group]
            if name in self.array_params:
                params[name] = [v for value in values for v in _as_list(value)]
            else:
                params[name] = values[0] if len(values) == 1 else values
        call = Call(self.name, group[0].parameter_set, params)
        return PipelineRun(call, [b.input for b in group])


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return [None]
    return list(value) if isinstance(value, list | tuple) else [value]


# ---------------------------------------------------------------------------
# Types: what an input object is, as the binder sees it


# Catalog types that are .NET value types: null never binds to them without
# coercion. Anything not listed (Hyper-V, CIM, cluster objects ...) is a class.
_VALUE_TYPES = frozenset(
    {
        "Boolean",
        "SwitchParameter",
        "Byte",
        "SByte",
        "Int16",
        "UInt16",
        "Int32",
        "UInt32",
        "Int64",
        "UInt64",
        "Single",
        "Double",
        "Decimal",
        "Guid",
        "TimeSpan",
        "DateTime",
        "ActionPreference",
    }
)


def type_names(value: Any) -> list[str]:
    """The .NET type and its base types, most derived first, of a value the model
    hands around (hvsim.objects). Model objects carry their own list."""
    if isinstance(value, objects.PSObj):
        return list(value.type_names)
    if isinstance(value, objects.PSEnum):
        return [value.type_name, "System.Enum", "System.ValueType", "System.Object"]
    if isinstance(value, list | tuple):
        return ["System.Object[]", "System.Array", "System.Object"]
    clr = _clr_name(value)
    if isinstance(value, bool | int | float | uuid.UUID | _dt.datetime | _dt.timedelta):
        if isinstance(value, _dt.timedelta):
            clr = "System.TimeSpan"
        elif isinstance(value, _dt.datetime):
            clr = "System.DateTime"
        return [clr, "System.ValueType", "System.Object"]
    return [clr, "System.Object"] if clr != "System.Object" else ["System.Object"]


def _clr_type(name: str) -> str:
    # "Microsoft.Management.Infrastructure.CimInstance#ROOT/.../MSFT_Disk" is a
    # CimInstance decorated with its CIM class: the .NET type is the part before '#'.
    return name.split("#", 1)[0]


def _same_type(type_name: str, wanted: str) -> bool:
    """Does the .NET type `type_name` (full) match a catalog type without `[]`?
    A full catalog name ('System.String') must match whole; a short one
    ('VirtualMachine') matches the last segment (the catalog's Windows pages
    write short names)."""
    have = _clr_type(type_name).lower()
    want = wanted.lower()
    if "." in want:
        return have == want
    return have.rsplit(".", 1)[-1] == want


def _is_deserialized(value: Any) -> bool:
    names = type_names(value)
    return bool(names) and names[0].startswith(DESERIALIZED)


# Storage cmdlets are CDXML: their object parameters are CimInstance with a
# PSTypeName that names the CIM class (-DiskImage takes MSFT_DiskImage,
# -Partition MSFT_Partition, ...), so `Get-DiskImage | Get-Volume` binds only
# -DiskImage. The catalog types them all "CimInstance"; these names carry the class.
_CIM_CLASS_PARAMS = frozenset(
    {
        "diskimage",
        "partition",
        "volume",
        "disk",
        "virtualdisk",
        "storagepool",
        "physicaldisk",
        "storagesubsystem",
        "storagenode",
        "fileshare",
        "storagejob",
        "storagefileserver",
        "iscsisession",
        "iscsiconnection",
    }
)


def _cim_class_fits(value: Any, p: Parameter) -> bool:
    base, _ = _base_type(p.type)
    if base != "CimInstance" or p.name.lower() not in _CIM_CLASS_PARAMS:
        return True
    decorated = [n for n in type_names(value) if "#" in n]
    if not decorated:
        return True
    cim_class = decorated[0].split("#", 1)[1].rsplit("/", 1)[-1]
    return cim_class.lower() == "msft_" + p.name.lower()


def assignable(value: Any, p: Parameter) -> bool:
    """Would PowerShell bind `value` to `p` without coercion?

    The value's type (or a base type) must be the parameter's type; an array
    parameter takes a single element of its element type. Object and PSObject
    take anything. A deserialized object (Deserialized.* type names: a property
    bag, no longer the live .NET type) is a PSObject around a PSCustomObject, so
    it matches only Object and PSObject parameters.
    """
    raw = p.type[:-2] if p.type.endswith("[]") else p.type
    base, is_array = _base_type(p.type)
    if base in ("Object", "PSObject"):
        return True
    if value is None:
        # PowerShell binds null uncoerced to reference types other than String.
        return is_array or (base not in _VALUE_TYPES and base != "String" and not p.values)
    if isinstance(value, list | tuple):
        return False  # an Object[] only fits Object/PSObject parameters (above)
    if _is_deserialized(value):
        return False
    if not _cim_class_fits(value, p):
        return False
    if raw.rsplit(".", 1)[-1] == "StringCollection":
        raw = "String"
    return any(_same_type(n, raw) for n in type_names(value))


# Types hvsim can convert into (hvsim.bind.convert). Conversions into Hyper-V,
# CIM and other object types (constructors, casts, PSObject property copies)
# are not modelled: no object a lab pipes would convert that way.
_CONVERTIBLE = _VALUE_TYPES | {
    "String",
    "SecureString",
    "PSCredential",
    "ScriptBlock",
    "Hashtable",
    "IDictionary",
    "RegistryValueKind",
}


def _coercible(p: Parameter) -> bool:
    base, _ = _base_type(p.type)
    return base in _CONVERTIBLE or bool(p.values)


def property_of(value: Any, p: Parameter) -> tuple[bool, Any]:
    """(found, value) of the property named like `p` or one of its aliases.

    Property names are case-insensitive; note properties (<MS>) are found
    like adapted ones. Hashtable keys are not properties (PowerShell does not
    bind them by property name), and primitives have none modelled."""
    if not isinstance(value, objects.PSObj):
        return False, None
    table: dict[str, Any] = {}
    for source in (value.props, value.notes):
        for key, item in source.items():
            table.setdefault(key.lower(), item)
    for name in (p.name, *p.aliases):
        if name.lower() in table:
            return True, table[name.lower()]
    return False, None


# ---------------------------------------------------------------------------
# The per-object state machine

_BY_VALUE = "v"
_BY_PROPERTY = "p"
# PowerShell's four steps, in order (CmdletParameterBinderController, "CurrentlyBinding").
_STEPS = ((_BY_VALUE, False), (_BY_PROPERTY, False), (_BY_VALUE, True), (_BY_PROPERTY, True))


def _takes(p: Parameter, kind: str) -> bool:
    pipe = p.pipe or ""
    if pipe == "v?":
        # The page says "True" without saying how (2 parameters in the catalog):
        # accept both rather than refuse input a real host may take.
        return True
    return kind in pipe


class _NotBound(Exception):
    pass


def _try(cmd: Cmdlet, p: Parameter, value: Any, kind: str, coerce: bool) -> tuple[bool, Any]:
    """Bind one candidate value; (False, None) when this step does not bind it.

    A failed conversion only means "not this way". A validation failure (a
    ValidateSet, an empty mandatory string) is an error for this object, as is
    a failed argument transformation of a value taken by property name."""
    if coerce:
        if not _coercible(p):
            return False, None
    elif not assignable(value, p):
        return False, None
    try:
        return True, convert(cmd, p, value)
    except PSError as err:
        if err.exception == VALIDATION_EXCEPTION:
            raise
        if err.exception == TRANSFORMATION_EXCEPTION and kind == _BY_PROPERTY:
            raise
        return False, None


def _bind_step(
    cmd: Cmdlet,
    sets: list[str],
    bound: dict[str, Any],
    got: dict[str, Any],
    value: Any,
    kind: str,
    coerce: bool,
) -> bool:
    hit = False
    for p in cmd.params.values():
        if p.common or p.name in bound or p.name in got or not _takes(p, kind):
            continue
        if not any(s in p.sets for s in sets):
            continue
        if kind == _BY_PROPERTY:
            found, candidate = property_of(value, p)
            if not found:
                continue
        else:
            candidate = value
        ok, converted = _try(cmd, p, candidate, kind, coerce)
        if ok:
            got[p.name] = converted
            hit = True
    return hit


def _bind_one(cmd: Cmdlet, sets: list[str], bound: dict[str, Any], value: Any) -> BoundInput:
    valid = list(sets)
    got: dict[str, Any] = {}
    for kind, coerce in _STEPS:
        default = cmd.default_set if cmd.default_set in valid else None
        hit = default is not None and _bind_step(cmd, [default], bound, got, value, kind, coerce)
        if not hit:
            others = [s for s in valid if s != default]
            hit = bool(others) and _bind_step(cmd, others, bound, got, value, kind, coerce)
        if hit:
            valid = [s for s in valid if all(s in cmd.params[n].sets for n in got)]
            if not valid:
                raise _ambiguous_set(cmd)
    if not got:
        raise _NotBound
    _check_mandatory_values(cmd, got)
    return BoundInput(value, got, _set_for_input(cmd, valid, {**bound, **got}))


def _set_for_input(cmd: Cmdlet, valid: list[str], bound: dict[str, Any]) -> str:
    """The set once an object is bound: as hvsim.bind chooses it without input,
    except that a missing mandatory parameter is this object's failure."""
    satisfied = [s for s in valid if not _missing_mandatory(cmd, s, bound, False)]
    default = cmd.default_set
    if len(satisfied) == 1:
        return satisfied[0]
    if default in satisfied:
        return default
    if satisfied:
        if default is None:
            return satisfied[0]  # as hvsim.bind: first qualifying set in SYNTAX order
        raise _ambiguous_set(cmd)
    target = default if default in valid else valid[0]
    missing = _missing_mandatory(cmd, target, bound, False)
    raise _binding_error(
        cmd, "InputObjectMissingMandatory", MISSING_FROM_INPUT + "".join(f" {m}" for m in missing)
    )


def bind_inputs(
    cmd: Cmdlet, sets: list[str], bound: dict[str, Any], inputs: list[Any]
) -> list[BoundInput | PSError]:
    """Bind each input object on top of the command-line binding `bound`, within
    the parameter sets `sets` still possible before input. Errors are per object:
    the ErrorRecord's target is the object."""
    out: list[BoundInput | PSError] = []
    for value in inputs:
        try:
            out.append(_bind_one(cmd, sets, bound, value))
        except _NotBound:
            err = _binding_error(cmd, "InputObjectNotBound", NOT_BOUND)
            err.target = value
            out.append(err)
        except PSError as err:
            err.target = value
            out.append(err)
    return out


def array_params(cmd: Cmdlet) -> frozenset[str]:
    """Names of the parameters whose type is an array or collection."""
    return frozenset(p.name for p in cmd.params.values() if _base_type(p.type)[1])
