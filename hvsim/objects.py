"""Values the model hands to the wire, typed as .NET types but free of psrpcore.

The model (hvsim.model, hvsim.cmdlets) builds these; hvsim.psrp turns them into
CLIXML. Keeping them plain lets tests read the model without a transport.

Mapping to .NET, applied by the serializer:
  str -> String, bool -> Boolean, float -> Double, None -> Nil,
  int -> Int32 when it fits, else Int64 (use the wrappers for exact types),
  uuid.UUID -> Guid, datetime -> DateTime, timedelta -> TimeSpan,
  list/tuple -> Object[], dict -> Hashtable, PSObj -> Obj, PSEnum -> enum Obj.
"""

from __future__ import annotations

import dataclasses
from typing import Any


class _Typed(int):
    """An int that remembers its .NET integer type."""

    clr: str = "System.Int32"
    lo: int = -(2**31)
    hi: int = 2**31 - 1

    def __new__(cls, value: int) -> _Typed:
        v = int(value)
        if not cls.lo <= v <= cls.hi:
            raise OverflowError(f"{v} does not fit {cls.clr}")
        return super().__new__(cls, v)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({int(self)})"


class Int32(_Typed):
    clr = "System.Int32"


class Int64(_Typed):
    clr, lo, hi = "System.Int64", -(2**63), 2**63 - 1


class UInt64(_Typed):
    clr, lo, hi = "System.UInt64", 0, 2**64 - 1


class UInt32(_Typed):
    clr, lo, hi = "System.UInt32", 0, 2**32 - 1


class UInt16(_Typed):
    clr, lo, hi = "System.UInt16", 0, 2**16 - 1


class Byte(_Typed):
    clr, lo, hi = "System.Byte", 0, 255


@dataclasses.dataclass(frozen=True)
class PSEnum:
    """An enum value: serialized with TN [type, System.Enum, ...], ToString=name, I32=value."""

    type_name: str
    name: str
    value: int

    def __str__(self) -> str:
        return self.name


@dataclasses.dataclass
class PSObj:
    """A .NET object: type names (most derived first), adapted properties, ToString.

    `props` are adapted properties (<Props>); `notes` are note properties (<MS>),
    for example PSComputerName on objects that came back through Invoke-Command.
    """

    type_names: list[str]
    props: dict[str, Any]
    to_string: str | None = None
    notes: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        if key in self.props:
            return self.props[key]
        return self.notes[key]

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default


class SecureString:
    """A decrypted SecureString as the model sees it. Never shows its value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecureString(****)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecureString) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("SecureString", self._value))


@dataclasses.dataclass(frozen=True)
class Credential:
    """A PSCredential: user name as given (DOMAIN\\user, .\\user or user) and password."""

    user: str
    password: SecureString

    def __repr__(self) -> str:
        return f"Credential({self.user!r}, ****)"


@dataclasses.dataclass(frozen=True)
class ScriptBlock:
    """A ScriptBlock value (<SBK>): text only; hvsim cannot run arbitrary scripts."""

    text: str
