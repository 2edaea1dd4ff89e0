"""Cmdlets that act on a Windows machine's own configuration: features, services,
registry, adapters and the domain join (R-41..R-46, R-61, R-75).

They act on `ctx.machine`: the host, or a guest reached through PowerShell Direct
(hvsim.cmdlets.psdirect). Guest-only behaviour (pending reboots, joins) needs a GuestOS.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from hvsim import timing
from hvsim.cmdlets._hvcommon import as_list
from hvsim.errors import PSError, not_modelled
from hvsim.model import features as F
from hvsim.model.features import place_feature_files
from hvsim.model.fs import FsError, fs_error_to_ps
from hvsim.model.guest import GuestOS
from hvsim.objects import Credential, PSEnum, PSObj, UInt32
from hvsim.registry import Call, Context, cmdlet

SM = "Microsoft.Windows.ServerManager.Commands."
# Enum values of the ServerManager types: names from R-44; numbers (unconfirmed) follow
# the Win32 codes the names stand for (3010 = ERROR_SUCCESS_REBOOT_REQUIRED).
INSTALL_STATE = {"Available": 0, "Installed": 1, "InstallPending": 2, "Removed": 3}
RESTART_STATE = {"No": 0, "Yes": 1, "Maybe": 2}
EXIT_CODE = {"Success": 0, "Failed": 1000, "NoChangeNeeded": 1003, "SuccessRestartRequired": 3010}
RESTART_WARNING = "You must restart this server to finish the installation process."


def _guest(ctx: Context, cmdlet_name: str) -> GuestOS:
    if not isinstance(ctx.machine, GuestOS):
        raise not_modelled(f"{cmdlet_name} on the Hyper-V host itself")
    return ctx.machine


# -- features (R-44, R-45, R-46, R-07) ----------------------------------------------


def _feature_obj(machine: Any, info: F.FeatureInfo) -> PSObj:
    state = machine.features.get(info.name, "Available")
    return PSObj(
        [SM + "Feature", "System.Object"],
        {
            "Name": info.name,
            "DisplayName": info.display_name,
            "Description": info.display_name,
            "Installed": state == "Installed",
            "InstallState": PSEnum(SM + "InstallState", state, INSTALL_STATE[state]),
            "FeatureType": info.feature_type,
            "Path": info.display_name,
            "Depth": 1 if info.parent is None else 2,
            "DependsOn": list(info.depends_on),
            "Parent": info.parent,
            "SubFeatures": [f.name for f in F.FEATURES.values() if f.parent == info.name],
            "PostConfigurationNeeded": False,
        },
        to_string=info.display_name,
    )


@cmdlet("Get-WindowsFeature", params=["Name"])
def get_windows_feature(ctx: Context, call: Call) -> Iterable[PSObj]:
    names = [str(n) for n in as_list(call.get("Name"))]
    out = []
    for info in F.FEATURES.values():
        if not names or any(_like(info.name, n) for n in names):
            out.append(_feature_obj(ctx.machine, info))
    return out


def _like(value: str, pattern: str) -> bool:
    rx = "^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$"
    return re.match(rx, value, re.IGNORECASE) is not None


def _result(success: bool, restart: str, code: str, details: list[PSObj]) -> PSObj:
    return PSObj(
        [SM + "FeatureOperationResult", "System.Object"],
        {
            "Success": success,
            "RestartNeeded": PSEnum(SM + "RestartState", restart, RESTART_STATE[restart]),
            "FeatureResult": details,
            "ExitCode": PSEnum(SM + "FeatureOperationExitCode", code, EXIT_CODE[code]),
        },
    )


def _detail(info: F.FeatureInfo, restart: bool) -> PSObj:
    return PSObj(
        [SM + "FeatureOperationResultDetails", "System.Object"],
        {
            "Name": info.name,
            "DisplayName": info.display_name,
            "Success": True,
            "RestartNeeded": restart,
            "Message": "",
            "SkipReason": PSEnum(SM + "SkipReason", "NotSkipped", 0),
        },
        to_string=info.display_name,
    )


def _feature_error(text: str, fqid: str, category: str = "InvalidOperation") -> PSError:
    return PSError(
        text,
        fqid=f"{fqid},{SM}AddWindowsFeatureCommand",
        category=category,
        exception="System.Exception",
    )


@cmdlet(
    "Install-WindowsFeature",
    params=["Name", "IncludeManagementTools", "IncludeAllSubFeature", "Restart", "Vhd"],
)
def install_windows_feature(ctx: Context, call: Call) -> Iterable[PSObj]:
    wanted = _wanted_features(call)
    if call.get("Vhd"):
        return _install_offline(ctx, str(call.get("Vhd")), wanted)
    guest = _guest(ctx, "Install-WindowsFeature")
    for raw in as_list(call.get("Name")):
        name = str(getattr(raw, "get", lambda k, d=None: None)("Name") or raw)
        info = F.lookup(name)
        if info is None:
            raise _feature_error(
                f"ArgumentNotValid: The role, role service, or feature name is not valid: "
                f"'{name}'. The name was not found.",
                "NameDoesNotExist",
                "InvalidArgument",
            )
    todo = [f for f in wanted if guest.features.get(f.name) != "Installed"]
    todo = [f for f in todo if guest.features.get(f.name) != "InstallPending"]
    if not todo:
        return [_result(True, "No", "NoChangeNeeded", [])]
    if guest.feature_reboot_pending:
        # one feature operation per boot cycle (text (unconfirmed), modelled).
        ctx.error(
            _feature_error(
                "Installation of one or more roles, role services, or features failed. "
                "A restart is pending from a previous installation; restart the server "
                "before installing more features.",
                "Alteration_PendingRestart",
            )
        )
        guest.event(
            "System",
            "Microsoft-Windows-ServerManager",
            1001,
            "Error",
            "Installation of " + ", ".join(f.name for f in todo) + " failed: a restart is "
            "pending from a previous installation.",
        )
        return [_result(False, "Yes", "Failed", [])]
    if any(f.name == "Hyper-V" for f in todo) and not guest.nested_at_boot:
        # the prerequisite check runs against the guest as it booted.
        ctx.error(
            _feature_error(
                "A prerequisite check for the Hyper-V feature failed.\n"
                "1. Hyper-V cannot be installed: The processor does not have required "
                "virtualization capabilities.",
                "Alteration_PrerequisiteCheck_Failed",
            )
        )
        return [_result(False, "Maybe", "Failed", [])]
    ctx.work(timing.seconds("feature.install"), "installing " + ", ".join(f.name for f in todo))
    restart = False
    details = []
    for f in todo:
        needs = f.restart != "no"
        restart = restart or needs
        if f.restart == "hyperv":
            guest.pending_hyperv = True
            guest.features[f.name] = "InstallPending"
        elif needs:
            guest.pending_features.append(f.name)
            guest.features[f.name] = "InstallPending"
        else:
            guest.features[f.name] = "Installed"
        details.append(_detail(f, needs))
    guest.feature_event([f.name for f in todo if guest.features.get(f.name) == "Installed"])
    place_feature_files(guest)
    if restart:
        guest.feature_reboot_pending = True
        if call.switch("Restart"):
            guest.request_restart()
        else:
            ctx.warning(RESTART_WARNING)
        return [_result(True, "Yes", "SuccessRestartRequired", details)]
    return [_result(True, "No", "Success", details)]


def _wanted_features(call: Call) -> list[F.FeatureInfo]:
    wanted: list[F.FeatureInfo] = []
    for raw in as_list(call.get("Name")):
        name = str(getattr(raw, "get", lambda k, d=None: None)("Name") or raw)
        info = F.lookup(name)
        if info is None:
            raise _feature_error(
                f"ArgumentNotValid: The role, role service, or feature name is not valid: "
                f"'{name}'. The name was not found.",
                "NameDoesNotExist",
                "InvalidArgument",
            )
        wanted.append(info)
    if call.switch("IncludeManagementTools"):
        for info in list(wanted):
            wanted.extend(t for tool in info.tools if (t := F.lookup(tool)) is not None)
    return list(dict.fromkeys(wanted))


STAGED_BYTES_PER_FEATURE = 64 * 1024**2  # what enabling a role offline writes (modelled)


def _install_offline(ctx: Context, path: str, wanted: list[F.FeatureInfo]) -> list[PSObj]:
    """R-18: stage roles into an offline OS VHD; they are InstallPending in the guest
    until its first boot, then Installed. Whether the Hyper-V prerequisite check runs
    offline is (unconfirmed); the model does not run it."""
    try:
        vhd = ctx.machine.fs.read(path)
    except FsError as err:
        raise fs_error_to_ps(err, "Install-WindowsFeature") from None
    if getattr(vhd, "image", None) is None or vhd.os_partition() is None:
        raise _feature_error(
            f"The specified VHD '{path}' does not contain a Windows image.", "InvalidVhd"
        )
    if vhd.attached:
        raise _feature_error(
            f"The specified VHD '{path}' is in use. Make sure it is not attached or mounted.",
            "VhdInUse",
        )
    staged = vhd.image.staged_features
    new = [f for f in wanted if f.name not in staged]
    if not new:
        return [_result(True, "No", "NoChangeNeeded", [])]
    os_part = vhd.os_partition()
    try:
        # The image changes: the disk grows and children of a parent
        # whose image changed no longer open. Size modelled.
        vhd.before_partition_write(os_part.volume, path, STAGED_BYTES_PER_FEATURE * len(new))
    except FsError as err:
        raise fs_error_to_ps(err, "Install-WindowsFeature") from None
    ctx.work(timing.seconds("feature.install"), f"staging features into {path}")
    staged.extend(f.name for f in new)
    return [_result(True, "No", "Success", [_detail(f, False) for f in new])]


# The DISM names of the features hvsim knows (Get-WindowsOptionalFeature -Online).
DISM_FEATURES = {"microsoft-hyper-v": "Hyper-V", "microsoft-hyper-v-all": "Hyper-V"}


@cmdlet("Enable-WindowsOptionalFeature", params=["Online", "FeatureName", "All", "NoRestart"])
def enable_windows_optional_feature(ctx: Context, call: Call) -> Iterable[PSObj]:
    """The DISM path labs fall back to when Install-WindowsFeature's Hyper-V
    prerequisite check fails (R-07, R-87): no prerequisite check; without usable
    virtualization extensions the role installs but the hypervisor does not run (R-08)."""
    guest = _guest(ctx, "Enable-WindowsOptionalFeature")
    names = [str(n) for n in as_list(call.get("FeatureName"))]
    for name in names:
        if name.lower() not in DISM_FEATURES:
            raise not_modelled(f"the optional feature {name}")
    if guest.features.get("Hyper-V") != "Installed" and not guest.pending_hyperv:
        ctx.work(timing.seconds("feature.install"), "enabling " + ", ".join(names))
        guest.pending_hyperv = True
        guest.features["Hyper-V"] = "InstallPending"
        guest.feature_reboot_pending = True
    restart = guest.pending_hyperv
    if restart and not call.switch("NoRestart"):
        guest.request_restart()
    return [
        PSObj(
            ["Microsoft.Dism.Commands.ImageObject", "System.Object"],
            {"Path": "", "Online": True, "RestartNeeded": restart},
        )
    ]


# -- services, registry ------------------------------------------------------------

SERVICE_STATUS = {
    "Stopped": 1,
    "StartPending": 2,
    "StopPending": 3,
    "Running": 4,
    "ContinuePending": 5,
    "PausePending": 6,
    "Paused": 7,
}
SERVICE_DISPLAY = {
    "adws": "Active Directory Web Services",
    "ntds": "Active Directory Domain Services",
    "dns": "DNS Server",
    "vmms": "Hyper-V Virtual Machine Management",
    "vmcompute": "Hyper-V Host Compute Service",
    "clussvc": "Cluster Service",
    "winrm": "Windows Remote Management (WS-Management)",
    "vmicheartbeat": "Hyper-V Heartbeat Service",
    "vmicvmsession": "Hyper-V PowerShell Direct Service",
    "lanmanserver": "Server",
    "lanmanworkstation": "Workstation",
    "dnscache": "DNS Client",
    "w32time": "Windows Time",
}


def _service_obj(name: str, status: str) -> PSObj:
    return PSObj(
        [
            "System.ServiceProcess.ServiceController",
            "System.ComponentModel.Component",
            "System.Object",
        ],
        {
            "Name": name,
            "DisplayName": SERVICE_DISPLAY.get(name.lower(), name),
            "ServiceName": name,
            "Status": PSEnum(
                "System.ServiceProcess.ServiceControllerStatus", status, SERVICE_STATUS[status]
            ),
            "StartType": PSEnum("System.ServiceProcess.ServiceStartMode", "Automatic", 2),
            "CanStop": status == "Running",
        },
        to_string="System.ServiceProcess.ServiceController",
    )


@cmdlet("Get-Service", params=["Name"])
def get_service(ctx: Context, call: Call) -> Iterable[PSObj]:
    names = [str(n) for n in as_list(call.get("Name"))] or ["*"]
    services = ctx.machine.services
    out = []
    for pattern in names:
        hits = [n for n in services if _like(n, pattern)]
        if not hits and not any(c in pattern for c in "*?"):
            ctx.error(
                PSError(
                    f"Cannot find any service with service name '{pattern}'.",
                    fqid="NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand",
                    category="ObjectNotFound",
                    exception="Microsoft.PowerShell.Commands.ServiceCommandException",
                    target=pattern,
                )
            )
        out.extend(_service_obj(n, services[n]) for n in hits)
    return out


def _coerce_reg(value: Any, kind: str) -> Any:
    if kind.lower() == "dword":
        v = int(str(value), 0) if isinstance(value, str) else int(value)
        if not 0 <= v <= 0xFFFFFFFF:
            raise PSError(
                f'Cannot convert value "{value}" to type "System.UInt32".',
                fqid="InvalidCastParseTargetInvocation",
                category="InvalidArgument",
                exception="System.Management.Automation.PSInvalidCastException",
            )
        return v
    return value


@cmdlet("Set-ItemProperty", params=["Path", "Name", "Value", "Type", "Force"])
def set_item_property(ctx: Context, call: Call) -> None:
    path = str(as_list(call.get("Path"))[0])
    if not path.lower().startswith(("hklm:", "registry::", "hkey_local_machine")):
        raise not_modelled("Set-ItemProperty outside the registry (HKLM:)")
    key = ctx.machine.reg_key(path)
    if key is None:
        # Set-ItemProperty does not create keys; the spaceport key exists on every
        # Windows, others only if created.
        raise PSError(
            f"Cannot find path '{path}' because it does not exist.",
            fqid="PathNotFound,Microsoft.PowerShell.Commands.SetItemPropertyCommand",
            category="ObjectNotFound",
            exception="System.Management.Automation.ItemNotFoundException",
            target=path,
        )
    name = str(call.get("Name"))
    old = key.get(name)
    kind = str(call.get("Type") or (old[1] if old else "String"))
    key[name] = (_coerce_reg(call.get("Value"), kind), kind)
    note = getattr(ctx.machine, "note_registry_write", None)
    if callable(note):
        note(path, name, old)  # on disk only once flushed


@cmdlet("Get-ItemProperty", params=["Path", "Name"])
def get_item_property(ctx: Context, call: Call) -> Iterable[PSObj]:
    path = str(as_list(call.get("Path"))[0])
    key = ctx.machine.reg_key(path)
    if key is None:
        raise PSError(
            f"Cannot find path '{path}' because it does not exist.",
            fqid="PathNotFound,Microsoft.PowerShell.Commands.GetItemPropertyCommand",
            category="ObjectNotFound",
            exception="System.Management.Automation.ItemNotFoundException",
            target=path,
        )
    names = [str(n) for n in as_list(call.get("Name"))] or list(key)
    props: dict[str, Any] = {}
    for n in names:
        hit = next((k for k in key if k.lower() == n.lower()), None)
        if hit is None:
            ctx.error(
                PSError(
                    f"Property {n} does not exist at path {path}.",
                    fqid="System.Management.Automation.PSArgumentException,"
                    "Microsoft.PowerShell.Commands.GetItemPropertyCommand",
                    category="InvalidArgument",
                    exception="System.Management.Automation.PSArgumentException",
                    target=n,
                )
            )
            continue
        value, kind = key[hit]
        props[hit] = UInt32(value) if kind.lower() == "dword" and value > 2**31 - 1 else value
    if not props:
        return []
    props.update(
        {"PSPath": "Microsoft.PowerShell.Core\\Registry::" + path, "PSProvider": "Registry"}
    )
    return [PSObj(["System.Management.Automation.PSCustomObject", "System.Object"], props)]


# -- guest network adapters (R-75) ---------------------------------------------------

NA = "Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/"


@cmdlet("Get-NetAdapterAdvancedProperty", params=["Name", "RegistryKeyword"])
def get_net_adapter_advanced_property(ctx: Context, call: Call) -> Iterable[PSObj]:
    names = [str(n) for n in as_list(call.get("Name"))] or ["*"]
    keywords = [str(k) for k in as_list(call.get("RegistryKeyword"))] or ["*"]
    out = []
    for ad in ctx.machine.net.adapters:
        if not any(_like(ad.name, n) for n in names):
            continue
        # the property exists only when DeviceNaming was On at boot.
        if ad.hyperv_name is None or not any(
            _like("HyperVNetworkAdapterName", k) for k in keywords
        ):
            continue
        out.append(
            PSObj(
                [
                    NA + "MSFT_NetAdapterAdvancedPropertySettingData",
                    "Microsoft.Management.Infrastructure.CimInstance",
                    "System.Object",
                ],
                {
                    "Name": ad.name,
                    "InterfaceDescription": ad.description,
                    "DisplayName": "Hyper-V Network Adapter Name",
                    "DisplayValue": ad.hyperv_name,
                    "RegistryKeyword": "HyperVNetworkAdapterName",
                    "RegistryValue": [ad.hyperv_name],
                },
            )
        )
    return out


@cmdlet("Rename-NetAdapter", params=["Name", "NewName", "PassThru"])
def rename_net_adapter(ctx: Context, call: Call) -> Iterable[PSObj]:
    name = str(as_list(call.get("Name"))[0])
    new = str(call.get("NewName"))
    ad = ctx.machine.net.adapter(name)
    if ad is None:
        raise PSError(
            f"No MSFT_NetAdapter objects found with property 'Name' equal to '{name}'.  Verify "
            "the value of the property and retry.",
            fqid="CmdletizationQuery_NotFound_Name,Rename-NetAdapter",
            category="ObjectNotFound",
            exception="Microsoft.Management.Infrastructure.CimException",
            target=name,
        )
    other = ctx.machine.net.adapter(new)
    if other is not None and other is not ad:
        raise PSError(
            f"{new}: Cannot create a file when that file already exists.",
            fqid="Windows System Error 183,Rename-NetAdapter",
            category="ResourceExists",
            exception="Microsoft.Management.Infrastructure.CimException",
            target=new,
        )
    ad.name = new
    return []


# -- DNS client (R-93) -------------------------------------------------------------------


def _dns_client_obj(ad: Any) -> PSObj:
    return PSObj(
        [
            NA + "MSFT_DNSClient",
            "Microsoft.Management.Infrastructure.CimInstance#MSFT_DNSClient",
            "Microsoft.Management.Infrastructure.CimInstance",
            "System.Object",
        ],
        {
            "InterfaceAlias": ad.name,
            "InterfaceIndex": UInt32(ad.if_index),
            "ConnectionSpecificSuffix": "",
            "RegisterThisConnectionsAddress": ad.register_dns,
            "UseSuffixWhenRegistering": False,
        },
        to_string=f"MSFT_DNSClient (InterfaceIndex = {ad.if_index})",
    )


def _dns_adapters(ctx: Context, call: Call, cmdlet_name: str, strict: bool) -> list[Any]:
    aliases = [str(a) for a in as_list(call.get("InterfaceAlias"))]
    out = [
        a for a in ctx.machine.net.adapters if not aliases or any(_like(a.name, p) for p in aliases)
    ]
    missing = [p for p in aliases if not any(_like(a.name, p) for a in ctx.machine.net.adapters)]
    for alias in missing:
        err = PSError(
            f"No MSFT_DNSClient objects found with property 'InterfaceAlias' equal to "
            f"'{alias}'.  Verify the value of the property and retry.",
            fqid=f"CmdletizationQuery_NotFound_InterfaceAlias,{cmdlet_name}",
            category="ObjectNotFound",
            exception="Microsoft.Management.Infrastructure.CimException",
            target=alias,
        )
        if strict:
            raise err
        ctx.error(err)
    return out


@cmdlet("Get-DnsClient", params=["InterfaceAlias"])
def get_dns_client(ctx: Context, call: Call) -> Iterable[PSObj]:
    return [_dns_client_obj(a) for a in _dns_adapters(ctx, call, "Get-DnsClient", strict=False)]


@cmdlet("Set-DnsClient", params=["InterfaceAlias", "RegisterThisConnectionsAddress", "PassThru"])
def set_dns_client(ctx: Context, call: Call) -> Iterable[PSObj]:
    """Set-DnsClient -RegisterThisConnectionsAddress: whether the DNS client registers
    this connection's addresses from its next registration on (R-93)."""
    targets = _dns_adapters(ctx, call, "Set-DnsClient", strict=True)
    register = call.get("RegisterThisConnectionsAddress")
    for ad in targets:
        if register is not None:
            ad.register_dns = bool(register)
    if call.switch("PassThru"):
        return [_dns_client_obj(a) for a in targets]
    return []


# -- domain join (R-41, R-42, R-43) ----------------------------------------------------


@cmdlet(
    "Add-Computer",
    params=[
        "DomainName",
        "Credential",
        "Force",
        "Restart",
        "NewName",
        "OUPath",
        "PassThru",
        "Options",
    ],
)
def add_computer(ctx: Context, call: Call) -> Iterable[PSObj]:
    from hvsim.model.ad import dc_address, find_domain, reachable

    guest = _guest(ctx, "Add-Computer")
    domain_name = str(call.get("DomainName"))
    cred = call.get("Credential")
    cls = "Microsoft.PowerShell.Commands.AddComputerCommand"
    current = guest.domain or guest.pending_join
    if current and current.lower() == domain_name.lower():
        raise PSError(
            f"Cannot add computer '{guest.name}' to domain '{domain_name}' because it is already "
            "in that domain.",
            fqid=f"AddComputerToSameDomain,{cls}",
            category="InvalidOperation",
            exception="System.InvalidOperationException",
            target=guest.name,
        )
    if call.get("NewName") or call.get("OUPath") or call.get("Options"):
        raise not_modelled("Add-Computer with -NewName, -OUPath or -Options")
    dom = find_domain(ctx.world, domain_name)
    dns = guest.first_dns_server()
    dc = dc_address(ctx.world, dom)
    if dom is None or not reachable(ctx.world, dom, guest) or dns is None or dns != dc:
        # the DC is found through DNS; text as Add-Computer reports an unknown
        # domain (message (unconfirmed) beyond its first sentence).
        guest.joined_event(domain_name, ok=False, code=1355)
        raise PSError(
            f"Computer '{guest.name}' failed to join domain '{domain_name}' from its current "
            f"workgroup '{guest.workgroup}' with following error message: The specified domain "
            "either does not exist or could not be contacted.",
            fqid=f"FailToJoinDomainFromWorkgroup,{cls}",
            category="OperationStopped",
            exception="System.InvalidOperationException",
            target=guest.name,
        )
    if not isinstance(cred, Credential) or not _domain_admin(dom, cred):
        guest.joined_event(domain_name, ok=False, code=1326)  # ERROR_LOGON_FAILURE
        raise PSError(
            f"Computer '{guest.name}' failed to join domain '{domain_name}' from its current "
            f"workgroup '{guest.workgroup}' with following error message: The user name or "
            "password is incorrect.",
            fqid=f"FailToJoinDomainFromWorkgroup,{cls}",
            category="OperationStopped",
            exception="System.InvalidOperationException",
            target=guest.name,
        )
    # an existing computer object is reused (the caller is a Domain Admin).
    obj = dom.computer(guest.name) or dom.add_computer(guest.name, ctx.world.clock.now())
    obj.joined_by = str(guest.vm.id)
    # The join registers the computer's addresses in the domain's zone.
    dom.register(guest.name, guest.dns_addresses())
    guest.pending_join = dom.fqdn
    guest.joined_event(dom.fqdn, ok=True)
    if call.switch("Restart"):
        guest.request_restart()
    else:
        ctx.warning(f"The changes will take effect after you restart the computer {guest.name}.")
    if call.switch("PassThru"):
        return [
            PSObj(
                ["Microsoft.PowerShell.Commands.ComputerChangeInfo", "System.Object"],
                {"HasSucceeded": True, "ComputerName": guest.name},
            )
        ]
    return []


def _domain_admin(dom: Any, cred: Credential) -> bool:
    from hvsim.model.guest import pw_hash

    prefix, _, account = cred.user.rpartition("\\")
    if "@" in account and not prefix:
        account, _, prefix = account.partition("@")
    if prefix.lower() not in (dom.fqdn.lower(), dom.netbios.lower()):
        return False
    return dom.accounts.get(account.lower()) == pw_hash(cred.password.reveal())


@cmdlet("Restart-Computer", params=["Force"])
def restart_computer(ctx: Context, call: Call) -> None:
    _guest(ctx, "Restart-Computer").request_restart()
