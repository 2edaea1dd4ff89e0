"""Everything a lab creates, phase by phase, computed from the spec alone.

This is the offline plan (`invoke lab.plan --offline`): no host is asked, so it
lists what lab.up would create on an empty host, in the order it does it.
"""

from __future__ import annotations

from typing import Any

from hvlab.spec.models import Lab
from hvlab.spec.units import format_size

PHASES = [
    "switches",
    "NAT",
    "folders",
    "disks",
    "VMs",
    "NICs",
    "boot",
    "domain",
    "features",
    "cluster",
    "S2D",
    "volumes",
    "HA VM",
]

NODE_FEATURES = [
    "Hyper-V",
    "Failover-Clustering",
    "FS-FileServer",
    "Hyper-V-PowerShell",
    "RSAT-Clustering-PowerShell",
]
"""Installed in one call on every node (R-44, R-46)."""


def _r(kind: str, name: str, detail: str) -> dict[str, str]:
    return {"kind": kind, "name": name, "detail": detail}


def inventory(lab: Lab) -> list[dict[str, Any]]:
    """[{"name": phase, "resources": [{"kind", "name", "detail"}]}] in PHASES order."""
    builders = {
        "switches": _switches,
        "NAT": _nat,
        "folders": _folders,
        "disks": _disks,
        "VMs": _vms,
        "NICs": _nics,
        "boot": _boot,
        "domain": _domain,
        "features": _features,
        "cluster": _cluster,
        "S2D": _s2d,
        "volumes": _volumes,
        "HA VM": _ha_vms,
    }
    return [{"name": phase, "resources": builders[phase](lab)} for phase in PHASES]


def _switches(lab: Lab) -> list[dict[str, str]]:
    out = []
    for sw in lab.switches:
        out.append(_r("switch", sw.host_name, f"{sw.type}, subnet {sw.subnet}"))
        if sw.type == "Internal" and sw.gateway is not None:
            out.append(
                _r(
                    "host-ip",
                    f"vEthernet ({sw.host_name})",
                    f"{sw.gateway}/{sw.prefix}, the lab's gateway (R-72)",
                )
            )
    return out


def _nat(lab: Lab) -> list[dict[str, str]]:
    return [_r("nat", sw.host_name, f"NAT for {sw.subnet} (R-73)") for sw in lab.switches if sw.nat]


def _folders(lab: Lab) -> list[dict[str, str]]:
    out = [
        _r("folder", lab.root, "lab folder"),
        _r("file", lab.marker_path, f"ownership mark {lab.mark}"),
    ]
    out += [_r("folder", lab.vm_folder(vm), f"{vm.name}'s files") for vm in lab.vms]
    return out


def _disks(lab: Lab) -> list[dict[str, str]]:
    out = []
    for vm in lab.vms:
        image = lab.image_of(vm)
        out.append(
            _r(
                "vhdx",
                lab.os_disk_path(vm),
                f"differencing, parent {image.path} (R-16), unattend.xml injected (R-17)",
            )
        )
        for path in lab.data_disk_paths(vm):
            out.append(_r("vhdx", path, f"{format_size(vm.data_disk_bytes or 0)} dynamic (R-14)"))
    return out


def _vms(lab: Lab) -> list[dict[str, str]]:
    out = []
    for vm in lab.vms:
        nested = ", nested virtualization (R-01)" if vm.is_node else ""
        out.append(
            _r(
                "vm",
                vm.name,
                f"{vm.role}, generation 2, {vm.cpus} vCPUs, "
                f"{format_size(vm.memory_bytes or 0)} static memory{nested}, notes {lab.mark}",
            )
        )
    return out


def _nics(lab: Lab) -> list[dict[str, str]]:
    out = []
    for vm in lab.vms:
        for nic in vm.nics:
            sw = lab.switch(nic.switch)
            parts = [f"switch {sw.host_name}", f"MAC {nic.mac}"]
            if nic.ip is not None:
                parts.append(nic.cidr)
            if nic.gateway is not None:
                parts.append(f"gateway {nic.gateway}")
            if nic.vlan is not None:
                parts.append(f"VLAN {nic.vlan}")
            if vm.is_node:
                parts.append("MAC spoofing on (R-06)")
            out.append(_r("nic", f"{vm.name}/{nic.name}", ", ".join(parts)))
    return out


def _boot(lab: Lab) -> list[dict[str, str]]:
    # The DC first: nodes need its DNS to join.
    ordered = sorted(lab.vms, key=lambda vm: vm.role != "dc")
    return [_r("start", vm.name, "first boot, wait until ready (R-35)") for vm in ordered]


def _domain(lab: Lab) -> list[dict[str, str]]:
    d = lab.domain
    out = []
    if d.mode == "new":
        out.append(_r("forest", d.fqdn, f"new forest on {d.dc}, NetBIOS {d.netbios} (R-40)"))
    else:
        out.append(_r("domain", d.fqdn, f"existing domain, DC {d.dc_address}"))
    out += [_r("join", vm.name, f"join {d.fqdn} (R-42)") for vm in lab.nodes]
    return out


def _features(lab: Lab) -> list[dict[str, str]]:
    return [
        _r("features", vm.name, ", ".join(NODE_FEATURES) + ", one restart (R-46)")
        for vm in lab.nodes
    ]


def _cluster(lab: Lab) -> list[dict[str, str]]:
    cl = lab.cluster
    nodes = ", ".join(vm.name for vm in lab.nodes)
    out = [_r("cluster", cl.name, f"{cl.address}, nodes {nodes} (R-50)")]
    w = cl.witness
    if w.type == "file_share":
        out.append(_r("share", w.unc, "file share witness (R-58)"))
    if w.type != "none":
        out.append(_r("witness", w.type, "quorum witness (R-58)"))
    for net in lab.cluster_networks():
        out.append(
            _r("cluster-network", net["name"], f"{net['address']}/{net['prefix']}, {net['role']}")
        )
    out += [
        _r("node-switch", f"{vm.name}/{cl.management_switch}", "vSwitch for HA VMs (R-70)")
        for vm in lab.nodes
    ]
    return out


def _s2d(lab: Lab) -> list[dict[str, str]]:
    disks = sum(vm.data_disks or 0 for vm in lab.nodes)
    return [_r("pool", lab.pool_name, f"{disks} disks, cache disabled (R-62)")]


def _volumes(lab: Lab) -> list[dict[str, str]]:
    return [
        _r(
            "csv",
            v.csv_path,
            f"{format_size(v.size_bytes or 0)} {v.resiliency} {v.file_system} (R-64)",
        )
        for v in lab.volumes
    ]


def _ha_vms(lab: Lab) -> list[dict[str, str]]:
    out = []
    for h in lab.ha_vms:
        where = lab.volume(h.volume or "").csv_path
        out.append(
            _r(
                "ha-vm",
                h.name,
                f"{h.cpus} vCPU, {format_size(h.memory_bytes)}, "
                f"{format_size(h.disk_bytes)} disk on {where}, live migration test (R-68, R-69)",
            )
        )
    return out
