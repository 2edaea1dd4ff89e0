"""One VM on the host: OS disk, unattend injected offline, hardware, NICs, data disks, start."""

from __future__ import annotations

import threading
from typing import Any

from hvlab.engine import StepContext
from hvlab.errors import OwnershipError, StepError
from hvlab.facts import read_vm_facts, vhds_by_path, vm_facts
from hvlab.steps.common import (
    SILENT,
    first,
    foreign_vm,
    notes_text,
    owns_vm,
    record_created,
    same_path,
    text,
    val,
)

PANTHER = "Windows\\Panther"  # where a generalized image looks for its answer file

# children of one image are the same disk to Windows; two mounted on a host at
# once collide and the second stays offline. The mount-inject-dismount section runs
# one VM at a time per host; everything else stays parallel.
_MOUNT_LOCKS: dict[str, threading.Lock] = {}
_MOUNT_LOCKS_GUARD = threading.Lock()


def mount_lock(host_name: str) -> threading.Lock:
    """The lock that serializes OS-disk mounts on one host (within this process)."""
    with _MOUNT_LOCKS_GUARD:
        return _MOUNT_LOCKS.setdefault(host_name.lower(), threading.Lock())


def build_vm(ctx: StepContext, vm: Any) -> None:
    host, lab = ctx.host, ctx.lab
    folder = lab.vm_folder(vm)
    os_disk = lab.os_disk_path(vm)
    image = lab.host.images[vm.image]
    mgmt_switch = lab.switch(vm.nics[0].switch).host_name

    facts = vm_facts(ctx, vm)
    found = facts.found
    if len(found) > 1:
        raise StepError(f"vm:{vm.name}", f"{len(found)} VMs are named {vm.host_name} (R-20)")
    current = found[0] if found else None
    if current is not None and not owns_vm(current, lab, folder_is_ours=True):
        raise OwnershipError(foreign_vm(current, vm, lab))

    if current is None:
        _os_disk(ctx, vm, folder, os_disk, image.path, facts.os_vhd)
        # A disk a stopped run left mounted was dismounted by the "mounts" step.
        _inject_unattend(ctx, vm, os_disk)
        ctx.change(
            f"New-VM {vm.host_name} (generation 2, {vm.memory_bytes // 2**20} MiB static)",
            lambda: (
                record_created(ctx, "folder", f"{folder}\\Virtual Machines")
                or host.run(
                    "New-VM",
                    Name=vm.host_name,
                    Generation=2,
                    MemoryStartupBytes=vm.memory_bytes,
                    Path=lab.root,
                    VHDPath=os_disk,
                    SwitchName=mgmt_switch,
                )
            ),
        )
        # The new VM's facts in one round trip; it must be there now.
        facts = read_vm_facts(host, lab, [vm], must_exist=True)[vm.name.lower()]
        current = first(facts.found)
    else:
        ctx.ok(f"VM {vm.name} exists")

    state = text(val(current, "State"))
    off = state == "Off"
    data_paths = lab.data_disk_paths(vm) if vm.role == "node" else []
    # A data disk attached at its path is the lab's (each was checked when it was made);
    # only the others need a look at the file.
    attached = attached_disks(host, facts.drives)
    unattached = [p for p in data_paths if p.lower() not in attached]
    found = vhds_by_path(host.run("Get-VHD", Path=unattached, **SILENT)) if unattached else {}
    files = {p: found.get(p.lower()) for p in unattached}
    _settings(ctx, vm, current, off)
    _processor(ctx, vm, off, facts.processor)
    _firmware(ctx, vm, off, facts.firmware)
    _nics(ctx, vm, off, facts.adapters, facts.vlans)
    if data_paths:
        _data_disks(ctx, vm, data_paths, attached, files)
    if ctx.result.drift:
        ctx.result.to_apply = to_apply(vm)
    if off:
        _dismount_if_mounted(ctx, os_disk, facts.os_vhd)
        ctx.change(f"Start-VM {vm.host_name}", lambda: host.run("Start-VM", Name=vm.host_name))
    else:
        ctx.ok(f"VM {vm.name} is {state}")


def attached_disks(host: Any, drives: list[Any]) -> set[str]:
    """The disk files a VM's drives stand for, lower-case. After a checkpoint a drive
    is the .avhdx that took over the disk's writes (R-130): it stands for the disk at
    the top of its chain of .avhdx files, which is attached through it."""
    paths = {text(val(d, "Path")).lower() for d in drives}
    todo = [p for p in paths if p.endswith(".avhdx")]
    for _ in range(64):  # a chain per checkpoint; bounded however many there are
        if not todo:
            break
        parents = [
            text(val(first(found), "ParentPath")).lower()
            for found in host.map([("Get-VHD", {"Path": p, **SILENT}) for p in todo])
        ]
        paths.update(p for p in parents if p)
        todo = [p for p in parents if p.endswith(".avhdx")]
    return paths


def _os_disk(ctx: StepContext, vm: Any, folder: str, os_disk: str, parent: str, vhd: Any) -> None:
    """`vhd`: Get-VHD of the OS disk, read with the VM's other facts (None: no file)."""
    host = ctx.host
    exists = host.run("Test-Path", Path=folder)
    if not (exists and exists[0] is True):
        ctx.change(
            f"New-Item {folder}",
            lambda: (
                record_created(ctx, "folder", folder)
                or host.run("New-Item", ItemType="Directory", Path=folder, Force=True)
            ),
        )
    if vhd is None:
        # A differencing child of the sysprepped image, never a copy.
        ctx.change(
            f"New-VHD {os_disk} (differencing)",
            lambda: (
                record_created(ctx, "file", os_disk)
                or host.run("New-VHD", Path=os_disk, ParentPath=parent, Differencing=True)
            ),
        )
    elif not same_path(val(vhd, "ParentPath"), parent):
        raise StepError(
            f"vm:{vm.name}",
            f"{os_disk} exists with parent {val(vhd, 'ParentPath')!r}, the lab wants {parent!r}; "
            "remove the lab with 'invoke lab.down' and run again",
        )
    else:
        ctx.ok(f"OS disk {os_disk} exists")


def _dismount_if_mounted(ctx: StepContext, os_disk: str, vhd: Any = None) -> None:
    """A run interrupted while the disk was mounted on the host leaves it so (R-17):
    Start-VM and Mount-VHD would fail on it."""
    if vhd is None:
        vhd = first(ctx.host.run("Get-VHD", Path=os_disk, **SILENT))
    if vhd is not None and val(vhd, "Attached") is True and val(vhd, "DiskNumber") is not None:
        ctx.change(f"Dismount-VHD {os_disk}", lambda: ctx.host.run("Dismount-VHD", Path=os_disk))


def _inject_unattend(ctx: StepContext, vm: Any, os_disk: str) -> None:
    """Write unattend.xml into the offline OS disk (R-17, R-23). Dismount always."""
    host = ctx.host
    xml = ctx.render_unattend(vm)

    def inject() -> None:
        with mount_lock(host.name):
            inject_alone()

    def inject_alone() -> None:
        disk = first(host.run("Mount-VHD", Path=os_disk, Passthru=True))
        try:
            number = val(disk, "DiskNumber")
            part = _os_partition(host.run("Get-Partition", DiskNumber=number))
            if part is None:
                raise StepError(f"vm:{vm.name}", f"{os_disk} has no Windows partition")
            if not _letter(part):
                host.run(
                    "Add-PartitionAccessPath",
                    DiskNumber=number,
                    PartitionNumber=val(part, "PartitionNumber"),
                    AssignDriveLetter=True,
                )
                part = _os_partition(host.run("Get-Partition", DiskNumber=number))
            letter = _letter(part)
            if not letter:
                raise StepError(f"vm:{vm.name}", f"no drive letter could be given to {os_disk}")
            panther = f"{letter}:\\{PANTHER}"
            host.run("New-Item", ItemType="Directory", Path=panther, Force=True)
            host.run("Set-Content", Path=f"{panther}\\unattend.xml", Value=xml, Encoding="UTF8")
        finally:
            host.run("Dismount-VHD", Path=os_disk)

    ctx.change(f"inject unattend.xml into {os_disk}", inject)


def _letter(partition: Any) -> str:
    """The partition's drive letter; a partition without one reports the NUL char."""
    return text(val(partition, "DriveLetter")).strip().strip("\x00")


def _os_partition(parts: list[Any]) -> Any:
    """The Windows partition: the largest Basic one (R-17: do not hard-code its number)."""
    basic = [p for p in parts if text(val(p, "Type")) == "Basic"]
    return max(basic, key=lambda p: int(val(p, "Size", 0) or 0), default=None)


def _settings(ctx: StepContext, vm: Any, current: Any, off: bool) -> None:
    host, lab = ctx.host, ctx.lab
    wanted_notes = notes_text(lab.name)
    checkpoints_off = (
        val(current, "AutomaticCheckpointsEnabled") is False
        and text(val(current, "CheckpointType")) == "Disabled"
    )
    if text(val(current, "Notes")) != wanted_notes or not checkpoints_off:
        # Checkpoints of S2D nodes are not supported.
        ctx.change(
            f"Set-VM {vm.host_name} notes and checkpoints off",
            lambda: host.run(
                "Set-VM",
                Name=vm.host_name,
                Notes=wanted_notes,
                AutomaticCheckpointsEnabled=False,
                CheckpointType="Disabled",
            ),
        )
    else:
        ctx.ok("notes and checkpoint settings are right")
    dynamic = bool(val(current, "DynamicMemoryEnabled"))
    startup = int(val(current, "MemoryStartup", 0) or 0)
    if dynamic or startup != vm.memory_bytes:
        if not off:
            # Memory changes only while Off: never a runtime resize.
            ctx.drift(
                f"memory {size_text(startup)}{' dynamic' if dynamic else ''} -> "
                f"{size_text(vm.memory_bytes)} static (R-05)"
            )
            return
        ctx.change(
            f"Set-VMMemory {vm.host_name} static {vm.memory_bytes // 2**20} MiB",
            lambda: host.run(
                "Set-VMMemory",
                VMName=vm.host_name,
                DynamicMemoryEnabled=False,
                StartupBytes=vm.memory_bytes,
            ),
        )
    else:
        ctx.ok(f"memory is {vm.memory_bytes // 2**20} MiB static")


def _processor(ctx: StepContext, vm: Any, off: bool, proc: Any) -> None:
    host = ctx.host
    nested = vm.role == "node"
    count_ok = int(val(proc, "Count", 0) or 0) == vm.cpus
    nested_ok = (not nested) or val(proc, "ExposeVirtualizationExtensions") is True
    if count_ok and nested_ok:
        ctx.ok(f"{vm.cpus} vCPUs" + (", virtualization extensions exposed" if nested else ""))
        return
    if not off:
        if not count_ok:
            ctx.drift(f"processors {int(val(proc, 'Count', 0) or 0)} -> {vm.cpus} (R-11)")
        if not nested_ok:
            ctx.drift("virtualization extensions off -> on (R-01)")
        return
    params: dict[str, Any] = {"VMName": vm.host_name, "Count": vm.cpus}
    if nested:
        params["ExposeVirtualizationExtensions"] = True  # only while Off
    ctx.change(
        f"Set-VMProcessor {vm.host_name} {vm.cpus} vCPUs" + (" nested" if nested else ""),
        lambda: host.run("Set-VMProcessor", **params),
    )


def _firmware(ctx: StepContext, vm: Any, off: bool, fw: Any) -> None:
    host = ctx.host
    if (
        text(val(fw, "SecureBoot")) == "On"
        and text(val(fw, "SecureBootTemplate")) == "MicrosoftWindows"
    ):
        ctx.ok("secure boot on with the Windows template")
        return
    if not off:
        ctx.drift(
            f"secure boot {text(val(fw, 'SecureBoot')) or '?'} "
            f"({text(val(fw, 'SecureBootTemplate')) or '?'}) -> On (MicrosoftWindows) (R-12)"
        )
        return
    ctx.change(
        f"Set-VMFirmware {vm.host_name} secure boot",
        lambda: host.run(
            "Set-VMFirmware",
            VMName=vm.host_name,
            EnableSecureBoot="On",
            SecureBootTemplate="MicrosoftWindows",
        ),
    )


def _nics(ctx: StepContext, vm: Any, off: bool, found: list[Any], vlans: dict[str, Any]) -> None:
    """Named adapters with static MACs (R-19), spoofing for nested traffic (R-06), device
    naming (R-75). `found` and `vlans` (by adapter name) were read with the VM's other
    facts; an adapter renamed or added here is read again."""
    host, lab = ctx.host, ctx.lab
    adapters = {text(val(a, "Name")): a for a in found}
    vlans = dict(vlans)
    first_nic = vm.nics[0]
    if first_nic.name not in adapters and "Network Adapter" in adapters:
        ctx.change(
            f"Rename-VMNetworkAdapter {vm.host_name} 'Network Adapter' -> {first_nic.name}",
            lambda: host.run(
                "Rename-VMNetworkAdapter",
                VMName=vm.host_name,
                Name="Network Adapter",
                NewName=first_nic.name,
            ),
        )
        adapters = {
            text(val(a, "Name")): a for a in host.run("Get-VMNetworkAdapter", VMName=vm.host_name)
        }
        vlans.pop(first_nic.name, None)
    nested = vm.role == "node"
    for nic in vm.nics:
        switch = lab.switch(nic.switch).host_name
        adapter = adapters.get(nic.name)
        if adapter is None:
            # Hot-added to a running VM: the answer file is long applied, so the
            # boot step names it and sets its address inside the guest (guests._name_added).
            later = "" if off else f" (hot add: named and addressed inside {vm.name} next)"
            ctx.change(
                f"Add-VMNetworkAdapter {vm.host_name}/{nic.name} on {switch}{later}",
                lambda n=nic, s=switch: host.run(
                    "Add-VMNetworkAdapter",
                    VMName=vm.host_name,
                    Name=n.name,
                    SwitchName=s,
                    StaticMacAddress=n.mac,
                ),
            )
            adapter = first(host.run("Get-VMNetworkAdapter", VMName=vm.host_name, Name=nic.name))
            vlans.pop(nic.name, None)
        elif not text(val(adapter, "SwitchName")):
            # Disconnected (a network drill that was interrupted, R-110): back on its switch.
            ctx.change(
                f"Connect-VMNetworkAdapter {vm.host_name}/{nic.name} -> {switch}",
                lambda n=nic, s=switch: host.run(
                    "Connect-VMNetworkAdapter", VMName=vm.host_name, Name=n.name, SwitchName=s
                ),
            )
        elif text(val(adapter, "SwitchName")) != switch:
            # A running VM's adapter moves to another switch as it runs.
            ctx.change(
                f"Connect-VMNetworkAdapter {vm.host_name}/{nic.name} -> {switch} "
                f"(was {text(val(adapter, 'SwitchName'))})",
                lambda n=nic, s=switch: host.run(
                    "Connect-VMNetworkAdapter", VMName=vm.host_name, Name=n.name, SwitchName=s
                ),
            )
        wanted = {
            "DeviceNaming": "On",
            "MacAddressSpoofing": "On" if nested else text(val(adapter, "MacAddressSpoofing")),
            "AllowTeaming": "On" if nested else text(val(adapter, "AllowTeaming")),
        }
        differs = [k for k, v in wanted.items() if text(val(adapter, k)).upper() != v.upper()]
        mac = text(val(adapter, "MacAddress")).upper()
        mac_differs = mac != nic.mac.upper() or val(adapter, "DynamicMacAddressEnabled") is True
        if mac_differs and not off:
            # A static MAC changes only while the VM is Off.
            ctx.drift(f"adapter {nic.name} MAC {mac or '?'} -> {nic.mac} (R-140)")
        if differs or (mac_differs and off):
            params: dict[str, Any] = {
                "VMName": vm.host_name,
                "Name": nic.name,
                "DeviceNaming": "On",
            }
            if mac_differs and off:
                params["StaticMacAddress"] = nic.mac
                differs.append("MacAddress")
            if nested:
                params.update(MacAddressSpoofing="On", AllowTeaming="On")
            ctx.change(
                f"Set-VMNetworkAdapter {vm.host_name}/{nic.name} ({', '.join(differs)})",
                lambda p=params: host.run("Set-VMNetworkAdapter", **p),
            )
        elif not mac_differs:
            ctx.ok(f"adapter {nic.name} is set")
        if nic.vlan is not None:
            vlan = vlans.get(nic.name)
            if vlan is None:
                vlan = first(
                    host.run(
                        "Get-VMNetworkAdapterVlan",
                        VMName=vm.host_name,
                        VMNetworkAdapterName=nic.name,
                    )
                )
            if (
                text(val(vlan, "OperationMode")) != "Access"
                or int(val(vlan, "AccessVlanId", 0) or 0) != nic.vlan
            ):
                ctx.change(
                    f"Set-VMNetworkAdapterVlan {vm.host_name}/{nic.name} access {nic.vlan}",
                    lambda n=nic: host.run(
                        "Set-VMNetworkAdapterVlan",
                        VMName=vm.host_name,
                        VMNetworkAdapterName=n.name,
                        Access=True,
                        VlanId=n.vlan,
                    ),
                )
    _extra_adapters(ctx, vm, off, adapters)


def _extra_adapters(ctx: StepContext, vm: Any, off: bool, adapters: dict[str, Any]) -> None:
    """Adapters on the VM that the lab file does not name: drift while the VM runs;
    removed in the off window of lab.up --allow-restart, never from a running VM (R-140)."""
    names = {nic.name.lower() for nic in vm.nics}
    for name in adapters:
        if name.lower() in names:
            continue
        if not off:
            ctx.drift(f"adapter {name} is on the VM, not in the lab file: to be removed (R-140)")
            continue
        ctx.change(
            f"Remove-VMNetworkAdapter {vm.host_name}/{name} (not in the lab file)",
            lambda n=name: ctx.host.run("Remove-VMNetworkAdapter", VMName=vm.host_name, Name=n),
        )


def _data_disks(
    ctx: StepContext, vm: Any, paths: list[str], attached: set[str], files: dict[str, Any]
) -> None:
    """Each data disk its own New-VHD, so every disk has its own identifier (R-14, R-15).

    `files` holds Get-VHD of each disk that is not attached yet (None: no file)."""
    host = ctx.host
    missing = []
    for path, vhd in files.items():
        if vhd is None:
            missing.append(path)
        elif int(val(vhd, "Size", 0) or 0) != vm.data_disk_bytes:
            raise StepError(
                f"vm:{vm.name}",
                f"{path} exists with {val(vhd, 'Size')} bytes, the lab wants {vm.data_disk_bytes}; "
                "hvlab never replaces a disk silently",
            )
    if missing:
        # Separate files, created side by side.
        ctx.change(
            f"New-VHD {len(missing)} x {vm.data_disk_bytes // 2**30} GiB dynamic for {vm.name}",
            lambda: (
                record_created(ctx, "file", *missing)
                or host.map(
                    [
                        ("New-VHD", {"Path": p, "SizeBytes": vm.data_disk_bytes, "Dynamic": True})
                        for p in missing
                    ]
                )
            ),
        )
    for path in paths:
        if path.lower() in attached:
            ctx.ok(f"{path} is attached")
        else:
            ctx.change(
                f"Add-VMHardDiskDrive {vm.host_name} SCSI {path}",
                lambda p=path: host.run(
                    "Add-VMHardDiskDrive", VMName=vm.host_name, ControllerType="SCSI", Path=p
                ),
            )


def size_text(n: int) -> str:
    """A memory size as people write it in a lab file: GiB when whole, else MiB."""
    if n and n % 2**30 == 0:
        return f"{n // 2**30} GiB"
    if n % 2**20 == 0:
        return f"{n // 2**20} MiB"
    return f"{n} bytes"


def to_apply(vm: Any) -> str:
    """What applying a VM's drift takes (R-140, R-141)."""
    if vm.role == "node":
        return (
            "needs VM off: restart with --allow-restart (a cluster node: drained, shut down, "
            "changed, started, resumed, storage repaired; one node at a time)"
        )
    return (
        "needs VM off: restart with --allow-restart (shut down, changed, started until it answers)"
    )


def apply_off(ctx: StepContext, vm: Any) -> None:
    """The VM's hardware as the lab file says, while it is Off: what build_vm would do
    for an Off VM, from a fresh reading, without starting it."""
    facts = read_vm_facts(ctx.host, ctx.lab, [vm], must_exist=True)[vm.name.lower()]
    current = facts.vm
    if current is None:
        raise StepError(f"vm:{vm.name}", f"{len(facts.found)} VMs are named {vm.name} (R-20)")
    state = text(val(current, "State"))
    if state != "Off":
        raise StepError(
            f"vm:{vm.name}", f"{vm.name} is {state}; its hardware changes only while Off"
        )
    _settings(ctx, vm, current, True)
    _processor(ctx, vm, True, facts.processor)
    _firmware(ctx, vm, True, facts.firmware)
    _nics(ctx, vm, True, facts.adapters, facts.vlans)
