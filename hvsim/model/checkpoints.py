"""VM checkpoints: Checkpoint-VM, Restore-VMSnapshot, Remove-VMSnapshot (R-13, R-130).

What Windows does (learn.microsoft.com "Using checkpoints", Virtualization-Documentation
`user-guide/checkpoints.md`): a checkpoint freezes the VM's virtual disks (each
disk's changes from then on go to a new `.avhdx` differencing file "in the same
location as the .vhdx files") and keeps the VM's configuration in the checkpoint
file location (`<VM path>\\Snapshots\\<id>.vmcx`). Applying a production checkpoint
leaves the VM Off; deleting a checkpoint merges its `.avhdx` into its parent and
removes the file. `CheckpointType Disabled` refuses checkpoints (R-13).

The model: the VM's live disk object moves to the new `.avhdx` (type Differencing,
its parent the frozen disk left at the old path), so every reference to it (the
guest's C:, an S2D pool's members) stays valid. The checkpoint keeps a Capture
(hvsim.model.capture) of the VM's settings, its disks' contents and its guest, and
of the world-level state those disks carry:

- a domain controller carries its forest (`world.domains`): restoring the DC puts
  the forest back as it was (one DC holds the whole directory);
- a cluster node carries its cluster (`world.clusters`: configuration, groups, the
  S2D pool with its virtual disks and CSV contents, the clustered VMs). The cluster
  comes back when every node of the captured cluster has been restored to a
  checkpoint that captured the same cluster state (the same digest: taken together,
  with nothing changed in between). A node restored alone rejoins the cluster as it
  is now, and its pool disks are stale: the pool and its virtual disks are Degraded
  until Repair-VirtualDisk (R-13, modelled; hyperv-facts.md says restoring one S2D
  node "marks its pool disks stale" and "needs a repair job").

What is modelled beyond the sources is marked so in docs/model-notes.md.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from hvsim import timing
from hvsim.errors import PSError, not_modelled
from hvsim.model import hverrors as E
from hvsim.model.capture import Capture, take
from hvsim.model.fs import FsError, normalize
from hvsim.model.hyperv import VM, HyperV
from hvsim.model.machine import Machine, at
from hvsim.model.vhd import VHD

MiB = 1024**2
NEW_AVHDX_BYTES = 4 * MiB
# Windows: "Names are limited to 100 characters, and the name cannot be blank."
MAX_NAME = 100

# Where a disk file lives and who holds it: not part of what a checkpoint keeps.
VHD_PLACEMENT = (
    "path",
    "parent",
    "children",
    "home",
    "in_use_by",
    "mounted",
    "mounted_read_only",
    "disk_number",
    "offline_reason",
    "file_size",
    "type",
    "corrupt",
    "checkpoint_disk",
)
# The VM's identity, power state and its checkpoint tree are not reverted by a restore.
VM_OWN = (
    "id",
    "name",
    "state",
    "started_at",
    "checkpoints",
    "parent_checkpoint",
    "host_name",
)
# Bookkeeping of a restore in progress (hvsim.model.checkpoints), never captured.
GUEST_OWN = ("cluster_restore",)


@dataclasses.dataclass(eq=False)
class CheckpointDisk:
    """One drive at the checkpoint: the drive, its live disk, and the frozen disk
    (the file at the drive's old path) the checkpoint owns."""

    drive: Any  # hvsim.model.hyperv.HardDrive
    live: VHD
    frozen: VHD


@dataclasses.dataclass(eq=False)
class Checkpoint:
    id: str
    name: str
    vm_id: str
    created: float
    checkpoint_type: str
    parent_id: str | None
    vm_state: Capture
    disks: list[CheckpointDisk]
    was_running: bool = False
    domains: Capture | None = None
    domain_keys: list[str] = dataclasses.field(default_factory=list)
    cluster: Capture | None = None
    cluster_name: str | None = None
    cluster_nodes: list[str] = dataclasses.field(default_factory=list)
    files: list[str] = dataclasses.field(default_factory=list)

    def holds(self, disk: VHD) -> bool:
        return any(d.frozen is disk for d in self.disks)


def _error(
    text: str, cmdlet: str, category: str = "InvalidOperation", target: Any = None
) -> PSError:
    return E.hv(text, "InvalidOperation", cmdlet, category, target)


# -- what a VM carries ------------------------------------------------------------------


def _host_vhds(machine: Machine) -> dict[int, VHD]:
    """Disk files on the machine's own volumes (not inside a CSV or a mounted disk)."""
    return {
        id(f.content): f.content for _, f in machine.fs.local_files() if isinstance(f.content, VHD)
    }


def _stop_for(world: Any, hv: HyperV, keep: set[int]) -> Any:
    """What a capture does not walk into: the world, machines, other VMs of this
    Hyper-V, disk files of this machine (unless kept), other checkpoints."""
    vhds = _host_vhds(hv.machine)
    local_vms = {id(v) for v in hv.vms}

    def stop(obj: Any) -> bool:
        if id(obj) in keep:
            return False
        if isinstance(obj, Machine | Capture | Checkpoint | CheckpointDisk):
            return True
        if isinstance(obj, VM) and id(obj) in local_vms:
            return True
        if isinstance(obj, VHD) and id(obj) in vhds:
            return True
        return type(obj).__name__ == "World"

    return stop


def _cluster_roots(world: Any, cluster: Any) -> list[Any]:
    """A cluster and the VMs it keeps highly available (their configuration lives on
    the CSV and in the cluster database, wherever they run)."""
    roots: list[Any] = [cluster]
    for group in cluster.groups:
        if group.group_type == "VirtualMachine":
            found = cluster.vm_of(world, group)
            if found is not None:
                roots.append(found[1])
    return roots


def _capture_cluster(world: Any, hv: HyperV, cluster: Any) -> Capture:
    return take(_cluster_roots(world, cluster), _stop_for(world, hv, set()))


def _capture_domains(world: Any, hv: HyperV, domains: list[Any]) -> Capture:
    return take(domains, _stop_for(world, hv, set()))


def _world_level(world: Any, hv: HyperV) -> set[int]:
    """Objects that belong to the forests and clusters, not to any one VM."""
    from hvsim.model.capture import walk

    stop = _stop_for(world, hv, set())
    roots: list[Any] = list(world.domains.values())
    for cluster in world.clusters.values():
        roots += _cluster_roots(world, cluster)
    objects, _ = walk(roots, stop)
    return {id(o) for o in objects}


def _capture_vm(world: Any, hv: HyperV, vm: VM, disks: list[VHD]) -> Capture:
    shared = _world_level(world, hv)
    keep = {id(vm), *(id(d) for d in disks)}
    if vm.guest is not None:
        keep.add(id(vm.guest))
    base = _stop_for(world, hv, keep)

    def stop(obj: Any) -> bool:
        return id(obj) not in keep and (id(obj) in shared or base(obj))

    def skip(obj: Any) -> tuple[str, ...]:
        if obj is vm:
            return VM_OWN
        if isinstance(obj, VHD) and any(obj is d for d in disks):
            return VHD_PLACEMENT
        if obj is vm.guest:
            return GUEST_OWN
        return ()

    roots: list[Any] = [vm, *disks]
    if vm.guest is not None:
        roots.append(vm.guest)
    return take(roots, stop, skip)


def _carried_domains(world: Any, guest: Any) -> list[tuple[str, Any]]:
    if guest is None or not getattr(guest, "is_dc", False):
        return []
    name = str(guest.name).lower()
    return [(k, d) for k, d in world.domains.items() if str(d.dc).lower() == name]


def _carried_cluster(world: Any, guest: Any) -> Any:
    from hvsim.model.cluster import cluster_of

    return cluster_of(world, guest) if guest is not None else None


# -- disk files -------------------------------------------------------------------------


def _stem(path: str) -> tuple[str, str]:
    """(folder, base name) of a disk file; an .avhdx drops its _<GUID> suffix."""
    folder, _, file = normalize(path).rpartition("\\")
    base, _, ext = file.rpartition(".")
    if ext.lower() == "avhdx" and len(base) > 37 and base[-37] == "_":
        base = base[:-37]
    return folder, base


def _avhdx_path(world: Any, path: str) -> str:
    folder, base = _stem(path)
    return f"{folder}\\{base}_{str(world.new_uuid()).upper()}.avhdx"


def _place(fs: Any, path: str, disk: VHD, cmdlet: str) -> None:
    try:
        fs.write(path, disk)
    except FsError as err:
        if err.kind == "no_space":
            raise E.vhd_create_failed(path, E.DISK_FULL, cmdlet) from None
        raise


def _split(world: Any, hv: HyperV, live: VHD, cmdlet: str) -> VHD:
    """Freeze `live` at its path and move it to a new .avhdx child of the frozen disk."""
    fs = hv.machine.fs
    old_path = live.path
    node = fs.node(old_path)
    frozen = VHD(
        path=old_path,
        format=live.format,
        type=live.type,
        size=live.size,
        file_size=live.file_size,
        disk_identifier=live.disk_identifier,
        parent=live.parent,
        block_size=live.block_size,
        logical_sector_size=live.logical_sector_size,
        physical_sector_size=live.physical_sector_size,
        partition_style=live.partition_style,
        disk_guid=live.disk_guid,
        checkpoint_disk=True,
    )
    live.file_size = NEW_AVHDX_BYTES
    try:
        _place(fs, _avhdx_path(world, old_path), live, cmdlet)  # a full volume fails here
    except PSError:
        live.file_size = frozen.file_size
        raise
    # The old file now holds the frozen disk; the live one leaves the parent's list.
    live.discarded()
    if node is not None:
        node.content = frozen
    frozen.home = live.home
    if frozen.parent is not None:
        frozen.parent.children.append(frozen)
    live.parent = frozen
    live.type = "Differencing"
    frozen.children = [live]
    return frozen


def _rebase(world: Any, hv: HyperV, live: VHD, frozen: VHD, cmdlet: str) -> VHD | None:
    """Discard the live disk's file and start a new .avhdx child of `frozen` (what a
    restore does to each disk). Returns the disk's previous parent."""
    fs = hv.machine.fs
    previous = live.parent
    if fs.node(live.path) is not None and fs.read(live.path) is live:
        fs.remove(live.path)  # its parent forgets it (VHD.discarded)
    elif previous is not None:
        previous.children = [c for c in previous.children if c is not live]
    live.parent = frozen
    live.type = "Differencing"
    live.file_size = NEW_AVHDX_BYTES
    live.corrupt = False
    _place(fs, _avhdx_path(world, frozen.path), live, cmdlet)
    frozen.children.append(live)
    return previous


def _collapse(hv: HyperV, vm: VM, start: list[VHD | None]) -> None:
    """Merge or delete frozen disks no checkpoint owns any more: one child, it takes
    the parent's file (the merge of Remove-VMSnapshot); none, the file goes."""
    fs = hv.machine.fs
    owned = {id(d.frozen) for cp in vm.checkpoints for d in cp.disks}
    work = [d for d in start if d is not None]
    while work:
        disk = work.pop()
        if not disk.checkpoint_disk or id(disk) in owned:
            continue
        if fs.node(disk.path) is None or fs.read(disk.path) is not disk:
            continue
        if not disk.children:
            parent = disk.parent
            fs.remove(disk.path)
            if parent is not None:
                work.append(parent)
        elif len(disk.children) == 1:
            child = disk.children[0]
            old_child_path = child.path
            grown = max(0, child.file_size - NEW_AVHDX_BYTES)
            fs.remove(old_child_path)
            child.file_size = disk.file_size + grown
            child.type = disk.type
            fs.write(disk.path, child)  # the frozen disk's file now holds the child
            child.parent = disk.parent
            if child.parent is not None:
                child.parent.children.append(child)
            for drive in vm.drives:
                if normalize(drive.path).lower() == normalize(old_child_path).lower():
                    drive.path = child.path
            work.append(child)


# -- Checkpoint-VM ---------------------------------------------------------------------


def default_name(world: Any, vm: VM) -> str:
    """Windows names a checkpoint after the VM and the time it was taken."""
    when = at(world.clock.now()).strftime("%m/%d/%Y - %I:%M:%S %p")
    return f"{vm.name} - ({when})"


def check_name(name: str, cmdlet: str) -> str:
    text = str(name)
    if not text.strip() or len(text) > MAX_NAME:
        raise _error(
            f"The checkpoint name '{text}' is not valid: a name cannot be blank and is limited "
            f"to {MAX_NAME} characters.",
            cmdlet,
            "InvalidArgument",
            text,
        )
    return text


def create(
    ctx: Any, hv: HyperV, vm: VM, name: str | None, cmdlet: str = "Checkpoint-VM"
) -> Checkpoint:
    world = ctx.world
    # a VM with CheckpointType Disabled refuses checkpoints (text modelled).
    if vm.checkpoint_type == "Disabled":
        raise _error(
            f"Checkpoint operation failed for '{vm.name}'.\nCheckpoints are disabled for '{vm.name}'.",
            cmdlet,
            target=vm.name,
        )
    running = vm.state != "Off"
    if running:
        if vm.state != "Running" or vm.checkpoint_type == "Standard":
            # A standard checkpoint keeps the memory and devices' state: not modelled.
            raise not_modelled(f"{cmdlet} of a VM that is {vm.state} as a standard checkpoint")
        guest = vm.guest
        if guest is None or not guest.is_ready():
            if vm.checkpoint_type == "ProductionOnly":
                raise _error(
                    f"Checkpoint operation failed for '{vm.name}'.\nCould not create a production "
                    "checkpoint: the guest's backup (VSS) integration service does not answer.",
                    cmdlet,
                    target=vm.name,
                )
            # Production falls back to a standard checkpoint here: not modelled.
            raise not_modelled(f"{cmdlet} of a running VM whose guest does not answer")
    label = check_name(name, cmdlet) if name else default_name(world, vm)
    disks: list[tuple[Any, VHD]] = []
    for drive in vm.drives:
        live = hv.vhd_at(drive.path)
        if live is None:
            raise E.start_missing_disk(vm.name, str(vm.id).upper(), drive.path)
        if live.mounted:
            raise E.disk_in_use(drive.path, cmdlet)
        disks.append((drive, live))
    ctx.work(timing.seconds("vm.checkpoint"), f"checkpointing {vm.name}")
    guest = vm.guest
    entries = [
        CheckpointDisk(drive, live, _split(world, hv, live, cmdlet)) for drive, live in disks
    ]
    for entry in entries:
        entry.drive.path = entry.live.path
    cp_id = str(world.new_uuid()).upper()
    checkpoint = Checkpoint(
        id=cp_id,
        name=label,
        vm_id=str(vm.id),
        created=float(world.clock.now()),
        checkpoint_type=vm.checkpoint_type,
        parent_id=vm.parent_checkpoint,
        vm_state=_capture_vm(world, hv, vm, [e.live for e in entries]),
        disks=entries,
        was_running=running,
    )
    carried = _carried_domains(world, guest)
    if carried:
        checkpoint.domain_keys = [k for k, _ in carried]
        checkpoint.domains = _capture_domains(world, hv, [d for _, d in carried])
    cluster = _carried_cluster(world, guest)
    if cluster is not None:
        checkpoint.cluster_name = cluster.name
        checkpoint.cluster_nodes = list(cluster.nodes)
        checkpoint.cluster = _capture_cluster(world, hv, cluster)
    folder = vm.path.rstrip("\\") + "\\Snapshots"
    checkpoint.files = [f"{folder}\\{cp_id}.vmcx", f"{folder}\\{cp_id}.VMRS"]
    for path in checkpoint.files:
        hv.machine.fs.write(path, "hyper-v checkpoint configuration", create_parents=True)
    vm.checkpoints.append(checkpoint)
    vm.parent_checkpoint = cp_id
    return checkpoint


# -- Restore-VMSnapshot ------------------------------------------------------------------


def restore(
    ctx: Any, hv: HyperV, vm: VM, cp: Checkpoint, cmdlet: str = "Restore-VMSnapshot"
) -> None:
    world = ctx.world
    if vm.state not in ("Off", "Saved"):
        # Stricter than the documented behaviour, which is not described: turn it off first.
        raise _error(
            f"'{vm.name}' cannot be restored to checkpoint '{cp.name}' while it is {vm.state}: "
            "turn it off or save it first.",
            cmdlet,
            target=vm.name,
        )
    before = vm.guest
    carried_before = [k for k, _ in _carried_domains(world, before)]
    cluster_before = getattr(before, "cluster_config", None) if before is not None else None
    ctx.work(timing.seconds("vm.checkpoint_apply"), f"applying checkpoint {cp.name} to {vm.name}")
    if vm.state == "Saved":
        vm.state = "Off"
    cp.vm_state.restore()
    previous: list[VHD | None] = []
    for entry in cp.disks:
        previous.append(_rebase(world, hv, entry.live, entry.frozen, cmdlet))
        entry.drive.path = entry.live.path
    vm.state = "Off"
    vm.started_at = None
    vm.parent_checkpoint = cp.id
    guest = vm.guest
    if guest is not None and cp.was_running:
        _as_shut_down(guest)
    _collapse(hv, vm, previous)
    # The forest on this DC is the one on its disks now.
    for key in carried_before:
        world.domains.pop(key, None)
    if cp.domains is not None:
        cp.domains.restore()
        for key, dom in zip(cp.domain_keys, cp.domains.objects, strict=False):
            world.domains[key] = dom
    _restore_cluster(world, hv, guest, cp)
    if cluster_before:
        _forget_cluster_without_nodes(world, cluster_before)


def _as_shut_down(guest: Any) -> None:
    """A production checkpoint of a running VM is application-consistent (VSS), taken
    without memory: the restored VM is Off (checkpoints.md, "Applying checkpoints")."""
    from hvsim.model.guest import OFF, Stage

    guest.timeline = [Stage(float(guest.world.clock.now()), OFF, done=True)]
    guest.epoch += 1
    guest.registry_unflushed = []
    for name in ("vmms", "ADWS", "NTDS", "DNS", "ClusSvc", "WinRM", "vmicheartbeat"):
        if name in guest.services:
            guest.services[name] = "Stopped"


def _forget_cluster_without_nodes(world: Any, name: str) -> None:
    """A cluster no machine carries any more exists nowhere (R-53: its configuration
    lives on the nodes)."""
    key = name.lower()
    if key not in world.clusters:
        return
    if any(getattr(m, "cluster_config", None) == name for m in world.machines()):
        return
    del world.clusters[key]


def _restore_cluster(world: Any, hv: HyperV, guest: Any, cp: Checkpoint) -> None:
    """The cluster comes back when every node has been restored to the same captured
    cluster state; a node restored alone leaves its pool disks stale (R-13)."""
    if guest is None:
        return
    guest.cluster_restore = None
    if cp.cluster is None or cp.cluster_name is None:
        return
    key = cp.cluster_name.lower()
    live = world.clusters.get(key)
    if live is not None and _capture_cluster(world, hv, live).digest == cp.cluster.digest:
        return  # nothing changed since the checkpoint: consistent as it is
    guest.cluster_restore = {"cluster": cp.cluster_name, "digest": cp.cluster.digest}
    nodes = [_guest_named(world, n, guest.domain) for n in cp.cluster_nodes]
    together = all(
        g is not None
        and isinstance(getattr(g, "cluster_restore", None), dict)
        and g.cluster_restore.get("digest") == cp.cluster.digest
        for g in nodes
    )
    if together:
        cp.cluster.restore()
        cluster = cp.cluster.objects[0]
        world.clusters[key] = cluster
        for g in nodes:
            # A node restored before the others looked alone then: the clustered VMs
            # it handed to the live cluster are its own again.
            for vm in g.cluster_restore.get("dropped", []):
                if g.hyperv is not None and all(v is not vm for v in g.hyperv.vms):
                    g.hyperv.vms.append(vm)
            g.cluster_restore = None
        if cluster.pool is not None:
            from hvsim.model.s2d import disk_state

            for _, disk in cluster.pool.members:
                disk_state(disk).stale = False
        return
    if live is not None:
        _stale_member(world, live, guest)


def _stale_member(world: Any, cluster: Any, guest: Any) -> None:
    """A node restored alone: its pool disks hold old data (stale until a repair), and
    the clustered VMs are where the cluster says, not where the old node had them."""
    from hvsim.model.s2d import disk_state

    if cluster.pool is not None:
        for node, disk in cluster.pool.members:
            if str(node).lower() == str(guest.name).lower():
                disk_state(disk).stale = True
    clustered = {g.vm_id for g in cluster.groups if g.group_type == "VirtualMachine"}
    if guest.hyperv is None:
        return
    elsewhere = {
        id(v)
        for m in world.machines()
        if m is not guest and getattr(m, "hyperv", None) is not None
        for v in m.hyperv.vms
    }
    dropped = [v for v in guest.hyperv.vms if str(v.id) in clustered and id(v) in elsewhere]
    guest.hyperv.vms = [v for v in guest.hyperv.vms if all(v is not d for d in dropped)]
    if isinstance(guest.cluster_restore, dict):
        guest.cluster_restore["dropped"] = dropped


def _guest_named(world: Any, name: str, domain: str | None) -> Any:
    from hvsim.model.guest import GuestOS

    found = world.guest_named(str(name), domain)  # in the node's domain
    return found if isinstance(found, GuestOS) else None


# -- Remove-VMSnapshot -------------------------------------------------------------------


def descendants(vm: VM, cp: Checkpoint) -> list[Checkpoint]:
    out: list[Checkpoint] = []
    todo = [cp.id]
    while todo:
        parent = todo.pop()
        for c in vm.checkpoints:
            if c.parent_id == parent:
                out.append(c)
                todo.append(c.id)
    return out


def remove(ctx: Any, hv: HyperV, vm: VM, cp: Checkpoint, *, subtree: bool = False) -> None:
    """Delete a checkpoint (and with `subtree` its children): its files go and its
    disk merges into its child (checkpoints.md, "Deleting checkpoints")."""
    targets = [cp, *(descendants(vm, cp) if subtree else [])]
    targets = [t for t in targets if t in vm.checkpoints]
    merged = sum(
        max(0, c.file_size - NEW_AVHDX_BYTES)
        for t in targets
        for entry in t.disks
        for c in entry.frozen.children
    )
    ctx.work(
        timing.seconds("vm.checkpoint_remove")
        + timing.seconds("vm.checkpoint_merge_per_gib") * merged / 1024**3,
        f"removing checkpoint {cp.name} of {vm.name}",
    )
    frozen: list[VHD | None] = []
    for target in targets:
        if target not in vm.checkpoints:
            continue
        for c in vm.checkpoints:
            if c.parent_id == target.id:
                c.parent_id = target.parent_id
        if vm.parent_checkpoint == target.id:
            vm.parent_checkpoint = target.parent_id
        vm.checkpoints.remove(target)
        for path in target.files:
            if hv.machine.fs.node(path) is not None:
                hv.machine.fs.remove(path)
        frozen += [entry.frozen for entry in target.disks]
    _collapse(hv, vm, frozen)


def find(vm: VM, name: str) -> list[Checkpoint]:
    """Checkpoints of `vm` by name (wildcards as -Name allows)."""
    import fnmatch

    pattern = str(name).lower()
    return [c for c in vm.checkpoints if fnmatch.fnmatchcase(c.name.lower(), pattern)]


def by_id(vm: VM, cp_id: Any) -> Checkpoint | None:
    want = str(cp_id).upper()
    return next((c for c in vm.checkpoints if c.id == want), None)


def new_id() -> str:
    return str(uuid.uuid4()).upper()
