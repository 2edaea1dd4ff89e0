"""Command metadata from the catalog, for GET_COMMAND_METADATA ([MS-PSRP]
2.2.2.14): what `Get-Command` over remoting and implicit remoting ask for.

The reply is the catalog's view of each matching cmdlet as a CommandMetadata
object ([MS-PSRP] 2.2.3.22): name, module (Namespace), command type and
parameters with their types. Only cmdlets and CDXML functions are in the
catalog; aliases, applications and scripts are never returned.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from psrpcore.types import PSNoteProperty, PSObject

# System.Management.Automation.CommandTypes flags ([MS-PSRP] 2.2.3.19).
FUNCTION = 0x02
CMDLET = 0x08
MAX_RESULTS = 2000


def _wanted(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name.lower(), str(p).lower()) for p in patterns)


def find_commands(names: list[str], command_type: int, namespaces: list[str]) -> list[Any]:
    from hvsim import bind
    from hvsim.catalog import catalog

    cat = catalog()
    out: list[Any] = []
    for name in cat.names():
        if not _wanted(name, names):
            continue
        cmd = cat.get(name)
        if cmd is None:
            continue
        kind = FUNCTION if bind.is_function(cmd) else CMDLET
        if command_type and not command_type & kind:
            continue
        if namespaces and not _wanted(cmd.module, namespaces):
            continue
        out.append(_metadata(cmd, kind))
        if len(out) >= MAX_RESULTS:
            break
    return out


def _obj(type_names: list[str], props: dict[str, Any], adapted: bool = False) -> PSObject:
    obj = PSObject()
    obj.PSObject.type_names = type_names
    target = obj.PSObject.adapted_properties if adapted else obj.PSObject.extended_properties
    for key, value in props.items():
        target.append(PSNoteProperty(key, value))
    return obj


def _metadata(cmd: Any, kind: int) -> PSObject:
    from hvsim.clixml import _enum_member

    params = {}
    for p in cmd.params.values():
        # ParameterMetadata ([MS-PSRP] 2.2.3.23): adapted properties.
        params[p.name] = _obj(
            ["System.Management.Automation.ParameterMetadata", "System.Object"],
            {
                "Name": p.name,
                "ParameterType": p.type,
                "Aliases": list(p.aliases),
                "IsDynamic": p.provider is not None,
                "SwitchParameter": p.is_switch,
            },
            adapted=True,
        )
    command_type = _enum_member(
        "System.Management.Automation.CommandTypes",
        "Function" if kind == FUNCTION else "Cmdlet",
        kind,
    )
    # CommandMetadata ([MS-PSRP] 2.2.3.22): a PSCustomObject with note properties.
    return _obj(
        ["System.Management.Automation.PSCustomObject", "System.Object"],
        {
            "Name": cmd.name,
            "Namespace": cmd.module,
            "HelpUri": "",
            "CommandType": command_type,
            "OutputType": [],
            "Parameters": params,
        },
    )
