"""The state file: the whole world (host, VMs, disks, guests, AD, clusters) on disk, as JSON.

Format (schema 2): one JSON document

    {"format": "hvsim-state", "schema": 2,
     "clock": {"now": <modelled s>, "timescale": <real s per modelled s>},
     "root": {"$r": 0},
     "objects": [["hvsim.model.world.World", {<attributes>}], ...]}

Every instance of a model class is one entry of `objects`, named by its module and
class, with its attributes; a reference to it is `{"$r": n}`, so shared objects (a
CSV volume mounted on every node, a parent disk and its children) stay shared and
cycles (guest.world) are fine. Values other than JSON's own are tagged: `$t` tuple,
`$d` a dict whose keys are not plain text, `$s` set, `$b` bytes (base64), `$u` UUID,
`$i` a typed integer of hvsim.objects, `$f` a float JSON cannot hold, `$dt`/`$td`
date and time, `$rng` a random generator's state, `$clock` the world's clock, `$lock`
a lock (made anew on load).

The serializer is generic: it stores each object's attributes, so a field added to
a model dataclass later is stored without further work; a field missing from an
older file gets the dataclass default on load. A dataclass field whose metadata has
`persist=False`, and a name in a class's PERSIST_SKIP, are never written (the
process's fault injection, hvsim.faults, lives there).

Loading never runs code from the file: it only creates instances of the model's own
classes (those defined in hvsim.model, hvsim.cmdlets and hvsim.objects) without
calling their constructors and fills in their attributes. The pickle files earlier
versions wrote are refused unread, because loading a pickle runs code.

Saving is atomic: the file is written to a temporary name in the same folder,
flushed to disk (fsync), then moved over the old file with os.replace, so a crash
leaves either the old state or the new one, never half of each.

The state file holds no password in clear: guests keep account passwords as
digests (hvsim.model.guest.pw_hash).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import importlib
import json
import math
import os
import pickletools
import pkgutil
import random
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from hvsim.clock import Clock

FORMAT = "hvsim-state"
SCHEMA = 2
LEGACY_MAGIC = b"HVSIM-STATE"  # schema 1: a header line and a pickle

_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))
_CLASS_PACKAGES = ("hvsim.model", "hvsim.cmdlets")
_CLASS_MODULES = ("hvsim.objects",)
_registry: dict[str, type] | None = None


class StateFileError(Exception):
    """The state file cannot be used; the message says why and what to do."""


def _classes() -> dict[str, type]:
    """The classes a state file may name: those defined in the model's own modules."""
    global _registry
    if _registry is None:
        modules = [importlib.import_module(m) for m in _CLASS_MODULES]
        for package_name in _CLASS_PACKAGES:
            package = importlib.import_module(package_name)
            modules.append(package)
            for info in pkgutil.iter_modules(package.__path__):
                modules.append(importlib.import_module(f"{package_name}.{info.name}"))
        found: dict[str, type] = {}
        for module in modules:
            for value in vars(module).values():
                if isinstance(value, type) and value.__module__ == module.__name__:
                    found[f"{value.__module__}.{value.__qualname__}"] = value
        _registry = found
    return _registry


def _skipped(cls: type) -> frozenset[str]:
    names = set(getattr(cls, "PERSIST_SKIP", ()))
    if dataclasses.is_dataclass(cls):
        names.update(f.name for f in dataclasses.fields(cls) if f.metadata.get("persist") is False)
    return frozenset(names)


class _Encoder:
    def __init__(self) -> None:
        self.classes = _classes()
        self.names = {cls: name for name, cls in self.classes.items()}
        self.ids: dict[int, int] = {}
        self.objects: list[Any] = []
        self.skips: dict[type, frozenset[str]] = {}

    def value(self, v: Any) -> Any:
        t = type(v)
        if v is None or t is str or t is bool or t is int:
            return v
        if t is float:
            return v if math.isfinite(v) else {"$f": repr(v)}
        if t is list:
            return [self.value(x) for x in v]
        if t is dict:
            if all(type(k) is str and not k.startswith("$") for k in v):
                return {k: self.value(x) for k, x in v.items()}
            return {"$d": [[self.value(k), self.value(x)] for k, x in v.items()]}
        if t is tuple:
            return {"$t": [self.value(x) for x in v]}
        name = self.names.get(t)
        if name is not None:
            if isinstance(v, int):  # hvsim.objects.Int64 and friends
                return {"$i": [name, int(v)]}
            return {"$r": self.ref(v, name)}
        if t is bytes or t is bytearray:
            return {"$b": base64.b64encode(v).decode("ascii")}
        if t is set or t is frozenset:
            return {"$s": [self.value(x) for x in v]}
        if t is uuid.UUID:
            return {"$u": str(v)}
        if t is dt.datetime:
            return {"$dt": v.isoformat()}
        if t is dt.timedelta:
            return {"$td": v.total_seconds()}
        if isinstance(v, Clock):
            return {"$clock": 0}
        if isinstance(v, _LOCK_TYPES):
            return {"$lock": 0}
        if t is random.Random:
            return {"$rng": self.value(v.getstate())}
        raise TypeError(
            f"hvsim.persist cannot store a {t.__module__}.{t.__qualname__}; model state is made "
            "of plain values and classes defined in hvsim.model, hvsim.cmdlets or hvsim.objects"
        )

    def ref(self, obj: Any, name: str) -> int:
        n = self.ids.get(id(obj))
        if n is not None:
            return n
        n = len(self.objects)
        self.ids[id(obj)] = n
        self.objects.append(None)  # the slot is taken before the fields (cycles)
        cls = type(obj)
        skip = self.skips.get(cls)
        if skip is None:
            skip = self.skips[cls] = _skipped(cls)
        fields = {k: self.value(x) for k, x in vars(obj).items() if k not in skip}
        self.objects[n] = [name, fields]
        return n


def dumps(world: Any) -> bytes:
    """The world as the JSON state document (UTF-8)."""
    enc = _Encoder()
    root = enc.value(world)
    doc = {
        "format": FORMAT,
        "schema": SCHEMA,
        "clock": {"now": world.clock.now(), "timescale": world.clock.timescale},
        "root": root,
        "objects": enc.objects,
    }
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")


class _Decoder:
    def __init__(self, doc: dict[str, Any], clock: Clock, source: str) -> None:
        self.classes = _classes()
        self.clock = clock
        self.source = source
        self.dropped: set[str] = set()
        entries = doc.get("objects")
        if not isinstance(entries, list):
            raise self.bad("no object table")
        self.entries = entries
        self.shells: list[Any] = []
        for entry in entries:
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], dict)):
                raise self.bad("a malformed object entry")
            cls = self.classes.get(entry[0]) if isinstance(entry[0], str) else None
            if cls is None or issubclass(cls, int):
                raise self.bad(f"an unknown class {str(entry[0])[:80]!r}")
            self.shells.append(cls.__new__(cls))

    def bad(self, what: str) -> StateFileError:
        return StateFileError(
            f"{self.source} holds {what}; it was not written by this hvsim. "
            "Delete the file to start from a fresh simulated host."
        )

    def fill(self) -> None:
        for shell, (_, raw) in zip(self.shells, self.entries, strict=True):
            cls = type(shell)
            skip = _skipped(cls)
            values = {}
            for key, item in raw.items():
                if key in skip:
                    if item not in (None, [], {}):
                        self.dropped.add(f"{cls.__name__}.{key}")
                    continue
                values[key] = self.value(item)
            if dataclasses.is_dataclass(cls):
                for f in dataclasses.fields(cls):
                    if f.name in values:
                        continue
                    if f.default is not dataclasses.MISSING:
                        values[f.name] = f.default
                    elif f.default_factory is not dataclasses.MISSING:
                        values[f.name] = f.default_factory()
            vars(shell).update(values)

    def value(self, v: Any) -> Any:
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            ((tag, item),) = v.items()
            if tag.startswith("$"):
                return self.tagged(tag, item)
        return {k: self.value(x) for k, x in v.items()}

    def tagged(self, tag: str, item: Any) -> Any:
        try:
            if tag == "$r":
                return self.shells[item]
            if tag == "$t":
                return tuple(self.value(x) for x in item)
            if tag == "$d":
                return {self.value(k): self.value(x) for k, x in item}
            if tag == "$s":
                return {self.value(x) for x in item}
            if tag == "$b":
                return base64.b64decode(item, validate=True)
            if tag == "$u":
                return uuid.UUID(item)
            if tag == "$i":
                cls = self.classes[item[0]]
                if not issubclass(cls, int):
                    raise TypeError(item[0])
                return cls(int(item[1]))
            if tag == "$f":
                return float(item)
            if tag == "$dt":
                return dt.datetime.fromisoformat(item)
            if tag == "$td":
                return dt.timedelta(seconds=float(item))
            if tag == "$clock":
                return self.clock
            if tag == "$lock":
                return threading.Lock()
            if tag == "$rng":
                rng = random.Random()
                rng.setstate(self.value(item))
                return rng
        except (KeyError, IndexError, TypeError, ValueError) as err:
            raise self.bad(f"a bad {tag} value ({type(err).__name__})") from None
        raise self.bad(f"an unknown tag {tag[:20]!r}")


def loads(data: bytes, *, timescale: float | None = None, source: str = "<bytes>") -> Any:
    """A world from a state document. `timescale` overrides the saved one. Faults are
    never loaded (they belong to the process that asks for them): the world comes back
    with none, and `world.dropped_faults` lists what an older file carried."""
    if data.startswith(LEGACY_MAGIC):
        raise StateFileError(_legacy_message(data, source))
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise StateFileError(f"{source} is not an hvsim state file (not JSON).") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StateFileError(f"{source} is not an hvsim state file.")
    schema = doc.get("schema")
    if schema != SCHEMA:
        raise StateFileError(
            f"{source} has state schema {schema!r}; this hvsim reads schema {SCHEMA}. "
            "Delete the file to start from a fresh host, or use the hvsim version that wrote it."
        )
    saved = doc.get("clock") or {}
    try:
        now = float(saved.get("now", 0.0))
        scale = float(saved.get("timescale", 0.0)) if timescale is None else float(timescale)
        clock = Clock(scale, start=now)
    except (TypeError, ValueError):
        raise StateFileError(f"{source} has an unreadable clock.") from None
    decoder = _Decoder(doc, clock, source)
    decoder.fill()
    world = decoder.value(doc.get("root"))
    from hvsim.faults import Faults
    from hvsim.model.world import World

    if not isinstance(world, World):
        raise decoder.bad("no world at its root")
    world.clock = clock
    world.reset_process_state(Faults([], world.seed))
    world.dropped_faults = sorted(decoder.dropped)
    return world


class Journal:
    """Saves the world after every pipeline that changed it, so a process killed at any
    point loses at most the call it was making. Install as `world.journal`; the wire
    (hvsim.psrp) calls it when a pipeline ends. A save waits while a handler is half-way
    through a change (it let modelled time pass with the lock released): the state
    written is always one between calls, and the handler's own pipeline saves it."""

    def __init__(self, world: Any, path: str | os.PathLike[str]) -> None:
        self.world = world
        self.path = Path(path)
        self.saved = world.revision
        self.saves = 0

    def __call__(self) -> None:
        world = self.world
        with world.lock:
            if world.revision == self.saved or world.busy:
                return
            revision = world.revision
            save(world, self.path, durable=False)
            self.saved = revision
            self.saves += 1

    def flush(self) -> None:
        """Save now whatever changed (at the end of a task; the clock moves on too)."""
        with self.world.lock:
            save(self.world, self.path)
            self.saved = self.world.revision
            self.saves += 1


def _legacy_message(data: bytes, source: str) -> str:
    """Schema 1 was a pickle. It is never unpickled (that runs code); its opcodes are
    only read to say whether it carried injected faults."""
    text = (
        f"{source} is a state file of an older hvsim (schema 1, a Python pickle). This "
        "version never loads pickles, because loading one runs code. Delete the file to start "
        "from a fresh simulated host; its VMs are simulated, nothing real is lost."
    )
    _, _, body = data.partition(b"\n")
    kinds: set[str] = set()
    try:
        strings = [arg for _, arg, _ in pickletools.genops(body) if isinstance(arg, str)]
    except Exception:  # a damaged pickle: nothing more to say
        return text
    if any("hvsim.faults" in s for s in strings):
        from hvsim.faults import KINDS

        kinds = {s for s in strings if s in KINDS}
        if kinds:
            text += (
                " It also carries injected faults ("
                + ", ".join(sorted(kinds))
                + ") that kept firing on later runs; this version never stores faults."
            )
    return text


def save(world: Any, path: str | os.PathLike[str], *, durable: bool = True) -> int:
    """Write the world to `path` atomically (temp file + fsync + os.replace); its size.

    `durable=False` leaves out the fsyncs: the rename is still atomic and a killed
    process loses nothing written, only a crash of the machine itself could (the
    journal's saves after each call; the task's last save is durable)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = dumps(world)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if not durable:
        return len(data)
    with contextlib.suppress(OSError):
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return len(data)


def remove_leftovers(path: str | os.PathLike[str]) -> list[Path]:
    """Temporary files a killed save left next to `path` (name.<random>.tmp)."""
    target = Path(path)
    removed = []
    for leftover in target.parent.glob(target.name + ".*.tmp"):
        with contextlib.suppress(OSError):
            leftover.unlink()
            removed.append(leftover)
    return removed


def load(path: str | os.PathLike[str], *, timescale: float | None = None) -> Any:
    """Read a world saved by `save`. `timescale` overrides the saved one."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise StateFileError(f"state file {p} does not exist.") from None
    return loads(data, timescale=timescale, source=str(p))
