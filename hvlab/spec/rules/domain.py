"""The domain: one DC for a new forest, the join account for an existing one,
DNS that points at the DC (R-40..R-42)."""

from __future__ import annotations

import re
from ipaddress import IPv4Address

from hvlab.spec.models import Lab
from hvlab.spec.names import check_computer_name, show
from hvlab.spec.rules.common import Problem

_JOIN_ACCOUNT_RE = re.compile(
    r"^(?:[A-Za-z0-9-]{1,15}\\[A-Za-z0-9._-]{1,104}|[A-Za-z0-9._-]{1,104}@[A-Za-z0-9.-]{1,253})$"
)


def check_domain(lab: Lab, p: list[Problem]) -> None:
    d = lab.domain
    if d.netbios is None:
        d.netbios = d.fqdn.split(".")[0].upper()[:15]
        try:
            check_computer_name(d.netbios, "NetBIOS domain name")
        except ValueError as err:
            p.append((("domain", "fqdn"), f"{err}; set domain.netbios"))
    dcs = [(i, vm) for i, vm in enumerate(lab.vms) if vm.role == "dc"]
    if d.mode == "new":
        if not dcs:
            p.append((("vms",), "domain mode new needs one VM with role dc"))
        for i, vm in dcs[1:]:
            p.append(
                (
                    ("vms", i, "role"),
                    f"a second DC ({vm.name}); hvlab builds a new forest on exactly one",
                )
            )
        if d.dc is None and dcs:
            d.dc = dcs[0][1].name
        elif d.dc is not None and not any(vm.name.lower() == d.dc.lower() for _, vm in dcs):
            p.append((("domain", "dc"), f"{show(d.dc)} is not the name of a VM with role dc"))
        for field in ("dc_address", "join_account"):
            if getattr(d, field) is not None:
                p.append((("domain", field), "only used with mode: existing"))
    else:
        for i, vm in dcs:
            p.append(
                (
                    ("vms", i, "role"),
                    f"domain mode existing uses the domain's own DC; remove {vm.name} or use mode: new",
                )
            )
        if d.dc is not None:
            p.append((("domain", "dc"), "with mode: existing, give dc_address instead"))
        if d.dc_address is None:
            p.append(
                (("domain", "dc_address"), "mode existing needs dc_address (a DC and DNS server)")
            )
        if d.join_account is None:
            p.append(
                (("domain", "join_account"), "mode existing needs join_account, like CORP\\joiner")
            )
        elif not _JOIN_ACCOUNT_RE.match(d.join_account):
            p.append(
                (
                    ("domain", "join_account"),
                    f"{show(d.join_account)} is not DOMAIN\\user or user@domain",
                )
            )
        if d.dc_address is not None:
            problem = _outside_dc_unreachable(lab, d.dc_address)
            if problem:
                p.append((("domain", "dc_address"), problem))
    taken = {vm.name.lower() for vm in lab.vms} | {lab.cluster.name.lower()}
    if d.netbios and d.netbios.lower() in taken:
        p.append(
            (
                ("domain", "netbios"),
                f"NetBIOS domain name {d.netbios} is also a computer name in the lab; pick another",
            )
        )
    dns_server = _dns_server(lab)
    for i, vm in enumerate(lab.vms):
        if not vm.nics:
            continue
        mgmt = vm.management_nic
        if mgmt.dns is None:
            own = vm.role == "dc"
            mgmt.dns = [mgmt.ip] if own and mgmt.ip else ([dns_server] if dns_server else [])
        elif vm.is_node and dns_server is not None and (not mgmt.dns or mgmt.dns[0] != dns_server):
            p.append(
                (
                    ("vms", i, "nics", 0, "dns"),
                    f"a node's first DNS server must be the DC, {dns_server}, to join the domain (R-41)",
                )
            )
        for nic in vm.nics[1:]:
            if nic.dns is None:
                nic.dns = []


def _outside_dc_unreachable(lab: Lab, address: IPv4Address) -> str | None:
    """An existing domain's DC lives outside the lab: the nodes reach it on the
    subnet of an External switch, or through NAT from the management switch (R-125)."""
    for sw in lab.switches:
        if address in sw.subnet:
            if sw.type == "External":
                return None
            return (
                f"{address} is inside the subnet of {sw.type} switch {sw.name}, which only "
                "the lab's VMs are on; an existing DC is reached on an External switch or "
                "through NAT (R-125)"
            )
    if not lab.vms or not lab.vms[0].nics:
        return None
    mgmt = next((sw for sw in lab.switches if sw.name == lab.vms[0].nics[0].switch), None)
    if mgmt is None or (mgmt.type == "Internal" and mgmt.nat and mgmt.gateway is not None):
        return None
    if mgmt.type == "External":
        return None  # the physical network routes it
    return (
        f"the nodes cannot reach {address}: management switch {mgmt.name} is {mgmt.type} "
        "without NAT; give it a gateway and nat: true, or use an External switch (R-125)"
    )


def _dns_server(lab: Lab) -> IPv4Address | None:
    if lab.domain.mode == "existing":
        return lab.domain.dc_address
    dc = next(
        (vm for vm in lab.vms if lab.domain.dc and vm.name.lower() == lab.domain.dc.lower()), None
    )
    return dc.management_nic.ip if dc and dc.nics else None
