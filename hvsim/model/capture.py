"""The state of a part of the world at one moment, kept to be put back later.

A checkpoint (hvsim.model.checkpoints) keeps what a VM carries: its settings, the
contents of its disks, its guest, and the world-level state stored on those disks
(a forest on its domain controller, a cluster on its nodes). A `Capture` holds
that as the attributes of every model object reachable from some roots, with
references to model objects kept as references: restoring writes the attributes
back into the same objects, so everything that points at them (a pool's member
disks, a guest's C: volume, a CSV mounted on every node) sees the old state
without being re-wired. The walk stops at objects the caller names (the world,
other machines, other VMs' disks); those stay as they are.

Per object, `skip` names attributes that are not part of the state (where a disk
file lives and who holds it open, the process's fault budget); they keep their
current values on restore.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
import json
import math
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

_VALUE_TYPES = (str, int, float, bool, bytes, bytearray, complex, type(None))
_VALUE_CLASSES = (uuid.UUID, dt.datetime, dt.timedelta, dt.date)


def is_model(obj: Any) -> bool:
    """An object of the model's own classes (hvsim.model, hvsim.cmdlets) with state."""
    module = type(obj).__module__
    return (
        (module.startswith("hvsim.model.") or module.startswith("hvsim.cmdlets."))
        and not isinstance(obj, int)
        and hasattr(obj, "__dict__")
    )


def _is_value(obj: Any) -> bool:
    """Plain data that a capture copies: text, numbers, times, hvsim.objects values."""
    if isinstance(obj, (_VALUE_TYPES, _VALUE_CLASSES)):
        return True
    return type(obj).__module__ == "hvsim.objects"


def _persist_skipped(cls: type) -> frozenset[str]:
    from hvsim.persist import _skipped

    return _skipped(cls)


def references(value: Any) -> Iterator[Any]:
    """The objects (not plain values) a value refers to, in a stable order."""
    stack: list[Any] = [value]
    while stack:
        v = stack.pop()
        if _is_value(v):
            continue
        t = type(v)
        if t in (list, tuple):
            stack.extend(reversed(v))
        elif t is dict:
            items = sorted(v.items(), key=lambda kv: repr(kv[0]))
            for k, x in reversed(items):
                stack.append(x)
                stack.append(k)
        elif t in (set, frozenset):
            stack.extend(sorted(v, key=repr, reverse=True))
        else:
            yield v


@dataclasses.dataclass(eq=False)
class Capture:
    """Attributes of `objects` at one moment; `boundary` are the objects they refer to
    that were not captured (kept as they are); `digest` identifies the state."""

    objects: list[Any]
    states: list[dict[str, Any]]
    skips: list[list[str]]
    boundary: list[Any]
    digest: str = ""

    def _memo(self) -> dict[int, Any]:
        memo: dict[int, Any] = {id(o): o for o in self.objects}
        memo.update({id(b): b for b in self.boundary})
        return memo

    def restore(self) -> None:
        """Write the captured attributes back into the same objects."""
        states = copy.deepcopy(self.states, self._memo())
        for obj, state, skip in zip(self.objects, states, self.skips, strict=True):
            keep = set(skip)
            for key in list(vars(obj)):
                if key not in keep and key not in state:
                    delattr(obj, key)
            for key, value in state.items():
                setattr(obj, key, value)


def walk(
    roots: Iterable[Any],
    stop: Callable[[Any], bool],
    skip: Callable[[Any], Iterable[str]] = lambda obj: (),
) -> tuple[list[Any], list[Any]]:
    """Model objects reachable from `roots` (breadth first, stable order) through
    attributes `skip` does not name, without passing through objects `stop` names,
    and the objects at the border."""
    seen: dict[int, Any] = {}
    order: list[Any] = []
    border: dict[int, Any] = {}
    queue: deque[Any] = deque(roots)
    while queue:
        obj = queue.popleft()
        if id(obj) in seen:
            continue
        seen[id(obj)] = obj
        order.append(obj)
        attrs = vars(obj)
        skipped = set(skip(obj)) | _persist_skipped(type(obj))
        for key in sorted(attrs):
            if key in skipped:
                continue
            for ref in references(attrs[key]):
                if id(ref) in seen or id(ref) in border:
                    continue
                if not is_model(ref) or stop(ref):
                    border[id(ref)] = ref
                else:
                    queue.append(ref)
    return order, list(border.values())


def take(
    roots: Iterable[Any],
    stop: Callable[[Any], bool],
    skip: Callable[[Any], Iterable[str]] = lambda obj: (),
    token: Callable[[Any], str] | None = None,
) -> Capture:
    """Capture the model objects reachable from `roots`."""
    objects, border = walk(roots, stop, skip)
    memo: dict[int, Any] = {id(o): o for o in objects}
    memo.update({id(b): b for b in border})
    states: list[dict[str, Any]] = []
    skips: list[list[str]] = []
    for obj in objects:
        names = set(skip(obj)) | _persist_skipped(type(obj))
        skips.append(sorted(names))
        state = {k: v for k, v in vars(obj).items() if k not in names}
        states.append(copy.deepcopy(state, memo))
    capture = Capture(objects, states, skips, border)
    capture.digest = digest(capture, token or default_token)
    return capture


def default_token(obj: Any) -> str:
    """How a digest names an object outside the capture: by what identifies it."""
    for attr in ("disk_identifier", "id", "name"):
        value = getattr(obj, attr, None)
        if isinstance(value, str | uuid.UUID) and value:
            return f"{type(obj).__name__}:{value}"
    return type(obj).__name__


def digest(capture: Capture, token: Callable[[Any], str]) -> str:
    """A digest of the captured state: equal digests, equal states (objects by their
    place in the walk, objects outside by `token`)."""
    index = {id(o): n for n, o in enumerate(capture.objects)}

    def canon(v: Any) -> Any:
        if isinstance(v, bool | str) or v is None:
            return v
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            return repr(v) if not math.isfinite(v) else v
        t = type(v)
        if t in (list, tuple):
            return [canon(x) for x in v]
        if t is dict:
            return [[canon(k), canon(x)] for k, x in sorted(v.items(), key=lambda kv: repr(kv[0]))]
        if t in (set, frozenset):
            return sorted((canon(x) for x in v), key=repr)
        if _is_value(v):
            return repr(v)
        n = index.get(id(v))
        if n is not None:
            return {"#": n}
        return {"@": token(v)}

    body = [
        [type(o).__name__, {k: canon(s[k]) for k in sorted(s)}]
        for o, s in zip(capture.objects, capture.states, strict=True)
    ]
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
