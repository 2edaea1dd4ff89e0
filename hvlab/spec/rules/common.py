"""What the rule modules share: problem type, limits, address and name helpers."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from hvlab.spec.models import Lab, Switch
from hvlab.spec.names import show
from hvlab.spec.units import GIB, MIB, TIB

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
# hvlab limits on what a lab can use: every switch is a network of the lab's VMs,
# each VM has at most MAX_NICS of them; volumes and HA VMs live in one small pool.
MAX_SWITCHES = 16
MAX_VOLUMES = 32
MAX_HA_VMS = 32
MAX_VMS = 1 + MAX_NODES
MAX_VM_NAME = 100  # Hyper-V refuses a longer VM name
# Lab tools size StartupBytes in 2 MB steps; Hyper-V's own refusal text is unconfirmed.
MEMORY_STEP = 2 * MIB
MIN_VOLUME = 1 * GIB  # hvlab limit


def inside(addr: IPv4Address, net: IPv4Network, loc: Loc, p: list[Problem]) -> bool:
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


def unique(
    seen: dict[str, object], name: str, obj: object, loc: Loc, what: str, p: list[Problem]
) -> None:
    key = name.lower()
    if key in {k.lower() for k in seen}:
        p.append((loc, f"{what} name {show(name)} is used twice (names are compared without case)"))
    else:
        seen[name] = obj


def has_problem_under(p: list[Problem], top: str) -> bool:
    return any(loc and loc[0] == top for loc, _ in p)


def switch_or_none(lab: Lab, name: str) -> Switch | None:
    return next((s for s in lab.switches if s.name.lower() == name.lower()), None)
