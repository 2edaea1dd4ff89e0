"""pypsrp's file copy and fetch, recognised by the text of their fixed scripts.

`pypsrp.client.Client.copy` sends pypsrp/pwsh_scripts/copy.ps1 with the target
path and a flag as positional arguments, and the file as pipeline input: base64
chunks, the last input being the base64 of the SHA-1 hex digest. `Client.fetch`
sends fetch.ps1 with the source path and reads back the base64 content followed
by the SHA-1 hex digest. hvsim cannot run those scripts, so it recognises them by
hash (as hvsim.scripts does for its own) and does what they do against the
machine's file system.

The digests are of pypsrp 0.9.1's scripts as `get_pwsh_script` sends them
(comments and blank lines stripped); tests/test_wire_files.py recomputes them
from the installed pypsrp so a new pypsrp version fails loudly.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from collections.abc import Callable, Iterable
from typing import Any

from hvsim.errors import PSError, not_modelled
from hvsim.scripts import digest

COPY_SHA256 = "3c882b445a28347be063d8d369b1792dc5a5403a8c0d6ca3c3ec2444167f71bf"
FETCH_SHA256 = "284a8f526a1860e2578ea4bfe098cf875fa8b71d313a2bdea74ef6da24a6d43e"

Transfer = Callable[[Any, list[Any]], Iterable[Any]]


def _throw(message: str, target: Any = None) -> PSError:
    # `throw "text"` in a script: a RuntimeException whose FQID is the text itself.
    return PSError(
        message,
        fqid=message,
        category="OperationStopped",
        exception="System.Management.Automation.RuntimeException",
        target=target,
    )


class _MemoryFiles:
    """Files kept when there is no machine model (world=None): path -> bytes."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.lock = threading.Lock()

    def exists(self, path: str) -> bool:
        return path.lower() in self.files

    def is_dir(self, path: str) -> bool:
        prefix = path.lower().rstrip("\\") + "\\"
        return any(k.startswith(prefix) for k in self.files)

    def read(self, path: str) -> bytes:
        return self.files[path.lower()]

    def write(self, path: str, content: bytes, *, create_parents: bool = False) -> None:
        self.files[path.lower()] = content


_MEMORY = _MemoryFiles()


def _fs(ctx: Any) -> Any:
    fs = getattr(ctx.machine, "fs", None)
    return fs if fs is not None else _MEMORY


def _full_path(ctx: Any, raw: Any) -> str:
    path = str(raw)
    if (len(path) >= 2 and path[1] == ":") or path.startswith("\\\\"):
        return path
    # A remote session starts in the user's Documents folder.
    user = str(ctx.user).split("\\")[-1] or "Administrator"
    ensure_profile(getattr(ctx, "machine", None), str(ctx.user))
    return f"C:\\Users\\{user}\\Documents\\{path}"


PROFILE_FOLDERS = ("Documents", "Desktop", "Downloads", "AppData\\Local\\Temp")


def ensure_profile(machine: Any, user: str) -> None:
    """The user's profile folders, which Windows creates at the first logon.

    Modelled: they appear in the model when a remote session first uses them
    (a relative copy destination, the temp path), so that a host nobody copied
    files to keeps the snapshot it started with.
    """
    fs = getattr(machine, "fs", None)
    if fs is None:
        return
    name = user.rsplit("\\", 1)[-1].split("@", 1)[0] or "Administrator"
    for sub in PROFILE_FOLDERS:
        path = f"C:\\Users\\{name}\\{sub}"
        try:
            if not fs.exists(path):
                fs.mkdir(path)
        except Exception:  # a host without a writable C: has no profile to make
            return


def _as_bytes(content: Any, path: str) -> bytes:
    if isinstance(content, bytes):
        return content
    if isinstance(content, str):
        return content.encode("utf-8")
    if isinstance(content, list) and all(isinstance(x, str) for x in content):
        return "\r\n".join(content).encode("utf-8")
    raise not_modelled(f"fetching the content of {path}")


def _fs_error(exc: Exception, path: str) -> PSError:
    from hvsim.model.fs import FsError, fs_error_to_ps

    if isinstance(exc, FsError):
        return fs_error_to_ps(exc, "Set-Content")
    return _throw(f'Exception calling "Move" with "2" argument(s): "{exc}"', path)


def copy(ctx: Any, args: list[Any]) -> Iterable[Any]:
    """copy.ps1: write the piped base64 chunks to the path, after the SHA-1 check."""
    if not args:
        raise _throw("The path is empty.")
    path = _full_path(ctx, args[0])
    chunks = [str(x) for x in ctx.input]
    if not chunks:
        raise _throw("Transport failure, no data received")
    try:
        data = b"".join(base64.b64decode(c) for c in chunks[:-1])
        expected = base64.b64decode(chunks[-1]).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _throw(f"Invalid base64 input: {exc}") from exc
    actual = hashlib.sha1(data).hexdigest()
    if actual != expected:
        raise _throw(
            f"Transport failure, hash mismatch\r\nActual: {actual}\r\nExpected: {expected}"
        )
    fs = _fs(ctx)
    try:
        fs.write(path, data)
    except Exception as exc:
        raise _fs_error(exc, path) from exc
    return [path]


def fetch(ctx: Any, args: list[Any]) -> Iterable[Any]:
    """fetch.ps1: the file as one base64 string, then its SHA-1 hex digest."""
    if not args:
        raise _throw("The path is empty.")
    path = _full_path(ctx, args[0])
    fs = _fs(ctx)
    if fs.exists(path) and fs.is_dir(path):
        raise _throw(f"The path at '{path}' is a directory, src must be a file")
    if not fs.exists(path):
        raise _throw(f"The path at '{path}' does not exist")
    data = _as_bytes(fs.read(path), path)
    out: list[Any] = []
    if data:
        out.append(base64.b64encode(data).decode("ascii"))
    out.append(hashlib.sha1(data).hexdigest())
    return out


_BY_HASH: dict[str, Transfer] = {COPY_SHA256: copy, FETCH_SHA256: fetch}


def find(text: str) -> Transfer | None:
    """The handler for pypsrp's copy or fetch script, or None for any other text."""
    return _BY_HASH.get(digest(text))
