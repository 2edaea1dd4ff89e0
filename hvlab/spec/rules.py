"""Rules across fields, and the defaults that depend on other fields.

`finish(lab)` runs after every field passed its own checks. It fills in what the
file left out (memory from `defaults`, prefix and gateway from the switch, DNS
from the DC, MACs, witness share) and returns every problem found as
(location, message), so the loader can report them all at once with line numbers.
Each rule cites the fact it rests on (hyperv-facts.md) or says "hvlab limit".
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network

from hvlab.spec.mac import derive_mac
from hvlab.spec.models import VM, Lab, Switch, Volume
from hvlab.spec.names import check_computer_name, show
from hvlab.spec.units import GIB, MIB, TIB, format_size

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]

# Plan for Hyper-V scalability in Windows Server (learn.microsoft.com, windows-server/
# virtualization/hyper-v/plan): per VM, 240 virtual processors and 12 TB memory for
# generation 2, 64 TB per VHDX.
MAX_VCPUS = 240
MAX_MEMORY = 12 * TIB
MAX_VHDX = 64 * TIB
MIN_MEMORY = 512 * MIB  # Windows Server 2022 system requirements: 512 MB minimum
MIN_NODE_MEMORY = 4 * GIB  # nested hosts need at least 4 GB
NODE_OS_RESERVE = 2 * GIB  # hvlab estimate: memory the L1 OS keeps for itself
MAX_NICS = 8  # hvlab limit
MAX_DATA_DISKS = 64  # hvlab limit (one SCSI controller holds 64 disks)
MIN_DATA_DISK = 1 * GIB  # hvlab limit
MAX_NODES = 16  # S2D supports 2 to 16 servers (WSD:storage-spaces-direct-overview)
# Lab tools size StartupBytes in 2 MB steps; Hyper-V's own refusal text is unconfirmed.
MEMORY_STEP = 2 * MIB
MIN_VOLUME = 1 * GIB  # hvlab limit

_JOIN_ACCOUNT_RE = re.compile(
    r"^(?:[A-Za-z0-9-]{1,15}\\[A-Za-z0-9._-]{1,104}|[A-Za-z0-9._-]{1,104}@[A-Za-z0-9.-]{1,253})$"
)
_SHARE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")


def finish(lab: Lab) -> list[Problem]:
    """Fill defaults and check every cross-field rule; the problems found, in file order."""
    p: list[Problem] = []
    warnings: list[str] = []
    lab.host.root = lab.host.root or f"C:\\hvlab\\{lab.name}"
    _root(lab, p)
    _images(lab, p, warnings)
    switches = _switches(lab, p)
    _vms(lab, switches, p)
    _domain(lab, p)
    _nodes(lab, p)
    _addresses(lab, p)
    _macs(lab, p)
    _cluster(lab, p, warnings)
    _volumes(lab, p)
    _ha_vms(lab, p)
    if lab.locale != "en-US":
        warnings.append(
            f"locale {lab.locale}: cluster validation and error texts may be translated; "
            "en-US images are safest (R-49, R-88)"
        )
    lab._warnings = warnings
    return p


# --- host and images ----------------------------------------------------------------

# Top-level folders of Windows itself; a lab folder there would be removed with the lab.
_SYSTEM_FOLDERS = {"windows", "program files", "program files (x86)", "programdata", "users"}


def _root(lab: Lab, p: list[Problem]) -> None:
    """lab.down removes the lab folder recursively, so it must be a folder of its own."""
    root = lab.root.rstrip("\\")
    parts = root.split("\\")
    if len(parts) < 2:
        p.append(
            (
                ("host", "root"),
                f"{root}\\ is a drive root; use a folder such as C:\\hvlab\\{lab.name}",
            )
        )
    elif parts[1].lower() in _SYSTEM_FOLDERS:
        p.append(
            (
                ("host", "root"),
                f"{root} is inside a Windows system folder; use C:\\hvlab\\{lab.name}",
            )
        )
    for key, image in lab.host.images.items():
        if image.path.lower().startswith(root.lower() + "\\"):
            # the parent image must never change; lab.down removes the lab folder.
            p.append(
                (
                    ("host", "images", key, "path"),
                    f"the base image is inside the lab folder {root}, which lab.down removes; "
                    "keep images outside it (R-16)",
                )
            )


def _images(lab: Lab, p: list[Problem], warnings: list[str]) -> None:
    for key, image in lab.host.images.items():
        loc: Loc = ("host", "images", key)
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,31}", key):
            p.append((loc, f"image name {show(key)} must be a word of letters, digits, _ or -"))
        if not image.path.lower().endswith(".vhdx"):
            p.append(((*loc, "path"), "a Generation 2 VM boots from a .vhdx file (R-09, R-16)"))
        expected = _build_of(image.version)
        if image.build != expected:
            p.append(
                (
                    (*loc, "build"),
                    f"Windows Server {image.version} is build {expected}, not {image.build}",
                )
            )
        if image.version != "2022":
            warnings.append(
                f"image {key} is Windows Server {image.version}; hvlab is tested with 2022 (R-78)"
            )


def _build_of(version: str) -> int:
    from hvlab.spec.models import WINDOWS_BUILDS

    return WINDOWS_BUILDS[version]


# --- switches ---------------------------------------------------------------------


def _switches(lab: Lab, p: list[Problem]) -> dict[str, Switch]:
    by_name: dict[str, Switch] = {}
    nat_switches: list[int] = []
    for i, sw in enumerate(lab.switches):
        loc: Loc = ("switches", i)
        sw._lab = lab.name
        _unique(by_name, sw.name, sw, (*loc, "name"), "switch", p)
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
                _inside(sw.gateway, net, (*loc, "gateway"), p)
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
    for i, a in enumerate(lab.switches):
        for j in range(i):
            b = lab.switches[j]
            if a.subnet.overlaps(b.subnet):
                p.append(
                    (
                        ("switches", i, "subnet"),
                        f"subnet {a.subnet} overlaps {b.subnet} of switch {b.name}",
                    )
                )
    return {k.lower(): v for k, v in by_name.items()}


def _inside(addr: IPv4Address, net: IPv4Network, loc: Loc, p: list[Problem]) -> bool:
    if addr not in net:
        p.append((loc, f"{addr} is not inside subnet {net}"))
        return False
    if addr == net.network_address:
        p.append((loc, f"{addr} is the network address of {net}"))
        return False
    if addr == net.broadcast_address:
        p.append((loc, f"{addr} is the broadcast address of {net}"))
        return False
    return True


def _unique(
    seen: dict[str, object], name: str, obj: object, loc: Loc, what: str, p: list[Problem]
) -> None:
    key = name.lower()
    if key in {k.lower() for k in seen}:
        p.append((loc, f"{what} name {show(name)} is used twice (names are compared without case)"))
    else:
        seen[name] = obj


# --- VMs --------------------------------------------------------------------------


def _vms(lab: Lab, switches: dict[str, Switch], p: list[Problem]) -> None:
    default_image = lab.defaults.image
    if default_image is None and len(lab.host.images) == 1:
        default_image = next(iter(lab.host.images))
    elif default_image is not None and default_image not in lab.host.images:
        p.append(
            (
                ("defaults", "image"),
                f"image {show(default_image)} is not in host.images ({', '.join(lab.host.images)})",
            )
        )
        default_image = None
    for role in ("dc", "node"):
        rd = getattr(lab.defaults, role)
        _memory(rd.memory_bytes, role == "node", ("defaults", role, "memory"), p)
    seen: dict[str, object] = {}
    for i, vm in enumerate(lab.vms):
        loc: Loc = ("vms", i)
        _unique(seen, vm.name, vm, (*loc, "name"), "VM", p)
        rd = lab.defaults.node if vm.is_node else lab.defaults.dc
        explicit_memory = vm.memory_bytes is not None
        vm.cpus = vm.cpus if vm.cpus is not None else rd.cpus
        vm.memory_bytes = vm.memory_bytes if vm.memory_bytes is not None else rd.memory_bytes
        vm.data_disks = vm.data_disks if vm.data_disks is not None else rd.data_disks
        if vm.data_disk_bytes is None:
            vm.data_disk_bytes = rd.data_disk_bytes
        if vm.image is None:
            if default_image is None:
                p.append(((*loc, "image"), "no image given and no default (set defaults.image)"))
            vm.image = default_image
        elif vm.image not in lab.host.images:
            p.append(
                (
                    (*loc, "image"),
                    f"image {show(vm.image)} is not in host.images ({', '.join(lab.host.images)})",
                )
            )
            vm.image = None
        if vm.cpus > MAX_VCPUS:
            p.append(
                ((*loc, "cpus"), f"{vm.cpus} vCPUs; a Generation 2 VM has at most {MAX_VCPUS}")
            )
        if explicit_memory:
            _memory(vm.memory_bytes, vm.is_node, (*loc, "memory"), p)
        _data_disks(vm, loc, p)
        _nics(vm, loc, switches, p)
    if lab.vms and not p_has(p, "vms"):
        mgmt = lab.vms[0].management_nic.switch.lower()
        for i, vm in enumerate(lab.vms):
            if vm.management_nic.switch.lower() != mgmt:
                p.append(
                    (
                        ("vms", i, "nics", 0, "switch"),
                        f"the first NIC of every VM is its management NIC and must be on switch "
                        f"{lab.vms[0].management_nic.switch} like {lab.vms[0].name}'s",
                    )
                )


def p_has(p: list[Problem], top: str) -> bool:
    return any(loc and loc[0] == top for loc, _ in p)


def _memory(n: int, node: bool, loc: Loc, p: list[Problem]) -> None:
    if n < MIN_MEMORY:
        p.append((loc, f"{format_size(n)} is below the 512 MiB Windows Server needs"))
    elif node and n < MIN_NODE_MEMORY:
        p.append(
            (
                loc,
                f"{format_size(n)} is too little for a nested Hyper-V node; at least 4 GiB (R-04)",
            )
        )
    elif n > MAX_MEMORY:
        p.append((loc, f"{format_size(n)} is more than the 12 TiB a Generation 2 VM can have"))
    elif n % MEMORY_STEP:
        p.append(
            (loc, f"{n} bytes is not a multiple of 2 MiB; Hyper-V assigns memory in 2 MB steps")
        )


def _data_disks(vm: VM, loc: Loc, p: list[Problem]) -> None:
    count = vm.data_disks or 0
    size = vm.data_disk_bytes or 0
    if not vm.is_node:
        if count:
            p.append(((*loc, "data_disks"), "only cluster nodes get data disks"))
        return
    if count < 2:
        p.append(
            ((*loc, "data_disks"), f"{count} data disks; S2D needs at least 2 per node (R-56)")
        )
    elif count > MAX_DATA_DISKS:
        p.append(((*loc, "data_disks"), f"{count} data disks; hvlab limit is {MAX_DATA_DISKS}"))
    if size < MIN_DATA_DISK:
        p.append(
            ((*loc, "data_disk_size"), f"{format_size(size)} is too small; hvlab limit is 1 GiB")
        )
    elif size > MAX_VHDX:
        p.append(
            (
                (*loc, "data_disk_size"),
                f"{format_size(size)} is more than the 64 TiB a VHDX can hold",
            )
        )
    elif size % MIB:
        p.append(((*loc, "data_disk_size"), "a data disk size must be a whole number of MiB"))


def _nics(vm: VM, loc: Loc, switches: dict[str, Switch], p: list[Problem]) -> None:
    if len(vm.nics) > MAX_NICS:
        p.append(((*loc, "nics"), f"{len(vm.nics)} NICs; hvlab limit is {MAX_NICS}"))
    seen: dict[str, object] = {}
    for j, nic in enumerate(vm.nics):
        nloc: Loc = (*loc, "nics", j)
        _unique(seen, nic.name, nic, (*nloc, "name"), "NIC", p)
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
        elif _inside(nic.ip, sw.subnet, (*nloc, "ip"), p) and nic.ip == sw.gateway:
            p.append(((*nloc, "ip"), f"{nic.ip} is the gateway of switch {sw.name}"))
        if j == 0:
            if "gateway" not in nic.model_fields_set:
                nic.gateway = sw.gateway
            elif nic.gateway is not None:
                _inside(nic.gateway, sw.subnet, (*nloc, "gateway"), p)
        elif nic.gateway is not None:
            p.append(
                (
                    (*nloc, "gateway"),
                    "only the management NIC (the first) gets a default route (R-27)",
                )
            )


# --- domain -----------------------------------------------------------------------


def _domain(lab: Lab, p: list[Problem]) -> None:
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


def _dns_server(lab: Lab) -> IPv4Address | None:
    if lab.domain.mode == "existing":
        return lab.domain.dc_address
    dc = next(
        (vm for vm in lab.vms if lab.domain.dc and vm.name.lower() == lab.domain.dc.lower()), None
    )
    return dc.management_nic.ip if dc and dc.nics else None


# --- nodes ------------------------------------------------------------------------


def _nodes(lab: Lab, p: list[Problem]) -> None:
    nodes = [(i, vm) for i, vm in enumerate(lab.vms) if vm.is_node]
    if len(nodes) < 2:
        p.append((("vms",), f"{len(nodes)} cluster node(s); S2D needs at least 2 (R-51, R-56)"))
    if len(nodes) > MAX_NODES:
        p.append((("vms",), f"{len(nodes)} nodes; S2D supports at most {MAX_NODES}"))
    for i, vm in nodes:
        if vm.image and lab.host.images[vm.image].edition != "Datacenter":
            p.append(
                (
                    ("vms", i, "image"),
                    f"image {vm.image} is {lab.host.images[vm.image].edition}; S2D nodes need "
                    "Datacenter (R-55)",
                )
            )
    if not nodes:
        return
    first = nodes[0][1]
    layout = [(n.name.lower(), n.switch.lower()) for n in first.nics]
    for i, vm in nodes[1:]:
        if (vm.data_disks, vm.data_disk_bytes) != (first.data_disks, first.data_disk_bytes):
            p.append(
                (
                    ("vms", i, "data_disks"),
                    f"{vm.name} has {vm.data_disks} x {format_size(vm.data_disk_bytes or 0)}, "
                    f"{first.name} {first.data_disks} x {format_size(first.data_disk_bytes or 0)}; "
                    "S2D validation wants the same disks on every node (R-54)",
                )
            )
        if [(n.name.lower(), n.switch.lower()) for n in vm.nics] != layout:
            p.append(
                (
                    ("vms", i, "nics"),
                    f"{vm.name}'s NICs differ from {first.name}'s; every node needs the same NIC "
                    "names on the same switches, so the cluster sees the same networks (R-59)",
                )
            )


# --- addresses --------------------------------------------------------------------


def _addresses(lab: Lab, p: list[Problem]) -> None:
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


def _macs(lab: Lab, p: list[Problem]) -> None:
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


# --- cluster ----------------------------------------------------------------------


def _cluster(lab: Lab, p: list[Problem], warnings: list[str]) -> None:
    cl = lab.cluster
    if cl.name.lower() in {vm.name.lower() for vm in lab.vms}:
        p.append((("cluster", "name"), f"{cl.name} is also a VM name; the cluster needs its own"))
    if lab.vms and lab.vms[0].nics:
        sw = _switch_or_none(lab, lab.vms[0].management_nic.switch)
        if sw is not None:
            # Clashes with NICs and gateways are _addresses' business.
            _inside(cl.address, sw.subnet, ("cluster", "address"), p)
    w = cl.witness
    nodes = len(lab.nodes)
    if w.type == "none" and nodes == 2:
        p.append((("cluster", "witness", "type"), "a 2-node cluster must have a witness (R-58)"))
    if w.type == "disk":
        # WSD:understand-quorum: "A Disk Witness is not supported with Storage Spaces Direct".
        p.append(
            (
                ("cluster", "witness", "type"),
                "S2D has no shared disk for a disk witness; use file_share (R-58)",
            )
        )
    if w.type == "file_share":
        if w.share is None:
            w.share = f"{cl.name}-witness"
        if not _SHARE_RE.match(w.share):
            p.append(
                (
                    ("cluster", "witness", "share"),
                    f"share name {show(w.share)} must be 1-80 letters, digits, _ or -",
                )
            )
        if w.server is None:
            if lab.domain.mode == "new" and lab.domain.dc:
                w.server = lab.domain.dc
            elif lab.domain.mode == "existing":
                p.append(
                    (
                        ("cluster", "witness", "server"),
                        "with an existing domain, name the file server",
                    )
                )
        else:
            try:
                check_computer_name(w.server, "witness server")
            except ValueError as err:
                p.append((("cluster", "witness", "server"), str(err)))
    elif w.share is not None or w.server is not None:
        p.append((("cluster", "witness"), "share and server are only for type file_share"))
    if w.type == "cloud":
        if not w.account or not re.fullmatch(r"[a-z0-9]{3,24}", w.account):
            p.append(
                (
                    ("cluster", "witness", "account"),
                    "a cloud witness needs account: the storage account name (3-24 lowercase letters or digits)",
                )
            )
        if not any(sw.nat or sw.type == "External" for sw in lab.switches):
            warnings.append(
                "a cloud witness needs internet access from the nodes (R-85); no switch has NAT"
            )
    elif w.account is not None:
        p.append((("cluster", "witness", "account"), "account is only for type cloud"))


# --- volumes and HA VMs -----------------------------------------------------------


def mirror_copies(nodes: int) -> int:
    """Data copies of a Mirror volume: two-way on 2 nodes, three-way from 3 (R-64)."""
    return 2 if nodes <= 2 else 3


def usable_bytes(lab: Lab) -> int:
    """Pool capacity left for volumes after the reserve, before resiliency.

    Microsoft's S2D planning guidance: "We recommend reserving the equivalent of one
    capacity drive per server, up to 4 drives" for in-place repairs (WSD:plan-volumes;
    R-64 "leave reserve capacity").
    """
    nodes = lab.nodes
    if not nodes:
        return 0
    disk = nodes[0].data_disk_bytes or 0
    raw = sum((n.data_disks or 0) * (n.data_disk_bytes or 0) for n in nodes)
    return max(raw - min(len(nodes), 4) * disk, 0)


def _footprint_factor(vol: Volume, nodes: int) -> int:
    # Parity keeps at least half of the footprint for data on the node counts hvlab
    # allows (3+); counting it as 2 copies is a safe upper bound (hvlab estimate).
    return mirror_copies(nodes) if vol.resiliency == "Mirror" else 2


def _volumes(lab: Lab, p: list[Problem]) -> None:
    seen: dict[str, object] = {}
    nodes = len(lab.nodes)
    usable = usable_bytes(lab)
    footprint = 0
    percent_total = 0
    for i, vol in enumerate(lab.volumes):
        loc: Loc = ("volumes", i)
        _unique(seen, vol.name, vol, (*loc, "name"), "volume", p)
        if vol.resiliency == "Parity" and nodes < 3:
            p.append(((*loc, "resiliency"), "Parity needs at least 3 nodes; use Mirror"))
        factor = _footprint_factor(vol, nodes)
        if (vol.size_bytes is None) == (vol.percent is None):
            p.append((loc, "give exactly one of size or percent"))
            continue
        if vol.percent is not None:
            percent_total += vol.percent
            vol.size_bytes = (usable // factor * vol.percent // 100) // GIB * GIB
        size = vol.size_bytes or 0
        if size < MIN_VOLUME:
            p.append(((*loc, "size"), f"{format_size(size)} is too small; hvlab limit is 1 GiB"))
        footprint += size * factor
    if percent_total > 100:
        p.append((("volumes",), f"the percents add up to {percent_total}, more than 100"))
    if usable and footprint > usable:
        p.append(
            (
                ("volumes",),
                f"volumes need {format_size(footprint)} of pool with their copies, but the pool "
                f"has {format_size(usable)} after the reserve of one disk per node (R-64)",
            )
        )


def _ha_vms(lab: Lab, p: list[Problem]) -> None:
    taken = {vm.name.lower() for vm in lab.vms} | {lab.cluster.name.lower()}
    seen: dict[str, object] = {}
    volumes = {v.name.lower(): v for v in lab.volumes}
    on_volume: dict[str, int] = {}
    for i, ha in enumerate(lab.ha_vms):
        loc: Loc = ("ha_vms", i)
        _unique(seen, ha.name, ha, (*loc, "name"), "HA VM", p)
        if ha.name.lower() in taken:
            p.append(((*loc, "name"), f"{ha.name} is already a VM or the cluster name"))
        if ha.volume is None and lab.volumes:
            ha.volume = lab.volumes[0].name
        vol = volumes.get((ha.volume or "").lower())
        if vol is None:
            p.append(((*loc, "volume"), f"no volume named {show(ha.volume or '')}"))
        else:
            ha.volume = vol.name
            on_volume[vol.name] = on_volume.get(vol.name, 0) + ha.disk_bytes
        if ha.cpus > MAX_VCPUS:
            p.append(
                ((*loc, "cpus"), f"{ha.cpus} vCPUs; a Generation 2 VM has at most {MAX_VCPUS}")
            )
        if ha.memory_bytes < MIN_MEMORY:
            p.append(((*loc, "memory"), f"{format_size(ha.memory_bytes)} is below 512 MiB"))
        elif ha.memory_bytes % MEMORY_STEP:
            p.append(((*loc, "memory"), "memory must be a multiple of 2 MiB"))
        if ha.disk_bytes < MIN_DATA_DISK or ha.disk_bytes > MAX_VHDX:
            p.append(((*loc, "disk"), f"{format_size(ha.disk_bytes)} is outside 1 GiB..64 TiB"))
        nodes = lab.nodes
        if nodes and ha.cpus > min(n.cpus or 0 for n in nodes):
            p.append(((*loc, "cpus"), f"{ha.cpus} vCPUs is more than a node has"))
    for name, total in on_volume.items():
        vol = volumes[name.lower()]
        if vol.size_bytes and total > vol.size_bytes:
            idx = lab.volumes.index(vol)
            p.append(
                (
                    ("volumes", idx, "size"),
                    f"HA VM disks on {name} add up to {format_size(total)}, more than its "
                    f"{format_size(vol.size_bytes)}",
                )
            )
    nodes = lab.nodes
    if nodes and lab.ha_vms:
        room = min(n.memory_bytes or 0 for n in nodes) - NODE_OS_RESERVE
        need = sum(ha.memory_bytes for ha in lab.ha_vms)
        if need > room:
            p.append(
                (
                    ("ha_vms",),
                    f"HA VMs need {format_size(need)}; one node must hold them all after a "
                    f"failover and has {format_size(max(room, 0))} to spare (R-04, R-69)",
                )
            )


def _switch_or_none(lab: Lab, name: str) -> Switch | None:
    return next((s for s in lab.switches if s.name.lower() == name.lower()), None)
