"""A machine's IP networking: adapters (NetAdapter), addresses (NetIPAddress), NAT.

On the L0 host an internal switch adds a host adapter `vEthernet (<switch>)`
(R-71) that takes the gateway address (R-72); one NetNat per host (R-73). In a
guest the adapters come from the VM's network adapters (the GUEST engineer
fills them from unattend, R-27).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import uuid


@dataclasses.dataclass
class IPAddr:
    address: str
    prefix_length: int
    family: str = "IPv4"  # IPv4 / IPv6
    origin: str = "Manual"  # PrefixOrigin/SuffixOrigin: Manual, Dhcp, WellKnown, Link
    state: str = "Preferred"  # AddressState
    skip_as_source: bool = False

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(f"{self.address}/{self.prefix_length}", strict=False)


@dataclasses.dataclass
class NetAdapter:
    name: str  # InterfaceAlias
    description: str  # InterfaceDescription
    mac: str  # 12 upper-case hex digits, no separators
    if_index: int
    status: str = "Up"
    link_speed: str = "10 Gbps"
    ips: list[IPAddr] = dataclasses.field(default_factory=list)
    dns_servers: list[str] = dataclasses.field(default_factory=list)
    gateway: str | None = None
    dhcp: bool = False
    # For a host vNIC of an internal switch: the switch name and its Id (names
    # need not be unique; the Id is).
    switch: str | None = None
    switch_id: str | None = None
    # In a guest: the host-side VM adapter name, exposed as the advanced property
    # HyperVNetworkAdapterName when DeviceNaming was On at boot.
    hyperv_name: str | None = None
    # In a guest: the Id of the VM adapter this device is. The synthetic NIC is a VMBus
    # device named by that Id, not by its MAC: a MAC changed on the host while the VM
    # was off is the same device with a new address, and keeps its alias and TCP/IP
    # settings (R-140; docs/model-notes.md). None in state files written before.
    device_id: str | None = None
    guid: str = dataclasses.field(default_factory=lambda: "{" + str(uuid.uuid4()).upper() + "}")
    virtual: bool = True
    # "Register this connection's addresses in DNS" (Set-DnsClient
    # -RegisterThisConnectionsAddress); on by default.
    register_dns: bool = True

    @property
    def mac_dashed(self) -> str:
        return "-".join(self.mac[i : i + 2] for i in range(0, 12, 2))


@dataclasses.dataclass
class NetNat:
    name: str
    internal_prefix: str  # InternalIPInterfaceAddressPrefix, e.g. 10.0.0.0/24
    id: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))
    active: bool = True


@dataclasses.dataclass
class NetStack:
    adapters: list[NetAdapter] = dataclasses.field(default_factory=list)
    nats: list[NetNat] = dataclasses.field(default_factory=list)
    next_if_index: int = 2

    def adapter(self, name: str) -> NetAdapter | None:
        for a in self.adapters:
            if a.name.lower() == name.lower():
                return a
        return None

    def add_adapter(self, name: str, description: str, mac: str, **kw: object) -> NetAdapter:
        self.next_if_index += 1
        a = NetAdapter(name, description, mac.upper(), self.next_if_index, **kw)  # type: ignore[arg-type]
        self.adapters.append(a)
        return a

    def remove_adapter(self, name: str) -> NetAdapter | None:
        a = self.adapter(name)
        if a is not None:
            self.adapters.remove(a)
        return a

    def all_ips(self) -> list[tuple[NetAdapter, IPAddr]]:
        return [(a, ip) for a in self.adapters for ip in a.ips]


def loopback_ips() -> list[IPAddr]:
    return [IPAddr("127.0.0.1", 8, origin="WellKnown")]
