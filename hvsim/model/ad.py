"""Active Directory: forests created by Install-ADDSForest, domains outside the lab
that the host is given (HostProfile.domains), their accounts, computer objects and
DNS records.

A domain lives in `world.domains` (fqdn lower-case -> Domain) from the moment the
promoted DC has rebooted (R-40). Its objects are not tied to VMs: computer
objects stay when a VM is deleted, until Remove-ADComputer (R-43).

A domain outside the lab (`outside=True`) has no VM: its DC answers at `dc_address`
on the host's network while `online`, and a guest reaches it only through an
External switch on that network or a NAT on the host (R-125). Its file servers
hold shares for witnesses, granting `<NETBIOS>\\Domain Computers`, the primary
group of every computer account, so a new cluster's name object can use them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hvsim.errors import PSError


@dataclasses.dataclass
class ComputerObject:
    name: str
    sid: str
    created: float
    enabled: bool = True
    # The cluster whose name object this is (the CNO, R-57), or None for a machine.
    cluster: str | None = None
    # The machine that joined with this account, recorded for reuse checks.
    joined_by: str | None = None


@dataclasses.dataclass
class FileServer:
    """A file server of an outside domain, known by its computer name and address."""

    name: str
    address: str
    # Share name lower-case -> hvsim.cmdlets.smb.Share.
    shares: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Domain:
    fqdn: str
    netbios: str
    sid: str  # S-1-5-21-a-b-c; groups are <sid>-512 (Domain Admins), R-88
    dc: str  # the computer name of the domain controller
    created: float
    # When AD queries start to work after the promotion reboot.
    ready_at: float
    # sAMAccountName lower-case -> password digest (hvsim.model.guest.pw_hash): the
    # built-in Administrator keeps the DC's local password.
    accounts: dict[str, str] = dataclasses.field(default_factory=dict)
    computers: dict[str, ComputerObject] = dataclasses.field(default_factory=dict)
    # DNS A records in the domain's zone: host label lower-case -> IPv4 addresses.
    dns: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    _next_rid: int = 1103
    # A domain outside the lab: no DC VM; its DC answers at dc_address.
    outside: bool = False
    dc_address: str | None = None
    online: bool = True
    # File servers of an outside domain: host name lower-case -> FileServer.
    file_servers: dict[str, FileServer] = dataclasses.field(default_factory=dict)

    def new_sid(self) -> str:
        self._next_rid += 1
        return f"{self.sid}-{self._next_rid}"

    def computer(self, name: str) -> ComputerObject | None:
        return self.computers.get(name.lower().rstrip("$"))

    def add_computer(self, name: str, now: float, *, cluster: str | None = None) -> ComputerObject:
        obj = ComputerObject(name.upper(), self.new_sid(), now, cluster=cluster)
        self.computers[name.lower()] = obj
        return obj

    def register(self, name: str, addresses: list[str]) -> None:
        """A dynamic DNS update: A records for `name`. Records already there stay (a
        client that stops registering does not delete what it registered; scavenging
        is not modelled)."""
        records = self.dns.setdefault(name.lower(), [])
        records.extend(a for a in addresses if a not in records)

    def distinguished_name(self, name: str, container: str = "CN=Computers") -> str:
        dc = ",".join(f"DC={p}" for p in self.fqdn.split("."))
        return f"CN={name.upper()},{container},{dc}"

    def snapshot(self) -> dict[str, Any]:
        return {
            "fqdn": self.fqdn,
            "netbios": self.netbios,
            "dc": self.dc,
            "computers": sorted(c.name for c in self.computers.values()),
            "dns": dict(sorted(self.dns.items())),
        }


def find_domain(world: Any, name: str) -> Domain | None:
    """A domain by FQDN or NetBIOS name, case-insensitive."""
    key = name.lower()
    for dom in world.domains.values():
        if key in (dom.fqdn.lower(), dom.netbios.lower()):
            return dom
    return None


def dc_guest(world: Any, dom: Domain) -> Any:
    """The DC's GuestOS, if its VM still exists (never for a domain outside the lab)."""
    if dom.outside:
        return None
    for machine in world.machines():
        # Another lab beside this one may have a DC of the same name: the
        # domain's DC is the one that holds the domain.
        if (
            getattr(machine, "computer_name", None) == dom.dc
            and getattr(machine, "is_dc", False)
            and (getattr(machine, "domain", None) or "").lower() == dom.fqdn.lower()
        ):
            return machine
    return None


def reachable(world: Any, dom: Domain, machine: Any = None) -> bool:
    """The DC answers (its guest is Ready): LDAP, Kerberos and DNS work. A DC outside
    the lab answers while online, to a `machine` with a route to it (R-125)."""
    if dom.outside:
        if not dom.online:
            return False
        return machine is None or route_to(world, machine, dom.dc_address or "") is not None
    dc = dc_guest(world, dom)
    return dc is not None and dc.is_ready() and not getattr(dc, "ad_damaged", False)


def ad_ready(world: Any, dom: Domain, machine: Any = None) -> bool:
    """ADWS runs and AD queries work (R-40): DC up and the post-promotion delay over."""
    return reachable(world, dom, machine) and world.clock.now() >= dom.ready_at


def dc_address(world: Any, dom: Domain | None) -> str | None:
    """The address a client finds the domain's DC at."""
    if dom is None:
        return None
    if dom.outside:
        return dom.dc_address
    dc = dc_guest(world, dom)
    return dc.primary_ip() if dc is not None else None


def route_to(world: Any, machine: Any, address: str) -> str | None:
    """How a VM on the L0 host reaches an address on the host's own network (where
    domains outside the lab live): "external" when one of its addresses is on that
    network through an External switch, "nat" when its gateway is the host's vNIC of
    an Internal switch whose subnet the host's NetNat covers (R-72, R-73); else None.
    Nested guests and other networks have no route (modelled)."""
    import ipaddress

    host = world.host
    vm = getattr(machine, "vm", None)
    if vm is None or getattr(machine, "owner", None) is not host or host.hyperv is None:
        return None
    try:
        target = ipaddress.ip_address(address)
    except ValueError:
        return None
    switches = {str(sw.id): sw for sw in host.hyperv.switches}

    def host_switch(adapter: Any) -> Any:
        if adapter.switch_id and adapter.switch_id in switches:
            return switches[adapter.switch_id]
        return next((sw for sw in switches.values() if sw.name == adapter.switch), None)

    lan = [
        ip.network
        for a in host.net.adapters
        for ip in a.ips
        if ip.family == "IPv4"
        and (
            not a.virtual
            or (host_switch(a) is not None and host_switch(a).switch_type == "External")
        )
    ]
    if not any(target in net for net in lan):
        return None
    for ad in machine.net.adapters:
        mac = _uplink_mac(machine, ad)
        vm_adapter = next((a for a in vm.adapters if a.mac.upper() == mac), None)
        sw = host_switch(vm_adapter) if vm_adapter is not None and vm_adapter.switch else None
        if sw is None:
            continue
        for ip in ad.ips:
            if ip.family != "IPv4" or ip.address.startswith("169.254."):
                continue
            if sw.switch_type == "External" and target in ip.network:
                return "external"
            if sw.switch_type == "Internal" and ad.gateway:
                gateways = [
                    g.address for a in host.net.adapters if host_switch(a) is sw for g in a.ips
                ]
                natted = any(
                    n.active
                    and ipaddress.ip_address(ip.address) in ipaddress.ip_network(n.internal_prefix)
                    for n in host.net.nats
                )
                if ad.gateway in gateways and natted:
                    return "nat"
    return None


def _uplink_mac(machine: Any, adapter: Any) -> str:
    """The MAC of the VM adapter under a guest adapter: its own, or for the vNIC of a
    switch inside the guest (R-70), that of the NIC the switch is bound to."""
    hv = getattr(machine, "hyperv", None)
    if adapter.switch_id and hv is not None:
        sw = next((s for s in hv.switches if str(s.id) == adapter.switch_id), None)
        nic = machine.net.adapter(sw.net_adapter) if sw is not None and sw.net_adapter else None
        if nic is not None:
            return str(nic.mac).upper()
    return str(adapter.mac).upper()


def outside_domain(
    world: Any,
    *,
    fqdn: str,
    netbios: str,
    dc_name: str,
    dc_address: str,
    accounts: dict[str, str],
    file_servers: list[tuple[str, str, list[str]]],
) -> Domain:
    """A domain outside the lab, ready from the start: `accounts` maps account names to
    password digests (hvsim.model.guest.pw_hash); each file server is (name, address,
    share names), every share granting <NETBIOS>\\Domain Computers and Domain Admins."""
    from hvsim.cmdlets.smb import Share

    rng = world.rng
    sid = "S-1-5-21-" + "-".join(str(rng.randrange(10**8, 10**10)) for _ in range(3))
    dom = Domain(
        fqdn=fqdn.lower(),
        netbios=netbios.upper(),
        sid=sid,
        dc=dc_name.upper(),
        created=-30 * 24 * 3600.0,
        ready_at=float("-inf"),
        accounts={k.lower(): v for k, v in accounts.items()},
        outside=True,
        dc_address=dc_address,
    )
    dom.add_computer(dc_name, dom.created)
    dom.register(dc_name, [dc_address])
    access = [f"{dom.netbios}\\Domain Computers", f"{dom.netbios}\\Domain Admins"]
    for name, address, shares in file_servers:
        short = name.split(".")[0]
        dom.add_computer(short, dom.created)
        dom.register(short, [address])
        dom.file_servers[short.lower()] = FileServer(
            short.upper(),
            address,
            {
                share.lower(): Share(share, f"D:\\Shares\\{share}", list(access), list(access))
                for share in shares
            },
        )
    return dom


def server_down_error(cmdlet: str) -> PSError:
    """What AD cmdlets say while ADWS is not answering yet (R-40; text as AD module
    cmdlets report a missing web service, message (unconfirmed) wording per R-40)."""
    cls = cmdlet.replace("-", "")
    return PSError(
        "Unable to contact the server. This may be because this server does not exist, it is "
        "currently down, or it does not have the Active Directory Web Services running.",
        fqid=f"ActiveDirectoryServer:0,Microsoft.ActiveDirectory.Management.Commands.{cls}",
        category="ResourceUnavailable",
        exception="Microsoft.ActiveDirectory.Management.ADServerDownException",
    )
