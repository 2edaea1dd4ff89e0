"""Static MAC addresses for lab NICs.

Static IPs in unattend are keyed by MAC (R-27), and a dynamic MAC exists only
after the first start (R-19), so every lab NIC gets a static MAC before first
boot. It is derived from lab, VM and NIC name, so the same lab file always gives
the same addresses, with Hyper-V's prefix 00155D (R-19).
"""

from __future__ import annotations

import hashlib

HYPERV_PREFIX = "00155D"


def derive_mac(lab: str, vm: str, nic: str, taken: set[str]) -> str:
    """A MAC for (lab, vm, nic) not in `taken`; names are compared without case.

    A collision in the 24 hashed bits moves on to the next salt, so the result is
    still deterministic for a given lab file (NICs are visited in file order).
    """
    salt = 0
    while True:
        seed = f"{lab.lower()}/{vm.lower()}/{nic.lower()}/{salt}".encode()
        mac = HYPERV_PREFIX + hashlib.sha256(seed).hexdigest()[:6].upper()
        if mac not in taken:
            return mac
        salt += 1


def dashed(mac: str) -> str:
    """00155D0A000B -> 00-15-5D-0A-00-0B, the form unattend's Identifier takes (R-19)."""
    return "-".join(mac[i : i + 2] for i in range(0, 12, 2))
