"""Switches, NICs, addresses and MACs (R-19, R-27, R-71..R-74)."""

from __future__ import annotations

import re
from ipaddress import IPv4Address

from hvlab.spec.mac import derive_mac
from hvlab.spec.models import VM, Lab, Switch
from hvlab.spec.names import show
from hvlab.spec.rules.common import MAX_NICS, Loc, Problem, inside, unique


def check_switches(lab: Lab, p: list[Problem]) -> dict[str, Switch]:
    by_name: dict[str, Switch] = {}
    nat_switches: list[int] = []
    for i, sw in enumerate(lab.switches):
        loc: Loc = ("switches", i)
        sw._lab = lab.name
        unique(by_name, sw.name, sw, (*loc, "name"), "switch", p)
        net = sw.subnet
        if net.prefixlen > 30:
            p.append(((*loc, "subnet"), f"subnet {net} is too small for a lab; use /30 or larger"))
        if sw.gateway is not None:
            if sw.type == "Private":
                p.append(
                    (
                        (*loc, "gateway"),
                        "a Private switch has no host vNIC, so it cannot have a gateway (R-71)",
                    )
                )
            else:
                inside(sw.gateway, net, (*loc, "gateway"), p)
        if sw.nat:
            nat_switches.append(i)
            if sw.type != "Internal" or sw.gateway is None:
                p.append(
                    (
                        (*loc, "nat"),
                        "NAT needs an Internal switch with a gateway (the host vNIC address, R-73)",
                    )
                )
        if sw.type == "External" and not sw.net_adapter:
            p.append(((*loc, "net_adapter"), "an External switch needs net_adapter (R-71)"))
        if sw.type != "External" and sw.net_adapter:
            p.append(((*loc, "net_adapter"), "only External switches take net_adapter"))
        if sw.net_adapter and not re.fullmatch(r"[A-Za-z0-9 _().-]{1,64}", sw.net_adapter):
            p.append(
                ((*loc, "net_adapter"), f"{show(sw.net_adapter)} is not a NIC name hvlab accepts")
            )
    for n in nat_switches[1:]:
        p.append((("switches", n, "nat"), "only one NAT network per host is supported (R-73)"))
    # CIDR subnets overlap only when one holds the other: sorted by first address (the
    # larger first), each overlaps the widest one still open before it. n log n.
    order = sorted(
        range(len(lab.switches)),
        key=lambda k: (int(lab.switches[k].subnet.network_address), lab.switches[k].prefix),
    )
    open_k: int | None = None
    for k in order:
        net = lab.switches[k].subnet
        if open_k is not None:
            held = lab.switches[open_k].subnet
            if int(net.network_address) <= int(held.broadcast_address):
                i, j = max(k, open_k), min(k, open_k)
                a, b = lab.switches[i], lab.switches[j]
                p.append(
                    (
                        ("switches", i, "subnet"),
                        f"subnet {a.subnet} overlaps {b.subnet} of switch {b.name}",
                    )
                )
                if int(net.broadcast_address) <= int(held.broadcast_address):
                    continue
        open_k = k
    return {k.lower(): v for k, v in by_name.items()}


def check_nics(vm: VM, loc: Loc, switches: dict[str, Switch], p: list[Problem]) -> None:
    if len(vm.nics) > MAX_NICS:
        p.append(((*loc, "nics"), f"{len(vm.nics)} NICs; hvlab limit is {MAX_NICS}"))
    seen: dict[str, object] = {}
    for j, nic in enumerate(vm.nics):
        nloc: Loc = (*loc, "nics", j)
        unique(seen, nic.name, nic, (*nloc, "name"), "NIC", p)
        sw = switches.get(nic.switch.lower())
        if sw is None:
            p.append(
                (
                    (*nloc, "switch"),
                    f"no switch named {show(nic.switch)} (switches: {', '.join(s.name for s in switches.values())})",
                )
            )
            continue
        nic.switch = sw.name
        if nic.prefix is not None and nic.prefix != sw.prefix:
            p.append(
                ((*nloc, "prefix"), f"/{nic.prefix} differs from switch {sw.name}'s {sw.subnet}")
            )
        nic.prefix = sw.prefix
        if nic.vlan is None:
            nic.vlan = sw.vlan
        if nic.ip is None:
            if sw.type != "External":
                p.append(
                    (
                        (*nloc, "ip"),
                        f"an address is needed: switch {sw.name} is {sw.type} and has no DHCP",
                    )
                )
        elif inside(nic.ip, sw.subnet, (*nloc, "ip"), p) and nic.ip == sw.gateway:
            p.append(((*nloc, "ip"), f"{nic.ip} is the gateway of switch {sw.name}"))
        if j == 0:
            if "gateway" not in nic.model_fields_set:
                nic.gateway = sw.gateway
            elif nic.gateway is not None:
                inside(nic.gateway, sw.subnet, (*nloc, "gateway"), p)
        elif nic.gateway is not None:
            p.append(
                (
                    (*nloc, "gateway"),
                    "only the management NIC (the first) gets a default route (R-27)",
                )
            )


def check_addresses(lab: Lab, p: list[Problem]) -> None:
    """Every address in the lab is used once: NICs, gateways, cluster, existing DC."""
    used: dict[IPv4Address, str] = {}
    for sw in lab.switches:
        if sw.gateway is not None:
            used.setdefault(sw.gateway, f"the gateway of switch {sw.name}")
    gateways = set(used)
    for i, vm in enumerate(lab.vms):
        for j, nic in enumerate(vm.nics):
            # An IP equal to a gateway was already reported by _nics.
            if nic.ip is None or nic.ip in gateways:
                continue
            owner = f"{vm.name}/{nic.name}"
            if nic.ip in used:
                p.append(
                    (("vms", i, "nics", j, "ip"), f"{nic.ip} is already used by {used[nic.ip]}")
                )
            else:
                used[nic.ip] = owner
    addr = lab.cluster.address
    if addr in used:
        p.append((("cluster", "address"), f"{addr} is already used by {used[addr]} (R-51)"))
    if lab.domain.dc_address is not None and lab.domain.dc_address in used:
        p.append(
            (
                ("domain", "dc_address"),
                f"{lab.domain.dc_address} is already used by {used[lab.domain.dc_address]}",
            )
        )


def check_macs(lab: Lab, p: list[Problem]) -> None:
    taken: dict[str, str] = {}
    for i, vm in enumerate(lab.vms):
        for j, nic in enumerate(vm.nics):
            if nic.mac is None:
                continue
            if nic.mac in taken:
                p.append(
                    (("vms", i, "nics", j, "mac"), f"MAC {nic.mac} is already {taken[nic.mac]}'s")
                )
            taken.setdefault(nic.mac, f"{vm.name}/{nic.name}")
    for vm in lab.vms:
        for nic in vm.nics:
            if nic.mac is None:
                nic.mac = derive_mac(lab.name, vm.name, nic.name, set(taken))
                taken[nic.mac] = f"{vm.name}/{nic.name}"
