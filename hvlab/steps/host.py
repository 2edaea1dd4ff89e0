"""Preflight and the host-side pieces: switches, host vNIC address, NAT, the lab folder."""

from __future__ import annotations

from typing import Any

from hvlab.engine import StepContext
from hvlab.errors import HostError, OwnershipError, PreflightError
from hvlab.facts import Reads, add_host_reads, host_facts, host_facts_from, keep_host_facts
from hvlab.steps import images as image_checks
from hvlab.steps.common import (
    SILENT,
    first,
    foreign_vm,
    has_mark,
    mark_owner,
    notes_text,
    other_lab,
    owns_vm,
    record_created,
    text,
    val,
)

GIB = 1024**3
HOST_RESERVE_BYTES = 2 * GIB  # MSLab keeps >= 2 GB free on the host
DISK_PER_VM_BYTES = 40 * GIB  # OS differencing disk and data VHDX growth, an estimate
WS2022_BUILD = 20348


def _version(value: Any) -> tuple[int, int]:
    """'10.0' -> (10, 0): configuration versions compare as numbers, not strings (R-03)."""
    parts = text(value).split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return (0, 0)


def _gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


def preflight(ctx: StepContext) -> None:
    """Can the host carry the lab? Read only; fail with the numbers before creating anything."""
    host, lab = ctx.host, ctx.lab
    problems: list[str] = []
    numbers: dict[str, Any] = {}

    # Every read in one round trip: the answers do not depend on each other. The
    # lab's own host facts come along, for the steps after this one (hvlab.facts).
    drive = lab.root[:1].upper()
    images = list(lab.host.images.items())
    parents = ancestors(lab.root)
    reads = Reads()
    reads.add("vmhost", ("Get-VMHost", {}))
    reads.add("os", ("Get-CimInstance", {"ClassName": "Win32_OperatingSystem"}))
    reads.add("cpu", ("Get-CimInstance", {"ClassName": "Win32_Processor"}))
    reads.add("feature", ("Get-WindowsFeature", {"Name": "Hyper-V", **SILENT}))
    reads.add("supported", ("Get-VMHostSupportedVersion", {"Default": True}))
    reads.add("volume", ("Get-Volume", {"DriveLetter": drive, **SILENT}))
    reads.add("exists", ("Test-Path", {"Path": lab.root}))
    reads.add("children", ("Get-ChildItem", {"Path": lab.root, "Force": True, **SILENT}))
    for key, image in images:
        reads.add(f"image:{key}", ("Get-VHD", {"Path": image.vhdx, **SILENT}))
    for p in parents:
        reads.add(f"parent:{p}", ("Get-Content", {"Path": f"{p}\\.hvlab-lab", **SILENT}))
    add_host_reads(reads, lab)
    generation = ctx.run.generation
    # The images' editions go along, as if every image were there (on a lab that is
    # built, they are): Get-WindowsImage refuses a file that is not, and then the
    # batch is sent again without them and the image check reads those that are.
    with_editions = Reads(reads)
    image_checks.add_reads(with_editions, images)
    try:
        answers = with_editions.send(host)
        editions: dict[str, list[Any]] | None = answers
    except HostError as err:
        if err.cmdlet != image_checks.EDITION_READ:
            raise
        answers, editions = reads.send(host), None
    facts = host_facts_from(answers, lab)
    keep_host_facts(ctx, generation, facts)
    vmhost, os_info, cpu, feature, supported, volume = (
        first(answers[k]) for k in ("vmhost", "os", "cpu", "feature", "supported", "volume")
    )
    image_vhds = [answers[f"image:{key}"] for key, _ in images]
    parent_marks = [answers[f"parent:{p}"] for p in parents]
    all_switches = facts.switches
    settings: list[str] = []  # problems of the lab's own settings: bad input (exit 2)
    folder_is_ours = _check_folder(
        host,
        lab,
        facts.marker,
        _true(answers["exists"]),
        answers["children"],
        parents,
        parent_marks,
        settings,
    )
    if settings:
        # Whose folder it is decides everything else: say it before anything about VMs.
        raise PreflightError(settings, numbers, bad_input=True)
    vms_found = [facts.vm(vm.name).found for vm in lab.vms]
    switches_found = [
        next(
            (x for x in all_switches if text(val(x, "Name")).lower() == sw.host_name.lower()), None
        )
        for sw in lab.switches
    ]
    if feature is not None and text(val(feature, "InstallState")) != "Installed":
        problems.append("the Hyper-V role is not installed on the host")

    build = int(val(os_info, "BuildNumber", 0) or 0)
    vendor = text(val(cpu, "Manufacturer"))
    numbers.update(host_build=build, cpu_vendor=vendor)
    if vendor == "AuthenticAMD" and build < WS2022_BUILD:
        problems.append(
            f"nested virtualization on AMD needs Windows Server 2022 or later (host build {build}) (R-02)"
        )

    version = _version(val(supported, "Version"))
    need = (9, 3) if vendor == "AuthenticAMD" else (8, 0)
    numbers["vm_config_version"] = ".".join(map(str, version))
    if version < need:
        problems.append(
            f"default VM configuration version {version[0]}.{version[1]} is below {need[0]}.{need[1]}, "
            "which nested virtualization needs (R-03)"
        )

    # Images: present, Datacenter where S2D needs it, en-US, sidecars.
    # The lab's own settings: bad input, nothing created (exit 2).
    settings.extend(image_checks.check(host, lab, images, image_vhds, numbers, editions))

    # Lab VMs already there: adopt ours, refuse others' (R-20, ownership).
    running_bytes = 0
    missing = []
    for vm, found in zip(lab.vms, vms_found, strict=True):
        if len(found) > 1:
            problems.append(
                f"{len(found)} VMs are named {vm.host_name}; hvlab cannot tell which is the lab's (R-20)"
            )
        elif found:
            if not owns_vm(found[0], lab, folder_is_ours):
                raise OwnershipError(foreign_vm(found[0], vm, lab))
            if text(val(found[0], "State")) != "Off":
                running_bytes += vm.memory_bytes
        else:
            missing.append(vm)
    for sw, existing in zip(lab.switches, switches_found, strict=True):
        if existing is not None and not has_mark(val(existing, "Notes"), lab.name):
            owner = other_lab(val(existing, "Notes"))
            whose = f" (it carries the mark of lab {owner!r})" if owner else ""
            raise OwnershipError(
                f"a virtual switch named {sw.host_name} exists and is not part of lab {lab.name}"
                f"{whose}; hvlab will not touch it. Rename the lab or the switch."
            )

    # Memory for every VM that is not running yet, plus a host reserve.
    free = int(val(os_info, "FreePhysicalMemory", 0) or 0) * 1024
    need_mem = sum(vm.memory_bytes for vm in lab.vms) - running_bytes
    numbers.update(free_memory_bytes=free, needed_memory_bytes=need_mem + HOST_RESERVE_BYTES)
    if need_mem > 0 and need_mem + HOST_RESERVE_BYTES > free:
        problems.append(
            f"not enough free memory: the lab needs {_gib(need_mem)} more plus a {_gib(HOST_RESERVE_BYTES)} "
            f"reserve, the host has {_gib(free)} free (R-10)"
        )

    if volume is None:
        settings.append(f"the host has no volume {drive}: for the lab root {lab.root}")
    else:
        fs = text(val(volume, "FileSystemType") or val(volume, "FileSystem"))
        free_disk = int(val(volume, "SizeRemaining", 0) or 0)
        need_disk = DISK_PER_VM_BYTES * len(missing)
        numbers.update(free_disk_bytes=free_disk, needed_disk_bytes=need_disk)
        if fs and fs.upper() not in ("NTFS", "REFS"):
            problems.append(f"volume {drive}: is {fs}; VMs need NTFS or ReFS (R-79)")
        if need_disk > free_disk:
            problems.append(
                f"not enough disk space on {drive}: the new VMs need about {_gib(need_disk)}, "
                f"{_gib(free_disk)} is free (R-10)"
            )
    numbers["host"] = text(val(vmhost, "ComputerName"))
    ctx.run.services["host_facts"] = numbers
    if problems or settings:
        raise PreflightError(settings + problems, numbers, bad_input=bool(settings))
    ctx.ok(
        f"host {numbers['host']} can carry the lab: {_gib(free)} free memory, "
        f"configuration version {numbers['vm_config_version']}"
    )


def ancestors(root: str) -> list[str]:
    """The folders above the lab root, top first, without the drive root."""
    parts = root.rstrip("\\").split("\\")
    return ["\\".join(parts[:i]) for i in range(2, len(parts))]


def _check_folder(
    host: Any,
    lab: Any,
    mark: list[Any],
    exists: bool,
    children: list[Any],
    parents: list[str],
    parent_marks: list[list[Any]],
    settings: list[str],
) -> bool:
    """Whose is the lab root? Ours when it carries our mark. A folder is never adopted
    when it holds anything, nor when it lies inside another lab's folder, nor when it
    carries another lab's mark: the lab would be built among files lab.down must not
    touch. Returns whether the folder is ours."""
    root = lab.root
    owner = mark_owner(mark)
    for parent, lines in zip(parents, parent_marks, strict=True):
        other = mark_owner(lines)
        if other:
            settings.append(
                f"{root} is inside {parent}, the folder of lab {other!r}; choose a host.root "
                "outside every other lab's folder"
            )
    if owner and owner != lab.name:
        settings.append(
            f"{root} belongs to lab {owner!r}, not {lab.name!r}; choose another host.root"
        )
    if owner or not exists or not children:
        return owner == lab.name
    names = sorted(text(val(c, "Name")) for c in children)
    nested = host.run(
        "Get-ChildItem", Path=root, Recurse=True, Filter=".hvlab-lab", Force=True, **SILENT
    )
    labs = sorted(
        {
            mark_owner(host.run("Get-Content", Path=text(val(n, "FullName")), **SILENT))
            for n in nested
        }
        - {""}
    )
    inside = f"; it holds the folder of lab {', '.join(map(repr, labs))}" if labs else ""
    settings.append(
        f"{root} exists and holds files hvlab did not create ({', '.join(names[:5])}"
        f"{', ...' if len(names) > 5 else ''}){inside}. hvlab adopts an existing folder only "
        "when it is empty: choose another host.root, or empty the folder yourself"
    )
    return False


def switches(ctx: StepContext) -> None:
    """Virtual switches in the lab's namespace, the host vNIC address, and NAT (R-71..R-73)."""
    host, lab = ctx.host, ctx.lab
    facts = host_facts(ctx)
    for sw in lab.switches:
        existing = facts.switch(sw.host_name)
        if existing is None:
            params: dict[str, Any] = {"Name": sw.host_name, "Notes": notes_text(lab.name)}
            if sw.type == "External":
                params.update(NetAdapterName=sw.net_adapter, AllowManagementOS=True)
            else:
                params["SwitchType"] = sw.type
            ctx.change(
                f"New-VMSwitch {sw.host_name} ({sw.type})",
                lambda p=params: host.run("New-VMSwitch", **p),
            )
        elif text(val(existing, "SwitchType")) != sw.type:
            raise OwnershipError(
                f"switch {sw.host_name} is {val(existing, 'SwitchType')}, the lab wants {sw.type}; "
                "remove it with 'invoke lab.down' first"
            )
        else:
            ctx.ok(f"switch {sw.host_name} exists")

        if sw.type == "Internal" and sw.gateway is not None:
            alias = f"vEthernet ({sw.host_name})"
            # A switch made just now has a vNIC without the address: read before it
            # was made, its addresses are none either way.
            addresses = facts.addresses[alias]
            if any(text(val(a, "IPAddress")) == str(sw.gateway) for a in addresses):
                ctx.ok(f"{alias} has {sw.gateway}")
            else:
                ctx.change(
                    f"New-NetIPAddress {sw.gateway}/{sw.subnet.prefixlen} on {alias}",
                    lambda a=alias, s=sw: host.run(
                        "New-NetIPAddress",
                        InterfaceAlias=a,
                        IPAddress=str(s.gateway),
                        PrefixLength=s.subnet.prefixlen,
                    ),
                )
        if sw.nat:
            _nat(ctx, sw, facts.nats)


def _nat(ctx: StepContext, sw: Any, nats: list[Any]) -> None:
    """`nats`: the host's NAT networks, read with the step's other facts; this step is
    the only one that makes one, and it makes one at most (R-73)."""
    host, lab = ctx.host, ctx.lab
    prefix = str(sw.subnet)
    for nat in nats:
        if text(val(nat, "InternalIPInterfaceAddressPrefix")) == prefix:
            ctx.ok(f"NAT {val(nat, 'Name')} covers {prefix}")
            return
    if nats:
        # Only one NAT network per host; the user's NAT is theirs to keep.
        raise OwnershipError(
            f"the host already has NAT {val(nats[0], 'Name')} for "
            f"{val(nats[0], 'InternalIPInterfaceAddressPrefix')}; Windows supports one NAT network per host (R-73). "
            f"Set nat: false on switch {sw.name} or remove that NAT yourself."
        )
    name = f"{lab.name}-nat"
    ctx.change(
        f"New-NetNat {name} for {prefix}",
        lambda: (
            # A NAT has no Notes: only the record says it is the lab's.
            record_created(ctx, "nat", name),
            host.run("New-NetNat", Name=name, InternalIPInterfaceAddressPrefix=prefix),
        ),
    )


def lab_folder(ctx: StepContext) -> None:
    """The lab root with its mark file, so lab.down knows the folder is the lab's, and
    the record of what the lab created, beginning with the folders it made for the root."""
    host, lab = ctx.host, ctx.lab
    root = lab.root
    current = mark_owner(host_facts(ctx).marker)
    if current == lab.name:
        ctx.ok(f"{root} is marked as lab {lab.name}")
        return
    if current:
        raise OwnershipError(
            f"{root} belongs to lab {current!r}, not {lab.name!r}; choose another host.root"
        )
    chain = [*ancestors(root), root]
    found = host.map([("Test-Path", {"Path": p}) for p in chain])
    missing = [p for p, f in zip(chain, found, strict=True) if not _true(f)]
    if missing:

        def create() -> None:
            # Local state first: a run killed before the record on the host is written
            # still knows these folders were its own.
            ctx.state.set_fact("host", "creating_folders", missing)
            host.run("New-Item", ItemType="Directory", Path=root, Force=True)
            host.run("Set-Content", Path=lab.marker_path, Value=lab.name)
            record_created(ctx, "folder", *missing)

        ctx.change(f"New-Item {root} and mark it as lab {lab.name}", create)
        return
    children = host.run("Get-ChildItem", Path=root, Force=True, **SILENT)
    if children:
        raise PreflightError(
            [f"{root} exists and holds files hvlab did not create; it is not adopted"],
            bad_input=True,
        )
    # An empty folder: made by a run that stopped before marking it (local state says
    # so), or someone's empty folder, which is adopted but stays when the lab goes.
    hint = ctx.state.get_fact("host", "creating_folders") or []
    made = [p for p in hint if p in chain]

    def adopt() -> None:
        host.run("Set-Content", Path=lab.marker_path, Value=lab.name)
        if made:
            record_created(ctx, "folder", *made)

    ctx.change(f"mark the empty folder {root} as lab {lab.name}", adopt)


def leftover_mounts(ctx: StepContext) -> None:
    """Dismount the lab's OS disks a stopped run left mounted on the host (R-17), before
    any VM step mounts a sibling: two children of one image attached at once collide
    and the second stays offline (R-91)."""
    host, lab = ctx.host, ctx.lab
    facts = host_facts(ctx)
    for vm in lab.vms:
        path, vhd = lab.os_disk_path(vm), facts.vm(vm.name).os_vhd
        if vhd is not None and val(vhd, "Attached") is True and val(vhd, "DiskNumber") is not None:
            ctx.change(f"Dismount-VHD {path}", lambda p=path: host.run("Dismount-VHD", Path=p))


def _true(records: list[Any]) -> bool:
    """Test-Path answers one Boolean."""
    return bool(records) and records[0] is True
