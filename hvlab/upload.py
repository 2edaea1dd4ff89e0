"""Copy a file from the controller to the host, resumable, checked by SHA-256 (R-122).

The file goes in chunks through the constant script templates/host/Write-FileChunk.ps1
into `<target>.partial`, which writes a chunk only at the file's current end and
answers the file's length: a chunk sent twice (a retry after a lost reply, R-92) is
never written twice, and the sender goes on from the length the host reports.

A later run resumes a `.partial` left by a dropped connection, after checking that
its SHA-256 equals that of the same leading bytes of the local file; a partial file
that does not match is removed and the upload starts over. At the end the whole
file's SHA-256 is compared with the local one and only then is the file renamed to
its final name, so a half-copied file never carries that name. A different file
already at the final name is never overwritten.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from hvlab.errors import ConfigError, HvlabError, ResponseLost, TransportError
from hvlab.resources import template
from hvlab.steps.common import SILENT, first, text, val

CHUNK_BYTES = 1024 * 1024  # one WinRM message of ~1.4 MB base64; pypsrp splits it
HASH_BLOCK = 4 * 1024 * 1024


@dataclasses.dataclass
class Uploaded:
    remote: str
    size: int
    sha256: str
    sent_bytes: int  # bytes this run sent (0 when the file was there already)
    resumed_at: int  # where this run started (0: from the beginning)


def file_sha256(path: Path, limit: int | None = None) -> str:
    """SHA-256 of the file, or of its first `limit` bytes."""
    digest = hashlib.sha256()
    left = limit
    with path.open("rb") as fh:
        while left is None or left > 0:
            block = fh.read(HASH_BLOCK if left is None else min(HASH_BLOCK, left))
            if not block:
                break
            digest.update(block)
            if left is not None:
                left -= len(block)
    return digest.hexdigest().upper()


def _remote_hash(host: Any, path: str) -> str | None:
    rec = first(host.run("Get-FileHash", Path=path, Algorithm="SHA256", **SILENT))
    return text(val(rec, "Hash")).upper() or None


CHUNK_LOSSES = 4  # answers lost in a row before the upload gives up (and can resume later)


def _remote_length(host: Any, path: str) -> int | None:
    rec = first(host.run("Get-Item", Path=path, **SILENT))
    if rec is None:
        return None
    return int(val(rec, "Length", 0) or 0)


def upload(
    host: Any,
    local: Path,
    remote: str,
    *,
    chunk_bytes: int = CHUNK_BYTES,
    progress: Callable[[int, int, float, int], None] | None = None,
    note: Callable[[str], None] | None = None,
) -> Uploaded:
    """Put `local` on the host at `remote` (an absolute Windows path, validated by the caller)."""
    say = note or (lambda _line: None)
    size = local.stat().st_size
    sha = file_sha256(local)
    partial = remote + ".partial"
    existing = _remote_hash(host, remote)
    if existing is not None:
        if existing == sha:
            say(f"{remote} is there already with the same SHA-256; nothing to upload")
            return Uploaded(remote, size, sha, 0, size)
        raise ConfigError(
            f"{remote} exists on the host with another SHA-256 ({existing[:12]}..., the local "
            f"file is {sha[:12]}...); hvlab never overwrites it: remove it or rename the local file"
        )
    folder = remote.rsplit("\\", 1)[0]
    host.run("New-Item", ItemType="Directory", Path=folder, Force=True)
    offset = _resume_point(host, local, partial, size, say)
    started_at = offset
    t0 = time.monotonic()
    losses = 0
    with local.open("rb") as fh:
        while offset < size:
            try:
                offset = _send(host, fh, partial, offset, min(chunk_bytes, size - offset), size)
                losses = 0
            except ResponseLost as err:
                # The chunk may have landed: the host's length says where to go on.
                # Sending it again is safe too (it is written only at the file's end),
                # but the length read is what the step-level rule asks: facts first.
                losses += 1
                if losses >= CHUNK_LOSSES:
                    raise TransportError(
                        f"{remote}: the answers to {losses} chunks in a row were lost ({err}); "
                        "run the command again to resume the upload"
                    ) from None
                offset = _remote_length(host, partial) or 0
                say(
                    f"the answer to a chunk was lost; the host has {offset} bytes, going on from there"
                )
                continue
            if progress is not None:
                progress(offset, size, time.monotonic() - t0, offset - started_at)
    if offset == 0:
        # An empty file: create it so the rename below has something to rename.
        _send(host, None, partial, 0, 0, size)
    got = _remote_hash(host, partial)
    if got != sha:
        host.run("Remove-Item", Path=partial, Force=True, **SILENT)
        raise HvlabError(
            f"the copy of {local.name} on the host has SHA-256 {(got or 'none')[:12]}..., the local "
            f"file {sha[:12]}...: the upload was corrupted and is removed; run the command again"
        )
    host.run("Rename-Item", Path=partial, NewName=remote.rsplit("\\", 1)[-1])
    return Uploaded(remote, size, sha, size - started_at, started_at)


def _resume_point(
    host: Any, local: Path, partial: str, size: int, say: Callable[[str], None]
) -> int:
    length = _remote_length(host, partial)
    if not length:
        return 0
    if length <= size and _remote_hash(host, partial) == file_sha256(local, length):
        say(f"resuming the upload at {length} of {size} bytes (a previous run stopped there)")
        return length
    say(f"{partial} does not match the local file; starting the upload over")
    host.run("Remove-Item", Path=partial, Force=True)
    return 0


def _send(host: Any, fh: BinaryIO | None, partial: str, offset: int, count: int, size: int) -> int:
    """Send the bytes at `offset`; return the length the host reports (R-122)."""
    data = b""
    if fh is not None:
        fh.seek(offset)
        data = fh.read(count)
    out = host.script(
        _chunk_script(),
        _label="Write-FileChunk",
        Path=partial,
        Offset=offset,
        Data=base64.b64encode(data).decode("ascii"),
    )
    length = int(out[-1]) if out else -1
    if length < 0 or length > size:
        raise HvlabError(
            f"{partial} on the host holds {length} bytes, more than the {size} of the local file; "
            "remove it and run again"
        )
    return length


def _chunk_script() -> str:
    return template("host/Write-FileChunk.ps1")


def progress_printer(
    name: str, emit: Callable[[str], None], every: float = 2.0
) -> Callable[[int, int, float, int], None]:
    """A progress callback that prints a line at most every `every` seconds, and at the
    end: how far the file is, and the rate of what this run sent."""
    last = [0.0]

    def show(done: int, total: int, seconds: float, sent: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < every:
            return
        last[0] = now
        rate = sent / seconds / 2**20 if seconds > 0 else 0.0
        pct = 100.0 * done / total if total else 100.0
        emit(
            f"uploading {name}: {pct:5.1f}% ({done / 2**20:.1f} of {total / 2**20:.1f} MiB, "
            f"{rate:.1f} MiB/s)"
        )

    return show
