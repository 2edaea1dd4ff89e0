"""Computer objects a lab creates in an existing domain (R-125).

Before the call that would create one (a node's Add-Computer, New-Cluster's name
object), the step asks the domain whether the object is there already, as the join
account, with the ActiveDirectory module inside a node (RSAT-AD-PowerShell, no
restart). The answer is recorded on the host, next to the lab's mark, just before the
call (steps.common.record_created): `adcomputer` for an object the call creates,
which lab.down removes; `adreused` for one that was there before the lab, which
lab.down leaves and names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hvlab.engine import StepContext
from hvlab.errors import HostError
from hvlab.steps.common import SILENT, first, in_guest, record_created, text, val

AD_TOOLS = "RSAT-AD-PowerShell"
NOT_FOUND = "ADIdentityNotFoundException"


def ad_tools(ctx: StepContext, vm: str) -> None:
    """The ActiveDirectory module in `vm` (a feature without a restart)."""
    found = first(in_guest(ctx, vm, "Get-WindowsFeature", Name=AD_TOOLS, **SILENT))
    if text(val(found, "InstallState")) == "Installed":
        ctx.ok(f"{AD_TOOLS} is installed on {vm}")
        return
    ctx.change(
        f"Install-WindowsFeature {AD_TOOLS} on {vm}",
        lambda: in_guest(ctx, vm, "Install-WindowsFeature", Name=[AD_TOOLS]),
    )


def lookup(host_call: Callable[..., list[Any]], name: str, domain: str, account: Any) -> Any:
    """The domain's computer object `name` (Get-ADComputer -Server -Credential), or None.
    `host_call(cmdlet, **params)` runs the cmdlet inside a node."""
    try:
        return first(host_call("Get-ADComputer", Identity=name, Server=domain, Credential=account))
    except HostError as err:
        if NOT_FOUND in (err.error_id or ""):
            return None
        raise


def create(ctx: StepContext, vm: str, name: str, what: str, do: Callable[[], Any]) -> Any:
    """ctx.change(what, do), recording computer object `name` first when the domain
    does not have it yet (asked from inside `vm`)."""
    lab = ctx.lab
    existing = lookup(
        lambda cmdlet, **p: in_guest(ctx, vm, cmdlet, **p),
        name,
        lab.domain.fqdn,
        ctx.creds.domain_admin,
    )
    if existing is not None:
        ctx.note(
            f"computer object {name} exists in {lab.domain.fqdn} already "
            f"({text(val(existing, 'DistinguishedName'))}): it is reused and lab.down leaves it "
            "(R-125)"
        )
        return ctx.change(what, lambda: (record_created(ctx, "adreused", name), do())[1])
    return ctx.change(what, lambda: (record_created(ctx, "adcomputer", name), do())[1])
