"""What Hyper-V does to a VM: create, configure, power on/off, restart, remove.

Every rule here is a claim about Windows and cites hyperv-facts.md. The power
state machine: Off -> Running (Start-VM; R-80: Running at once, readiness is
the guest's business) -> Off (Stop-VM graceful / -TurnOff) or Saved (-Save);
Saved -> Running. Start-VM admits a VM only when the host can commit its
startup memory (R-10) and its disks can be opened (R-16, R-17).

The guest seam: on a start, `GuestOS.attach(world, vm)` creates `vm.guest`
once (when the OS disk is a bootable Windows image), then
`vm.guest.on_power_on(now)`; a stop calls `on_power_off(now)`; Restart-VM calls
`on_restart(now)`.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from hvsim import timing
from hvsim.errors import PSError
from hvsim.model import hverrors as E
from hvsim.model.fs import FsError, normalize
from hvsim.model.hyperv import VM, HardDrive, HyperV, VMNetworkAdapter, VMSwitch, version_tuple
from hvsim.model.vhd import VHD, new_disk

log = logging.getLogger(__name__)

MiB = 1024**2
GiB = 1024**3

# What Windows writes into a differencing OS disk during its first boot (specialize,
# OOBE, first logon services): an **estimate** (hyperv-facts R-10 plans 30-60 GB per
# node over a whole lab build; a fresh first boot is a small part of that).
FIRST_BOOT_GROWTH = 3 * GiB // 2


# -- creation -------------------------------------------------------------------


def new_vm(
    world: Any,
    hv: HyperV,
    *,
    name: str,
    generation: int = 1,
    memory_startup: int | None = None,
    path: str | None = None,
    vhd_path: str | None = None,
    new_vhd: tuple[str, int] | None = None,
    switch_name: str | None = None,
    version: str | None = None,
    cmdlet: str = "New-VM",
) -> tuple[VM, Any]:
    """New-VM. Returns the VM and the VHD object it created (for -NewVHDPath), if any.

    Duplicate names are allowed (R-20). Without -Path the files go to the host's
    VirtualMachinePath; with -Path, into <Path>\\<Name> (R-67).
    """
    if generation not in (1, 2):
        raise E.hv(
            f"The value {generation} is not a valid virtual machine generation.",
            "InvalidParameter",
            cmdlet,
            "InvalidArgument",
            generation,
        )
    ver = hv.default_version if version is None else _canonical_version(version)
    # the version must be one the host supports, compared numerically.
    if not any(version_tuple(v) == version_tuple(ver) for v in hv.supported_versions):
        raise E.hv(
            f"The specified virtual machine configuration version '{ver}' is not supported on "
            f"this host. Run Get-VMHostSupportedVersion to list the supported versions.",
            "InvalidParameter",
            cmdlet,
            "InvalidArgument",
            ver,
        )
    switch: VMSwitch | None = None
    if switch_name:
        found = hv.find_switches(switch_name)
        if not found:
            raise E.switch_not_found(switch_name, cmdlet)
        switch = found[0]
    fs = hv.machine.fs
    if path:
        base = normalize(path)
        vm_path = base.rstrip("\\") + "\\" + name
    else:
        vm_path = hv.settings.virtual_machine_path
    disk_obj = None
    drive_paths: list[str] = []
    if vhd_path:
        p = normalize(vhd_path)
        if not isinstance(getattr(fs.node(p), "content", None), VHD):
            raise E.hv(
                f"The system cannot find the file specified. ('{p}')",
                "ObjectNotFound",
                cmdlet,
                "ObjectNotFound",
                p,
            )
        _check_not_attached_elsewhere(hv, p, None, cmdlet)
        drive_paths.append(p)
    if new_vhd:
        p = normalize(new_vhd[0])
        if fs.exists(p):
            raise E.vhd_create_failed(p, E.FILE_EXISTS, cmdlet)
        disk_obj = new_disk(p, int(new_vhd[1]), ident=str(world.new_uuid()).upper())
        try:
            fs.mkdir(p.rsplit("\\", 1)[0])
            fs.write(p, disk_obj)
        except FsError as err:
            if err.kind == "no_space":
                raise E.vhd_create_failed(p, E.DISK_FULL, cmdlet) from None
            raise
        drive_paths.append(p)
    vm = VM(
        id=world.new_uuid(),
        name=name,
        generation=generation,
        version=ver,
        path=vm_path,
        memory_startup=memory_startup if memory_startup is not None else 512 * MiB,
        host_name=hv.machine.name,
    )
    # Gen2 boots from SCSI; Gen1 from IDE.
    ctrl = "SCSI" if generation == 2 else "IDE"
    for i, p in enumerate(drive_paths):
        vm.drives.append(HardDrive(p, ctrl, 0, i))
    nic = VMNetworkAdapter("Network Adapter")
    if switch is not None:
        nic.switch, nic.switch_id = switch.name, str(switch.id)
    vm.adapters.append(nic)
    # The configuration files: they take space and make the folder exist.
    try:
        for f in vm.config_files:
            fs.write(f, "hyper-v configuration", create_parents=True)
    except FsError as err:
        raise E.hv(
            f"Failed to create the virtual machine configuration under '{vm_path}': {err.detail}",
            "OperationFailed",
            cmdlet,
            "NotSpecified",
            name,
        ) from None
    hv.vms.append(vm)
    return vm, disk_obj


def _canonical_version(v: Any) -> str:
    text = str(getattr(v, "text", v)).strip()
    parts = text.split(".")
    if len(parts) == 1:
        parts.append("0")
    try:
        return ".".join(str(int(x)) for x in parts[:2])
    except ValueError:
        raise PSError(
            f'Cannot bind parameter \'Version\'. Cannot convert value "{text}" to type "System.Version".',
            fqid="CannotConvertArgumentNoMessage,Microsoft.HyperV.PowerShell.Commands.NewVM",
            category="InvalidArgument",
            exception="System.Management.Automation.ParameterBindingException",
        ) from None


def _check_not_attached_elsewhere(hv: HyperV, path: str, vm: VM | None, cmdlet: str) -> None:
    """A VHD can belong to one VM at a time (modelled on the 0x80070020 in-use text)."""
    holders = [h for h in hv.holder_of(path) if h is not vm]
    if holders:
        other = holders[0]
        raise E.hv(
            f"Failed to add device 'Virtual Hard Disk'.\n"
            f"The disk '{path}' is already attached to virtual machine '{other.name}' "
            f"(Virtual machine ID {str(other.id).upper()}).\n"
            "The process cannot access the file because it is being used by another process. "
            "(0x80070020).",
            "ObjectInUse",
            cmdlet,
            "ResourceBusy",
            path,
        )


def attach_disk(
    hv: HyperV,
    vm: VM,
    path: str,
    controller_type: str = "SCSI",
    controller_number: int | None = None,
    controller_location: int | None = None,
    cmdlet: str = "Add-VMHardDiskDrive",
) -> HardDrive:
    """Add-VMHardDiskDrive (R-09: Gen2 has no IDE; R-17: one owner per disk)."""
    p = normalize(path)
    ctype = controller_type.upper()
    if vm.generation == 2 and ctype == "IDE":
        raise E.hv(
            "Generation 2 virtual machines do not support IDE controllers. Use a SCSI controller.",
            "InvalidParameter",
            cmdlet,
            "InvalidArgument",
            vm.name,
        )
    if not isinstance(getattr(hv.machine.fs.node(p), "content", None), VHD):
        raise E.hv(
            f"Failed to add device 'Virtual Hard Disk'.\nThe system cannot find the file "
            f"specified. ('{p}') (0x80070002).",
            "ObjectNotFound",
            cmdlet,
            "ObjectNotFound",
            p,
        )
    if any(normalize(d.path).lower() == p.lower() for d in vm.drives):
        raise E.hv(
            f"Failed to add device 'Virtual Hard Disk'.\nThe disk '{p}' is already attached to "
            f"virtual machine '{vm.name}'.",
            "InvalidParameter",
            cmdlet,
            "InvalidArgument",
            p,
        )
    _check_not_attached_elsewhere(hv, p, vm, cmdlet)
    disk = hv.vhd_at(p)
    if disk is not None and disk.mounted:
        raise E.disk_in_use(p, cmdlet)
    if disk is not None and _parent_of_an_attached_disk(hv, disk):
        # The parent of an attached differencing disk (a checkpoint's .vhdx under its
        # .avhdx, R-16, R-130) is opened through its child: not a disk of its own.
        raise E.hv(
            f"Failed to add device 'Virtual Hard Disk'.\nThe disk '{p}' is the parent of a "
            "differencing disk that is attached to a virtual machine (a checkpoint's disk): "
            "it cannot be attached itself. The process cannot access the file because it is "
            "being used by another process. (0x80070020).",
            "ObjectInUse",
            cmdlet,
            "ResourceBusy",
            p,
        )
    cnum = controller_number or 0
    used = {
        d.controller_location
        for d in vm.drives
        if d.controller_number == cnum and d.controller_type == ctype
    }
    if controller_location is None:
        loc = 0
        while loc in used:
            loc += 1
    else:
        loc = controller_location
        if loc in used:
            raise E.hv(
                f"Failed to add device 'Virtual Hard Disk'.\nThe controller location {cnum}:{loc} "
                "is already in use.",
                "InvalidParameter",
                cmdlet,
                "InvalidArgument",
                vm.name,
            )
    if ctype == "SCSI" and loc > 63:
        raise E.hv(
            "Failed to add device 'Virtual Hard Disk'.\nA SCSI controller has 64 locations (0-63).",
            "InvalidParameter",
            cmdlet,
            "InvalidArgument",
            vm.name,
        )
    drive = HardDrive(p, ctype, cnum, loc)
    vm.drives.append(drive)
    if vm.state == "Running" and disk is not None:
        disk.in_use_by = vm.id
    if vm.guest is not None and hasattr(vm.guest, "on_disk_attached"):
        vm.guest.on_disk_attached(drive)
    return drive


def _parent_of_an_attached_disk(hv: HyperV, disk: VHD) -> bool:
    for other in hv.vms:
        for d in other.drives:
            attached = hv.vhd_at(d.path)
            if attached is not None and any(link is disk for link in attached.chain()[1:]):
                return True
    return False


# -- power -----------------------------------------------------------------------


def _guest_class() -> Any:
    try:
        from hvsim.model.guest import GuestOS
    except ImportError:  # the guest model is optional for host-only use
        return None
    return GuestOS


def start(ctx: Any, hv: HyperV, vm: VM, cmdlet: str = "Start-VM") -> None:
    world = ctx.world
    if vm.state == "Running":
        ctx.warning(f"The virtual machine '{vm.name}' is already in the specified state.")
        return
    if vm.state not in ("Off", "Saved"):
        raise E.vm_state_error(vm.name, cmdlet, "start")
    disks: list[VHD] = []
    for d in vm.drives:
        disk = hv.vhd_at(d.path)
        if disk is None:
            raise E.start_missing_disk(vm.name, str(vm.id).upper(), d.path)
        # the host holds the file open while it is mounted.
        if disk.mounted:
            ctrl_id = str(uuid.uuid5(vm.id, f"scsi{d.controller_number}")).upper()
            raise E.start_in_use(vm.name, str(vm.id).upper(), ctrl_id, d.path)
        if disk.in_use_by is not None and disk.in_use_by != vm.id:
            ctrl_id = str(uuid.uuid5(vm.id, f"scsi{d.controller_number}")).upper()
            raise E.start_in_use(vm.name, str(vm.id).upper(), ctrl_id, d.path)
        # a parent changed under a differencing child.
        if any(link.corrupt for link in disk.chain()):
            raise E.start_corrupt(vm.name, str(vm.id).upper(), d.path)
        disks.append(disk)
    # admission against the host's free memory.
    if vm.memory_startup > hv.memory_free:
        raise E.out_of_memory(vm.name, str(vm.id).upper(), cmdlet)
    # a machine may refuse to run VMs (a nested host whose hypervisor did not
    # start); the guest model says so through this hook.
    can_run = getattr(hv.machine, "check_can_run_vm", None)
    if callable(can_run):
        can_run(vm, cmdlet)
    # dynamic MACs come from the host pool at the first start.
    for a in vm.adapters:
        if a.dynamic_mac and a.mac == "000000000000":
            a.mac = hv.allocate_mac()
    resumed = vm.state == "Saved"
    vm.state = "Running"
    now = world.clock.now()
    for disk in disks:
        disk.in_use_by = vm.id
    if resumed:
        # Restored from a saved state: the guest goes on where it was; Uptime counts
        # from the restore (modelled).
        vm.started_at = now
        log.debug("%s resumed from Saved", vm.name)
        ctx.work(timing.seconds("vm.start"), f"restoring {vm.name}")
        return
    vm.started_at = now
    vm.boot_count += 1
    vm.booted_with = {
        "expose_virtualization_extensions": vm.expose_virtualization_extensions,
        "processor_count": vm.processor_count,
        "version": vm.version,
        "memory_startup": vm.memory_startup,
        "dynamic_memory": vm.dynamic_memory,
        "device_naming": {a.name: a.device_naming for a in vm.adapters},
        "mac_spoofing": {a.name: a.mac_spoofing for a in vm.adapters},
    }
    if not _grow_on_first_boot(hv, vm):
        # the host volume cannot take the disk's growth. Hyper-V pauses a VM
        # whose dynamic disk cannot grow ("Paused-Critical"); Resume-VM retries.
        vm.state = "PausedCritical"
        ctx.work(timing.seconds("vm.start"), f"starting {vm.name}")
        return
    _power_on_guest(world, hv, vm, now)
    ctx.work(timing.seconds("vm.start"), f"starting {vm.name}")


def _grow_on_first_boot(hv: HyperV, vm: VM) -> bool:
    """Charge the first boot's writes to the OS disk (a generalized image's child)."""
    drive = vm.os_drive()
    disk = hv.vhd_at(drive.path) if drive is not None else None
    if disk is None or disk.type == "Fixed" or disk.image is None or not disk.image.generalized:
        return True
    if vm.first_boot_grown:
        return True
    try:
        disk.grow(FIRST_BOOT_GROWTH)
    except FsError:
        return False
    vm.first_boot_grown = True
    return True


def _power_on_guest(world: Any, hv: HyperV, vm: VM, now: float) -> None:
    if vm.guest is None and _bootable(hv, vm):
        cls = _guest_class()
        if cls is not None:
            vm.guest = cls.attach(world, vm)
    if vm.guest is not None:
        vm.guest.on_power_on(now)


def _bootable(hv: HyperV, vm: VM) -> bool:
    drive = vm.os_drive()
    if drive is None:
        return False
    disk = hv.vhd_at(drive.path)
    return disk is not None and disk.image is not None and disk.os_partition() is not None


def _release(hv: HyperV, vm: VM) -> None:
    for d in vm.drives:
        disk = hv.vhd_at(d.path)
        if disk is not None and disk.in_use_by == vm.id:
            disk.in_use_by = None


def power_off(ctx: Any, hv: HyperV, vm: VM, *, hard: bool = True) -> None:
    """The VM is Off now: turned off (`hard`, a power cut) or shut down by its guest."""
    world = ctx.world
    vm.state = "Off"
    vm.started_at = None
    _release(hv, vm)
    if vm.guest is not None:
        vm.guest.on_power_off(world.clock.now(), hard=hard)
    faults = getattr(world, "faults", None)
    if faults is not None:
        faults.on_power_off(vm)


def stop(
    ctx: Any,
    hv: HyperV,
    vm: VM,
    *,
    turn_off: bool,
    save: bool,
    force: bool,
    cmdlet: str = "Stop-VM",
) -> None:
    """Stop-VM: graceful shutdown through the guest, -TurnOff, or -Save (R-36)."""
    if vm.state == "Off":
        ctx.warning(f"The virtual machine '{vm.name}' is already in the specified state.")
        return
    if turn_off:
        ctx.work(timing.seconds("vm.turn_off"), f"turning off {vm.name}")
        power_off(ctx, hv, vm)
        return
    if save:
        if vm.state == "Saved":
            ctx.warning(f"The virtual machine '{vm.name}' is already in the specified state.")
            return
        vm.state = "Saved"
        _release(hv, vm)
        ctx.work(timing.seconds("vm.start"), f"saving {vm.name}")
        return
    if vm.state == "Saved":
        # A saved VM has no running guest to shut down; Stop-VM discards nothing here.
        raise E.vm_state_error(vm.name, cmdlet, "shut down")
    # Graceful: the Shutdown integration service asks the guest OS to shut down.
    hb = _heartbeat(ctx.world, vm)
    if hb not in ("OkApplicationsHealthy", "OkApplicationsUnknown", "OkApplicationsCritical"):
        raise E.hv(
            f"The virtual machine '{vm.name}' could not be shut down: the Shutdown integration "
            "service is not responding (the guest operating system is not running or not ready). "
            "Use -TurnOff to turn the virtual machine off.",
            "InvalidState",
            cmdlet,
            "InvalidOperation",
            vm.name,
        )
    vm.state = "Stopping"
    ctx.work(timing.seconds("vm.shutdown"), f"shutting down {vm.name}")
    power_off(ctx, hv, vm, hard=False)


def suspend(ctx: Any, hv: HyperV, vm: VM, cmdlet: str = "Suspend-VM") -> None:
    """Suspend-VM: Running -> Paused; the VM keeps its memory (R-10 accounting)."""
    if vm.state == "Paused":
        ctx.warning(f"The virtual machine '{vm.name}' is already in the specified state.")
        return
    if vm.state != "Running":
        raise E.vm_state_error(vm.name, cmdlet, "pause")
    vm.state = "Paused"


def resume(ctx: Any, hv: HyperV, vm: VM, cmdlet: str = "Resume-VM") -> None:
    if vm.state == "Running":
        ctx.warning(f"The virtual machine '{vm.name}' is already in the specified state.")
        return
    if vm.state == "PausedCritical":
        # Paused because its disk could not grow: resumes once there is space.
        if not _grow_on_first_boot(hv, vm):
            raise E.hv(
                f"'{vm.name}' could not resume: there is not enough space on the disk for its "
                "virtual hard disk to grow. (0x80070070)",
                "OperationFailed",
                cmdlet,
                "NotSpecified",
                vm.name,
            )
        vm.state = "Running"
        _power_on_guest(ctx.world, hv, vm, ctx.world.clock.now())
        return
    if vm.state != "Paused":
        raise E.vm_state_error(vm.name, cmdlet, "resume")
    vm.state = "Running"


def _heartbeat(world: Any, vm: VM) -> str:
    if vm.state == "Paused":
        return "Paused"
    if vm.guest is None:
        return "NoContact"
    return str(vm.guest.heartbeat(world.clock.now()))


def restart(ctx: Any, hv: HyperV, vm: VM, cmdlet: str = "Restart-VM") -> None:
    """Restart-VM -Force: a hard reset, "like powering the computer down, then back up"
    (WPD:Hyper-V/Restart-VM); Uptime restarts and the guest reboots without its
    shutdown work (R-37)."""
    if vm.state != "Running":
        raise E.vm_state_error(vm.name, cmdlet, "restart")
    now = ctx.world.clock.now()
    vm.started_at = now
    vm.boot_count += 1
    vm.booted_with["expose_virtualization_extensions"] = vm.expose_virtualization_extensions
    vm.booted_with["processor_count"] = vm.processor_count
    if vm.guest is None and _bootable(hv, vm):
        cls = _guest_class()
        if cls is not None:
            vm.guest = cls.attach(ctx.world, vm)
            vm.guest.on_power_on(now)
    elif vm.guest is not None:
        vm.guest.on_restart(now)
    ctx.work(timing.seconds("vm.start"), f"restarting {vm.name}")


def remove(ctx: Any, hv: HyperV, vm: VM) -> None:
    """Remove-VM: deletes the configuration, never the VHDs. A running VM is turned off
    first (Msvm DestroySystem needs Off or Saved; the cmdlet turns it off)."""
    if vm.state not in ("Off", "Saved"):
        power_off(ctx, hv, vm)
    _release(hv, vm)
    fs = hv.machine.fs
    for f in vm.config_files:
        if fs.exists(f):
            fs.remove(f)
    hv.vms.remove(vm)
    if vm.guest is not None and hasattr(vm.guest, "on_removed"):
        vm.guest.on_removed()
