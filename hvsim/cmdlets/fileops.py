"""More FileSystem provider cmdlets: Get-FileHash and Rename-Item (R-122, R-123).

Get-FileHash reads a file's bytes as they are on disk: a text file the model keeps
as str is the UTF-8 bytes Set-Content wrote (with the byte order mark the model
counts in its size). Rename-Item renames within the folder, never over an existing
item, and not while the file is open (a mounted VHD, a VM's disk).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from hvsim import timing
from hvsim.cmdlets._hvcommon import as_list
from hvsim.cmdlets.fs import _cls, _expand, _in_use, _in_use_error, item_obj
from hvsim.errors import PSError, not_modelled
from hvsim.model.fs import Dir, File, FsError, GiB, fs_error_to_ps, normalize
from hvsim.model.vhd import VHD
from hvsim.registry import Call, Context, cmdlet

ALGORITHMS = {
    "SHA1": "sha1",
    "SHA256": "sha256",
    "SHA384": "sha384",
    "SHA512": "sha512",
    "MD5": "md5",
}


def file_bytes(content: Any, path: str) -> bytes:
    if isinstance(content, bytes | bytearray):
        return bytes(content)
    if isinstance(content, str):
        return b"\xef\xbb\xbf" + content.encode("utf-8")
    raise not_modelled(f"reading the bytes of {path}")


@cmdlet("Get-FileHash", params=["Path", "LiteralPath", "Algorithm"])
def get_filehash(ctx: Context, call: Call) -> Iterable[Any]:
    algorithm = str(call.get("Algorithm") or "SHA256").upper()
    if algorithm not in ALGORITHMS:
        raise not_modelled(f"Get-FileHash -Algorithm {algorithm}")
    fs = ctx.machine.fs
    for raw in as_list(call.get("Path") or call.get("LiteralPath")):
        targets = [p for p in _expand(ctx, str(raw)) if fs.exists(p)]
        if not targets:
            ctx.error(fs_error_to_ps(FsError("not_found", normalize(str(raw))), call.name))
            continue
        for full in targets:
            node = fs.node(full)
            if isinstance(node, Dir):
                continue  # Get-FileHash skips folders
            assert isinstance(node, File)
            if isinstance(node.content, VHD) and node.content.attached:
                ctx.error(_in_use_error(full, call.name, "read file"))
                continue
            data = file_bytes(node.content, full)
            digest = hashlib.new(ALGORITHMS[algorithm], data).hexdigest().upper()
            ctx.work(timing.seconds("file.hash_per_gib") * len(data) / GiB, f"hashing {full}")
            from hvsim.objects import PSObj

            yield PSObj(
                ["Microsoft.Powershell.Utility.FileHash", "System.Object"],
                {"Algorithm": algorithm, "Hash": digest, "Path": full},
                to_string="@{" + f"Algorithm={algorithm}; Hash={digest}; Path={full}" + "}",
            )


@cmdlet("Rename-Item", params=["Path", "LiteralPath", "NewName", "Force", "PassThru"])
def rename_item(ctx: Context, call: Call) -> Iterable[Any]:
    fs = ctx.machine.fs
    raw = str(call.get("Path") or call.get("LiteralPath"))
    full = normalize(raw)
    new_name = str(call.get("NewName"))
    folder = full.rsplit("\\", 1)[0]
    if "\\" in new_name or "/" in new_name:
        target = normalize(new_name)
        if target.rsplit("\\", 1)[0].lower() != folder.lower():
            raise PSError(
                "Cannot rename the specified target, because it represents a path or device name.",
                fqid=f"Argument,{_cls(call.name)}",
                category="InvalidArgument",
                exception="System.Management.Automation.PSArgumentException",
                target=new_name,
            )
        new_name = target.rsplit("\\", 1)[1]
    if not fs.exists(full):
        raise PSError(
            f"Cannot rename because item at '{raw}' does not exist.",
            fqid=f"InvalidOperation,{_cls(call.name)}",
            category="InvalidOperation",
            exception="System.Management.Automation.PSInvalidOperationException",
            target=raw,
        )
    if _in_use(ctx, full):
        raise _in_use_error(full, call.name, "rename item")
    new_path = f"{folder}\\{new_name}"
    try:
        node = fs.rename(full, new_name)
    except FsError as err:
        if err.kind == "exists":
            raise PSError(
                "Cannot create a file when that file already exists.",
                fqid=f"RenameItemIOError,{_cls(call.name)}",
                category="WriteError",
                exception="System.IO.IOException",
                target=full,
            ) from None
        raise fs_error_to_ps(err, call.name) from None
    content = getattr(node, "content", None)
    if isinstance(content, VHD):
        # Children find their parent by path: after a rename they no longer open.
        for child in content.children:
            child.corrupt = True
        content.path = new_path
    if call.switch("PassThru"):
        yield item_obj(ctx, new_path)
