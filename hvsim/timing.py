"""The duration table: how long each modelled operation takes, in modelled seconds.

One table for the whole model. Rows come from hyperv-facts.md section 11 ("Sim
default" column) where that section has a row; the other rows are estimates
and say so. The clock (hvsim.clock) turns these into real time by the
timescale, so at timescale 0 nothing waits but the modelled clock still
advances by these amounts.

docs/timing.md is generated from this table by `markdown_table()`.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Duration:
    seconds: float
    what: str
    source: str


_ROWS: dict[str, Duration] = {
    # Guest boots (R-34, R-36, R-37, §11).
    "vm.first_boot": Duration(
        90,
        "first boot from a sysprepped differencing disk (specialize + OOBE) until a PowerShell Direct round trip",
        "hyperv-facts §11 (MSLab readmes; AutomatedLab#704, #814)",
    ),
    "vm.firmware": Duration(
        5,
        "UEFI firmware and boot manager before Windows starts",
        "estimate (part of vm.first_boot)",
    ),
    "vm.reboot": Duration(45, "ordinary reboot until ready", "hyperv-facts §11 (estimate)"),
    "vm.restart_grace": Duration(
        5,
        "old OS keeps answering after a restart request before it goes down",
        "hyperv-facts R-37 (2-10 s)",
    ),
    "registry.lazy_flush": Duration(
        5,
        "a registry write reaches the hive on disk (the lazy flusher; shutdown flushes at once)",
        "estimate (RegFlushKey docs name the lazy flusher and shutdown, no interval)",
    ),
    "vm.shutdown": Duration(
        15, "graceful guest shutdown through the integration service", "estimate"
    ),
    "vm.turn_off": Duration(1, "Stop-VM -TurnOff (power cut)", "estimate"),
    "vm.start": Duration(2, "Start-VM returning once the VM is Running (R-80)", "estimate"),
    # Roles and domain.
    "feature.hyperv_install": Duration(
        240,
        "install Hyper-V + Failover-Clustering + restart (2 boots)",
        "hyperv-facts §11 (estimate; MSLab 20 s safety sleep)",
    ),
    "feature.install": Duration(60, "Install-WindowsFeature of an ordinary role", "estimate"),
    "ad.promote": Duration(
        300,
        "AD DS install + forest promotion + restart",
        "hyperv-facts §11 (AutomatedLab#704, #814)",
    ),
    "ad.ready": Duration(
        120,
        "AD ready after the promotion reboot (ADWS + queries)",
        "hyperv-facts §11 (AutomatedLab#704, #814)",
    ),
    "domain.join_restart": Duration(60, "Add-Computer + restart", "hyperv-facts §11 (estimate)"),
    # Cluster and S2D.
    "cluster.test": Duration(
        80,
        "Test-Cluster (4-5 categories, 2-4 nodes)",
        "hyperv-facts §11 (MSLab validation report, 81 s)",
    ),
    "cluster.create": Duration(
        60, "New-Cluster until all nodes Up and the name resolves", "hyperv-facts §11 (estimate)"
    ),
    "cluster.core_recover": Duration(
        10,
        "core resources restarting after their node's management network dropped",
        "estimate (R-70: 'for a moment')",
    ),
    "cluster.quorum": Duration(
        10, "Set-ClusterQuorum (file share witness)", "hyperv-facts §11 (estimate)"
    ),
    "s2d.enable": Duration(
        180, "Enable-ClusterStorageSpacesDirect", "hyperv-facts §11 (S2D guide; estimate)"
    ),
    "s2d.new_volume": Duration(
        30, "New-Volume CSVFS_ReFS 2-way mirror <= 500 GB", "hyperv-facts §11 (estimate)"
    ),
    "cluster.add_vm_role": Duration(
        10, "Add-ClusterVirtualMachineRole", "hyperv-facts §11 (estimate)"
    ),
    "cluster.live_migration": Duration(
        20, "live migration of an idle 1-2 GB L2 VM", "hyperv-facts §11 (estimate)"
    ),
    # Drills: repairs, drains, updates.
    "s2d.repair": Duration(
        60,
        "Storage Spaces repair (resync) of what changed while a node or drive was away",
        "estimate (maintain-servers: 'may take many minutes'; an idle lab writes little)",
    ),
    "cau.install_update": Duration(
        120,
        "the hotfix plug-in installing one update package on a node (wusa.exe /quiet)",
        "estimate",
    ),
    "cau.scan": Duration(
        30, "Invoke-CauRun's scan of the nodes and the hotfix share before it starts", "estimate"
    ),
    # Host disk operations (R-14..R-17).
    "vhd.create_dynamic": Duration(1, "New-VHD -Dynamic or -Differencing", "estimate"),
    "vhd.create_fixed_per_gib": Duration(
        0.5, "New-VHD -Fixed, per GiB zeroed (about 2 GiB/s)", "estimate"
    ),
    "vhd.mount": Duration(2, "Mount-VHD / Dismount-VHD", "estimate"),
    "file.copy_per_gib": Duration(
        5, "Copy-Item of a large file, per GiB (about 200 MB/s)", "estimate"
    ),
    # Base images from an ISO (R-115..R-121).
    "iso.mount": Duration(3, "Mount-DiskImage or Dismount-DiskImage of an ISO", "estimate"),
    "disk.format": Duration(2, "Format-Volume (quick format) of a new partition", "estimate"),
    "dism.apply_per_gib": Duration(
        20,
        "Expand-WindowsImage, per GiB applied (about 50 MB/s out of a compressed WIM)",
        "estimate",
    ),
    "dism.add_package": Duration(
        300, "Add-WindowsPackage of a cumulative update into an offline image", "estimate"
    ),
    "bcdboot": Duration(3, "bcdboot: boot files and BCD store onto the ESP", "estimate"),
    "file.hash_per_gib": Duration(
        4, "Get-FileHash -Algorithm SHA256, per GiB read (about 250 MB/s)", "estimate"
    ),
    "feature.staged_first_boot": Duration(
        30, "first boot's extra time to finish roles staged offline (R-120)", "estimate"
    ),
    "vm.create": Duration(2, "New-VM", "estimate"),
    "switch.create": Duration(3, "New-VMSwitch (internal/private)", "estimate"),
}

DURATIONS: dict[str, float] = {key: row.seconds for key, row in _ROWS.items()}


def seconds(key: str) -> float:
    """The modelled duration of `key`; a missing key is a programming error."""
    return DURATIONS[key]


def rows() -> dict[str, Duration]:
    return dict(_ROWS)


def markdown_table() -> str:
    """The table as markdown, for docs/timing.md."""
    lines = [
        "| Key | Modelled seconds | What | Source |",
        "|---|---:|---|---|",
    ]
    for key, row in _ROWS.items():
        secs = f"{row.seconds:g}"
        lines.append(f"| `{key}` | {secs} | {row.what} | {row.source} |")
    return "\n".join(lines) + "\n"
