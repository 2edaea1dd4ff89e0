"""VMs and cluster nodes: defaults, sizes, images, disks (R-04, R-54..R-56)."""

from __future__ import annotations

from hvlab.spec.models import VM, Lab, Switch
from hvlab.spec.names import show
from hvlab.spec.rules.common import (
    MAX_DATA_DISKS,
    MAX_MEMORY,
    MAX_NODES,
    MAX_VCPUS,
    MAX_VHDX,
    MAX_VM_NAME,
    MEMORY_STEP,
    MIB,
    MIN_DATA_DISK,
    MIN_MEMORY,
    MIN_NODE_MEMORY,
    Loc,
    Problem,
    has_problem_under,
    unique,
)
from hvlab.spec.rules.network import check_nics
from hvlab.spec.units import format_size


def check_vms(lab: Lab, switches: dict[str, Switch], p: list[Problem]) -> None:
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
        unique(seen, vm.name, vm, (*loc, "name"), "VM", p)
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
        check_nics(vm, loc, switches, p)
    if lab.vms and not has_problem_under(p, "vms"):
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


# Win32 paths stop at MAX_PATH, 260 characters with the terminating null.
MAX_PATH_CHARS = 259
_GUID = "0" * 36  # the shape of the GUIDs Hyper-V puts in file names


def host_files(lab: Lab, vm: VM) -> list[str]:
    """The longest paths Hyper-V makes for the VM on the host: its configuration, its
    disks, and the .avhdx a checkpoint makes next to each disk (R-130)."""
    folder = lab.vm_folder(vm)
    disks = [lab.os_disk_path(vm), *lab.data_disk_paths(vm)]
    return [
        f"{folder}\\Virtual Machines\\{_GUID}.vmcx",
        f"{folder}\\Snapshots\\{_GUID}.VMRS",
        *disks,
        *(f"{d[: -len('.vhdx')]}_{_GUID}.avhdx" for d in disks),
    ]


def check_host_names(lab: Lab, p: list[Problem]) -> None:
    """Every VM's name on the host is vm_prefix + its computer name (R-145); its files
    must stay within MAX_PATH."""
    for vm in lab.vms:
        vm._prefix = lab.vm_prefix
    # vm_prefix (24) and a computer name (15) stay far below Hyper-V's MAX_VM_NAME:
    # only the paths can grow too long.
    assert all(len(vm.host_name) <= MAX_VM_NAME for vm in lab.vms)
    for vm in lab.vms:
        longest = max(host_files(lab, vm), key=len)
        if len(longest) > MAX_PATH_CHARS:
            where: Loc = ("vm_prefix",) if lab.vm_prefix else ("host", "root")
            p.append(
                (
                    where,
                    f"VM {vm.name} would keep files such as {show(longest, 80)} "
                    f"({len(longest)} characters) on the host; Windows paths stop at "
                    f"{MAX_PATH_CHARS} (R-145). Use a shorter host.root or vm_prefix",
                )
            )
            return


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


def check_nodes(lab: Lab, p: list[Problem]) -> None:
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
