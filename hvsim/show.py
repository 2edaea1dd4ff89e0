"""`invoke sim.show`: the simulated host as a tree (rich).

Host -> switches, NAT, host adapters, VMs (state, NICs, disks) -> guest
(phase, domain, features) -> nested Hyper-V; then domains and clusters (pools,
CSVs, HA VMs) as the GUEST model describes them in their snapshot().
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.tree import Tree

GiB = 1024**3


def _gib(n: int) -> str:
    if n < GiB:
        return f"{n / 1024**2:,.0f} MiB"
    return f"{n / GiB:,.1f} GiB"


def build_tree(world: Any) -> Tree:
    host = world.host
    now = world.clock.now()
    c = host.fs.drives.get("C")
    title = (
        f"[bold]{host.name}[/] {host.os.caption} (build {host.os.build}) - "
        f"{host.hardware.logical_processors} LP, {_gib(host.memory_total)} RAM, "
        f"{_gib(host.memory_free())} free"
    )
    if c is not None:
        title += f"; C: {_gib(c.free())} free of {_gib(c.size)}"
    tree = Tree(title)
    tree.add(f"modelled time {now:,.0f} s, timescale {world.clock.timescale:g}")
    faults = getattr(world, "faults", None)
    if faults is not None and faults.faults:
        tree.add("faults: " + "; ".join(faults.describe()))
    _machine(tree, world, host, now)
    for name, dom in sorted(world.domains.items()):
        _summary(tree.add(f"[bold]domain[/] {name}"), dom)
    for name, cl in sorted(world.clusters.items()):
        _summary(tree.add(f"[bold]cluster[/] {name}"), cl)
    return tree


def _machine(parent: Tree, world: Any, m: Any, now: float) -> None:
    net = parent.add("network")
    for a in m.net.adapters:
        ips = ", ".join(f"{ip.address}/{ip.prefix_length}" for ip in a.ips) or "no address"
        net.add(f"{a.name} [{a.mac}] {ips}")
    for nat in m.net.nats:
        net.add(f"NAT {nat.name} {nat.internal_prefix}")
    hv = m.hyperv
    if hv is None:
        return
    sw = parent.add("switches")
    for s in hv.switches:
        sw.add(f"{s.name} ({s.switch_type}){' - ' + s.notes if s.notes else ''}")
    vms = parent.add(f"VMs ({len(hv.vms)})")
    for vm in hv.vms:
        up = f", up {vm.uptime(now):,.0f} s" if vm.state == "Running" else ""
        node = vms.add(
            f"[bold]{vm.name}[/] {vm.state}{up} - {vm.processor_count} vCPU, "
            f"{_gib(vm.memory_startup)}, v{vm.version}"
            + (", nested" if vm.expose_virtualization_extensions else "")
            + (f" - {vm.notes.splitlines()[0]}" if vm.notes else "")
        )
        for a in vm.adapters:
            vlan = f" vlan {a.vlan.access_vlan_id}" if a.vlan.mode == "Access" else ""
            node.add(f"nic {a.name} -> {a.switch or '(not connected)'} [{a.mac}]{vlan}")
        for d in vm.drives:
            disk = hv.vhd_at(d.path)
            size = (
                f" {_gib(disk.file_size)}/{_gib(disk.size)} {disk.type}" if disk else " (missing)"
            )
            node.add(
                f"disk {d.controller_type} {d.controller_number}:{d.controller_location} {d.path}{size}"
            )
        g = vm.guest
        if g is not None:
            phase = g.phase() if callable(getattr(g, "phase", None)) else "?"
            feats = ", ".join(
                k for k, v in sorted(g.features.items()) if v == "Installed" and k not in _BASE
            )
            gnode = node.add(
                f"guest {getattr(g, 'computer_name', g.name)}: {phase}"
                f"{', domain ' + g.domain if g.domain else ''}"
                f"{', features ' + feats if feats else ''}"
            )
            _machine(gnode, world, g, now)


# Features every Windows Server has: not worth listing per guest.
_BASE = {"FS-FileServer", "PowerShell", "PowerShell-V2", "NET-Framework-45-Core", "WoW64-Support"}


def _summary(parent: Tree, obj: Any) -> None:
    snap = obj.snapshot() if callable(getattr(obj, "snapshot", None)) else repr(obj)
    _walk(parent, snap)


def _walk(parent: Tree, value: Any) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, dict | list) and v:
                _walk(parent.add(str(k)), v)
            else:
                parent.add(f"{k}: {v}")
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, dict | list):
                _walk(parent.add("-"), v)
            else:
                parent.add(str(v))
    else:
        parent.add(str(value))


def render(world: Any, width: int = 120) -> str:
    console = Console(width=width, record=True, file=None, force_terminal=False, color_system=None)
    with console.capture() as cap:
        console.print(build_tree(world))
    return cap.get()
