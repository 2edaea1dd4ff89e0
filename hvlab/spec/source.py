"""Reading a lab file safely: size, encoding, YAML syntax, aliases, line numbers.

The YAML is composed into nodes (pyyaml's compose step) and converted here, so
each value keeps the line it came from. Aliases are refused outright: a lab file
has a `defaults` section for repeated values, and refusing aliases closes the
"billion laughs" expansion attack without a counting heuristic. Only the plain
YAML types (map, seq, str, int, float, bool, null) are accepted.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from hvlab.errors import SpecError
from hvlab.spec.names import show

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 32

Loc = tuple[str | int, ...]

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null")}
# Dates written without quotes stay strings: no lab field is a date.
_AS_TEXT_TAGS = {_TAG + "timestamp"}


@dataclasses.dataclass
class Document:
    """A parsed lab file: plain data plus the 1-based line of every value."""

    path: str
    data: dict[str, Any]
    lines: dict[Loc, int]

    def line_of(self, loc: Loc) -> int | None:
        """The line of `loc`, or of its nearest parent that has one."""
        while True:
            if loc in self.lines:
                return self.lines[loc]
            if not loc:
                return None
            loc = loc[:-1]


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _LabLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and deep nesting while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _Refused(
                f"line {event.start_mark.line + 1}: YAML aliases (*{event.anchor}) are not "
                "allowed in lab files; write the value out, or put shared values under `defaults`"
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()
                raise _Refused(
                    f"line {event.start_mark.line + 1}: nesting deeper than {MAX_DEPTH} levels"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def read_document(path: Path, display: str) -> Document:
    """Read and parse a lab file, or raise SpecError saying exactly what is wrong."""
    return parse_document(_read_text(path, display), display)


def parse_document(text: str, display: str) -> Document:
    """Parse lab YAML text (already read and decoded)."""
    try:
        loader = _LabLoader(text)
    except yaml.reader.ReaderError as err:
        # The reader refuses control characters before parsing starts.
        line = text[: err.position].count("\n") + 1
        raise SpecError(
            display, [f"line {line}: character U+{int(err.character):04X} is not allowed in YAML"]
        ) from None
    try:
        root = loader.get_single_node()
    except _Refused as refused:
        raise SpecError(display, [refused.message]) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = err.problem or err.context or "malformed YAML"
        if err.context and what.startswith("but "):
            what = f"{err.context}, {what}"  # "expected a single document..., but found..."
        raise SpecError(display, [f"{where}YAML syntax error: {what}"]) from None
    except yaml.YAMLError as err:
        raise SpecError(display, [f"YAML error: {err}"]) from None
    except RecursionError:
        raise SpecError(display, ["nesting too deep to read"]) from None
    finally:
        loader.dispose()
    if root is None:
        raise SpecError(display, ["the file is empty; a lab file is a YAML mapping"])
    if not isinstance(root, MappingNode):
        raise SpecError(
            display,
            [f"line {root.start_mark.line + 1}: the top level must be a mapping of keys to values"],
        )
    problems: list[str] = []
    lines: dict[Loc, int] = {}
    data = _convert(root, (), lines, problems, loader)
    if problems:
        raise SpecError(display, problems)
    assert isinstance(data, dict)
    return Document(path=display, data=data, lines=lines)


def _read_text(path: Path, display: str) -> str:
    try:
        if not path.exists():
            raise SpecError(display, ["no such file"])
        if path.is_dir():
            raise SpecError(display, ["is a directory, not a lab file"])
        if not path.is_file():
            # A FIFO or device could block the read or never end.
            raise SpecError(display, ["is not a regular file"])
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SpecError(display, [f"is {size} bytes; lab files are limited to 1 MiB"])
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except PermissionError:
        raise SpecError(display, ["cannot be read: permission denied"]) from None
    except OSError as err:
        raise SpecError(display, [f"cannot be read: {err.strerror or err}"]) from None
    if len(raw) > MAX_FILE_BYTES:
        # The file grew between stat and read: the limit still holds.
        raise SpecError(display, ["is larger than 1 MiB; lab files are limited to 1 MiB"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise SpecError(
            display,
            [f"line {line}: not valid UTF-8 (byte 0x{raw[err.start]:02x}); save the file as UTF-8"],
        ) from None
    return text.removeprefix("\ufeff")


def _convert(
    node: Node, loc: Loc, lines: dict[Loc, int], problems: list[str], loader: _LabLoader
) -> Any:
    line = node.start_mark.line + 1
    lines.setdefault(loc, line)
    where = _where(loc, line)
    if isinstance(node, MappingNode):
        if node.tag != _TAG + "map":
            problems.append(f"{where}: YAML tag {node.tag} is not allowed")
            return None
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if isinstance(key_node, ScalarNode) and key_node.tag == _TAG + "merge":
                problems.append(
                    f"{_where(loc, key_line)}: YAML merge keys (<<) are not allowed; "
                    "put shared values under `defaults`"
                )
                continue
            if not isinstance(key_node, ScalarNode) or key_node.tag != _TAG + "str":
                problems.append(f"{_where(loc, key_line)}: keys must be plain words")
                continue
            key = key_node.value
            if key == "<<":
                problems.append(
                    f"{_where(loc, key_line)}: YAML merge keys (<<) are not allowed; "
                    "put shared values under `defaults`"
                )
                continue
            if key in out:
                problems.append(
                    f"{_where((*loc, key), key_line)}: duplicate key (first at line "
                    f"{lines[(*loc, key)]})"
                )
                continue
            lines[(*loc, key)] = key_line
            out[key] = _convert(value_node, (*loc, key), lines, problems, loader)
        return out
    if isinstance(node, SequenceNode):
        if node.tag != _TAG + "seq":
            problems.append(f"{where}: YAML tag {node.tag} is not allowed")
            return None
        return [
            _convert(item, (*loc, i), lines, problems, loader) for i, item in enumerate(node.value)
        ]
    assert isinstance(node, ScalarNode)
    if node.tag in _AS_TEXT_TAGS:
        return node.value
    if node.tag not in _SCALAR_TAGS:
        problems.append(f"{where}: YAML tag {node.tag} is not allowed")
        return None
    try:
        return loader.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError) as err:
        problems.append(f"{where}: cannot read value: {err}")
        return None


def format_loc(loc: Loc) -> str:
    """`vms[1].nics[0].ip` from ('vms', 1, 'nics', 0, 'ip'); odd keys are quoted safely."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        word = part if _PLAIN_KEY.match(part) else show(part)
        out += f".{word}" if out else word
    return out or "(top level)"


def _where(loc: Loc, line: int) -> str:
    return f"{format_loc(loc)} (line {line})"
