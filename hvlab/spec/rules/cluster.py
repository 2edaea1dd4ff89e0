"""The cluster, its witness, the S2D volumes and the HA VMs (R-51, R-58, R-64, R-69)."""

from __future__ import annotations

import re

from hvlab.spec.models import Lab, Volume
from hvlab.spec.names import check_server_name, show
from hvlab.spec.rules.common import (
    MAX_VCPUS,
    MAX_VHDX,
    MEMORY_STEP,
    MIN_DATA_DISK,
    MIN_MEMORY,
    MIN_VOLUME,
    NODE_OS_RESERVE,
    Loc,
    Problem,
    inside,
    switch_or_none,
    unique,
)
from hvlab.spec.units import GIB, format_size

_SHARE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")


def check_cluster(lab: Lab, p: list[Problem], warnings: list[str]) -> None:
    cl = lab.cluster
    if cl.name.lower() in {vm.name.lower() for vm in lab.vms}:
        p.append((("cluster", "name"), f"{cl.name} is also a VM name; the cluster needs its own"))
    if lab.vms and lab.vms[0].nics:
        sw = switch_or_none(lab, lab.vms[0].management_nic.switch)
        if sw is not None:
            # Clashes with NICs and gateways are _addresses' business.
            inside(cl.address, sw.subnet, ("cluster", "address"), p)
    if cl.networks.management != "ClusterAndClient":
        # The cluster's IP address lives on the management network; its resource needs
        # client access there.
        p.append(
            (
                ("cluster", "networks", "management"),
                f"{cl.networks.management} would leave the cluster address without client "
                "access (it is on the management network); use ClusterAndClient (R-59)",
            )
        )
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
                check_server_name(w.server, "witness server")
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
    # Mirror is the only resiliency hvlab builds: two copies on 2 nodes, three from 3.
    return mirror_copies(nodes)


def check_volumes(lab: Lab, p: list[Problem]) -> None:
    seen: dict[str, object] = {}
    nodes = len(lab.nodes)
    usable = usable_bytes(lab)
    footprint = 0
    percent_total = 0
    for i, vol in enumerate(lab.volumes):
        loc: Loc = ("volumes", i)
        unique(seen, vol.name, vol, (*loc, "name"), "volume", p)
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


def check_ha_vms(lab: Lab, p: list[Problem]) -> None:
    taken = {vm.name.lower() for vm in lab.vms} | {lab.cluster.name.lower()}
    seen: dict[str, object] = {}
    volumes = {v.name.lower(): v for v in lab.volumes}
    on_volume: dict[str, int] = {}
    for i, ha in enumerate(lab.ha_vms):
        loc: Loc = ("ha_vms", i)
        unique(seen, ha.name, ha, (*loc, "name"), "HA VM", p)
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
