"""Values between psrpcore's CLIXML types and the model's plain values (hvsim.objects).

Incoming parameters and pipeline input are turned into plain Python and
hvsim.objects values before binding, so the model never sees psrpcore. Outgoing
objects are built as psrpcore objects that carry the real .NET type names.

Depth: Windows remoting serializes objects with depth 1. The top-level object
keeps its properties; a property that is itself a complex object arrives as
its ToString, while primitives, enums and lists of primitives keep their type.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import uuid
from typing import Any

from psrpcore.types import (
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    NETException,
    PSByte,
    PSCredential,
    PSDict,
    PSDouble,
    PSEnumBase,
    PSGuid,
    PSInt,
    PSInt64,
    PSList,
    PSNoteProperty,
    PSObject,
    PSScriptBlock,
    PSSecureString,
    PSString,
    PSType,
    PSUInt,
    PSUInt16,
    PSUInt64,
)

from hvsim import objects
from hvsim.errors import PSError

_INT_TYPES: list[tuple[type, type]] = [
    (objects.Int64, PSInt64),
    (objects.UInt64, PSUInt64),
    (objects.UInt32, PSUInt),
    (objects.UInt16, PSUInt16),
    (objects.Byte, PSByte),
    (objects.Int32, PSInt),
]

_FROM_PS_INT: list[tuple[type, type]] = [
    (PSInt64, objects.Int64),
    (PSUInt64, objects.UInt64),
    (PSUInt, objects.UInt32),
    (PSUInt16, objects.UInt16),
    (PSByte, objects.Byte),
    (PSInt, objects.Int32),
]


# ---------------------------------------------------------------- incoming


def from_ps(value: Any) -> Any:
    """A deserialized psrpcore value as a plain Python / hvsim.objects value."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, PSSecureString):
        return objects.SecureString(value.decrypt())
    if isinstance(value, PSCredential):
        password = value.Password
        secret = (
            objects.SecureString(password.decrypt())
            if isinstance(password, PSSecureString)
            else objects.SecureString(str(password or ""))
        )
        return objects.Credential(str(value.UserName), secret)
    if isinstance(value, PSScriptBlock):
        return objects.ScriptBlock(str(value))
    if isinstance(value, PSEnumBase):
        return int(value.value)
    if isinstance(value, int):
        for ps_type, ours in _FROM_PS_INT:
            if isinstance(value, ps_type):
                return ours(int(value))
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, uuid.UUID):
        return uuid.UUID(str(value))
    if isinstance(value, datetime.datetime):
        return datetime.datetime.fromtimestamp(value.timestamp(), tz=value.tzinfo)
    if isinstance(value, datetime.timedelta):
        return datetime.timedelta(seconds=value.total_seconds())
    if isinstance(value, dict):
        return {from_ps(k): from_ps(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [from_ps(v) for v in value]
    if isinstance(value, PSObject):
        meta = value.PSObject
        props = {p.name: from_ps(p.get_value(value)) for p in meta.adapted_properties}
        notes = {p.name: from_ps(p.get_value(value)) for p in meta.extended_properties}
        return objects.PSObj(list(meta.type_names), props, meta.to_string, notes)
    return value


# ---------------------------------------------------------------- outgoing


@functools.lru_cache(maxsize=4096)
def _enum_member(type_name: str, name: str, value: int) -> Any:
    # psrpcore writes an enum as <Obj><I32/><TN>type, System.Enum, ...</TN><ToString>;
    # a one-member enum class per value is enough to carry type, name and number.
    cls = PSEnumBase(type_name.rsplit(".", 1)[-1] or "Enum", {name: value})
    cls = PSType([type_name], rehydrate=False)(cls)
    return cls[name]


def _primitive(value: Any) -> Any | None:
    """The psrpcore value of a primitive, or None when `value` is complex."""
    if isinstance(value, bool | str | bytes | datetime.datetime | datetime.timedelta):
        return value
    if isinstance(value, uuid.UUID):
        return PSGuid(str(value))
    if isinstance(value, int):
        for ours, ps_type in _INT_TYPES:
            if isinstance(value, ours):
                return ps_type(int(value))
        return PSInt(value) if -(2**31) <= value < 2**31 else PSInt64(value)
    if isinstance(value, float):
        return PSDouble(value)
    if isinstance(value, objects.PSEnum):
        return _enum_member(value.type_name, value.name, int(value.value))
    if isinstance(value, objects.SecureString):
        return PSSecureString(value.reveal())
    if isinstance(value, objects.ScriptBlock):
        return PSScriptBlock(value.text)
    return None


def _to_string(value: Any) -> str:
    if isinstance(value, objects.PSObj):
        return value.to_string or (value.type_names[0] if value.type_names else "System.Object")
    if isinstance(value, dict):
        return "System.Collections.Hashtable"
    if isinstance(value, objects.Credential):
        return "System.Management.Automation.PSCredential"
    return str(value)


def to_ps(value: Any, depth: int = 1) -> Any:
    """A model value as a psrpcore value, serialized to `depth` levels of properties."""
    if value is None:
        return None
    prim = _primitive(value)
    if prim is not None:
        return prim
    if isinstance(value, list | tuple):
        return PSList([to_ps(v, depth - 1) if depth > 0 else _shallow(v) for v in value])
    if depth <= 0:
        return _to_string(value)
    if isinstance(value, dict):
        out = PSDict()
        for k, v in value.items():
            out[to_ps(k, 0)] = to_ps(v, depth - 1)
        return out
    if isinstance(value, objects.Credential):
        return PSCredential(UserName=value.user, Password=PSSecureString(value.password.reveal()))
    if isinstance(value, objects.PSObj):
        obj = PSObject()
        meta = obj.PSObject
        meta.type_names = list(value.type_names)
        for name, v in value.props.items():
            meta.adapted_properties.append(PSNoteProperty(name, to_ps(v, depth - 1)))
        for name, v in value.notes.items():
            meta.extended_properties.append(PSNoteProperty(name, to_ps(v, depth - 1)))
        meta.to_string = encode_to_string(_to_string(value))
        return obj
    return PSString(str(value))


def encode_to_string(text: str) -> str:
    """A <ToString> value encoded as [MS-PSRP] 2.2.5.2.4 says for strings (a CR,
    other control characters and "_x" as _xHHHH_). psrpcore 0.3.1 writes
    <ToString> raw, so a CR would reach the client as LF (XML end-of-line
    handling); its reader already decodes the escapes. Encoding here, before
    psrpcore writes the element, is the wrapper around that gap."""
    from psrpcore.types._serializer import _serialize_string

    return str(_serialize_string(text))


def _shallow(value: Any) -> Any:
    prim = _primitive(value)
    return prim if prim is not None or value is None else _to_string(value)


# ---------------------------------------------------------------- errors

_EXCEPTION_BASES = ["System.SystemException", "System.Exception", "System.Object"]


def error_record(err: PSError, command: str | None) -> ErrorRecord:
    """An ErrorRecord as PowerShell writes it for a PSError raised by `command`."""
    exc = NETException(Message=err.message, HResult=-2146233087)
    names = [err.exception]
    names += [n for n in _EXCEPTION_BASES if n != err.exception]
    exc.PSObject.type_names = names
    try:
        category = ErrorCategory[err.category]
    except KeyError:
        category = ErrorCategory.NotSpecified
    target = err.target
    target_type = None
    if target is not None:
        target_type = {str: "String", int: "Int32", bool: "Boolean"}.get(type(target))
        if isinstance(target, objects.PSObj) and target.type_names:
            target_type = target.type_names[0].rsplit(".", 1)[-1]
    info = ErrorCategoryInfo(
        Category=category,
        Activity=err.activity or command or "",
        Reason=err.exception.rsplit(".", 1)[-1],
        TargetName=_to_string(target) if target is not None else "",
        TargetType=target_type or "",
    )
    return ErrorRecord(
        Exception=exc,
        CategoryInfo=info,
        TargetObject=to_ps(target, 0) if target is not None else None,
        FullyQualifiedErrorId=err.fqid,
    )
