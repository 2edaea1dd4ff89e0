"""IP networking cmdlets of any machine: NetAdapter, NetIPAddress (R-72), NetNat (R-73).

These are CDXML functions over CIM classes (ROOT/StandardCimv2): their objects
are CimInstances, their not-found errors are the "CmdletizationQuery" family,
and their FQIDs end with the function name (bind.py notes the same).
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Iterable
from typing import Any

from hvsim.cmdlets._hvcommon import as_list
from hvsim.errors import PSError
from hvsim.model.net import IPAddr, NetAdapter, NetNat
from hvsim.objects import Byte, PSObj, UInt32
from hvsim.registry import Call, Context, cmdlet

CIM = "Microsoft.Management.Infrastructure.CimInstance"


def _cim_types(cls: str) -> list[str]:
    return [
        f"{CIM}#ROOT/StandardCimv2/{cls}",
        f"{CIM}#ROOT/StandardCimv2/{_base(cls)}",
        f"{CIM}#{cls}",
        CIM,
        "System.Object",
    ]


def _base(cls: str) -> str:
    return {"MSFT_NetAdapter": "MSFT_NetAdapter", "MSFT_NetIPAddress": "MSFT_NetIPAddress"}.get(
        cls, cls
    )


def not_found(cls: str, prop: str, value: Any, cmdlet: str) -> PSError:
    """The CDXML not-found error: 'No MSFT_X objects found with property 'P' equal to 'V'.'"""
    return PSError(
        f"No {cls} objects found with property '{prop}' equal to '{value}'.  Verify the value of "
        "the property and retry.",
        fqid=f"CmdletizationQuery_NotFound_{prop},{cmdlet}",
        category="ObjectNotFound",
        exception="Microsoft.PowerShell.Cmdletization.Cim.CimJobException",
        target=value,
    )


def _match(value: str, patterns: list[Any]) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(value.lower(), str(p).lower()) for p in patterns)


# -- NetAdapter ---------------------------------------------------------------------


def adapter_obj(m: Any, a: NetAdapter) -> PSObj:
    return PSObj(
        _cim_types("MSFT_NetAdapter"),
        {
            "Name": a.name,
            "InterfaceAlias": a.name,
            "ifAlias": a.name,
            "InterfaceDescription": a.description,
            "ifDesc": a.description,
            "ifIndex": UInt32(a.if_index),
            "InterfaceIndex": UInt32(a.if_index),
            "Status": a.status,
            "MacAddress": a.mac_dashed,
            "PermanentAddress": a.mac,
            "LinkSpeed": a.link_speed,
            "InterfaceGuid": a.guid,
            "Virtual": a.virtual,
            "MediaConnectionState": "Connected" if a.status == "Up" else "Disconnected",
            "SystemName": m.name,
        },
        to_string=a.name,
    )


@cmdlet(
    "Get-NetAdapter",
    params=["Name", "InterfaceDescription", "InterfaceIndex", "Physical", "IncludeHidden"],
)
def get_netadapter(ctx: Context, call: Call) -> Iterable[Any]:
    net = ctx.machine.net
    names = as_list(call.get("Name"))
    for name in names:
        if not any(ch in str(name) for ch in "*?[") and net.adapter(str(name)) is None:
            ctx.error(not_found("MSFT_NetAdapter", "Name", name, call.name))
    for a in net.adapters:
        if not _match(a.name, names):
            continue
        if "InterfaceDescription" in call and not _match(
            a.description, as_list(call.get("InterfaceDescription"))
        ):
            continue
        if "InterfaceIndex" in call and a.if_index not in [
            int(i) for i in as_list(call.get("InterfaceIndex"))
        ]:
            continue
        if call.switch("Physical") and a.virtual:
            continue
        yield adapter_obj(ctx.machine, a)


# -- NetIPAddress -------------------------------------------------------------------


def ip_obj(m: Any, a: NetAdapter, ip: IPAddr, store: str = "ActiveStore") -> PSObj:
    return PSObj(
        _cim_types("MSFT_NetIPAddress"),
        {
            "IPAddress": ip.address,
            "IPv4Address": ip.address if ip.family == "IPv4" else None,
            "IPv6Address": ip.address if ip.family == "IPv6" else None,
            "InterfaceIndex": UInt32(a.if_index),
            "InterfaceAlias": a.name,
            # The NetTCPIP type data shows these enums by name (ScriptProperty).
            "AddressFamily": ip.family,
            "Type": "Unicast",
            "PrefixLength": Byte(ip.prefix_length),
            "PrefixOrigin": ip.origin,
            "SuffixOrigin": "Link"
            if ip.origin == "WellKnown" and ip.address.startswith("169.254.")
            else ip.origin,
            "AddressState": ip.state,
            "SkipAsSource": ip.skip_as_source,
            "PolicyStore": store,
            "ValidLifetime": None,
            "PreferredLifetime": None,
        },
        to_string=f'MSFT_NetIPAddress (Name = "{ip.address}", CreationClassName = "", SystemCreationClassName = "", SystemName = "")',
    )


def _ip_filters(ctx: Context, call: Call) -> list[tuple[NetAdapter, IPAddr]]:
    """Addresses matching the call's filters; CDXML writes not-found errors per filter."""
    net = ctx.machine.net
    pairs = net.all_ips()
    # Loopback is always there (Get-NetIPAddress lists it).
    pairs = [*pairs]
    aliases = as_list(call.get("InterfaceAlias"))
    if aliases:
        for alias in aliases:
            if not any(fnmatch.fnmatchcase(a.name.lower(), str(alias).lower()) for a, _ in pairs):
                ctx.error(not_found("MSFT_NetIPAddress", "InterfaceAlias", alias, call.name))
        pairs = [(a, ip) for a, ip in pairs if _match(a.name, aliases)]
    if "InterfaceIndex" in call:
        idx = [int(i) for i in as_list(call.get("InterfaceIndex"))]
        pairs = [(a, ip) for a, ip in pairs if a.if_index in idx]
    if "AddressFamily" in call:
        fams = [str(f).lower() for f in as_list(call.get("AddressFamily"))]
        pairs = [(a, ip) for a, ip in pairs if ip.family.lower() in fams]
    if "PrefixLength" in call:
        pairs = [(a, ip) for a, ip in pairs if ip.prefix_length == int(call.get("PrefixLength"))]
    addresses = as_list(call.get("IPAddress"))
    if addresses:
        matched = [(a, ip) for a, ip in pairs if _match(ip.address, addresses)]
        for addr in addresses:
            if not any(fnmatch.fnmatchcase(ip.address, str(addr)) for _, ip in matched) and pairs:
                ctx.error(not_found("MSFT_NetIPAddress", "IPAddress", addr, call.name))
        pairs = matched
    return pairs


@cmdlet(
    "Get-NetIPAddress",
    params=["InterfaceAlias", "InterfaceIndex", "IPAddress", "AddressFamily", "PrefixLength"],
)
def get_netipaddress(ctx: Context, call: Call) -> Iterable[Any]:
    for a, ip in _ip_filters(ctx, call):
        yield ip_obj(ctx.machine, a, ip)


def _adapter_for(ctx: Context, call: Call) -> NetAdapter:
    net = ctx.machine.net
    if "InterfaceAlias" in call:
        alias = str(call.get("InterfaceAlias"))
        a = net.adapter(alias)
        if a is None:
            raise not_found("MSFT_NetIPInterface", "InterfaceAlias", alias, call.name)
        return a
    if "InterfaceIndex" in call:
        idx = int(call.get("InterfaceIndex"))
        for a in net.adapters:
            if a.if_index == idx:
                return a
        raise not_found("MSFT_NetIPInterface", "InterfaceIndex", idx, call.name)
    raise PSError(
        "Specify -InterfaceAlias or -InterfaceIndex.",
        fqid=f"MissingInterface,{call.name}",
        category="InvalidArgument",
    )


def _cim_error(message: str, code: int, cmdlet: str, category: str, target: Any) -> PSError:
    return PSError(
        message,
        fqid=f"Windows System Error {code},{cmdlet}",
        category=category,
        exception="Microsoft.Management.Infrastructure.CimException",
        target=target,
    )


@cmdlet(
    "New-NetIPAddress",
    params=[
        "InterfaceAlias",
        "InterfaceIndex",
        "IPAddress",
        "PrefixLength",
        "DefaultGateway",
        "AddressFamily",
    ],
)
def new_netipaddress(ctx: Context, call: Call) -> Iterable[Any]:
    a = _adapter_for(ctx, call)
    text = str(call.get("IPAddress"))
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise _cim_error(
            "The parameter is incorrect.", 87, call.name, "InvalidArgument", text
        ) from None
    prefix = int(
        call.get("PrefixLength") if "PrefixLength" in call else (24 if addr.version == 4 else 64)
    )
    if not 0 <= prefix <= (32 if addr.version == 4 else 128):
        raise _cim_error("The parameter is incorrect.", 87, call.name, "InvalidArgument", prefix)
    # an address that already exists on the machine is refused
    # (Virtualization-Documentation#338: "Instance MSFT_NetIPAddress already exists").
    for _, ip in ctx.machine.net.all_ips():
        if ip.address == str(addr):
            raise _cim_error(
                "Instance MSFT_NetIPAddress already exists",
                87,
                call.name,
                "InvalidArgument",
                "MSFT_NetIPAddress",
            )
    ip = IPAddr(str(addr), prefix, "IPv4" if addr.version == 4 else "IPv6", "Manual")
    # A manual address replaces the adapter's APIPA/DHCP address.
    a.ips = [x for x in a.ips if x.origin == "Manual"] + [ip]
    a.dhcp = False
    if "DefaultGateway" in call:
        a.gateway = str(call.get("DefaultGateway"))
    # New-NetIPAddress writes the address in both stores.
    yield ip_obj(ctx.machine, a, ip, "ActiveStore")
    yield ip_obj(ctx.machine, a, ip, "PersistentStore")


@cmdlet(
    "Remove-NetIPAddress",
    params=[
        "InterfaceAlias",
        "InterfaceIndex",
        "IPAddress",
        "AddressFamily",
        "PrefixLength",
        "InputObject",
        "PassThru",
    ],
)
def remove_netipaddress(ctx: Context, call: Call) -> Iterable[Any]:
    targets: list[tuple[NetAdapter, IPAddr]] = []
    objs = as_list(call.get("InputObject")) or (
        []
        if any(k in call for k in ("IPAddress", "InterfaceAlias", "InterfaceIndex"))
        else list(ctx.input)
    )
    for obj in objs:
        addr = obj.get("IPAddress") if hasattr(obj, "get") else None
        targets.extend((a, ip) for a, ip in ctx.machine.net.all_ips() if ip.address == addr)
    if not objs:
        targets = _ip_filters(ctx, call)
    for a, ip in targets:
        if ip in a.ips:
            a.ips.remove(ip)
        if call.switch("PassThru"):
            yield ip_obj(ctx.machine, a, ip)


# -- NetNat -------------------------------------------------------------------------


def nat_obj(n: NetNat) -> PSObj:
    return PSObj(
        _cim_types("MSFT_NetNat"),
        {
            "Name": n.name,
            "InternalIPInterfaceAddressPrefix": n.internal_prefix,
            "ExternalIPInterfaceAddressPrefix": None,
            "InternalRoutingDomainId": "{00000000-0000-0000-0000-000000000000}",
            "IcmpQueryTimeout": UInt32(30),
            "TcpEstablishedConnectionTimeout": UInt32(1800),
            "TcpTransientConnectionTimeout": UInt32(120),
            "UdpIdleSessionTimeout": UInt32(120),
            "Active": n.active,
            "Store": "Local",
        },
        to_string=n.name,
    )


@cmdlet("Get-NetNat", params=["Name"])
def get_netnat(ctx: Context, call: Call) -> Iterable[Any]:
    names = as_list(call.get("Name"))
    nats = ctx.machine.net.nats
    for name in names:
        if not any(ch in str(name) for ch in "*?[") and not any(
            n.name.lower() == str(name).lower() for n in nats
        ):
            ctx.error(not_found("MSFT_NetNat", "Name", name, call.name))
    for n in nats:
        if _match(n.name, names):
            yield nat_obj(n)


@cmdlet("New-NetNat", params=["Name", "InternalIPInterfaceAddressPrefix"])
def new_netnat(ctx: Context, call: Call) -> Iterable[Any]:
    net = ctx.machine.net
    prefix = str(call.get("InternalIPInterfaceAddressPrefix") or "")
    try:
        network = ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        raise _cim_error(
            "The parameter is incorrect.", 87, call.name, "InvalidArgument", "MSFT_NetNat"
        ) from None
    # one NAT per host; a second one (or one overlapping the host's own
    # networks) fails with "The parameter is incorrect." (Virtualization-Documentation#361).
    overlaps = any(
        ip.family == "IPv4" and not a.switch and ip.network.overlaps(network)  # type: ignore[arg-type]
        for a, ip in net.all_ips()
    )
    if net.nats or overlaps:
        raise _cim_error(
            "The parameter is incorrect.", 87, call.name, "InvalidArgument", "MSFT_NetNat"
        )
    nat = NetNat(str(call.get("Name")), str(network))
    net.nats.append(nat)
    yield nat_obj(nat)


@cmdlet("Remove-NetNat", params=["Name", "InputObject", "PassThru"])
def remove_netnat(ctx: Context, call: Call) -> Iterable[Any]:
    net = ctx.machine.net
    names = as_list(call.get("Name"))
    objs = as_list(call.get("InputObject")) or ([] if names else list(ctx.input))
    names += [o.get("Name") for o in objs if hasattr(o, "get")]
    if not names:
        targets = list(net.nats)
    else:
        targets = [n for n in net.nats if _match(n.name, names)]
        for name in names:
            if not any(fnmatch.fnmatchcase(n.name.lower(), str(name).lower()) for n in net.nats):
                raise not_found("MSFT_NetNat", "Name", name, call.name)
    for n in targets:
        net.nats.remove(n)
        if call.switch("PassThru"):
            yield nat_obj(n)
