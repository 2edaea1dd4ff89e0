"""The lab spec: every validation rule with a bad input and the exact message it gives."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
import yaml

from hvlab.errors import EXIT_BAD_INPUT, SpecError
from hvlab.spec import load_lab, parse_lab
from hvlab.spec.units import GIB

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LAB = ROOT / "labs" / "s2d-2node.yaml"
Data = dict[str, Any]


def base() -> Data:
    return yaml.safe_load(DEFAULT_LAB.read_text(encoding="utf-8"))


def problems(data: Data) -> list[str]:
    """The problems (line numbers removed) that loading `data` reports; [] when valid."""
    try:
        parse_lab(yaml.safe_dump(data, sort_keys=False), display="t.yaml")
    except SpecError as err:
        assert err.exit_code == EXIT_BAD_INPUT
        return [re.sub(r" \(line \d+\)", "", p) for p in err.problems]
    return []


def setp(path: str, value: Any) -> Callable[[Data], None]:
    """A mutation that sets a dotted path (`vms.1.nics.0.ip`) in the data."""

    def apply(data: Data) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return apply


def delp(path: str) -> Callable[[Data], None]:
    def apply(data: Data) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[int(last) if last.isdigit() else last]

    return apply


def both(*fns: Callable[[Data], None]) -> Callable[[Data], None]:
    def apply(data: Data) -> None:
        for fn in fns:
            fn(data)

    return apply


def add_switch(**sw: Any) -> Callable[[Data], None]:
    return lambda data: data["switches"].append(sw)


CASES: list[tuple[str, Callable[[Data], None], str]] = [
    # --- addresses ---
    (
        "ip outside subnet",
        setp("vms.1.nics.0.ip", "10.10.5.5"),
        "vms[1].nics[0].ip: 10.10.5.5 is not inside subnet 10.10.0.0/24",
    ),
    (
        "ip is network address",
        setp("vms.1.nics.0.ip", "10.10.0.0"),
        "vms[1].nics[0].ip: 10.10.0.0 is the network address of 10.10.0.0/24",
    ),
    (
        "ip is broadcast",
        setp("vms.1.nics.1.ip", "10.10.1.255"),
        "vms[1].nics[1].ip: 10.10.1.255 is the broadcast address of 10.10.1.0/24",
    ),
    (
        "ip is the gateway",
        setp("vms.1.nics.0.ip", "10.10.0.1"),
        "vms[1].nics[0].ip: 10.10.0.1 is the gateway of switch lab",
    ),
    (
        "duplicate ip",
        setp("vms.2.nics.0.ip", "10.10.0.11"),
        "vms[2].nics[0].ip: 10.10.0.11 is already used by hvhost01/Management",
    ),
    (
        "not an ip",
        setp("vms.1.nics.0.ip", "10.10.0.300"),
        "vms[1].nics[0].ip: '10.10.0.300' is not an IPv4 address",
    ),
    (
        "ip as a number",
        setp("vms.1.nics.0.ip", 168427531),
        "vms[1].nics[0].ip: an IPv4 address is written as text, such as 10.10.0.11",
    ),
    (
        "subnet with host bits",
        setp("switches.0.subnet", "10.10.0.1/24"),
        "switches[0].subnet: '10.10.0.1/24' has host bits set; the subnet is 10.10.0.0/24",
    ),
    (
        "overlapping subnets",
        setp("switches.2.subnet", "10.10.0.0/16"),
        "switches[2].subnet: subnet 10.10.0.0/16 overlaps 10.10.0.0/24 of switch lab",
    ),
    (
        "tiny subnet",
        both(setp("switches.1.subnet", "10.10.1.0/31"), setp("vms.1.nics.1.ip", "10.10.1.1")),
        "switches[1].subnet: subnet 10.10.1.0/31 is too small for a lab; use /30 or larger",
    ),
    (
        "cluster address outside management subnet",
        setp("cluster.address", "10.20.0.5"),
        "cluster.address: 10.20.0.5 is not inside subnet 10.10.0.0/24",
    ),
    (
        "cluster address taken by a node",
        setp("cluster.address", "10.10.0.11"),
        "cluster.address: 10.10.0.11 is already used by hvhost01/Management (R-51)",
    ),
    (
        "cluster address is the gateway",
        setp("cluster.address", "10.10.0.1"),
        "cluster.address: 10.10.0.1 is already used by the gateway of switch lab (R-51)",
    ),
    (
        "node dns not the DC",
        setp("vms.1.nics.0.dns", ["10.10.0.1"]),
        "vms[1].nics[0].dns: a node's first DNS server must be the DC, 10.10.0.10, to join the domain (R-41)",
    ),
    (
        "gateway on a storage NIC",
        setp("vms.1.nics.1.gateway", "10.10.1.1"),
        "vms[1].nics[1].gateway: only the management NIC (the first) gets a default route (R-27)",
    ),
    (
        "prefix that differs from the switch",
        setp("vms.1.nics.0.prefix", 16),
        "vms[1].nics[0].prefix: /16 differs from switch lab's 10.10.0.0/24",
    ),
    (
        "no address on a Private switch",
        delp("vms.1.nics.1.ip"),
        "vms[1].nics[1].ip: an address is needed: switch storage1 is Private and has no DHCP",
    ),
    (
        "unknown switch",
        setp("vms.1.nics.1.switch", "nope"),
        "vms[1].nics[1].switch: no switch named 'nope' (switches: lab, storage1, storage2)",
    ),
    (
        "management NIC on another switch",
        both(
            setp("vms.2.nics.0", {"name": "Management", "switch": "storage1", "ip": "10.10.1.50"}),
        ),
        "vms[2].nics[0].switch: the first NIC of every VM is its management NIC and must be on switch lab like dc01's",
    ),
    (
        "duplicate MAC",
        both(
            setp("vms.1.nics.0.mac", "00-15-5D-00-00-01"),
            setp("vms.2.nics.0.mac", "00155D000001"),
        ),
        "vms[2].nics[0].mac: MAC 00155D000001 is already hvhost01/Management's",
    ),
    (
        "multicast MAC",
        setp("vms.1.nics.0.mac", "01-00-5E-00-00-01"),
        "vms[1].nics[0].mac: '01-00-5E-00-00-01' is a multicast address; a NIC needs unicast",
    ),
    (
        "VLAN out of range",
        setp("switches.1.vlan", 4095),
        "switches[1].vlan: must be at most 4094",
    ),
    # --- switches ---
    (
        "Private switch with a gateway",
        setp("switches.1.gateway", "10.10.1.1"),
        "switches[1].gateway: a Private switch has no host vNIC, so it cannot have a gateway (R-71)",
    ),
    (
        "gateway outside the subnet",
        setp("switches.0.gateway", "10.99.0.1"),
        "switches[0].gateway: 10.99.0.1 is not inside subnet 10.10.0.0/24",
    ),
    (
        "NAT on a Private switch",
        setp("switches.1.nat", True),
        "switches[1].nat: NAT needs an Internal switch with a gateway (the host vNIC address, R-73)",
    ),
    (
        "two NAT networks",
        both(
            setp("switches.0.nat", True),
            add_switch(
                name="extra", type="Internal", subnet="10.30.0.0/24", gateway="10.30.0.1", nat=True
            ),
        ),
        "switches[3].nat: only one NAT network per host is supported (R-73)",
    ),
    (
        "External switch without a NIC",
        add_switch(name="ext", type="External", subnet="192.168.50.0/24"),
        "switches[3].net_adapter: an External switch needs net_adapter (R-71)",
    ),
    (
        "net_adapter on an Internal switch",
        setp("switches.0.net_adapter", "Ethernet"),
        "switches[0].net_adapter: only External switches take net_adapter",
    ),
    (
        "switch type spelled wrong",
        setp("switches.0.type", "internal"),
        "switches[0].type: must be one of 'Internal', 'Private' or 'External'",
    ),
    (
        "duplicate switch names",
        setp("switches.2.name", "Storage1"),
        "switches[2].name: switch name 'Storage1' is used twice (names are compared without case)",
    ),
    # --- names ---
    (
        "VM name too long",
        setp("vms.1.name", "hvhost0123456789"),
        "vms[1].name: computer name 'hvhost0123456789' is 16 characters; at most 15 (R-24)",
    ),
    (
        "VM name all digits",
        setp("vms.1.name", "12345"),
        "vms[1].name: computer name '12345' must not be only digits (R-24)",
    ),
    (
        "VM name with a dot",
        setp("vms.1.name", "hv.host"),
        "vms[1].name: computer name 'hv.host' may contain only letters, digits and hyphens; found '.' (R-24)",
    ),
    (
        "VM name with leading hyphen",
        setp("vms.1.name", "-hvhost"),
        "vms[1].name: computer name '-hvhost' must not start or end with a hyphen",
    ),
    (
        "VM name as a number",
        setp("vms.1.name", 1234),
        "vms[1].name: must be text",
    ),
    (
        "duplicate VM names, other case",
        setp("vms.2.name", "HVHOST01"),
        "vms[2].name: VM name 'HVHOST01' is used twice (names are compared without case)",
    ),
    (
        "duplicate NIC names in a VM",
        setp("vms.1.nics.2.name", "storage1"),
        "vms[1].nics[2].name: NIC name 'storage1' is used twice (names are compared without case)",
    ),
    (
        "NIC name with a space",
        setp("vms.1.nics.2.name", "Storage 2"),
        "vms[1].nics[2].name: NIC name 'Storage 2' must start with a letter and contain only letters, digits, '_' or '-' (at most 32 characters)",
    ),
    (
        "cluster name is a VM name",
        setp("cluster.name", "hvhost01"),
        "cluster.name: hvhost01 is also a VM name; the cluster needs its own",
    ),
    (
        "lab name with a space",
        setp("name", "my lab"),
        "name: lab name 'my lab' must be 1-32 letters, digits or hyphens, starting and ending with a letter or digit",
    ),
    (
        "relative root path",
        setp("host.root", "hvlab\\lab"),
        "host.root: path 'hvlab\\lab' must be an absolute Windows path such as C:\\hvlab",
    ),
    (
        "root path with ..",
        setp("host.root", "C:\\hvlab\\..\\Windows"),
        "host.root: path 'C:\\hvlab\\..\\Windows' must not contain '.' or '..' folders",
    ),
    (
        "lab folder at a drive root",
        setp("host.root", "D:\\"),
        "host.root: D:\\ is a drive root; use a folder such as C:\\hvlab\\s2d-2node",
    ),
    (
        "lab folder in a system folder",
        setp("host.root", "C:\\Windows\\lab"),
        "host.root: C:\\Windows\\lab is a Windows system folder or inside one (C:\\Windows); "
        "use a folder of its own such as C:\\hvlab\\s2d-2node",
    ),
    (
        "base image inside the lab folder",
        setp("host.root", "C:\\hvlab"),
        "host.images.ws2022.path: the base image is inside the lab folder C:\\hvlab, which lab.down removes; keep images outside it (R-16)",
    ),
    (
        "image that is not a vhdx",
        setp("host.images.ws2022.path", "C:\\images\\ws2022.iso"),
        "host.images.ws2022.path: a Generation 2 VM boots from a .vhdx file (R-09, R-16)",
    ),
    # --- domain ---
    (
        "NetBIOS domain name too long",
        setp("domain.netbios", "ABCDEFGHIJKLMNOP"),
        "domain.netbios: NetBIOS domain name 'ABCDEFGHIJKLMNOP' is 16 characters; at most 15 (R-24)",
    ),
    (
        "NetBIOS domain equals a computer name",
        setp("domain.netbios", "DC01"),
        "domain.netbios: NetBIOS domain name DC01 is also a computer name in the lab; pick another",
    ),
    (
        "single-label domain",
        setp("domain.fqdn", "corp"),
        "domain.fqdn: domain name 'corp' needs at least two labels, such as lab.example.test",
    ),
    (
        "domain label with underscore",
        setp("domain.fqdn", "my_corp.test"),
        "domain.fqdn: domain name 'my_corp.test' has an invalid label 'my_corp': labels are 1-63 letters, digits or hyphens, not starting or ending with a hyphen",
    ),
    (
        "no DC in a new forest",
        both(delp("vms.0"), delp("domain.dc")),
        "vms: domain mode new needs one VM with role dc",
    ),
    (
        "two DCs",
        setp("vms.2.role", "dc"),
        "vms[2].role: a second DC (hvhost02); hvlab builds a new forest on exactly one",
    ),
    (
        "domain.dc names a node",
        setp("domain.dc", "hvhost01"),
        "domain.dc: 'hvhost01' is not the name of a VM with role dc",
    ),
    (
        "existing domain with a DC VM",
        both(
            setp("domain.mode", "existing"),
            delp("domain.dc"),
            setp("domain.dc_address", "10.10.0.250"),
            setp("domain.join_account", "CORP\\joiner"),
        ),
        "vms[0].role: domain mode existing uses the domain's own DC; remove dc01 or use mode: new",
    ),
    (
        "existing domain without join account",
        both(
            setp("domain.mode", "existing"),
            delp("domain.dc"),
            delp("vms.0"),
            setp("domain.dc_address", "10.10.0.250"),
        ),
        "domain.join_account: mode existing needs join_account, like CORP\\joiner",
    ),
    (
        "domain mode spelled wrong",
        setp("domain.mode", "create"),
        "domain.mode: must be one of 'new' or 'existing'",
    ),
    # --- nodes and S2D ---
    (
        "one node",
        delp("vms.2"),
        "vms: 1 cluster node(s); S2D needs at least 2 (R-51, R-56)",
    ),
    (
        "one data disk",
        both(setp("vms.1.data_disks", 1), setp("vms.2.data_disks", 1)),
        "vms[1].data_disks: 1 data disks; S2D needs at least 2 per node (R-56)",
    ),
    (
        "Standard edition nodes",
        setp("host.images.ws2022.edition", "Standard"),
        "vms[1].image: image ws2022 is Standard; S2D nodes need Datacenter (R-55)",
    ),
    (
        "different disks on the nodes",
        setp("vms.2.data_disks", 6),
        "vms[2].data_disks: hvhost02 has 6 x 256.0 GiB, hvhost01 4 x 256.0 GiB; S2D validation wants the same disks on every node (R-54)",
    ),
    (
        "node NICs differ",
        delp("vms.2.nics.2"),
        "vms[2].nics: hvhost02's NICs differ from hvhost01's; every node needs the same NIC names on the same switches, so the cluster sees the same networks (R-59)",
    ),
    (
        "data disks on the DC",
        setp("vms.0.data_disks", 2),
        "vms[0].data_disks: only cluster nodes get data disks",
    ),
    (
        "unknown image",
        setp("vms.1.image", "ws2019"),
        "vms[1].image: image 'ws2019' is not in host.images (ws2022)",
    ),
    (
        "build does not match version",
        setp("host.images.ws2022.build", 17763),
        "host.images.ws2022.build: Windows Server 2022 is build 20348, not 17763",
    ),
    # --- witness ---
    (
        "two nodes without witness",
        setp("cluster.witness.type", "none"),
        "cluster.witness.type: a 2-node cluster must have a witness (R-58)",
    ),
    (
        "disk witness on S2D",
        setp("cluster.witness.type", "disk"),
        "cluster.witness.type: S2D has no shared disk for a disk witness; use file_share (R-58)",
    ),
    (
        "cloud witness without account",
        setp("cluster.witness", {"type": "cloud"}),
        "cluster.witness.account: a cloud witness needs account: the storage account name (3-24 lowercase letters or digits)",
    ),
    (
        "witness server with a bad DNS label",
        setp("cluster.witness.server", "fs01.-corp.example.com"),
        "cluster.witness.server: witness server 'fs01.-corp.example.com' has an invalid label '-corp': labels are 1-63 letters, digits and inner hyphens",
    ),
    (
        "witness server name too long for NetBIOS",
        setp("cluster.witness.server", "fileserver-number-01"),
        "cluster.witness.server: witness server 'fileserver-number-01' is 20 characters; at most 15 (R-24)",
    ),
    (
        "bad share name",
        setp("cluster.witness.share", "wit ness$"),
        "cluster.witness.share: share name 'wit ness$' must be 1-80 letters, digits, _ or -",
    ),
    # --- sizes and counts ---
    (
        "negative memory",
        setp("vms.1.memory", "-8GB"),
        "vms[1].memory: size -8GB is negative",
    ),
    (
        "memory without unit below minimum",
        setp("vms.0.memory", 0),
        "vms[0].memory: 0 B is below the 512 MiB Windows Server needs",
    ),
    (
        "too little memory for a nested node",
        setp("vms.1.memory", "3GiB"),
        "vms[1].memory: 3.0 GiB is too little for a nested Hyper-V node; at least 4 GiB (R-04)",
    ),
    (
        "absurd memory",
        setp("vms.1.memory", "13TB"),
        "vms[1].memory: 13.0 TiB is more than the 12 TiB a Generation 2 VM can have",
    ),
    (
        "memory not in 2 MiB steps",
        setp("vms.1.memory", 8 * GIB + 1),
        "vms[1].memory: 8589934593 bytes is not a multiple of 2 MiB; Hyper-V assigns memory in 2 MB steps",
    ),
    (
        "size with an unknown unit",
        setp("vms.1.memory", "8G"),
        "vms[1].memory: unknown size unit 'G' in '8G'; use B, KB, MB, GB, TB, PB (or KiB..PiB), all powers of 1024 as in PowerShell",
    ),
    (
        "size as a boolean",
        setp("vms.1.memory", True),
        "vms[1].memory: a size must be a number of bytes or a string such as 256GB",
    ),
    (
        "absurd data disk",
        setp("defaults.node.data_disk_size", "65TB"),
        "vms[1].data_disk_size: 65.0 TiB is more than the 64 TiB a VHDX can hold",
    ),
    (
        "too many vCPUs",
        setp("vms.1.cpus", 241),
        "vms[1].cpus: 241 vCPUs; a Generation 2 VM has at most 240",
    ),
    (
        "zero vCPUs",
        setp("vms.1.cpus", 0),
        "vms[1].cpus: must be at least 1",
    ),
    (
        "cpus as text",
        setp("vms.1.cpus", "four"),
        "vms[1].cpus: must be a whole number",
    ),
    # --- volumes and HA VMs ---
    (
        "volume larger than the pool",
        setp("volumes.0.size", "2TB"),
        "volumes: volumes need 4.0 TiB of pool with their copies, but the pool has 1.5 TiB after the reserve of one disk per node (R-64)",
    ),
    (
        "volume with size and percent",
        setp("volumes.0.percent", 50),
        "volumes[0]: give exactly one of size or percent",
    ),
    (
        "parity is not something hvlab builds",
        setp("volumes.0.resiliency", "Parity"),
        "volumes[0].resiliency: must be one of 'Mirror'",
    ),
    (
        "management network without client access",
        setp("cluster.networks", {"management": "Cluster"}),
        "cluster.networks.management: Cluster would leave the cluster address without client access (it is on the management network); use ClusterAndClient (R-59)",
    ),
    (
        "duplicate volume names",
        lambda d: d["volumes"].append({"name": "VOLUME01", "size": "10GB"}),
        "volumes[1].name: volume name 'VOLUME01' is used twice (names are compared without case)",
    ),
    (
        "no volumes",
        setp("volumes", []),
        "volumes: needs at least 1 entry",
    ),
    (
        "HA VM on an unknown volume",
        setp("ha_vms.0.volume", "Volume02"),
        "ha_vms[0].volume: no volume named 'Volume02'",
    ),
    (
        "HA VMs too big for one node",
        setp("ha_vms.0.memory", "7GiB"),
        "ha_vms: HA VMs need 7.0 GiB; one node must hold them all after a failover and has 6.0 GiB to spare (R-04, R-69)",
    ),
    (
        "HA VM disk larger than its volume",
        setp("ha_vms.0.disk", "300GB"),
        "volumes[0].size: HA VM disks on Volume01 add up to 300.0 GiB, more than its 200.0 GiB",
    ),
    (
        "HA VM named like a node",
        setp("ha_vms.0.name", "hvhost02"),
        "ha_vms[0].name: hvhost02 is already a VM or the cluster name",
    ),
    # --- lab-wide settings ---
    (
        "unknown time zone",
        setp("timezone", "W. Europe Time"),
        "timezone: 'W. Europe Time' is not a Windows time zone id (as `tzutil /l` lists them, R-31); did you mean 'W. Europe Standard Time'?",
    ),
    (
        "locale of the wrong form",
        setp("locale", "english"),
        "locale: 'english' is not a locale name such as en-US or de-DE",
    ),
    (
        "bad product key",
        setp("product_key", "ABCDE-12345"),
        "product_key: a product key is five groups of five letters or digits: XXXXX-XXXXX-...",
    ),
    # --- structure ---
    (
        "unknown key with a suggestion",
        setp("vms.0.memroy", "2GiB"),
        "vms[0].memroy: unknown key 'memroy'; did you mean 'memory'?",
    ),
    (
        "unknown top-level key",
        lambda d: d.update(swtiches=[]),
        "swtiches: unknown key 'swtiches'; did you mean 'switches'?",
    ),
    (
        "unknown key in a nested mapping",
        setp("cluster.witness.shares", "x"),
        "cluster.witness.shares: unknown key 'shares'; did you mean 'share'?",
    ),
    (
        "missing section",
        delp("cluster"),
        "cluster: required key is missing",
    ),
    (
        "list where a mapping belongs",
        setp("domain", ["corp.test"]),
        "domain: must be a mapping of keys to values",
    ),
    (
        "mapping where a list belongs",
        setp("vms", {"dc01": {}}),
        "vms: must be a list",
    ),
    (
        "empty NIC list",
        setp("vms.1.nics", []),
        "vms[1].nics: needs at least 1 entry",
    ),
]


@pytest.mark.parametrize(("case", "mutate", "expected"), CASES, ids=[c[0] for c in CASES])
def test_rule_gives_its_message(case: str, mutate: Callable[[Data], None], expected: str) -> None:
    data = copy.deepcopy(base())
    mutate(data)
    found = problems(data)
    assert expected in found, f"{case}: {found}"


def test_default_lab_is_valid_and_complete() -> None:
    lab = load_lab(DEFAULT_LAB)
    assert lab.name == "s2d-2node"
    assert [vm.name for vm in lab.vms] == ["dc01", "hvhost01", "hvhost02"]
    assert lab.dc is not None and lab.dc.name == "dc01"
    assert [n.name for n in lab.nodes] == ["hvhost01", "hvhost02"]
    node = lab.nodes[0]
    assert node.memory_bytes == 8 * GIB and node.cpus == 4
    assert node.data_disks == 4 and node.data_disk_bytes == 256 * GIB
    assert lab.dc.memory_bytes == 2 * GIB
    assert [n.name for n in node.nics] == ["Management", "Storage1", "Storage2"]
    mgmt = node.management_nic
    assert mgmt.prefix == 24 and mgmt.gateway == IPv4Address("10.10.0.1")
    assert mgmt.dns == [IPv4Address("10.10.0.10")]  # the DC
    assert node.nics[1].gateway is None and node.nics[1].dns == []
    assert lab.switches[0].host_name == "s2d-2node-lab"
    assert lab.cluster.witness.unc == "\\\\dc01\\hvcluster-witness"
    assert lab.volumes[0].csv_path == "C:\\ClusterStorage\\Volume01"
    assert lab.volumes[0].size_bytes == 200 * GIB
    assert lab.ha_vms[0].volume == "Volume01"
    assert lab.host.root == "C:\\hvlab\\s2d-2node"
    assert lab.os_disk_path(node) == "C:\\hvlab\\s2d-2node\\hvhost01\\hvhost01-os.vhdx"
    assert lab.data_disk_paths(node)[3] == "C:\\hvlab\\s2d-2node\\hvhost01\\hvhost01-data4.vhdx"
    assert lab.warnings == []
    totals = lab.totals()
    assert (totals.vms, totals.vcpus, totals.memory_bytes) == (3, 10, 18 * GIB)
    # 8 data disks of 256 GiB plus three OS disks of the image's 127 GiB
    assert totals.disk_bytes == 8 * 256 * GIB + 3 * 127 * GIB
    assert (
        totals.summary()
        == "3 VMs, 10 vCPUs, 18.0 GiB memory, 2.4 TiB disk (+1 HA VM inside the cluster)"
    )


@pytest.mark.parametrize("name", ["s2d-2node.yaml", "s2d-4node.yaml", "example-full.yaml"])
def test_shipped_labs_are_valid(name: str) -> None:
    lab = load_lab(ROOT / "labs" / name)
    assert len(lab.nodes) >= 2
    assert all(n.mac and len(n.mac) == 12 for vm in lab.vms for n in vm.nics)


def test_every_problem_is_reported_at_once_with_its_line() -> None:
    text = DEFAULT_LAB.read_text(encoding="utf-8")
    text = text.replace("ip: 10.10.0.11}", "ip: 10.10.5.11}")
    text = text.replace("ip: 10.10.2.12}", "ip: 10.10.2.11}")
    text = text.replace("address: 10.10.0.20", "address: 10.10.0.12")
    lines = text.splitlines()
    ip_line = next(i for i, line in enumerate(lines, 1) if "10.10.5.11" in line)
    dup_line = [i for i, line in enumerate(lines, 1) if "10.10.2.11}" in line][1]
    cl_line = next(i for i, line in enumerate(lines, 1) if "address: 10.10.0.12" in line)
    with pytest.raises(SpecError) as info:
        parse_lab(text, display="labs/x.yaml")
    assert info.value.problems == [
        f"vms[1].nics[0].ip (line {ip_line}): 10.10.5.11 is not inside subnet 10.10.0.0/24",
        f"vms[2].nics[2].ip (line {dup_line}): 10.10.2.11 is already used by hvhost01/Storage2",
        f"cluster.address (line {cl_line}): 10.10.0.12 is already used by hvhost02/Management (R-51)",
    ]
    assert str(info.value).startswith("labs/x.yaml: 3 problems\n  - vms[1].nics[0].ip")


def test_bad_names_do_not_hide_rule_problems() -> None:
    data = base()
    data["vms"][1]["name"] = "bad name"
    data["switches"][1]["name"] = "bad switch"
    data["vms"][1]["nics"][1]["switch"] = "bad switch"
    data["vms"][2]["nics"][1]["switch"] = "bad switch"
    data["vms"][2]["nics"][0]["ip"] = "10.10.0.11"
    data["cluster"]["address"] = "10.99.0.1"
    found = problems(data)
    assert found == [
        "switches[1].name: switch name 'bad switch' must start with a letter and contain only "
        "letters, digits, '_' or '-' (at most 32 characters)",
        "vms[1].name: computer name 'bad name' may contain only letters, digits and hyphens; "
        "found ' ' (R-24)",
        "vms[2].nics[0].ip: 10.10.0.11 is already used by 'bad name'/Management",
        "cluster.address: 10.99.0.1 is not inside subnet 10.10.0.0/24",
    ]


def test_field_errors_are_all_reported_together() -> None:
    data = base()
    data["vms"][1]["cpus"] = "many"
    data["vms"][2]["memory"] = "lots"
    data["timezone"] = "Mars"
    found = problems(data)
    assert len(found) == 3, found
    assert found[0] == "vms[1].cpus: must be a whole number"
    assert found[1].startswith("vms[2].memory: 'lots' is not a size")
    assert found[2].startswith("timezone: 'Mars' is not a Windows time zone id")


def test_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    data = base()
    del data["name"]
    del data["host"]["root"]
    path = tmp_path / "my-lab.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    lab = load_lab(path)
    assert lab.name == "my-lab"
    assert lab.host.root == "C:\\hvlab\\my-lab"
    assert lab.switches[1].host_name == "my-lab-storage1"
    bad = tmp_path / "My Lab.yaml"
    bad.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_lab(bad)
    assert "(taken from the file name; set `name:` in the file)" in info.value.problems[0]


def test_literal_password_is_refused_without_echo() -> None:
    data = base()
    data["domain"]["admin_password"] = "Sup3r-Secret!"
    data["vms"][0]["pwd"] = "An0ther-One!"
    with pytest.raises(SpecError) as info:
        parse_lab(yaml.safe_dump(data, sort_keys=False))
    text = str(info.value)
    assert "Sup3r-Secret!" not in text and "An0ther-One!" not in text
    assert len(info.value.problems) == 2
    assert "domain.admin_password" in text and "vms[0].pwd" in text
    assert "set the environment variable instead: HVLAB_ADMIN_PASSWORD" in text
    # the "unknown key" error for the same place is not reported twice
    assert "unknown key" not in text


def test_password_in_secrets_section_is_not_echoed() -> None:
    data = base()
    data["secrets"] = {"admin": "P@ssw0rd! 123"}
    with pytest.raises(SpecError) as info:
        parse_lab(yaml.safe_dump(data))
    assert "P@ssw0rd" not in str(info.value)
    assert info.value.problems[0].startswith("secrets.admin (line")
    assert "must name an environment variable" in info.value.problems[0]


def test_secret_variable_names_can_be_changed() -> None:
    data = base()
    data["secrets"] = {"admin": "MY_ADMIN_PW", "dsrm": "MY_DSRM_PW"}
    lab = parse_lab(yaml.safe_dump(data))
    assert lab.secrets.admin == "MY_ADMIN_PW" and lab.secrets.domain == "HVLAB_DOMAIN_PASSWORD"


def test_locale_other_than_en_us_warns() -> None:
    data = base()
    data["locale"] = "de-DE"
    lab = parse_lab(yaml.safe_dump(data))
    assert any("R-49" in w and "de-DE" in w for w in lab.warnings)


def test_dstoff_time_zone_and_defaults_merge() -> None:
    data = base()
    data["timezone"] = "W. Europe Standard Time_dstoff"
    data["vms"][2]["memory"] = "12GiB"
    data["vms"][2]["cpus"] = 6
    lab = parse_lab(yaml.safe_dump(data))
    assert lab.timezone == "W. Europe Standard Time_dstoff"
    assert lab.vms[2].memory_bytes == 12 * GIB and lab.vms[2].cpus == 6
    assert lab.vms[1].memory_bytes == 8 * GIB and lab.vms[1].cpus == 4


def test_percent_volume_gets_its_size() -> None:
    data = base()
    data["volumes"] = [{"name": "Data", "percent": 50}]
    data["ha_vms"][0]["volume"] = "Data"
    lab = parse_lab(yaml.safe_dump(data))
    # 2 nodes x 4 x 256 GiB = 2 TiB raw, minus one disk per node = 1.5 TiB; 2 copies;
    # half of the 768 GiB that leaves.
    assert lab.volumes[0].size_bytes == 384 * GIB


def test_existing_domain_lab() -> None:
    data = base()
    del data["vms"][0]
    data["domain"] = {
        "mode": "existing",
        "fqdn": "corp.example.com",
        "dc_address": "192.168.1.5",
        "join_account": "CORP\\joiner",
    }
    data["switches"][0]["nat"] = True  # the nodes reach the domain's DC through NAT
    data["cluster"]["witness"] = {"type": "file_share", "server": "fs01", "share": "witness"}
    lab = parse_lab(yaml.safe_dump(data))
    assert lab.dc is None
    assert lab.domain.netbios == "CORP"
    assert lab.nodes[0].management_nic.dns == [IPv4Address("192.168.1.5")]
    assert lab.cluster.witness.unc == "\\\\fs01\\witness"


def test_lookups_by_name() -> None:
    lab = load_lab(DEFAULT_LAB)
    assert lab.vm("HVHOST02") is lab.vms[2]
    assert lab.switch("Storage1") is lab.switches[1]
    assert lab.volume("volume01") is lab.volumes[0]
    with pytest.raises(KeyError, match="the lab has no VM named 'nope'"):
        lab.vm("nope")


def test_cluster_networks_carry_roles() -> None:
    lab = load_lab(DEFAULT_LAB)
    nets = lab.cluster_networks()
    assert [(n["name"], n["address"], n["role"], n["role_value"]) for n in nets] == [
        ("Management", "10.10.0.0", "ClusterAndClient", 3),
        ("Storage1", "10.10.1.0", "Cluster", 1),
        ("Storage2", "10.10.2.0", "Cluster", 1),
    ]


def test_witness_on_a_server_named_by_its_fqdn() -> None:
    # A file share witness outside the lab is named as DNS knows it; only NetBIOS
    # names stop at 15 characters.
    data = base()
    data["cluster"]["witness"]["server"] = "fs01.corp.example.com"
    assert problems(data) == []
    lab = parse_lab(yaml.safe_dump(data, sort_keys=False), display="t.yaml")
    assert lab.cluster.witness.server == "fs01.corp.example.com"
