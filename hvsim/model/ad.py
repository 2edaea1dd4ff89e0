"""Active Directory: forests created by Install-ADDSForest, their accounts,
computer objects and DNS records.

A domain lives in `world.domains` (fqdn lower-case -> Domain) from the moment the
promoted DC has rebooted (R-40). Its objects are not tied to VMs: computer
objects stay when a VM is deleted, until Remove-ADComputer (R-43).
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
    """The DC's GuestOS, if its VM still exists."""
    for machine in world.machines():
        if getattr(machine, "computer_name", None) == dom.dc and getattr(machine, "is_dc", False):
            return machine
    return None


def reachable(world: Any, dom: Domain) -> bool:
    """The DC answers (its guest is Ready): LDAP, Kerberos and DNS work."""
    dc = dc_guest(world, dom)
    return dc is not None and dc.is_ready() and not getattr(dc, "ad_damaged", False)


def ad_ready(world: Any, dom: Domain) -> bool:
    """ADWS runs and AD queries work (R-40): DC up and the post-promotion delay over."""
    return reachable(world, dom) and world.clock.now() >= dom.ready_at


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
