"""Values of the PowerShell subset: conversion, operators, members, casts.

Rules from about_Operators, about_Comparison_Operators, about_Arithmetic_
Operators and about_Type_Conversion, reduced to the value kinds the subset
has: $null, bool, int, float, string, array (list), hashtable (dict),
SecureString and objects (hvsim.objects.PSObj, [PSCustomObject]).
Comparisons of strings are case-insensitive, as PowerShell's default.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import re
import uuid
from typing import Any

from hvsim import objects
from hvsim.errors import PSError, not_modelled

CUSTOM = ["System.Management.Automation.PSCustomObject", "System.Object"]


class _Void:
    """What a void .NET method returns: nothing reaches the pipeline."""

    def __repr__(self) -> str:
        return "VOID"


VOID = _Void()


@dataclasses.dataclass(frozen=True)
class Block(objects.ScriptBlock):
    """A script block value ({ ... }) with its parsed body; binds as a ScriptBlock."""

    script: Any = dataclasses.field(default=None, compare=False)

    def __str__(self) -> str:
        return self.text


def runtime_error(message: str, fqid: str, category: str = "InvalidOperation") -> PSError:
    return PSError(
        message,
        fqid=fqid,
        category=category,
        exception="System.Management.Automation.RuntimeException",
    )


def custom(props: dict[str, Any]) -> objects.PSObj:
    return objects.PSObj(list(CUSTOM), {}, "", dict(props))


def is_custom(value: Any) -> bool:
    return isinstance(value, objects.PSObj) and value.type_names[:1] == CUSTOM[:1]


# ------------------------------------------------------------------ conversion


def to_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, list | tuple):
        return " ".join(to_str(v) for v in value)
    if isinstance(value, dict):
        return "System.Collections.Hashtable"
    if isinstance(value, objects.SecureString):
        return "System.Security.SecureString"
    if isinstance(value, objects.PSObj):
        if is_custom(value):
            inner = "; ".join(f"{k}={to_str(v)}" for k, v in {**value.props, **value.notes}.items())
            return "@{" + inner + "}"
        return value.to_string or (value.type_names[0] if value.type_names else "")
    return str(value)


def truthy(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value != ""
    if isinstance(value, list | tuple):
        if not value:
            return False
        return truthy(value[0]) if len(value) == 1 else True
    return True


def to_number(value: Any) -> int | float:
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return 0
        try:
            return int(text, 16) if text.lower().startswith("0x") else int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                pass
    raise runtime_error(
        f'Cannot convert value "{to_str(value)}" to type "System.Int32". Error: "Input string '
        'was not in a correct format."',
        "InvalidCastFromStringToInteger",
        "InvalidArgument",
    )


# ------------------------------------------------------------------ operators


def unary(op: str, value: Any) -> Any:
    if op == "not":
        return not truthy(value)
    n = to_number(value)
    return -n if op == "-" else n


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, str) and b is not None and not isinstance(b, str):
        b = to_str(b)
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    if isinstance(a, int | float) and isinstance(b, str) and not isinstance(a, bool):
        try:
            return a == to_number(b)
        except PSError:
            return False
    if isinstance(a, bool) and not isinstance(b, bool):
        return a == truthy(b)
    return bool(a == b)


def _cmp(a: Any, b: Any) -> int:
    if isinstance(a, str):
        x, y = a.lower(), to_str(b).lower()
    else:
        x, y = to_number(a), to_number(b)
    return (x > y) - (x < y)


def _compare(op: str, a: Any, b: Any) -> bool:
    if op in ("eq", "ieq", "ceq"):
        return a == b if op == "ceq" else _eq(a, b)
    if op in ("ne", "ine", "cne"):
        return a != b if op == "cne" else not _eq(a, b)
    if op == "gt":
        return _cmp(a, b) > 0
    if op == "ge":
        return _cmp(a, b) >= 0
    if op == "lt":
        return _cmp(a, b) < 0
    if op == "le":
        return _cmp(a, b) <= 0
    if op in ("like", "notlike"):
        hit = fnmatch.fnmatchcase(to_str(a).lower(), to_str(b).lower())
        return hit if op == "like" else not hit
    if op in ("match", "notmatch"):
        hit = re.search(to_str(b), to_str(a), re.I) is not None
        return hit if op == "match" else not hit
    raise not_modelled(f"the -{op} operator")


def binary(op: str, a: Any, b: Any) -> Any:
    if op in ("contains", "notcontains"):
        items = a if isinstance(a, list) else [a]
        hit = any(_eq(x, b) for x in items)
        return hit if op == "contains" else not hit
    if op in ("in", "notin"):
        items = b if isinstance(b, list) else [b]
        hit = any(_eq(x, a) for x in items)
        return hit if op == "in" else not hit
    if op in (
        "eq",
        "ne",
        "gt",
        "ge",
        "lt",
        "le",
        "like",
        "notlike",
        "match",
        "notmatch",
        "ieq",
        "ine",
        "ceq",
        "cne",
    ):
        if isinstance(a, list):
            # A collection on the left filters: the matching elements.
            return [x for x in a if _compare(op, x, b)]
        return _compare(op, a, b)
    if op == "f":
        return format_string(to_str(a), b if isinstance(b, list) else [b])
    if op == "join":
        items = a if isinstance(a, list) else [a]
        return to_str(b).join(to_str(x) for x in items)
    if op == "split":
        return re.split(to_str(b), to_str(a), flags=re.I)
    if op == "replace":
        pattern, repl = ([*b, ""])[:2] if isinstance(b, list) else (b, "")
        return re.sub(
            to_str(pattern), re.sub(r"\$(\d)", r"\\\1", to_str(repl)), to_str(a), flags=re.I
        )
    if op == "..":
        lo, hi = int(to_number(a)), int(to_number(b))
        if abs(hi - lo) > 100_000:
            raise not_modelled("ranges of more than 100,000 numbers")
        step = 1 if hi >= lo else -1
        return list(range(lo, hi + step, step))
    if op == "+":
        if a is None:
            return b
        if isinstance(a, list):
            return a + (b if isinstance(b, list) else [b])
        if isinstance(a, dict):
            if not isinstance(b, dict):
                raise runtime_error(
                    "A hash table can only be added to another hash table.",
                    "AddHashTableToNonHashTable",
                )
            dup = [k for k in b if any(_eq(k, x) for x in a)]
            if dup:
                raise runtime_error(
                    f"Item has already been added. Key in dictionary: '{to_str(dup[0])}'",
                    "DuplicateKeyInHashLiteral",
                )
            return {**a, **b}
        if isinstance(a, str):
            return a + to_str(b)
        return _arith(op, a, b)
    if op == "*":
        if isinstance(a, str):
            count = int(to_number(b))
            if count * len(a) > 64 * 1024 * 1024:
                raise not_modelled("strings longer than 64 MiB")
            return a * max(count, 0)
        if isinstance(a, list):
            count = int(to_number(b))
            if count * len(a) > 1_000_000:
                raise not_modelled("arrays of more than 1,000,000 elements")
            return a * max(count, 0)
        return _arith(op, a, b)
    if op in ("-", "/", "%"):
        return _arith(op, a, b)
    raise not_modelled(f"the -{op} operator")


def _arith(op: str, a: Any, b: Any) -> Any:
    x, y = to_number(a), to_number(b)
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if y == 0 and op in ("/", "%"):
        raise runtime_error("Attempted to divide by zero.", "RuntimeException")
    if op == "/":
        q = x / y
        return int(q) if isinstance(x, int) and isinstance(y, int) and q.is_integer() else q
    return math.fmod(x, y) if isinstance(x, float) or isinstance(y, float) else int(math.fmod(x, y))


_FORMAT_ITEM = re.compile(r"\{\{|\}\}|\{(\d+)(?:,(-?\d+))?(?::([^}]*))?\}")


def format_string(fmt: str, args: list[Any]) -> str:
    """.NET composite formatting ({0}, {1,8}, {0:N2}, {0:D4}, {0:X}) for -f."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "{{":
            return "{"
        if m.group(0) == "}}":
            return "}"
        i = int(m.group(1))
        if i >= len(args):
            raise runtime_error(
                "Error formatting a string: Index (zero based) must be greater than or equal to "
                "zero and less than the size of the argument list..",
                "FormatError",
            )
        value = args[i]
        spec = (m.group(3) or "").strip()
        if spec and isinstance(value, int | float) and not isinstance(value, bool):
            kind, digits = spec[0].upper(), spec[1:]
            if kind == "N":
                text = f"{value:,.{int(digits or 2)}f}"
            elif kind == "F":
                text = f"{value:.{int(digits or 2)}f}"
            elif kind == "D":
                text = f"{int(value):0{int(digits or 1)}d}"
            elif kind == "X":
                text = f"{int(value):0{int(digits or 1)}{'X' if spec[0] == 'X' else 'x'}}"
            else:
                raise not_modelled(f"the format specifier '{spec}'")
        elif spec:
            raise not_modelled(f"the format specifier '{spec}'")
        else:
            text = to_str(value)
        width = int(m.group(2) or 0)
        return text.rjust(width) if width > 0 else text.ljust(-width)

    return _FORMAT_ITEM.sub(one, fmt)


# ------------------------------------------------------------------ members


def member(target: Any, name: str) -> Any:
    key = name.lower()
    if isinstance(target, list):
        if key in ("count", "length"):
            return len(target)
        # Member enumeration: the property of each element.
        return [member(x, name) for x in target if x is not None]
    if target is None:
        return None
    if isinstance(target, dict):
        for k, v in target.items():
            if isinstance(k, str) and k.lower() == key:
                return v
        if key == "count":
            return len(target)
        if key == "keys":
            return list(target)
        if key == "values":
            return list(target.values())
        return None
    if isinstance(target, str):
        if key == "length":
            return len(target)
        return None
    if isinstance(target, objects.PSObj):
        for table in (target.props, target.notes):
            for k, v in table.items():
                if k.lower() == key:
                    return v
        return None
    if isinstance(target, objects.SecureString):
        return len(target.reveal()) if key == "length" else None
    if key in ("count", "length"):
        return 1
    return None


def set_member(target: Any, name: str, value: Any) -> None:
    if isinstance(target, dict):
        for k in list(target):
            if isinstance(k, str) and k.lower() == name.lower():
                target[k] = value
                return
        target[name] = value
        return
    if isinstance(target, objects.PSObj):
        for table in (target.props, target.notes):
            for k in list(table):
                if k.lower() == name.lower():
                    table[k] = value
                    return
    raise runtime_error(
        f"The property '{name}' cannot be found on this object. Verify that the property exists "
        "and can be set.",
        "PropertyAssignmentException",
    )


def index(target: Any, key: Any) -> Any:
    if isinstance(target, dict):
        for k, v in target.items():
            if _eq(k, key) if isinstance(k, str) else k == key:
                return v
        return None
    if isinstance(key, list):
        return [index(target, k) for k in key]
    if isinstance(target, list | str):
        i = int(to_number(key))
        if -len(target) <= i < len(target):
            return target[i]
        return None
    if target is None:
        raise runtime_error("Cannot index into a null array.", "NullArray")
    if int(to_number(key)) in (0, -1):
        return target
    return None


def set_index(target: Any, key: Any, value: Any) -> None:
    if isinstance(target, dict):
        target[key] = value
        return
    if isinstance(target, list):
        i = int(to_number(key))
        if -len(target) <= i < len(target):
            target[i] = value
            return
        raise runtime_error("Index was outside the bounds of the array.", "IndexOutOfRange")
    raise not_modelled("assigning by index to this kind of value")


_STRING_METHODS = {
    "toupper": lambda s, a: s.upper(),
    "tolower": lambda s, a: s.lower(),
    "trim": lambda s, a: s.strip(*(a[:1] and [to_str(a[0])])),
    "trimstart": lambda s, a: s.lstrip(*(a[:1] and [to_str(a[0])])),
    "trimend": lambda s, a: s.rstrip(*(a[:1] and [to_str(a[0])])),
    "tostring": lambda s, a: s,
    "contains": lambda s, a: to_str(a[0]) in s,
    "startswith": lambda s, a: s.startswith(to_str(a[0])),
    "endswith": lambda s, a: s.endswith(to_str(a[0])),
    "replace": lambda s, a: s.replace(to_str(a[0]), to_str(a[1])),
    "split": lambda s, a: s.split(to_str(a[0])) if a else s.split(),
    "substring": lambda s, a: s[int(to_number(a[0])) :][
        : int(to_number(a[1])) if len(a) > 1 else None
    ],
    "indexof": lambda s, a: s.find(to_str(a[0])),
}


def method(target: Any, name: str, args: list[Any]) -> Any:
    key = name.lower()
    if key == "tostring" and not args:
        return to_str(target)
    if key == "gettype":
        raise not_modelled("GetType() and .NET reflection")
    if isinstance(target, str) and key in _STRING_METHODS:
        try:
            return _STRING_METHODS[key](target, args)
        except IndexError:
            raise runtime_error(
                f'Cannot find an overload for "{name}" and the argument count: "{len(args)}".',
                "MethodCountCouldNotFindBest",
            ) from None
    if isinstance(target, dict) and key in ("containskey", "add", "remove"):
        if key == "containskey":
            return any(_eq(k, args[0]) for k in target)
        if key == "add":
            target[args[0]] = args[1]
            return VOID
        target.pop(args[0], None)
        return VOID
    kind = type(target).__name__ if target is not None else "null"
    raise not_modelled(f"the method {name}() on a {kind} value")


def _temp(session: Any) -> str:
    from hvsim.filetransfer import ensure_profile

    ensure_profile(session.machine, session.owner)
    return f"C:\\Users\\{session.user_name}\\AppData\\Local\\Temp\\"


def static(type_name: str, name: str, call: bool, args: list[Any], session: Any) -> Any:
    """The few .NET static members scripts use for paths, ids and characters."""
    t = type_name.lower().removeprefix("system.")
    key = (t, name.lower(), call)
    if key == ("guid", "newguid", True):
        return str(uuid.uuid4())
    if key == ("io.path", "gettemppath", True):
        return _temp(session)
    if key == ("io.path", "getrandomfilename", True):
        raw = uuid.uuid4().hex
        return f"{raw[:8]}.{raw[8:11]}"
    if key == ("char", "convertfromutf32", True):
        return chr(int(to_number(args[0])))
    if key == ("environment", "expandenvironmentvariables", True):
        text = to_str(args[0])

        def env(m: re.Match[str]) -> str:
            hit = session.env.get(m.group(1).lower())
            return hit[1] if hit else m.group(0)

        return re.sub(r"%([^%]+)%", env, text)
    if key == ("environment", "machinename", False):
        return session.computer
    if key == ("int32", "maxvalue", False):
        return 2**31 - 1
    if key == ("math", "round", True):
        return round(to_number(args[0]), int(to_number(args[1])) if len(args) > 1 else 0)
    raise not_modelled(f"the .NET member [{type_name}]::{name}")


# ------------------------------------------------------------------ casts


def cast(type_name: str, value: Any) -> Any:
    t = type_name.lower().removeprefix("system.").removeprefix("management.automation.")
    if t in ("pscustomobject", "psobject") and isinstance(value, dict):
        return custom({to_str(k): v for k, v in value.items()})
    if t in ("pscustomobject", "psobject", "object"):
        return value
    if t == "string":
        return to_str(value)
    if t in ("int", "int32", "long", "int64", "byte", "uint32", "uint64", "int16"):
        n = to_number(value)
        return round(n) if isinstance(n, float) else int(n)
    if t in ("double", "float", "single", "decimal"):
        return float(to_number(value))
    if t in ("bool", "boolean"):
        return truthy(value)
    if t == "char":
        if isinstance(value, int) and not isinstance(value, bool):
            return chr(value)
        text = to_str(value)
        if len(text) != 1:
            raise runtime_error(
                f'Cannot convert value "{text}" to type "System.Char". Error: "String must be '
                'exactly one character long."',
                "InvalidCastParseTargetInvocation",
                "InvalidArgument",
            )
        return text
    if t in ("array", "object[]", "string[]", "int[]"):
        items = value if isinstance(value, list) else [value]
        if t == "string[]":
            return [to_str(x) for x in items]
        if t == "int[]":
            return [int(to_number(x)) for x in items]
        return list(items)
    if t in ("hashtable", "collections.hashtable") and isinstance(value, dict):
        return value
    if t in ("switch", "switchparameter"):
        return truthy(value)
    if t in ("guid",):
        return str(uuid.UUID(to_str(value)))
    if t in ("securestring", "security.securestring") and isinstance(value, objects.SecureString):
        return value
    raise not_modelled(f"the cast to [{type_name}]")
