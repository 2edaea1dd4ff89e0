"""Constant scripts hvsim recognises by content, and what each one does.

hvsim cannot run PowerShell. It knows a few constant scripts by the SHA-256 of
their normalised text (line endings LF, trailing white space stripped per line,
the whole stripped at both ends) and runs a modelled implementation of each.
Anything else fails as "not modelled": hvsim refuses rather than pretends.

The table names the file each hash stands for; tests/test_model_guest_scripts.py
checks that every .ps1 under templates/ is in it, so a changed template fails
loudly until the model is updated on purpose.

Two kinds:
  host  the PowerShell Direct wrappers (templates/host), sent with add_script to
        a machine that runs Hyper-V; they reach a guest by VM name (R-34).
  guest scripts run inside a guest through Invoke-GuestScript.ps1 (templates/guest).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable
from typing import Any

from hvsim.errors import PSError, not_modelled
from hvsim.registry import Context

ScriptHandler = Callable[[Context, dict[str, Any]], Iterable[Any] | None]


@dataclasses.dataclass(frozen=True)
class Param:
    name: str
    mandatory: bool = False
    default: Any = None


@dataclasses.dataclass(frozen=True)
class KnownScript:
    file: str  # path under the repository, for messages and the drift test
    sha256: str
    kind: str  # "host" or "guest"
    params: tuple[Param, ...]
    handler: ScriptHandler

    def bind(self, given: dict[str, Any]) -> dict[str, Any]:
        """Match named arguments to the script's param() block as PowerShell does:
        case-insensitive, unambiguous prefix; a missing mandatory one is an error."""
        out: dict[str, Any] = {}
        for key, value in given.items():
            matches = [p for p in self.params if p.name.lower().startswith(key.lower())]
            exact = [p for p in matches if p.name.lower() == key.lower()]
            if exact:
                matches = exact
            if len(matches) != 1:
                raise PSError(
                    f"A parameter cannot be found that matches parameter name '{key}'.",
                    fqid="NamedParameterNotFound",
                    category="InvalidArgument",
                    exception="System.Management.Automation.ParameterBindingException",
                )
            out[matches[0].name] = value
        for p in self.params:
            if p.name not in out:
                if p.mandatory:
                    raise PSError(
                        f"Cannot process command because of one or more missing mandatory "
                        f"parameters: {p.name}.",
                        fqid="MissingMandatoryParameter",
                        category="InvalidArgument",
                        exception="System.Management.Automation.ParameterBindingException",
                    )
                out[p.name] = p.default
        return out


def normalise(text: str) -> str:
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


def digest(text: str) -> str:
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()


def _invoke_guest_command(ctx: Context, args: dict[str, Any]) -> Iterable[Any] | None:
    from hvsim.cmdlets.psdirect import powershell_direct_command

    return powershell_direct_command(
        ctx, args["VMName"], args["Credential"], args["Command"], args["Parameters"] or {}
    )


def _invoke_guest_script(ctx: Context, args: dict[str, Any]) -> Iterable[Any] | None:
    from hvsim.cmdlets.psdirect import powershell_direct_script

    return powershell_direct_script(
        ctx, args["VMName"], args["Credential"], args["Script"], args["Parameters"] or {}
    )


def _set_cluster_network_role(ctx: Context, args: dict[str, Any]) -> Iterable[Any] | None:
    from hvsim.cmdlets.cluster import set_cluster_network_role

    return set_cluster_network_role(ctx, str(args["Address"]), str(args["Name"]), args["Role"])


def _set_image_boot_files(ctx: Context, args: dict[str, Any]) -> Iterable[Any] | None:
    from hvsim.cmdlets._imagescripts import set_image_boot_files

    return set_image_boot_files(ctx, str(args["WindowsPath"]), str(args["SystemDrive"]))


def _write_file_chunk(ctx: Context, args: dict[str, Any]) -> Iterable[Any] | None:
    from hvsim.cmdlets._imagescripts import write_file_chunk

    return write_file_chunk(ctx, args["Path"], args["Offset"], args["Data"])


def _get_vm_thumbnail(ctx: Context, args: dict[str, Any]) -> Iterable[Any] | None:
    from hvsim.cmdlets.console import get_vm_thumbnail

    return get_vm_thumbnail(ctx, args["VMId"], args["WidthPixels"], args["HeightPixels"])


def _get_s2d_in_vm_settings(ctx: Context, args: dict[str, Any]) -> Iterable[Any] | None:
    from hvsim.cmdlets.storage import get_s2d_in_vm_settings

    return get_s2d_in_vm_settings(ctx)


def _set_s2d_in_vm_settings(ctx: Context, args: dict[str, Any]) -> Iterable[Any] | None:
    from hvsim.cmdlets.storage import set_s2d_in_vm_settings

    return set_s2d_in_vm_settings(ctx, args["AutoReplace"], args["BlockCacheSize"])


def _invoke_cau_run_by_node(ctx: Context, args: dict[str, Any]) -> Iterable[Any] | None:
    from hvsim.cmdlets.cau import invoke_cau_run_by_node

    return invoke_cau_run_by_node(ctx, args["Run"])


def _get_guest_facts(ctx: Context, args: dict[str, Any]) -> Iterable[Any] | None:
    from hvsim.cmdlets._factscripts import get_guest_facts

    return get_guest_facts(ctx, args)


def _get_cluster_facts(ctx: Context, args: dict[str, Any]) -> Iterable[Any] | None:
    from hvsim.cmdlets._factscripts import get_cluster_facts

    return get_cluster_facts(ctx, args)


_WRAPPER_PARAMS = (Param("VMName", True), Param("Credential", True), Param("Parameters", False, {}))

# One row per constant script: the file it stands for and its hash (see module doc).
KNOWN: tuple[KnownScript, ...] = (
    KnownScript(
        "templates/host/Invoke-GuestCommand.ps1",
        "85f9160b0d5b26605f9764f9a6d7283aa7c7099ba1e365b8ddf2671131fa4562",
        "host",
        (*_WRAPPER_PARAMS, Param("Command", True)),
        _invoke_guest_command,
    ),
    KnownScript(
        "templates/host/Invoke-GuestScript.ps1",
        "ebcf67136f479186edba9f86fbc6c560394d890685c3fb246648bd75ce5cfdda",
        "host",
        (*_WRAPPER_PARAMS, Param("Script", True)),
        _invoke_guest_script,
    ),
    KnownScript(
        "templates/host/Set-ImageBootFiles.ps1",
        "237f65ce1e523ccea7524fa101b905f2a78b2c99327b3f877d7076dc225476dc",
        "host",
        (Param("WindowsPath", True), Param("SystemDrive", True)),
        _set_image_boot_files,
    ),
    KnownScript(
        "templates/host/Write-FileChunk.ps1",
        "d245b65c92653cbc76d21baa7200d866e2bcca7097e4668c3ca692cf46a8f383",
        "host",
        (Param("Path", True), Param("Offset", True), Param("Data", True)),
        _write_file_chunk,
    ),
    KnownScript(
        "templates/host/Get-VMThumbnail.ps1",
        "c7fb1669ded9509eb5b576ac0f7ad88341d027d3d8f0cee766d185f8466c9f8c",
        "host",
        (Param("VMId", True), Param("WidthPixels", True), Param("HeightPixels", True)),
        _get_vm_thumbnail,
    ),
    KnownScript(
        "templates/guest/Set-ClusterNetworkRole.ps1",
        "1210eae638c897fae94e1cbae01c9795cda9cdffcd3a11b9b805b2d29b5a2064",
        "guest",
        (Param("Address", True), Param("Name", True), Param("Role", True)),
        _set_cluster_network_role,
    ),
    KnownScript(
        "templates/guest/Get-S2DInVMSettings.ps1",
        "bbea3254725e0041ecb5573338a87ab888303c14b2c60dea668fcaffdbba93a1",
        "guest",
        (),
        _get_s2d_in_vm_settings,
    ),
    KnownScript(
        "templates/guest/Set-S2DInVMSettings.ps1",
        "9384591273a1285650a2c3a105e92ef199181fa67f639bca344c23444c528660",
        "guest",
        (Param("AutoReplace", True), Param("BlockCacheSize", True)),
        _set_s2d_in_vm_settings,
    ),
    KnownScript(
        "templates/guest/Invoke-CauRunByNode.ps1",
        "1097bd56f0bfc1b0c44d2aa4886aae032e26b2a506657dee54fbf6034134e2ed",
        "guest",
        (Param("Run", True),),
        _invoke_cau_run_by_node,
    ),
    KnownScript(
        "templates/guest/Get-GuestFacts.ps1",
        "eb87c8639af7c01277a3e50184a24b637f9b52bfec7fdc705bb50e38bb21712b",
        "guest",
        tuple(
            Param(name)
            for name in (
                "OperatingSystem",
                "ComputerSystem",
                "AdapterNames",
                "NetAdapter",
                "Path",
                "Feature",
                "DnsClient",
                "RegistryPath",
                "RegistryValue",
                "Service",
                "VMSwitch",
                "VMHost",
                "DomainController",
            )
        ),
        _get_guest_facts,
    ),
    KnownScript(
        "templates/guest/Get-ClusterFacts.ps1",
        "3937af7259828b205741de7276b16babede7dcb1e3ae44e1f20e21005ee26c51",
        "guest",
        tuple(
            Param(name)
            for name in (
                "Node",
                "Quorum",
                "Network",
                "SharedVolume",
                "Group",
                "StoragePool",
                "InVMSettings",
                "PhysicalDisk",
                "VirtualDisk",
            )
        ),
        _get_cluster_facts,
    ),
)

_BY_HASH = {k.sha256: k for k in KNOWN}


def find(text: str, kind: str | None = None) -> KnownScript | None:
    """The known script with this text (of this kind, if given), or None."""
    known = _BY_HASH.get(digest(text))
    if known is None or (kind is not None and known.kind != kind):
        return None
    return known


def run_script(
    ctx: Context, text: str, params: dict[str, Any], kind: str = "host"
) -> Iterable[Any] | None:
    """Run a script sent with add_script (kind "host") or through Invoke-GuestScript
    (kind "guest"). Unknown text fails as not modelled."""
    known = find(text, kind)
    if known is None:
        raise not_modelled("this script")
    args = known.bind(params)
    faults = getattr(getattr(ctx, "world", None), "faults", None)
    if faults is not None:
        # Fault injection names a constant script by its file name without .ps1
        # (drop:cmdlet=Write-FileChunk), as it names a cmdlet.
        stem = known.file.rsplit("/", 1)[-1].removesuffix(".ps1")
        faults.check(ctx, _ScriptCall(stem))
    return known.handler(ctx, args)


@dataclasses.dataclass(frozen=True)
class _ScriptCall:
    name: str
