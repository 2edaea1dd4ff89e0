"""Inside the guests: first boot, the domain controller, and the nodes' roles and join."""

from __future__ import annotations

from typing import Any

from hvlab.engine import StepContext
from hvlab.errors import HostError, StepError, WaitTimeout
from hvlab.facts import GuestFacts
from hvlab.steps import adobjects
from hvlab.steps.common import (
    AD_POLL,
    READY_POLL,
    SILENT,
    first,
    guest_facts,
    in_guest,
    known_guest_facts,
    probe,
    restart_and_wait,
    restart_inside,
    text,
    val,
    wait_ready,
)

UNATTEND_FILES = (
    "C:\\Windows\\Panther\\unattend.xml",
    "C:\\Windows\\Panther\\unattend-original.xml",
)
NODE_FEATURES = (
    "Hyper-V",
    "Failover-Clustering",
    "FS-FileServer",
    "Hyper-V-PowerShell",
    "RSAT-Clustering-PowerShell",
)
NTDS_PARAMETERS = "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\NTDS\\Parameters"
# What promote_dc decides on (Get-GuestFacts.ps1's parameters).
PROMOTION_FACTS: dict[str, Any] = {
    "Feature": ["AD-Domain-Services"],
    "ComputerSystem": True,
    "OperatingSystem": True,
    "Path": [NTDS_PARAMETERS],
}
SPACEPORT = "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\spaceport\\Parameters"
HW_TIMEOUT_MS = 30000  # 0x7530 for S2D in VMs
WS2022_BUILD = 20348
VNIC_DESCRIPTION = "Hyper-V Virtual Ethernet Adapter"


def first_boot(ctx: StepContext, vm: Any) -> None:
    """Wait for the guest, check what booted, name its NICs, delete the answer file."""
    # What the step checks, read with the probe that finds the guest answering. In the
    # DC the probe also reads what its promotion step decides on: that step uses the
    # reading while the run changes nothing (a re-run), and reads again otherwise.
    mine: dict[str, Any] = {
        "ComputerSystem": True,
        "AdapterNames": True,
        "NetAdapter": True,
        "Path": list(UNATTEND_FILES),
    }
    asked = dict(mine)
    if vm.role == "dc":
        asked.update(PROMOTION_FACTS, Path=[*UNATTEND_FILES, *PROMOTION_FACTS["Path"]])
    try:
        facts = _first_answer(ctx, vm, asked)
    except WaitTimeout as err:
        # Guests have stalled in setup until someone used the console; the one
        # thing a tool can do is a single hard reset, when allowed.
        if not ctx.hard_reset:
            raise
        ctx.change(
            f"hard reset of {vm.host_name}: no answer for {err.seconds:.0f}s ({err.last_seen})",
            lambda: (
                ctx.host.run("Stop-VM", Name=vm.host_name, TurnOff=True, Force=True),
                ctx.host.run("Start-VM", Name=vm.host_name),
            ),
        )
        facts = _first_answer(ctx, vm, asked)
    facts = facts.narrow(mine)
    os_info = facts.one("OperatingSystem")
    system = facts.one("ComputerSystem")
    props = facts["AdapterNames"]
    present = facts["Path"]
    leftovers = [value is True for value in present]
    if len(leftovers) != len(UNATTEND_FILES):
        raise StepError(
            f"boot:{vm.name}", f"Test-Path answered {present!r} for {len(UNATTEND_FILES)} paths"
        )
    build = int(val(os_info, "BuildNumber", 0) or 0)
    if build != WS2022_BUILD:
        raise StepError(
            f"boot:{vm.name}",
            f"{vm.name} runs build {build}; hvlab targets Windows Server 2022 ({WS2022_BUILD}) (R-78)",
        )
    name = text(val(system, "Name"))
    if name.upper() != vm.name.upper():
        raise StepError(
            f"boot:{vm.name}",
            f"the guest calls itself {name!r}, not {vm.name!r}: its answer file was not applied (R-23, R-24)",
        )
    ctx.ok(f"{vm.name} answers: {val(os_info, 'Caption')} build {build}")

    # Guest adapter names follow the host's when device naming is on.
    for prop in props:
        current, wanted = text(val(prop, "Name")), text(val(prop, "DisplayValue"))
        if wanted and current != wanted:
            ctx.change(
                f"Rename-NetAdapter {vm.name}: {current} -> {wanted}",
                lambda c=current, w=wanted: in_guest(
                    ctx, vm.name, "Rename-NetAdapter", Name=c, NewName=w
                ),
            )
    named = {text(val(p, "DisplayValue")) for p in props}
    # The VM's own devices by MAC; a vEthernet adapter of a switch inside the guest may
    # carry the MAC of the adapter it is bound to, and is not one of them.
    by_mac = {
        _bare_mac(val(a, "MacAddress")): text(val(a, "Name"))
        for a in facts["NetAdapter"]
        if not text(val(a, "InterfaceDescription")).startswith(VNIC_DESCRIPTION)
    }
    # A NIC the guest does not name after the host: one added while the VM ran,
    # which shows no host-side name until the guest's next boot, or one named already
    # by an earlier run (found by its MAC).
    missing = [n for n in vm.nics if n.name not in named and by_mac.get(_bare_mac(n.mac)) != n.name]
    if missing:
        _name_added(ctx, vm, missing, by_mac)

    # The answer file held the encoded password: remove it once setup is done.
    for path, present in zip(UNATTEND_FILES, leftovers, strict=True):
        if present:
            ctx.change(
                f"remove {path} in {vm.name}",
                lambda p=path: in_guest(ctx, vm.name, "Remove-Item", Path=p, Force=True),
            )
            if _test_path(ctx, vm.name, path):
                raise StepError(
                    f"boot:{vm.name}", f"{path} is still there after Remove-Item (R-32)"
                )
        else:
            ctx.ok(f"{path} is gone")


def _bare_mac(value: Any) -> str:
    """A MAC as 12 upper-case hex digits: Get-NetAdapter writes 00-15-5D-..., the lab
    file and Get-VMNetworkAdapter 00155D... (R-19)."""
    return text(value).replace("-", "").replace(":", "").upper()


def _name_added(ctx: StepContext, vm: Any, nics: list[Any], by_mac: dict[str, str]) -> None:
    """NICs added to the VM after its first boot, so not set up by the answer file: a
    generation 2 guest has each at once as a new "Ethernet N" on DHCP (R-140), with no
    host-side name until its next boot (R-75). Found by MAC, each gets its address
    (no gateway unless the lab file gives one), no DNS registration unless it is the
    management NIC (R-93), then the lab's name: the rename comes last, so a run stopped
    half way finds the adapter again by its MAC and its default name."""
    unseen = [n for n in nics if _bare_mac(n.mac) not in by_mac]
    if unseen:
        raise StepError(
            f"boot:{vm.name}",
            "the guest sees no adapter for "
            + ", ".join(f"{n.name} (MAC {n.mac_dashed})" for n in unseen)
            + " (R-75)",
        )
    wanted = [str(n.ip) for n in nics if n.ip is not None]
    # Where the addresses are already (a run stopped after New-NetIPAddress): an
    # address that exists on the machine is refused a second time.
    held = {
        text(val(r, "IPAddress")): text(val(r, "InterfaceAlias"))
        for r in (
            in_guest(ctx, vm.name, "Get-NetIPAddress", IPAddress=wanted, **SILENT) if wanted else []
        )
    }
    for nic in nics:
        alias = by_mac[_bare_mac(nic.mac)]
        if nic.ip is not None:
            ip = str(nic.ip)
            on = held.get(ip)
            if on is None:
                params: dict[str, Any] = {
                    "InterfaceAlias": alias,
                    "IPAddress": ip,
                    "PrefixLength": nic.prefix,
                }
                if nic.gateway is not None:
                    params["DefaultGateway"] = str(nic.gateway)
                ctx.change(
                    f"New-NetIPAddress {vm.name}/{alias} {ip}/{nic.prefix} (for {nic.name})",
                    lambda p=params: in_guest(ctx, vm.name, "New-NetIPAddress", **p),
                )
            elif on.lower() != alias.lower():
                raise StepError(
                    f"boot:{vm.name}",
                    f"{vm.name} has {ip} on {on}, not on the adapter with {nic.name}'s MAC "
                    f"{nic.mac_dashed} ({alias}) (R-72)",
                )
            else:
                ctx.ok(f"{vm.name}/{alias} has {ip}")
        if nic is not vm.nics[0]:
            ctx.change(
                f"Set-DnsClient {vm.name}/{alias}: no DNS registration (R-93)",
                lambda a=alias: in_guest(
                    ctx,
                    vm.name,
                    "Set-DnsClient",
                    InterfaceAlias=[a],
                    RegisterThisConnectionsAddress=False,
                ),
            )
        if alias != nic.name:
            ctx.change(
                f"Rename-NetAdapter {vm.name}: {alias} -> {nic.name} (added while it ran, R-140)",
                lambda a=alias, n=nic.name: in_guest(
                    ctx, vm.name, "Rename-NetAdapter", Name=a, NewName=n
                ),
            )


def _first_answer(ctx: StepContext, vm: Any, asked: dict[str, Any]) -> GuestFacts:
    """The first PowerShell Direct round trip into the guest. Everything hvlab does in
    guests rides on it from the WinRM session (R-94): a refusal that is not a guest
    still booting stops the run here, saying what was tried."""
    try:
        return wait_ready(ctx, vm.name, deadline=ctx.waits.first_boot, **asked)
    except HostError as err:
        if not err.cmdlet.endswith(f"@{vm.name}"):
            raise  # a host call (Get-VM) failed, not PowerShell Direct
        user = getattr(ctx.creds.current(vm.name), "user", "?")
        raise StepError(
            f"boot:{vm.name}",
            f"PowerShell Direct from the WinRM session on {ctx.host.name} does not work (R-94): "
            f"tried Invoke-Command -VMName {vm.host_name} as {user} (Invoke-GuestScript.ps1, "
            f"Get-GuestFacts.ps1: Win32_OperatingSystem first) and got: {err}",
        ) from err


def _test_path(ctx: StepContext, vm: str, path: str) -> bool:
    out = in_guest(ctx, vm, "Test-Path", Path=path)
    return bool(out) and out[0] is True


def _installed(ctx: StepContext, vm: str, names: tuple[str, ...]) -> dict[str, str]:
    return _feature_states(in_guest(ctx, vm, "Get-WindowsFeature", Name=list(names)))


def _feature_states(records: list[Any]) -> dict[str, str]:
    """Get-WindowsFeature's answer: InstallState by feature name."""
    return {text(val(rec, "Name")): text(val(rec, "InstallState")) for rec in records}


def promote_dc(ctx: StepContext, vm: Any) -> None:
    """AD DS and a new forest with DNS, then a clean restart to finish it (R-37, R-40).

    The step ends once the restart is under way: the other VMs are made from here
    on (steps/__init__), while the DC boots, and domain_controller waits for it."""
    domain = ctx.lab.domain
    # Everything the step decides on, in one PowerShell Direct call (or as the DC's
    # first boot step read it, when the run has changed nothing since).
    asked = PROMOTION_FACTS
    generation = ctx.run.generation
    facts = known_guest_facts(ctx, vm.name, **asked)
    features = _feature_states(facts["Feature"])
    if features.get("AD-Domain-Services") != "Installed":
        ctx.change(
            f"Install-WindowsFeature AD-Domain-Services on {vm.name}",
            lambda: _install(ctx, vm.name, ["AD-Domain-Services"]),
        )
    if ctx.run.generation != generation:
        facts = guest_facts(ctx, vm.name, **asked)  # read again after a change
    system = facts.one("ComputerSystem")
    if int(val(system, "DomainRole", 0) or 0) >= 4:  # 4, 5: a domain controller
        ctx.creds.use_domain(vm.name)
        ctx.ok(f"{vm.name} is a domain controller of {val(system, 'Domain')}")
        return
    boot = text(val(facts.one("OperatingSystem"), "LastBootUpTime"))
    # The host is the truth: a promotion that waits for its restart has configured the
    # NTDS service already. Local state is never asked whether it happened: it
    # may hold a promotion the guest does not (a killed run, a host restored).
    if _present(facts):
        ctx.note(f"{vm.name} was promoted but not restarted yet (R-100)")
        if not ctx.planning:
            # The boot to see pass, for domain_controller (a hint; the host decides there).
            ctx.state.set_fact(vm.name, "promoted_boot", boot)
    else:
        ctx.change(
            f"Install-ADDSForest {domain.fqdn} on {vm.name}",
            lambda: _promote(ctx, vm.name, boot),
        )
    ctx.change(
        f"Restart-Computer in {vm.name} (finish the promotion)",
        lambda: restart_inside(ctx, vm.name),
    )
    # From here on the local SAM is gone: the domain account logs on.
    ctx.creds.use_domain(vm.name)


def _present(facts: GuestFacts) -> bool:
    """The one path the facts were asked about exists (Test-Path answers a Boolean)."""
    found = facts["Path"]
    return bool(found) and found[0] is True


def domain_controller(ctx: StepContext, vm: Any) -> None:
    """The DC back from its promotion restart as a domain controller, then AD ready
    (R-37, R-40, R-81)."""
    ctx.creds.use_domain(vm.name)
    before = ctx.state.get_fact(vm.name, "promoted_boot")

    # The promotion's facts and, on the way, whether Active Directory answers.
    found_dc: dict[str, Any] = {}

    def promoted() -> tuple[bool, str]:
        answered, seen = probe(
            ctx,
            vm.name,
            ComputerSystem=True,
            Path=[NTDS_PARAMETERS],
            DomainController=True,
        )
        if not answered:
            return False, str(seen)
        if before and text(val(seen.one("OperatingSystem"), "LastBootUpTime")) == before:
            return False, "still the boot before the promotion restart (same LastBootUpTime)"
        system = seen.one("ComputerSystem")
        if int(val(system, "DomainRole", 0) or 0) < 4:
            if _present(seen):
                # Promoted, and the restart that finishes it has not happened yet.
                return False, "promoted, waiting for the restart that finishes it"
            raise StepError(
                f"domain:{vm.name}",
                f"{vm.name} is no domain controller after the promotion restart (R-40); "
                "run lab.up again to promote it",
            )
        found_dc["dc"] = seen.one("DomainController")
        return True, f"a domain controller of {val(system, 'Domain')}"

    ctx.wait(
        f"{vm.name} to answer as a domain controller",
        promoted,
        deadline=ctx.waits.dc_promotion,
        poll=READY_POLL,
    )
    if before:
        ctx.state.set_fact(vm.name, "promoted_boot", None)

    def ad_ready() -> tuple[bool, str]:
        # The first look is what the last probe found a moment ago, when AD answered it.
        dc = found_dc.pop("dc", None)
        if dc is None:
            try:
                dc = first(in_guest(ctx, vm.name, "Get-ADDomainController"))
            except HostError as err:
                return False, err.message
        return dc is not None, f"domain controller {val(dc, 'HostName')}"

    ctx.wait(f"Active Directory on {vm.name}", ad_ready, deadline=ctx.waits.ad_ready, poll=AD_POLL)


def _storage_nics_unregistered(ctx: StepContext, vm: Any, clients: list[Any]) -> None:
    """Only the management NIC registers in DNS (R-93): otherwise the node's name also
    resolves to storage addresses that the DC and the host cannot reach. Set before
    the join, whose restart makes the first registration. `clients`: Get-DnsClient of
    the storage NICs."""
    storage = [nic.name for nic in vm.nics[1:]]
    if not storage:
        return
    on = [
        text(val(c, "InterfaceAlias"))
        for c in clients
        if val(c, "RegisterThisConnectionsAddress") is not False
    ]
    if not on:
        ctx.ok(f"{', '.join(storage)} do not register in DNS")
        return
    ctx.change(
        f"Set-DnsClient {', '.join(on)} on {vm.name}: no DNS registration",
        lambda: in_guest(
            ctx, vm.name, "Set-DnsClient", InterfaceAlias=on, RegisterThisConnectionsAddress=False
        ),
    )


def _node_switch(ctx: StepContext, vm: Any, known: list[Any] | None = None) -> None:
    """The vSwitch for HA VMs on the management NIC, same name in every node (R-69,
    R-70). Made now, in the node phase before Test-Cluster as MSLab and the WAC
    wizard do: the management address moves to its vNIC and the network drops for a
    moment, which under a running cluster fails its IP, name and witness resources.
    `known`: what Get-VMSwitch found, when it was read with the step's other facts."""
    name = ctx.lab.cluster.management_switch
    found = (
        known if known is not None else in_guest(ctx, vm.name, "Get-VMSwitch", Name=name, **SILENT)
    )
    if first(found) is not None:
        ctx.ok(f"{vm.name} has switch {name}")
        return
    nic = vm.nics[0].name
    ctx.change(
        f"New-VMSwitch {name} on {vm.name}/{nic}",
        lambda: in_guest(
            ctx, vm.name, "New-VMSwitch", Name=name, NetAdapterName=nic, AllowManagementOS=True
        ),
    )


def _promote(ctx: StepContext, vm: str, boot: str) -> None:
    """Install-ADDSForest, recorded against this boot before it is sent: if its answer
    is lost the promotion may have run, and a second one would be refused until the
    restart (R-92). A refusal clears the record."""
    domain = ctx.lab.domain
    ctx.state.set_fact(vm, "promoted_boot", boot)
    try:
        result = first(
            in_guest(
                ctx,
                vm,
                "Install-ADDSForest",
                DomainName=domain.fqdn,
                DomainNetbiosName=domain.netbios,
                SafeModeAdministratorPassword=ctx.secrets.dsrm,
                InstallDns=True,
                NoRebootOnCompletion=True,
                Force=True,
            )
        )
    except HostError:
        ctx.state.set_fact(vm, "promoted_boot", None)
        raise
    # A failed prerequisite comes back as the result's Status, without an error.
    if text(val(result, "Status")) != "Success":
        ctx.state.set_fact(vm, "promoted_boot", None)
        raise StepError(
            f"promote:{vm}",
            f"Install-ADDSForest on {vm} returned {val(result, 'Status') or 'no result'}: "
            f"{val(result, 'Message')} [{val(result, 'Context')}] (R-40)",
        )


def _install(ctx: StepContext, vm: str, names: list[str]) -> None:
    result = first(
        in_guest(ctx, vm, "Install-WindowsFeature", Name=names, IncludeManagementTools=True)
    )
    if val(result, "Success") is False:
        raise StepError(
            f"roles:{vm}",
            f"Install-WindowsFeature {', '.join(names)} did not succeed (ExitCode {val(result, 'ExitCode')})",
        )


def node_roles(ctx: StepContext, vm: Any) -> None:
    """Join, roles and the S2D registry value, then one restart for all of them (R-42, R-46,
    R-61); then the node's vSwitch (R-70)."""
    lab = ctx.lab
    restart_reasons = []
    switch = lab.cluster.management_switch
    # A resumed run may find the node between reboots: wait until it answers.
    # The probe that finds it answering reads everything the step decides on; none of
    # the changes below touches what another one decides on.
    facts = wait_ready(
        ctx,
        vm.name,
        deadline=ctx.waits.reboot,
        DnsClient=[nic.name for nic in vm.nics[1:]],
        ComputerSystem=True,
        Feature=list(NODE_FEATURES),
        RegistryPath=SPACEPORT,
        RegistryValue="HwTimeout",
        Service=["vmms"],
        VMSwitch=switch,
    )
    _storage_nics_unregistered(ctx, vm, facts.get("DnsClient", []))
    system = facts.one("ComputerSystem")
    joined = (
        val(system, "PartOfDomain") is True
        and text(val(system, "Domain")).lower() == lab.domain.fqdn.lower()
    )
    if joined:
        ctx.ok(f"{vm.name} is a member of {lab.domain.fqdn}")
    else:

        def join() -> Any:
            return in_guest(
                ctx,
                vm.name,
                "Add-Computer",
                DomainName=lab.domain.fqdn,
                Credential=ctx.creds.domain_admin,
                Force=True,
            )

        what = f"Add-Computer {vm.name} to {lab.domain.fqdn}"
        try:
            if lab.domain.mode == "existing":
                # Record the node's computer object when the join creates it.
                adobjects.ad_tools(ctx, vm.name)
                adobjects.create(ctx, vm.name, vm.name, what, join)
            else:
                ctx.change(what, join)
        except HostError as err:
            # Joined before an interrupted run could restart.
            if "AddComputerToSameDomain" not in (err.error_id or ""):
                raise
            ctx.note(f"{vm.name} is joined and waits for its restart")
        restart_reasons.append("domain join")

    states = _feature_states(facts["Feature"])
    missing = [f for f in NODE_FEATURES if states.get(f) not in ("Installed", "InstallPending")]
    if missing:
        # One install call for every role, then one restart.
        ctx.change(
            f"Install-WindowsFeature {', '.join(missing)} on {vm.name}",
            lambda: _install(ctx, vm.name, missing),
        )
        restart_reasons.append("roles")
    elif any(states.get(f) == "InstallPending" for f in NODE_FEATURES):
        restart_reasons.append("roles pending")
    else:
        ctx.ok("roles installed")

    value = facts.one("Registry")
    if int(val(value, "HwTimeout", 0) or 0) != HW_TIMEOUT_MS:
        ctx.change(
            f"set spaceport HwTimeout on {vm.name}",
            lambda: in_guest(
                ctx,
                vm.name,
                "Set-ItemProperty",
                Path=SPACEPORT,
                Name="HwTimeout",
                Value=HW_TIMEOUT_MS,
                Type="DWord",
            ),
        )
    else:
        ctx.ok("spaceport HwTimeout is 30000 ms")

    if restart_reasons:
        restart_and_wait(ctx, vm.name, deadline=ctx.waits.roles, why=" and ".join(restart_reasons))
    ctx.creds.use_domain(vm.name)

    # Without a restart, the first look at Hyper-V is what the probe read a moment ago.
    first_look = (
        {"states": states, "service": facts.one("Service")} if not restart_reasons else None
    )

    # Hyper-V boots twice: ready means the role is Installed and vmms runs.
    def hyperv_ready() -> tuple[bool, str]:
        nonlocal first_look
        if first_look is not None:
            seen_states, service = first_look["states"], first_look["service"]
            first_look = None
        else:
            try:
                seen_states = _installed(ctx, vm.name, ("Hyper-V",))
                service = first(in_guest(ctx, vm.name, "Get-Service", Name="vmms", **SILENT))
            except HostError as err:
                return False, err.message
        seen = (
            f"Hyper-V {seen_states.get('Hyper-V', '?')}, vmms {val(service, 'Status', 'missing')}"
        )
        return seen_states.get("Hyper-V") == "Installed" and text(
            val(service, "Status")
        ) == "Running", seen

    # Also without a restart now: a resumed run may land between the two boots.
    ctx.wait(f"Hyper-V to run in {vm.name}", hyperv_ready, deadline=ctx.waits.roles)
    # The switch as the probe saw it, when Hyper-V ran then and nothing restarted since.
    known = facts.get("VMSwitch") if not restart_reasons else None
    _node_switch(ctx, vm, known)
    if not restart_reasons:
        return  # membership was read above and nothing changed it
    system = first(in_guest(ctx, vm.name, "Get-CimInstance", ClassName="Win32_ComputerSystem"))
    if val(system, "PartOfDomain") is not True:
        raise StepError(
            f"roles:{vm.name}", f"{vm.name} is not a domain member after its restart (R-41, R-42)"
        )
    # Read back after the restart: a value written just before a hard reset may never
    # reach the hive.
    value = first(
        in_guest(ctx, vm.name, "Get-ItemProperty", Path=SPACEPORT, Name="HwTimeout", **SILENT)
    )
    if int(val(value, "HwTimeout", 0) or 0) != HW_TIMEOUT_MS:
        raise StepError(
            f"roles:{vm.name}",
            f"spaceport HwTimeout on {vm.name} is {val(value, 'HwTimeout')} after the restart, "
            f"not {HW_TIMEOUT_MS} (R-61, R-37)",
        )
