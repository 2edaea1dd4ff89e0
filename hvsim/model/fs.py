"""A Windows file system: drive letters, case-insensitive names, mount points, volumes.

A `Volume` is a formatted file system (NTFS, FAT32, ReFS, CSVFS) with a size and
a tree of directories and files. A `FileSystem` is one machine's view: drive
letters and folder mount points mapped to volumes. The same Volume object can
be mounted on several machines (a CSV at C:\\ClusterStorage\\<v> on every
node) and a VHD's OS partition is a Volume too, mounted as a drive letter on
the host while the VHD is mounted (R-17) and as C: in the guest it boots.

A file holds text, bytes, or a VHD object (hvsim.model.hyperv.VHD): the size
of such a file is the VHD's FileSize, so VHDs count against the free space of
the volume they live on (R-79).
"""

from __future__ import annotations

import dataclasses
import string
import uuid
from collections.abc import Iterator
from typing import Any

from hvsim.errors import PSError

GiB = 1024**3
TiB = 1024**4


class FsError(Exception):
    """A file-system failure; cmdlets turn it into the ErrorRecord PowerShell writes."""

    def __init__(self, kind: str, path: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {path} {detail}".strip())
        self.kind = kind  # not_found, exists, not_empty, no_space, not_a_dir, bad_path, read_only
        self.path = path
        self.detail = detail


@dataclasses.dataclass
class File:
    name: str
    content: Any = ""  # str, bytes, or a VHD object
    created: float = 0.0
    written: float = 0.0

    @property
    def size(self) -> int:
        c = self.content
        if isinstance(c, str):
            # Set-Content -Encoding UTF8 in Windows PowerShell writes a BOM.
            return len(c.encode("utf-8")) + 3
        if isinstance(c, bytes | bytearray):
            return len(c)
        return int(getattr(c, "file_size", 0))


@dataclasses.dataclass
class Dir:
    name: str
    children: dict[str, File | Dir] = dataclasses.field(default_factory=dict)
    created: float = 0.0

    def get(self, name: str) -> File | Dir | None:
        return self.children.get(name.lower())

    def put(self, node: File | Dir) -> None:
        self.children[node.name.lower()] = node

    def pop(self, name: str) -> File | Dir | None:
        return self.children.pop(name.lower(), None)

    def walk(self) -> Iterator[tuple[list[str], File | Dir]]:
        """Every node below this one, with its path parts (display names)."""
        for child in self.children.values():
            yield [child.name], child
            if isinstance(child, Dir):
                for parts, node in child.walk():
                    yield [child.name, *parts], node


@dataclasses.dataclass(eq=False)
class Volume:
    """A formatted file system with a size; `used_base` is space taken by files the
    model does not list (the installed OS, page file)."""

    label: str
    file_system: str  # NTFS, FAT32, ReFS, CSVFS
    size: int
    used_base: int = 0
    root: Dir = dataclasses.field(default_factory=lambda: Dir(""), repr=False)
    unique_id: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))
    # The VHD whose partition holds this volume, if any: writes to it grow the VHD
    # file and mark differencing children corrupt.
    owner: Any = dataclasses.field(default=None, repr=False)
    # Bytes that may still be written before the volume reports full: set by the
    # disk_full fault; None = only the size limits. A fault of the process that
    # asked for it: never stored in the state file.
    write_budget: int | None = dataclasses.field(default=None, metadata={"persist": False})
    read_only: bool = False

    def used(self) -> int:
        return self.used_base + sum(n.size for _, n in self.root.walk() if isinstance(n, File))

    def free(self) -> int:
        free = max(0, self.size - self.used())
        if self.write_budget is not None:
            free = min(free, max(0, self.write_budget))
        return free

    def consume(self, nbytes: int, path: str) -> None:
        """Account for `nbytes` of growth; fail when the volume cannot hold them (R-79)."""
        if nbytes <= 0:
            return
        if nbytes > self.free():
            raise FsError("no_space", path, f"needs {nbytes} bytes, {self.free()} free")
        if self.write_budget is not None:
            self.write_budget -= nbytes


def _before_write(vol: Volume, path: str, growth: int) -> None:
    """Charge growth to the volume, and to the VHD file holding it when the volume is
    a partition of a VHD (a dynamic VHD grows as data is written, R-14/R-79)."""
    if vol.owner is not None:
        vol.owner.before_partition_write(vol, path, growth)
    vol.consume(growth, path)


def _discard(node: File | Dir) -> None:
    """Tell the content of every file under `node` that it is gone (a VHD leaves its
    parent's list of children)."""
    files = [node] if isinstance(node, File) else [n for _, n in node.walk() if isinstance(n, File)]
    for f in files:
        hook = getattr(f.content, "discarded", None)
        if callable(hook):
            hook()


def split_path(path: str) -> tuple[str, list[str]]:
    """'C:\\a\\b' -> ('C', ['a', 'b']). Forward slashes and repeated separators are
    accepted as on Windows; '..' and '.' are resolved. Relative paths are taken
    from C:\\ (the model has no current location)."""
    p = str(path).strip().replace("/", "\\")
    if p.startswith("\\\\"):
        raise FsError("bad_path", path, "UNC paths are not modelled on this machine")
    if p.lower().startswith("microsoft.powershell.core\\filesystem::"):
        p = p.split("::", 1)[1]
    if len(p) >= 2 and p[1] == ":" and p[0].upper() in string.ascii_uppercase:
        drive, rest = p[0].upper(), p[2:]
    else:
        drive, rest = "C", p
    parts: list[str] = []
    for part in rest.split("\\"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        if any(ch in part for ch in '<>"|?*') or ":" in part:
            raise FsError("bad_path", path, "illegal characters in path")
        # Windows drops trailing dots and spaces from names.
        name = part.rstrip(" .")
        if name:
            parts.append(name)
    return drive, parts


def join(drive: str, parts: list[str]) -> str:
    return f"{drive}:\\" + "\\".join(parts)


def normalize(path: str) -> str:
    drive, parts = split_path(path)
    return join(drive, parts)


@dataclasses.dataclass(eq=False)
class FileSystem:
    """One machine's view of its volumes."""

    drives: dict[str, Volume] = dataclasses.field(default_factory=dict)
    # Folder mount points: normalized lower-case path parts (drive first) -> volume.
    mounts: dict[tuple[str, ...], Volume] = dataclasses.field(default_factory=dict)
    # hvsim.clock.Clock of the world, for file times; None in bare unit tests.
    clock: Any = None

    def now(self) -> float:
        return self.clock.now() if self.clock is not None else 0.0

    # -- volumes -------------------------------------------------------------

    def add_drive(self, letter: str, volume: Volume) -> None:
        self.drives[letter.upper().rstrip(":")] = volume

    def remove_drive(self, letter: str) -> Volume | None:
        return self.drives.pop(letter.upper().rstrip(":"), None)

    def free_letter(self, start: str = "D") -> str | None:
        for letter in string.ascii_uppercase[string.ascii_uppercase.index(start) :]:
            if letter not in self.drives:
                return letter
        return None

    def mount(self, path: str, volume: Volume) -> None:
        """Mount `volume` at a folder (C:\\ClusterStorage\\Vol1): the folder appears."""
        drive, parts = split_path(path)
        key = (drive.lower(), *(p.lower() for p in parts))
        self.mounts[key] = volume
        # The mount point is a folder in its parent: make the parent chain exist.
        if parts:
            self.mkdir(join(drive, parts[:-1]))

    def unmount(self, path: str) -> Volume | None:
        drive, parts = split_path(path)
        return self.mounts.pop((drive.lower(), *(p.lower() for p in parts)), None)

    def volume_of(self, path: str) -> Volume:
        return self._locate(path)[0]

    def _locate(self, path: str) -> tuple[Volume, list[str], str]:
        """The volume holding `path`, the parts inside it, and the normalized path."""
        drive, parts = split_path(path)
        lowered = (drive.lower(), *(p.lower() for p in parts))
        best: tuple[str, ...] | None = None
        for key in self.mounts:
            if lowered[: len(key)] == key and (best is None or len(key) > len(best)):
                best = key
        norm = join(drive, parts)
        if best is not None:
            return self.mounts[best], parts[len(best) - 1 :], norm
        vol = self.drives.get(drive)
        if vol is None:
            raise FsError(
                "no_drive",
                norm,
                f"Cannot find drive. A drive with the name '{drive}' does not exist.",
            )
        return vol, parts, norm

    # -- nodes ---------------------------------------------------------------

    def node(self, path: str) -> File | Dir | None:
        try:
            vol, parts, _ = self._locate(path)
        except FsError as err:
            if err.kind in ("no_drive",):
                return None
            raise
        cur: File | Dir = vol.root
        for part in parts:
            if not isinstance(cur, Dir):
                return None
            nxt = cur.get(part)
            if nxt is None:
                # A mount point below this folder is a folder even before it is listed.
                return None
            cur = nxt
        return cur

    def exists(self, path: str) -> bool:
        if self._is_mount_point(path):
            return True
        return self.node(path) is not None

    def is_dir(self, path: str) -> bool:
        return self._is_mount_point(path) or isinstance(self.node(path), Dir)

    def _is_mount_point(self, path: str) -> bool:
        try:
            drive, parts = split_path(path)
        except FsError:
            return False
        return (drive.lower(), *(p.lower() for p in parts)) in self.mounts

    def _parent_dir(self, path: str, create: bool) -> tuple[Volume, Dir, str, str]:
        vol, parts, norm = self._locate(path)
        if not parts:
            raise FsError("bad_path", norm, "is a drive root")
        cur = vol.root
        for part in parts[:-1]:
            nxt = cur.get(part)
            if nxt is None:
                if not create:
                    raise FsError("not_found", norm)
                nxt = Dir(part, created=self.now())
                cur.put(nxt)
            if not isinstance(nxt, Dir):
                raise FsError("not_a_dir", norm)
            cur = nxt
        return vol, cur, parts[-1], norm

    def mkdir(self, path: str) -> Dir:
        """Create a folder and its parents (New-Item -ItemType Directory -Force)."""
        vol, parts, norm = self._locate(path)
        cur = vol.root
        for part in parts:
            nxt = cur.get(part)
            if nxt is None:
                if vol.read_only:
                    raise FsError("read_only", norm)
                nxt = Dir(part, created=self.now())
                cur.put(nxt)
            if not isinstance(nxt, Dir):
                raise FsError("exists", norm, "a file with that name exists")
            cur = nxt
        return cur

    def write(self, path: str, content: Any, *, create_parents: bool = False) -> File:
        """Create or replace a file. Growth is charged to the volume first."""
        vol, parent, name, norm = self._parent_dir(path, create_parents)
        if vol.read_only:
            raise FsError("read_only", norm)
        existing = parent.get(name)
        if isinstance(existing, Dir):
            raise FsError("is_dir", norm)
        new = File(name if existing is None else existing.name, content)
        old_size = existing.size if isinstance(existing, File) else 0
        _before_write(vol, norm, new.size - old_size)
        now = self.now()
        new.created = existing.created if isinstance(existing, File) else now
        new.written = now
        parent.put(new)
        if isinstance(existing, File) and existing.content is not content:
            _discard(existing)
        placed = getattr(content, "placed", None)
        if callable(placed):
            placed(vol, norm)
        return new

    def rename(self, path: str, new_name: str) -> File | Dir:
        """Rename an item inside its folder (Rename-Item); the target name must be free."""
        vol, parent, name, norm = self._parent_dir(path, False)
        node = parent.get(name)
        if node is None:
            raise FsError("not_found", norm)
        if vol.read_only:
            raise FsError("read_only", norm)
        if new_name.lower() != name.lower() and parent.get(new_name) is not None:
            raise FsError("exists", norm.rsplit("\\", 1)[0] + "\\" + new_name)
        _before_write(vol, norm, 0)
        parent.pop(name)
        node.name = new_name
        parent.put(node)
        return node

    def read(self, path: str) -> Any:
        node = self.node(path)
        if node is None:
            raise FsError("not_found", normalize(path))
        if isinstance(node, Dir):
            raise FsError("is_dir", normalize(path))
        return node.content

    def remove(self, path: str, *, recurse: bool = False) -> None:
        vol, parent, name, norm = self._parent_dir(path, False)
        node = parent.get(name)
        if node is None:
            raise FsError("not_found", norm)
        if isinstance(node, Dir) and node.children and not recurse:
            raise FsError("not_empty", norm)
        if vol.read_only:
            raise FsError("read_only", norm)
        _before_write(vol, norm, 0)
        parent.pop(name)
        _discard(node)

    def listdir(self, path: str) -> list[File | Dir]:
        node = self.node(path)
        if isinstance(node, Dir):
            return list(node.children.values())
        if self._is_mount_point(path):
            return list(self.volume_of(path).root.children.values())
        raise FsError("not_found", normalize(path))

    def local_files(self) -> Iterator[tuple[str, File]]:
        """Every file on the machine's own volumes (C:, data volumes), not on volumes
        inside mounted virtual disks: where VHDX files live."""
        for letter, volume in sorted(self.drives.items()):
            if volume.owner is None:
                yield from self.files(f"{letter}:\\")

    def files(self, path: str = "C:\\") -> Iterator[tuple[str, File]]:
        """Every file under `path`, with its full path."""
        node = self.node(path)
        if not isinstance(node, Dir):
            return
        base = normalize(path).rstrip("\\")
        for parts, child in node.walk():
            if isinstance(child, File):
                yield base + "\\" + "\\".join(parts), child


# FileSystem provider failures as PowerShell reports them (en-US): kind ->
# (message, error id, category, exception). {path} and {detail} come from the error.
_FS_ERRORS: dict[str, tuple[str, str, str, str]] = {
    "no_drive": (
        "{detail}",
        "DriveNotFound",
        "ObjectNotFound",
        "System.Management.Automation.DriveNotFoundException",
    ),
    "not_found": (
        "Cannot find path '{path}' because it does not exist.",
        "PathNotFound",
        "ObjectNotFound",
        "System.Management.Automation.ItemNotFoundException",
    ),
    "no_space": (
        "There is not enough space on the disk.",
        "System.IO.IOException",
        "WriteError",
        "System.IO.IOException",
    ),
    "exists": (
        "An item with the specified name {path} already exists.",
        "DirectoryExist",
        "ResourceExists",
        "System.IO.IOException",
    ),
    "not_empty": (
        "The item at {path} has children and the Recurse parameter was not specified.",
        "DirectoryNotEmpty",
        "WriteError",
        "System.IO.IOException",
    ),
    "is_dir": (
        "Access to the path '{path}' is denied.",
        "UnauthorizedAccessError",
        "PermissionDenied",
        "System.UnauthorizedAccessException",
    ),
    "read_only": (
        "The media is write protected.",
        "System.IO.IOException",
        "WriteError",
        "System.IO.IOException",
    ),
}
_FS_OTHER = (
    "The given path's format is not supported: {path}",
    "ItemExistsNotSupportedError",
    "InvalidArgument",
    "System.NotSupportedException",
)


def fs_error_to_ps(err: FsError, cmdlet: str, *, item: str = "Item") -> PSError:
    """The ErrorRecord PowerShell writes for a file-system failure in `cmdlet`.

    Texts are those of the FileSystem provider (en-US); FQIDs use the cmdlet's
    .NET class name as PowerShell does.
    """
    cls = "Microsoft.PowerShell.Commands." + cmdlet.replace("-", "") + "Command"
    message, error_id, category, exception = _FS_ERRORS.get(err.kind, _FS_OTHER)
    return PSError(
        message.format(path=err.path, detail=err.detail),
        fqid=f"{error_id},{cls}",
        category=category,
        exception=exception,
        target=err.path,
    )


__all__ = [
    "Dir",
    "File",
    "FileSystem",
    "FsError",
    "GiB",
    "TiB",
    "Volume",
    "fs_error_to_ps",
    "join",
    "normalize",
    "split_path",
]
