"""Rules across fields, and the defaults that depend on other fields.

`finish(lab)` runs after every field passed its own checks. It fills in what the
file left out (memory from `defaults`, prefix and gateway from the switch, DNS
from the DC, MACs, witness share) and returns every problem found as
(location, message), so the loader can report them all at once with line numbers.
Each rule cites the fact it rests on (hyperv-facts.md) or says "hvlab limit".
One module per area: host, network, machines, domain, cluster.
"""

from __future__ import annotations

from hvlab.spec.models import Lab
from hvlab.spec.rules.cluster import (
    check_cluster,
    check_ha_vms,
    check_volumes,
    mirror_copies,
    usable_bytes,
)
from hvlab.spec.rules.common import Loc, Problem
from hvlab.spec.rules.domain import check_domain
from hvlab.spec.rules.host import check_images, check_root
from hvlab.spec.rules.machines import check_host_names, check_nodes, check_vms
from hvlab.spec.rules.network import check_addresses, check_macs, check_switches

__all__ = ["Loc", "Problem", "finish", "mirror_copies", "usable_bytes"]


def check_counts(lab: Lab, p: list[Problem]) -> bool:
    """Every list within what Hyper-V and the lab can use; False when one is not."""
    from hvlab.spec.rules.common import MAX_HA_VMS, MAX_SWITCHES, MAX_VMS, MAX_VOLUMES

    ok = True
    for key, items, limit in (
        ("switches", lab.switches, MAX_SWITCHES),
        ("vms", lab.vms, MAX_VMS),
        ("volumes", lab.volumes, MAX_VOLUMES),
        ("ha_vms", lab.ha_vms, MAX_HA_VMS),
    ):
        if len(items) > limit:
            p.append(((key,), f"{len(items)} {key}; a lab uses at most {limit} (hvlab limit)"))
            ok = False
    return ok


def finish(lab: Lab) -> list[Problem]:
    """Fill defaults and check every cross-field rule; the problems found, in file order."""
    p: list[Problem] = []
    warnings: list[str] = []
    lab.host.root = lab.host.root or f"C:\\hvlab\\{lab.name}"
    if not check_counts(lab, p):
        # Far more than a lab can use: say that alone, without checking thousands of items.
        return p
    check_root(lab, p)
    check_images(lab, p, warnings)
    switches = check_switches(lab, p)
    check_vms(lab, switches, p)
    check_host_names(lab, p)
    check_domain(lab, p)
    check_nodes(lab, p)
    check_addresses(lab, p)
    check_macs(lab, p)
    check_cluster(lab, p, warnings)
    check_volumes(lab, p)
    check_ha_vms(lab, p)
    if lab.locale != "en-US":
        warnings.append(
            f"locale {lab.locale}: cluster validation and error texts may be translated; "
            "en-US images are safest (R-49, R-88)"
        )
    lab._warnings = warnings
    return p
