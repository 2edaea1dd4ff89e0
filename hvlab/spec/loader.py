"""load_lab(): a lab file to a checked, completed Lab, or one SpecError listing
every problem with its place (`vms[1].nics[0].ip (line 42): ...`)."""

from __future__ import annotations

import copy
import re
import typing
from pathlib import Path
from types import UnionType
from typing import Any

from pydantic import BaseModel, ValidationError

from hvlab.errors import SpecError
from hvlab.spec.models import Lab, SecretNames
from hvlab.spec.names import did_you_mean, show
from hvlab.spec.rules import finish
from hvlab.spec.source import Document, Loc, format_loc, parse_document, read_document

# Keys that hold a password when they hold a value. A lab file names environment
# variables under `secrets` instead (the architecture's secret rule).
MAX_PROBLEMS = 50

_SECRET_KEY = re.compile(r"password|passwd|pwd|secret|passphrase|access_?key|token", re.I)


def load_lab(path: str | Path) -> Lab:
    """Read, check and complete a lab file. Raises SpecError (exit 2) on any problem."""
    p = Path(path)
    doc = read_document(p, str(path))
    return build_lab(doc, stem=p.stem)


def parse_lab(text: str, display: str = "<lab>", stem: str = "lab") -> Lab:
    """The same as load_lab for YAML text (tests, stdin)."""
    return build_lab(parse_document(text, display), stem=stem)


def build_lab(doc: Document, stem: str) -> Lab:
    """Check `doc` field by field, then across fields; raise one SpecError with all problems.

    Rules across fields need every field valid. When the only field errors are bad
    names (the common case), they are swapped for placeholders so the cross-field
    rules still run and one pass reports, say, a bad name and an address clash
    together; anything that mentions a placeholder is left out.
    """
    data = dict(doc.data)
    problems: list[tuple[Loc, str]] = []
    secret_locs = _literal_secrets(data, (), problems, _secret_names(data))
    name_from_file = "name" not in data
    if name_from_file:
        data["name"] = stem
    try:
        lab = Lab.model_validate(data)
    except ValidationError as err:
        errors = err.errors(include_url=False)
        for e in errors:
            loc, msg = _translate(e, data)
            if any(loc[: len(s)] == s for s in secret_locs):
                continue
            if loc == ("name",) and name_from_file:
                msg += " (taken from the file name; set `name:` in the file)"
            problems.append((loc, msg))
        problems += _rules_despite_bad_names(data, errors, secret_locs)
        raise SpecError(doc.path, _format(problems, doc)) from None
    if problems:
        problems += _rules_despite_bad_names(data, [], secret_locs)
        raise SpecError(doc.path, _format(problems, doc))
    lab._source = doc.path
    problems = finish(lab)
    if problems:
        raise SpecError(doc.path, _format(problems, doc))
    return lab


_PLACEHOLDER = "zzplaceholder"


def _rules_despite_bad_names(
    data: dict[str, Any], errors: list[Any], secret_locs: list[Loc]
) -> list[tuple[Loc, str]]:
    repaired = copy.deepcopy(data)
    replaced: list[Loc] = []
    originals: list[str] = []
    for loc in secret_locs:
        parent = _at(repaired, loc[:-1])
        if isinstance(parent, dict):
            parent.pop(loc[-1], None)
    for n, e in enumerate(errors, 1):
        loc = _data_loc(tuple(e["loc"]), data, keep_last=False)
        if any(loc[: len(s)] == s for s in secret_locs):
            continue
        value = _at(data, loc)
        if e["type"] != "value_error" or not loc or loc[-1] != "name" or not isinstance(value, str):
            return []  # not only names: the rules would only add noise
        parent = _at(repaired, loc[:-1])
        parent["name"] = f"{_PLACEHOLDER[: 14 - len(str(n))]}{n}"
        replaced.append(loc)
        originals.append(show(value))
    try:
        lab = Lab.model_validate(repaired)
    except ValidationError:
        return []
    out: list[tuple[Loc, str]] = []
    for loc, msg in finish(lab):
        if loc in replaced or any(original in msg for original in originals):
            continue  # a consequence of the bad name itself (a reference to it)
        for n, original in enumerate(originals, 1):
            msg = msg.replace(f"{_PLACEHOLDER[: 14 - len(str(n))]}{n}", original)
        out.append((loc, msg))
    return out


def _at(data: Any, loc: Loc) -> Any:
    node = data
    for part in loc:
        node = node[part]
    return node


def _format(problems: list[tuple[Loc, str]], doc: Document) -> list[str]:
    out: list[tuple[int, str]] = []
    for loc, msg in problems:
        line = doc.line_of(loc)
        where = format_loc(loc) + (f" (line {line})" if line else "")
        out.append((line or 0, f"{where}: {msg}"))
    out.sort(key=lambda item: item[0])
    texts = [text for _, text in dict.fromkeys(out)]
    if len(texts) > MAX_PROBLEMS:
        # A generated or hostile file can hold thousands of errors; the first ones
        # say what is wrong, the rest would only flood the terminal.
        hidden = len(texts) - MAX_PROBLEMS
        texts = [*texts[:MAX_PROBLEMS], f"... and {hidden} more problems"]
    return texts


# --- literal passwords ------------------------------------------------------------


def _secret_names(data: dict[str, Any]) -> SecretNames:
    given = data.get("secrets")
    try:
        return SecretNames.model_validate(given if isinstance(given, dict) else {})
    except ValidationError:
        return SecretNames()


def _literal_secrets(
    node: Any, loc: Loc, problems: list[tuple[Loc, str]], env: SecretNames
) -> list[Loc]:
    found: list[Loc] = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = (*loc, key)
            if (
                _SECRET_KEY.search(key)
                and not isinstance(value, dict | list)
                and value not in (None, "")
            ):
                # The value is never shown: it may be a real password.
                problems.append(
                    (
                        here,
                        "lab files must not hold passwords. Remove it and set the environment "
                        f"variable instead: {env.admin} (local and new-domain Administrator), "
                        f"{env.domain} (join account of an existing domain), {env.dsrm} (DSRM); "
                        "the names can be changed under `secrets`. Interactive runs prompt for "
                        "missing ones.",
                    )
                )
                found.append(here)
            else:
                found += _literal_secrets(value, here, problems, env)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _literal_secrets(value, (*loc, i), problems, env)
    return found


# --- pydantic errors in the file's words ------------------------------------------


def _translate(e: Any, data: Any) -> tuple[Loc, str]:
    kind = e["type"]
    loc = _data_loc(tuple(e["loc"]), data, keep_last=kind in ("missing", "extra_forbidden"))
    ctx = e.get("ctx") or {}
    if kind == "extra_forbidden":
        key = str(loc[-1])
        return loc, f"unknown key {show(key)}{did_you_mean(key, _fields_at(loc[:-1]))}"
    if kind == "missing":
        return loc, "required key is missing"
    if kind == "value_error":
        return loc, str(e["msg"]).removeprefix("Value error, ")
    simple = {
        "model_type": "must be a mapping of keys to values",
        "model_attributes_type": "must be a mapping of keys to values",
        "dict_type": "must be a mapping of keys to values",
        "list_type": "must be a list",
        "string_type": "must be text",
        "int_type": "must be a whole number",
        "int_parsing": "must be a whole number",
        "int_from_float": "must be a whole number",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
    }
    if kind in simple:
        return loc, simple[kind]
    if kind == "greater_than_equal":
        return loc, f"must be at least {ctx.get('ge')}"
    if kind == "less_than_equal":
        return loc, f"must be at most {ctx.get('le')}"
    if kind == "too_short":
        return (
            loc,
            f"needs at least {ctx.get('min_length')} entr{'y' if ctx.get('min_length') == 1 else 'ies'}",
        )
    if kind == "literal_error":
        return loc, f"must be one of {ctx.get('expected')}"
    return loc, str(e["msg"])


def _data_loc(loc: Loc, data: Any, keep_last: bool) -> Loc:
    """The part of pydantic's loc that names places in the file (drops type tags)."""
    out: list[str | int] = []
    node = data
    for n, part in enumerate(loc):
        last = n == len(loc) - 1
        in_dict = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            out.append(part)
            node = node[part]  # type: ignore[index]
        elif last and keep_last:
            out.append(part)
    return tuple(out)


def _fields_at(loc: Loc) -> list[str]:
    """The keys a mapping at `loc` may have (for "did you mean")."""
    tp: Any = Lab
    for part in loc:
        tp = _unwrap(tp)
        origin = typing.get_origin(tp)
        if origin in (list, dict):
            tp = typing.get_args(tp)[-1]
            continue
        if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
            field = next(
                (f for n, f in tp.model_fields.items() if part in (n, f.alias)),
                None,
            )
            if field is None:
                return []
            tp = field.annotation
            continue
        return []
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [f.alias or n for n, f in tp.model_fields.items()]
    return []


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin is typing.Union or origin is UnionType:
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = args[0]
        else:
            return tp
