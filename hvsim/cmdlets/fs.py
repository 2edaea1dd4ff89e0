"""FileSystem provider cmdlets on any machine (ctx.machine.fs): Test-Path, New-Item,
Set-Content, Get-Content, Get-Item, Get-ChildItem, Remove-Item, Copy-Item.

Texts and FQIDs are those of the FileSystem provider in Windows PowerShell 5.1.
A VHD file that a running VM or a host mount holds open cannot be removed or
copied (R-17); Copy-Item of a VHD keeps its disk identifier (R-15).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Iterable
from typing import Any

from hvsim import timing
from hvsim.cmdlets._hvcommon import as_list
from hvsim.errors import PSError
from hvsim.model.fs import Dir, File, FsError, GiB, fs_error_to_ps, normalize, split_path
from hvsim.model.machine import at
from hvsim.model.vhd import VHD, copy_of
from hvsim.objects import Int64, PSObj
from hvsim.registry import Call, Context, cmdlet

PS_NS = "Microsoft.PowerShell.Commands."


def _cls(cmdlet: str) -> str:
    return PS_NS + cmdlet.replace("-", "") + "Command"


def _paths(call: Call) -> list[str]:
    return [str(p) for p in as_list(call.get("Path") or call.get("LiteralPath"))]


def _is_registry(path: str) -> bool:
    low = path.strip().lower()
    return low.startswith(("hklm:", "registry::"))


def _has_wildcard(path: str) -> bool:
    return any(ch in path for ch in "*?[")


def _expand(ctx: Context, path: str) -> list[str]:
    """Resolve wildcards in the last path segment, as the provider does."""
    if not _has_wildcard(path):
        return [normalize(path)]
    norm_parent, _, pattern = path.replace("/", "\\").rstrip("\\").rpartition("\\")
    fs = ctx.machine.fs
    try:
        children = fs.listdir(norm_parent)
    except FsError:
        return []
    base = normalize(norm_parent).rstrip("\\")
    return [
        f"{base}\\{c.name}" for c in children if fnmatch.fnmatch(c.name.lower(), pattern.lower())
    ]


def _mode(node: File | Dir) -> str:
    return "d-----" if isinstance(node, Dir) else "-a----"


def item_obj(ctx: Context, path: str, node: File | Dir | None = None) -> PSObj:
    """A FileInfo / DirectoryInfo with the provider's note properties."""
    fs = ctx.machine.fs
    node = node if node is not None else fs.node(path)
    full = normalize(path)
    drive, parts = split_path(full)
    name = parts[-1] if parts else f"{drive}:\\"
    parent = (f"{drive}:\\" + "\\".join(parts[:-1])) if parts else ""
    is_dir = node is None or isinstance(node, Dir)
    created = at(node.created) if node is not None else at(0)
    written = at(getattr(node, "written", 0.0) or (node.created if node is not None else 0.0))
    props: dict[str, Any] = {
        "Name": name,
        "FullName": full,
        "Exists": True,
        "CreationTime": created.replace(tzinfo=None),
        "LastWriteTime": written.replace(tzinfo=None),
        "LastWriteTimeUtc": written.astimezone(dt.UTC).replace(tzinfo=None),
        "Attributes": "Directory" if is_dir else "Archive",
        "Mode": _mode(node) if node is not None else "d-----",
    }
    if is_dir:
        props["Parent"] = parent
        props["Root"] = f"{drive}:\\"
        tn = "System.IO.DirectoryInfo"
    else:
        props["Length"] = Int64(node.size)  # type: ignore[union-attr]
        props["DirectoryName"] = parent
        props["Extension"] = "." + name.rsplit(".", 1)[1] if "." in name else ""
        tn = "System.IO.FileInfo"
    provider = "Microsoft.PowerShell.Core\\FileSystem"
    return PSObj(
        [tn, "System.IO.FileSystemInfo", "System.MarshalByRefObject", "System.Object"],
        props,
        to_string=full,
        notes={
            "PSPath": f"{provider}::{full}",
            "PSParentPath": f"{provider}::{parent}",
            "PSChildName": name,
            "PSDrive": drive,
            "PSProvider": provider,
            "PSIsContainer": is_dir,
        },
    )


def _in_use(ctx: Context, path: str) -> bool:
    """A file held open: a VHD that is mounted or used by a running VM, or the
    configuration of a VM this machine's Hyper-V knows (VMMS holds it)."""
    node = ctx.machine.fs.node(path)
    content = getattr(node, "content", None)
    if isinstance(content, VHD):
        return content.attached or content.open_by_children
    hv = ctx.machine.hyperv
    if hv is not None and isinstance(node, File):
        low = normalize(path).lower()
        return any(f.lower() == low for vm in hv.vms for f in vm.config_files)
    return False


def _in_use_error(path: str, cmdlet: str, verb: str = "remove item") -> PSError:
    return PSError(
        f"Cannot {verb} {path}: The process cannot access the file '{path}' because it is being "
        "used by another process.",
        fqid=f"RemoveFileSystemItemIOError,{_cls(cmdlet)}",
        category="WriteError",
        exception="System.IO.IOException",
        target=path,
    )


# -- Test-Path ----------------------------------------------------------------------


@cmdlet("Test-Path", params=["Path", "LiteralPath", "PathType", "IsValid"])
def test_path(ctx: Context, call: Call) -> Iterable[Any]:
    kind = str(call.get("PathType") or "Any")
    fs = ctx.machine.fs
    for raw in _paths(call):
        if call.switch("IsValid"):
            try:
                split_path(raw)
                yield True
            except FsError:
                yield False
            continue
        if _is_registry(raw):
            # The Registry provider: a key is a container (values are not items).
            yield kind != "Leaf" and ctx.machine.reg_key(raw) is not None
            continue
        try:
            found = [p for p in _expand(ctx, raw) if fs.exists(p)]
        except FsError:
            yield False
            continue
        if kind == "Container":
            yield any(fs.is_dir(p) for p in found)
        elif kind == "Leaf":
            yield any(not fs.is_dir(p) for p in found)
        else:
            yield bool(found)


# -- New-Item -----------------------------------------------------------------------


@cmdlet("New-Item", params=["Path", "Name", "ItemType", "Value", "Force"])
def new_item(ctx: Context, call: Call) -> Iterable[Any]:
    fs = ctx.machine.fs
    kind = str(call.get("ItemType") or "File").lower()
    for raw in _paths(call) or ["."]:
        path = raw if "Name" not in call else raw.rstrip("\\/") + "\\" + str(call.get("Name"))
        try:
            full = normalize(path)
            if kind in ("directory", "container"):
                if fs.exists(full) and not call.switch("Force"):
                    raise FsError("exists", full)
                if fs.exists(full) and not fs.is_dir(full):
                    raise FsError("exists", full)
                fs.mkdir(full)
                yield item_obj(ctx, full)
            elif kind == "file":
                if fs.is_dir(full):
                    raise FsError("exists", full)
                if fs.exists(full) and not call.switch("Force"):
                    raise PSError(
                        f"The file '{full}' already exists.",
                        fqid=f"NewItemIOError,{_cls(call.name)}",
                        category="WriteError",
                        exception="System.IO.IOException",
                        target=full,
                    )
                value = call.get("Value")
                text = "" if value is None else _text_of(value, newline=False)
                fs.write(full, text, create_parents=call.switch("Force"))
                yield item_obj(ctx, full)
            else:
                raise PSError(
                    f"hvsim does not model New-Item -ItemType {call.get('ItemType')}.",
                    fqid="NotModelled,hvsim",
                    category="NotImplemented",
                    exception="System.NotImplementedException",
                )
        except FsError as err:
            raise fs_error_to_ps(err, call.name) from None


def _text_of(value: Any, *, newline: bool) -> str:
    """Set-Content writes each object on its own line, CRLF-terminated."""
    lines = [str(v) for v in as_list(value)]
    text = "\r\n".join(lines)
    return text + "\r\n" if newline else text


# -- Set-Content / Get-Content --------------------------------------------------------


@cmdlet(
    "Set-Content",
    params=["Path", "LiteralPath", "Value", "Encoding", "Force", "NoNewline", "PassThru"],
)
def set_content(ctx: Context, call: Call) -> Iterable[Any]:
    value = call.get("Value") if "Value" in call else list(ctx.input)
    text = _text_of(value, newline=not call.switch("NoNewline"))
    for full in _writable_files(ctx, call):
        try:
            ctx.machine.fs.write(full, text)
        except FsError as err:
            raise fs_error_to_ps(err, call.name) from None
        if call.switch("PassThru"):
            yield from as_list(value)


def _writable_files(ctx: Context, call: Call) -> Iterable[str]:
    """The call's paths whose file may be written: one in use is a terminating error;
    one whose folder is missing is an error record and is passed over."""
    fs = ctx.machine.fs
    for raw in _paths(call):
        full = normalize(raw)
        if _in_use(ctx, full):
            raise _in_use_error(full, call.name, "write")
        parent = full.rsplit("\\", 1)[0]
        if not fs.is_dir(parent):
            ctx.error(
                PSError(
                    f"Could not find a part of the path '{full}'.",
                    fqid=f"System.IO.DirectoryNotFoundException,{_cls(call.name)}",
                    category="ObjectNotFound",
                    exception="System.IO.DirectoryNotFoundException",
                    target=full,
                )
            )
            continue
        yield full


@cmdlet("Add-Content", params=["Path", "LiteralPath", "Value", "Encoding", "Force", "NoNewline"])
def add_content(ctx: Context, call: Call) -> Iterable[Any]:
    """Append lines to a file, creating it when missing (the folder must exist)."""
    fs = ctx.machine.fs
    value = call.get("Value") if "Value" in call else list(ctx.input)
    text = _text_of(value, newline=not call.switch("NoNewline"))
    for full in _writable_files(ctx, call):
        try:
            old = fs.read(full) if fs.exists(full) else ""
            if not isinstance(old, str):
                raise not_modelled_binary(full)
            # Appended as is: a last line without its newline is continued.
            fs.write(full, old + text)
        except FsError as err:
            raise fs_error_to_ps(err, call.name) from None
    return []


def not_modelled_binary(path: str) -> PSError:
    return PSError(
        f"hvsim does not model text access to the binary file '{path}'.",
        fqid="NotModelled,hvsim",
        category="NotImplemented",
        exception="System.NotImplementedException",
    )


@cmdlet(
    "Get-Content",
    params=["Path", "LiteralPath", "Raw", "Encoding", "TotalCount", "Tail", "Force", "ReadCount"],
)
def get_content(ctx: Context, call: Call) -> Iterable[Any]:
    fs = ctx.machine.fs
    for raw in _paths(call):
        targets = _expand(ctx, raw)
        if not targets or not all(fs.exists(p) for p in targets):
            ctx.error(fs_error_to_ps(FsError("not_found", normalize(raw)), call.name))
            continue
        for full in targets:
            if fs.is_dir(full):
                ctx.error(
                    PSError(
                        f"Access to the path '{full}' is denied.",
                        fqid=f"GetContentReaderUnauthorizedAccessError,{_cls(call.name)}",
                        category="PermissionDenied",
                        exception="System.UnauthorizedAccessException",
                        target=full,
                    )
                )
                continue
            content = fs.read(full)
            if not isinstance(content, str):
                raise PSError(
                    f"hvsim does not model reading the binary file '{full}' as text.",
                    fqid="NotModelled,hvsim",
                    category="NotImplemented",
                    exception="System.NotImplementedException",
                )
            if call.switch("Raw"):
                yield content
                continue
            lines = content.replace("\r\n", "\n").split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            if "TotalCount" in call:
                lines = lines[: int(call.get("TotalCount"))]
            if "Tail" in call:
                lines = lines[-int(call.get("Tail")) :] if int(call.get("Tail")) else []
            yield from lines


# -- Get-Item / Get-ChildItem ----------------------------------------------------------


@cmdlet("Get-Item", params=["Path", "LiteralPath", "Force"])
def get_item(ctx: Context, call: Call) -> Iterable[Any]:
    fs = ctx.machine.fs
    for raw in _paths(call):
        targets = [p for p in _expand(ctx, raw) if fs.exists(p)]
        if not targets:
            ctx.error(fs_error_to_ps(FsError("not_found", normalize(raw)), call.name))
            continue
        for full in targets:
            yield item_obj(ctx, full)


@cmdlet(
    "Get-ChildItem",
    params=["Path", "LiteralPath", "Filter", "Recurse", "File", "Directory", "Force", "Name"],
)
def get_childitem(ctx: Context, call: Call) -> Iterable[Any]:
    fs = ctx.machine.fs
    flt = str(call.get("Filter") or "*").lower()
    for raw in _paths(call) or ["C:\\"]:
        full = normalize(raw)
        if not fs.exists(full):
            ctx.error(fs_error_to_ps(FsError("not_found", full), call.name))
            continue
        if not fs.is_dir(full):
            yield item_obj(ctx, full)
            continue
        stack = [full]
        while stack:
            folder = stack.pop(0)
            for node in sorted(
                fs.listdir(folder), key=lambda n: (not isinstance(n, Dir), n.name.lower())
            ):
                child = folder.rstrip("\\") + "\\" + node.name
                if isinstance(node, Dir) and call.switch("Recurse"):
                    stack.append(child)
                if call.switch("File") and isinstance(node, Dir):
                    continue
                if call.switch("Directory") and not isinstance(node, Dir):
                    continue
                if fnmatch.fnmatch(node.name.lower(), flt):
                    yield node.name if call.switch("Name") else item_obj(ctx, child, node)


# -- Remove-Item --------------------------------------------------------------------


@cmdlet("Remove-Item", params=["Path", "LiteralPath", "Recurse", "Force"])
def remove_item(ctx: Context, call: Call) -> Iterable[Any]:
    fs = ctx.machine.fs
    for raw in _paths(call):
        targets = [p for p in _expand(ctx, raw) if fs.exists(p)]
        if not targets:
            ctx.error(fs_error_to_ps(FsError("not_found", normalize(raw)), call.name))
            continue
        for full in targets:
            node = fs.node(full)
            if isinstance(node, Dir):
                if node.children and not call.switch("Recurse"):
                    raise PSError(
                        "A command that prompts the user failed because the host program or the "
                        "command type does not support user interaction. The host was attempting "
                        f"to request confirmation with the following message: The item at {full} "
                        "has children and the Recurse parameter was not specified. If you continue, "
                        "all children will be removed with the item. Are you sure you want to continue?",
                        fqid=f"HostFunctionNotImplemented,{_cls(call.name)}",
                        category="NotImplemented",
                        exception="System.Management.Automation.Host.HostException",
                        target=full,
                    )
                busy = [p for p, _ in fs.files(full) if _in_use(ctx, p)]
                if busy:
                    # The provider removes what it can and reports each file it could not.
                    for p in busy:
                        ctx.error(_in_use_error(p, call.name))
                    _remove_tree_except(ctx, full, {b.lower() for b in busy})
                    continue
            elif _in_use(ctx, full):
                ctx.error(_in_use_error(full, call.name))
                continue
            try:
                fs.remove(full, recurse=True)
            except FsError as err:
                ctx.error(fs_error_to_ps(err, call.name))
    return []


def _remove_tree_except(ctx: Context, folder: str, keep: set[str]) -> None:
    fs = ctx.machine.fs
    for p, _ in list(fs.files(folder)):
        if p.lower() not in keep:
            fs.remove(p)


# -- Copy-Item ------------------------------------------------------------------------


@cmdlet(
    "Copy-Item",
    params=["Path", "LiteralPath", "Destination", "Force", "Recurse", "PassThru", "Container"],
)
def copy_item(ctx: Context, call: Call) -> Iterable[Any]:
    fs = ctx.machine.fs
    dest_raw = str(call.get("Destination") or ".")
    for raw in _paths(call):
        sources = [p for p in _expand(ctx, raw) if fs.exists(p)]
        if not sources:
            ctx.error(fs_error_to_ps(FsError("not_found", normalize(raw)), call.name))
            continue
        for src in sources:
            dest = normalize(dest_raw)
            if fs.is_dir(dest):
                dest = dest.rstrip("\\") + "\\" + src.rsplit("\\", 1)[1]
            try:
                if fs.is_dir(src):
                    if not call.switch("Recurse"):
                        fs.mkdir(dest)
                    else:
                        _copy_tree(ctx, src, dest, call)
                else:
                    _copy_file(ctx, src, dest, call)
            except FsError as err:
                raise fs_error_to_ps(err, call.name) from None
            if call.switch("PassThru"):
                yield item_obj(ctx, dest)


def _copy_file(ctx: Context, src: str, dest: str, call: Call) -> None:
    fs = ctx.machine.fs
    if normalize(src).lower() == normalize(dest).lower():
        raise PSError(
            f"Cannot overwrite the item {src} with itself.",
            fqid=f"CopyError,{_cls(call.name)}",
            category="WriteError",
            exception="System.IO.IOException",
            target=src,
        )
    content = fs.read(src)
    if isinstance(content, VHD) and content.attached:
        raise _in_use_error(src, call.name, "copy item")
    if fs.exists(dest) and not fs.is_dir(dest) and _in_use(ctx, dest):
        raise _in_use_error(dest, call.name, "overwrite item")
    if isinstance(content, VHD):
        # a file copy keeps the disk identifier.
        new = copy_of(content, normalize(dest))
        fs.write(dest, new)
        ctx.work(timing.seconds("file.copy_per_gib") * new.file_size / GiB, f"copying {src}")
    else:
        fs.write(dest, content)


def _copy_tree(ctx: Context, src: str, dest: str, call: Call) -> None:
    fs = ctx.machine.fs
    fs.mkdir(dest)
    for child in fs.listdir(src):
        s = src.rstrip("\\") + "\\" + child.name
        d = dest.rstrip("\\") + "\\" + child.name
        if isinstance(child, Dir):
            _copy_tree(ctx, s, d, call)
        else:
            _copy_file(ctx, s, d, call)
