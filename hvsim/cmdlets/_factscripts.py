"""What hvlab's guest scripts that read several facts at once do, for hvsim.scripts:
templates/guest/Get-GuestFacts.ps1 and templates/guest/Get-ClusterFacts.ps1.

Each fact asked for is written as an object of type hvlab.GuestFact naming it, then
what its read returned. Every read is the cmdlet itself, bound and run by the
model as any other call inside the guest (hvsim.executor), under the scripts'
$ErrorActionPreference = 'Stop': an error ends the script unless the read passes
-ErrorAction SilentlyContinue. Only the in-VM settings read the model directly, as
the model of Get-S2DInVMSettings.ps1 does (Get-StorageHealthSetting is not modelled
as a cmdlet).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from hvsim import executor
from hvsim.errors import PSError
from hvsim.objects import PSObj
from hvsim.registry import Context

FACT_TYPES = ["hvlab.GuestFact", "System.Management.Automation.PSCustomObject", "System.Object"]


def _fact(name: str) -> PSObj:
    """[pscustomobject]@{ PSTypeName = 'hvlab.GuestFact'; Fact = name }"""
    return PSObj(list(FACT_TYPES), {"Fact": name})


def _read(ctx: Context, command: str, **params: Any) -> list[Any]:
    """One cmdlet inside the machine, as the script's line runs it."""
    args: list[tuple[str | None, Any]] = list(params.items())
    if not any(k.lower() == "erroraction" for k in params):
        args.append(("ErrorAction", "Stop"))  # $ErrorActionPreference = 'Stop'
    return executor.run_pipeline(
        ctx.world,
        ctx.machine,
        ctx.user,
        [executor.Command(command, args)],
        executor.Forward(ctx, executor.raise_error),
    )


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _on(value: Any) -> bool:
    """A [switch] parameter as the splatted hashtable gave it."""
    return bool(value) and str(value).lower() not in ("false", "0")


SILENT = "SilentlyContinue"


def get_guest_facts(ctx: Context, args: dict[str, Any]) -> Iterable[Any]:
    """templates/guest/Get-GuestFacts.ps1."""
    out: list[Any] = []
    if _on(args.get("OperatingSystem")):
        out += [
            _fact("OperatingSystem"),
            *_read(ctx, "Get-CimInstance", ClassName="Win32_OperatingSystem"),
        ]
    if _on(args.get("ComputerSystem")):
        out += [
            _fact("ComputerSystem"),
            *_read(ctx, "Get-CimInstance", ClassName="Win32_ComputerSystem"),
        ]
    if _on(args.get("AdapterNames")):
        out += [
            _fact("AdapterNames"),
            *_read(
                ctx, "Get-NetAdapterAdvancedProperty", RegistryKeyword="HyperVNetworkAdapterName"
            ),
        ]
    if _on(args.get("NetAdapter")):
        out += [_fact("NetAdapter"), *_read(ctx, "Get-NetAdapter")]
    paths = _strings(args.get("Path"))
    if paths:
        out += [_fact("Path"), *_read(ctx, "Test-Path", Path=paths)]
    features = _strings(args.get("Feature"))
    if features:
        out += [_fact("Feature"), *_read(ctx, "Get-WindowsFeature", Name=features)]
    aliases = _strings(args.get("DnsClient"))
    if aliases:
        out += [_fact("DnsClient"), *_read(ctx, "Get-DnsClient", InterfaceAlias=aliases)]
    if args.get("RegistryPath"):
        out += [
            _fact("Registry"),
            *_read(
                ctx,
                "Get-ItemProperty",
                Path=str(args["RegistryPath"]),
                Name=str(args.get("RegistryValue") or ""),
                ErrorAction=SILENT,
            ),
        ]
    services = _strings(args.get("Service"))
    if services:
        out += [_fact("Service"), *_read(ctx, "Get-Service", Name=services, ErrorAction=SILENT)]
    if args.get("VMSwitch"):
        vmms = _read(ctx, "Get-Service", Name="vmms", ErrorAction=SILENT)
        status = vmms[0].props.get("Status") if vmms and isinstance(vmms[0], PSObj) else None
        if str(getattr(status, "name", status)) == "Running":
            out += [
                _fact("VMSwitch"),
                *_read(ctx, "Get-VMSwitch", Name=str(args["VMSwitch"]), ErrorAction=SILENT),
            ]
    if _on(args.get("VMHost")):
        out += [_fact("VMHost"), *_read(ctx, "Get-VMHost")]
    if _on(args.get("DomainController")):
        out.append(_fact("DomainController"))
        # try { ... } catch { }: Active Directory is not answering yet.
        with contextlib.suppress(PSError):
            out += _read(ctx, "Get-ADDomainController")
    return out


def get_cluster_facts(ctx: Context, args: dict[str, Any]) -> Iterable[Any]:
    """templates/guest/Get-ClusterFacts.ps1."""
    from hvsim.cmdlets.storage import get_s2d_in_vm_settings

    cluster = _read(ctx, "Get-Cluster", ErrorAction=SILENT)
    out: list[Any] = [_fact("Cluster"), *cluster]
    if not cluster:
        return out
    if _on(args.get("Node")):
        out += [_fact("Node"), *_read(ctx, "Get-ClusterNode")]
    if _on(args.get("Quorum")):
        out += [_fact("Quorum"), *_read(ctx, "Get-ClusterQuorum")]
    if _on(args.get("Network")):
        out += [_fact("Network"), *_read(ctx, "Get-ClusterNetwork")]
    if _on(args.get("SharedVolume")):
        out += [_fact("SharedVolume"), *_read(ctx, "Get-ClusterSharedVolume")]
    groups = _strings(args.get("Group"))
    if groups:
        out += [_fact("Group"), *_read(ctx, "Get-ClusterGroup", Name=groups, ErrorAction=SILENT)]
    want_pool, want_settings = _on(args.get("StoragePool")), _on(args.get("InVMSettings"))
    if want_pool or want_settings:
        pool = _read(ctx, "Get-StoragePool", IsPrimordial=False, ErrorAction=SILENT)
        if want_pool:
            out += [_fact("StoragePool"), *pool]
        if want_settings and pool:
            out += [_fact("InVMSettings"), *get_s2d_in_vm_settings(ctx)]
    if _on(args.get("PhysicalDisk")):
        out += [_fact("PhysicalDisk"), *_read(ctx, "Get-PhysicalDisk")]
    disks = _strings(args.get("VirtualDisk"))
    if disks:
        out += [
            _fact("VirtualDisk"),
            *_read(ctx, "Get-VirtualDisk", FriendlyName=disks, ErrorAction=SILENT),
        ]
    return out
