"""The state file: the whole world (host, VMs, disks, guests, AD, clusters) on disk.

Format: a small header line, then a pickle of the World. The header carries a
format version; a file of another version is refused with a message that says
what to do. The world's lock and clock are not pickled: the clock is stored
as its modelled time and timescale and rebuilt on load, so modelled time
continues from the saved value (a guest that was half-way through a boot goes
on from there).

Saving is atomic: the file is written to a temporary name in the same folder,
flushed to disk (fsync), then moved over the old file with os.replace, so a
crash leaves either the old state or the new one, never half of each.

The state file holds no password in clear: guests keep account passwords as
digests (hvsim.model.guest.pw_hash). Pickle runs code on load: load only state
files this program wrote.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import tempfile
import threading
from pathlib import Path
from typing import Any

from hvsim.clock import Clock

MAGIC = b"HVSIM-STATE"
FORMAT_VERSION = 1


def model_fingerprint() -> str:
    """A digest of the model's source: a pickle only fits the classes that wrote it.

    A state file written by another version of the model is refused up front,
    instead of failing later on a missing attribute in the middle of a call."""
    import hashlib

    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(
        [*root.glob("model/*.py"), root / "objects.py", root / "faults.py", root / "clock.py"]
    ):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class StateFileError(Exception):
    """The state file cannot be used; the message says why and what to do."""


class _Pickler(pickle.Pickler):
    """Stores the clock by value and drops locks (they cannot be pickled)."""

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, Clock):
            return ("clock", obj.now(), obj.timescale)
        if isinstance(obj, (type(threading.Lock()), type(threading.RLock()))):
            return ("lock",)
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, f: Any, timescale: float | None) -> None:
        super().__init__(f)
        self._timescale = timescale
        self._clock: Clock | None = None

    def persistent_load(self, pid: Any) -> Any:
        kind = pid[0]
        if kind == "clock":
            # One clock for the whole world, continuing at the saved modelled time.
            if self._clock is None:
                scale = pid[2] if self._timescale is None else self._timescale
                self._clock = Clock(scale, start=pid[1])
            return self._clock
        if kind == "lock":
            return threading.Lock()
        raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")


def dumps(world: Any) -> bytes:
    buf = io.BytesIO()
    buf.write(
        MAGIC + b" " + str(FORMAT_VERSION).encode() + b" " + model_fingerprint().encode() + b"\n"
    )
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(world)
    return buf.getvalue()


def loads(data: bytes, *, timescale: float | None = None, source: str = "<bytes>") -> Any:
    header, sep, body = data.partition(b"\n")
    if not sep or not header.startswith(MAGIC + b" "):
        raise StateFileError(f"{source} is not an hvsim state file (no header).")
    fields = header[len(MAGIC) + 1 :].split()
    try:
        version = int(fields[0])
    except (ValueError, IndexError):
        raise StateFileError(f"{source}: unreadable state-file header {header[:40]!r}.") from None
    fingerprint = fields[1].decode("ascii", "replace") if len(fields) > 1 else "none"
    if version != FORMAT_VERSION:
        raise StateFileError(
            f"{source} has state format {version}; this hvsim reads format {FORMAT_VERSION}. "
            "Delete the file to start from a fresh host, or use the hvsim version that wrote it."
        )
    if fingerprint != model_fingerprint():
        raise StateFileError(
            f"{source} was written by another version of hvsim's model ({fingerprint}, this one is "
            f"{model_fingerprint()}). Delete the file to start from a fresh simulated host."
        )
    try:
        world = _Unpickler(io.BytesIO(body), timescale).load()
    except (pickle.UnpicklingError, AttributeError, ImportError, EOFError, TypeError) as err:
        raise StateFileError(
            f"{source} could not be read ({type(err).__name__}: {err}). The model changed since it "
            "was written: delete the file to start from a fresh host."
        ) from None
    # The world's lock is always new, whatever the pickle held.
    world.lock = threading.Lock()
    return world


def save(world: Any, path: str | os.PathLike[str]) -> None:
    """Write the world to `path` atomically (temp file + fsync + os.replace)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = dumps(world)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    try:
        dir_fd = os.open(target.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def load(path: str | os.PathLike[str], *, timescale: float | None = None) -> Any:
    """Read a world saved by `save`. `timescale` overrides the saved one."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise StateFileError(f"state file {p} does not exist.") from None
    return loads(data, timescale=timescale, source=str(p))
