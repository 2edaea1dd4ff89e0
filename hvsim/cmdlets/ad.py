"""AD DS deployment and the ActiveDirectory module: Install-ADDSForest (R-40),
Get-ADDomainController, Get-ADDomain, Get-ADComputer, Remove-ADComputer (R-43),
Remove-ADObject (R-125).

The module talks to the machine's own domain, or with -Server to a named domain or
DC, as the session's user or the -Credential given; a machine that is no member and
names no server has no default server to ask.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from hvsim.cmdlets._hvcommon import command_not_found
from hvsim.errors import PSError, not_modelled
from hvsim.model.ad import Domain, ad_ready, find_domain, server_down_error
from hvsim.model.guest import GuestOS, pw_hash
from hvsim.objects import Credential, PSObj, SecureString
from hvsim.registry import Call, Context, cmdlet

NTDS_PARAMETERS = "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\NTDS\\Parameters"

ADM = "Microsoft.ActiveDirectory.Management."
DEPLOY = "Microsoft.DirectoryServices.Deployment."
_NETBIOS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,14}$")


def _deploy_error(text: str, fqid: str, category: str = "InvalidArgument") -> PSError:
    return PSError(
        text,
        fqid=f"{fqid},{DEPLOY}PowerShell.Commands.InstallADDSForestCommand",
        category=category,
        exception=f"{DEPLOY}DCPromoExecutionException",
    )


@cmdlet(
    "Install-ADDSForest",
    params=[
        "DomainName",
        "DomainNetbiosName",
        "SafeModeAdministratorPassword",
        "InstallDns",
        "NoRebootOnCompletion",
        "Force",
        "DomainMode",
        "ForestMode",
        "CreateDnsDelegation",
        "DatabasePath",
        "LogPath",
        "SysvolPath",
    ],
)
def install_addsforest(ctx: Context, call: Call) -> Iterable[PSObj]:
    guest = ctx.machine
    if not isinstance(guest, GuestOS) or guest.features.get("AD-Domain-Services") != "Installed":
        # The ADDSDeployment module comes with the AD DS role.
        raise command_not_found("Install-ADDSForest")
    fqdn = str(call.get("DomainName"))
    pw = call.get("SafeModeAdministratorPassword")
    if not isinstance(pw, SecureString):
        # mandatory; without it the cmdlet prompts, which a remote session cannot.
        raise PSError(
            "Cannot process command because of one or more missing mandatory parameters: "
            "SafeModeAdministratorPassword.",
            fqid=f"MissingMandatoryParameter,{DEPLOY}PowerShell.Commands.InstallADDSForestCommand",
            category="InvalidArgument",
            exception="System.Management.Automation.ParameterBindingException",
        )
    nb = call.get("DomainNetbiosName") or fqdn.split(".")[0][:15]
    nb = str(nb).upper()
    if len(nb) > 15 or not _NETBIOS.match(nb):
        # the NetBIOS name has at most 15 characters.
        raise _deploy_error(
            f"The NetBIOS name '{nb}' is not valid: it must be 15 characters or fewer and "
            "contain no invalid characters.",
            "Test.VerifyDomainNetBiosName.Failed",
        )
    if "." not in fqdn or len(fqdn) > 64:
        raise _deploy_error(
            f"The domain name '{fqdn}' is not a valid fully qualified DNS name.",
            "Test.VerifyDomainName.Failed",
        )
    failed = _failed_prerequisite(ctx, guest, fqdn)
    if failed is not None:
        # a failed prerequisite comes back as the result's Status, not as an
        # exception (AutomatedLab checks `$result.Status -eq 'Error'`; sous-chefs/windows_ad#129:
        # the run ends without an error and no domain was made). Nothing changes.
        message, context = failed
        ctx.warning(message)
        return [_deployment_result(message, context, "Error", reboot=False)]
    install_dns = call.get("InstallDns")
    guest.pending_promotion = {
        "fqdn": fqdn,
        "netbios": nb,
        "install_dns": True if install_dns is None else bool(install_dns),  # R-40 default
    }
    guest.feature_reboot_pending = True
    # The promotion configures the NTDS service before the restart that completes it
    # its parameters key is there while DomainRole still says member/standalone.
    guest.registry[NTDS_PARAMETERS] = {
        "DSA Database file": ("C:\\Windows\\NTDS\\ntds.dit", "String"),
        "Database log files path": ("C:\\Windows\\NTDS", "String"),
    }
    ctx.warning(
        "Windows Server 2022 domain controllers have a default for the security setting named "
        '"Allow cryptography algorithms compatible with Windows NT 4.0" that prevents weaker '
        "cryptography algorithms when establishing security channel sessions."
    )
    result = _deployment_result(
        "You must restart this computer to complete the operation.",
        "DCPromo.General.2",
        "Success",
        reboot=True,
    )
    if not call.switch("NoRebootOnCompletion"):
        guest.request_restart()  # reboots at the end; the session dies
    return [result]


_PREREQ = "Verification of prerequisites for Domain Controller promotion failed. "


def _failed_prerequisite(ctx: Context, guest: GuestOS, fqdn: str) -> tuple[str, str] | None:
    """(Message, Context) of the first prerequisite the promotion fails, or None.
    The texts after the first sentence and the context ids are modelled."""
    if guest.pending_promotion is not None:
        # Promoted already, waiting for the restart (R-92: an answer may have been lost).
        return (
            _PREREQ + "A promotion of this computer is waiting for it to restart; restart it "
            "first.",
            "Test.VerifyDcPromoCore.DCPromo.General.61",
        )
    if guest.domain is not None or guest.pending_join or guest.is_dc:
        return (
            _PREREQ + "The computer is already a member of a domain or a domain controller.",
            "Test.VerifyDcPromoCore.DCPromo.General.54",
        )
    if find_domain(ctx.world, fqdn) is not None:
        return (
            _PREREQ + f"The domain '{fqdn}' already exists.",
            "Test.VerifyDcPromoCore.DCPromo.General.77",
        )
    if guest.primary_ip() is None:
        return (
            _PREREQ + "This computer has no static IP address assigned.",
            "Test.VerifyDcPromoCore.DCPromo.General.20",
        )
    return None


def _deployment_result(message: str, context: str, status: str, *, reboot: bool) -> PSObj:
    """ADDSDeploymentResult: Message, Context, RebootRequired, Status (Success/Error)."""
    return PSObj(
        [DEPLOY + "Types.ADDSDeploymentResult", "System.Object"],
        {"Message": message, "Context": context, "RebootRequired": reboot, "Status": status},
    )


def _ad_module(ctx: Context, name: str, call: Call | None = None) -> tuple[GuestOS, Domain]:
    """The AD module exists where RSAT-AD-PowerShell is installed, and talks to the
    machine's domain (or the one -Server names) through ADWS (R-40), as the session's
    user or -Credential."""
    guest = ctx.machine
    if not isinstance(guest, GuestOS) or guest.features.get("RSAT-AD-PowerShell") != "Installed":
        raise command_not_found(name)
    server = call.get("Server") if call is not None else None
    cred = call.get("Credential") if call is not None else None
    if server:
        dom = _domain_of_server(ctx, str(server))
        if dom is None:
            raise server_down_error(name)
    else:
        if not guest.domain:
            raise _no_default_server(name)
        dom = find_domain(ctx.world, guest.domain)
        if dom is None:
            raise server_down_error(name)
    if not ad_ready(ctx.world, dom, guest):
        raise server_down_error(name)
    if isinstance(cred, Credential):
        if not _valid_account(dom, cred):
            raise PSError(
                "The server has rejected the client credentials.",
                fqid=f"The server has rejected the client credentials.,{_cls(name)}",
                category="SecurityError",
                exception="System.Security.Authentication.AuthenticationException",
            )
    elif guest.domain is None or guest.domain.lower() != dom.fqdn.lower():
        # A local account cannot authenticate to another domain's ADWS.
        raise server_down_error(name)
    return guest, dom


def _cls(name: str) -> str:
    return f"Microsoft.ActiveDirectory.Management.Commands.{name.replace('-', '')}"


def _no_default_server(name: str) -> PSError:
    """What the AD module says on a machine that is in no domain and names no server."""
    return PSError(
        "Unable to find a default server with Active Directory Web Services running.",
        fqid=f"ActiveDirectoryServer:1355,{_cls(name)}",
        category="ResourceUnavailable",
        exception=ADM + "ADServerDownException",
    )


def _domain_of_server(ctx: Context, server: str) -> Domain | None:
    """-Server: the domain's DNS name, its DC's name (short or FQDN) or address."""
    from hvsim.model.ad import dc_address

    want = server.strip().lower()
    for dom in ctx.world.domains.values():
        names = {dom.fqdn.lower(), dom.dc.lower(), f"{dom.dc}.{dom.fqdn}".lower()}
        if want in names or want == (dc_address(ctx.world, dom) or ""):
            return dom
    return None


def _valid_account(dom: Domain, cred: Credential) -> bool:
    prefix, _, account = cred.user.rpartition("\\")
    if "@" in account and not prefix:
        account, _, prefix = account.partition("@")
    if prefix and prefix.lower() not in (dom.fqdn.lower(), dom.netbios.lower()):
        return False
    return dom.accounts.get(account.lower()) == pw_hash(cred.password.reveal())


def _dc_obj(ctx: Context, dom: Domain) -> PSObj:
    from hvsim.model.ad import dc_guest

    dc = dc_guest(ctx.world, dom)
    ip = dc.primary_ip() if dc is not None else None
    return PSObj(
        [ADM + "ADDomainController", ADM + "ADDirectoryServer", ADM + "ADEntity", "System.Object"],
        {
            "Name": dom.dc,
            "HostName": f"{dom.dc}.{dom.fqdn}".lower(),
            "Domain": dom.fqdn,
            "Forest": dom.fqdn,
            "IPv4Address": ip,
            "IsGlobalCatalog": True,
            "IsReadOnly": False,
            "Enabled": True,
            "OperatingSystem": dc.os.caption.removeprefix("Microsoft ") if dc else None,
            "Site": "Default-First-Site-Name",
            "ComputerObjectDN": dom.distinguished_name(dom.dc, "OU=Domain Controllers"),
        },
        to_string=dom.dc,
    )


@cmdlet("Get-ADDomainController", params=["Identity", "Discover"])
def get_addomaincontroller(ctx: Context, call: Call) -> Iterable[PSObj]:
    _, dom = _ad_module(ctx, "Get-ADDomainController")
    return [_dc_obj(ctx, dom)]


@cmdlet("Get-ADDomain", params=["Identity"])
def get_addomain(ctx: Context, call: Call) -> Iterable[PSObj]:
    _, dom = _ad_module(ctx, "Get-ADDomain")
    dc = ",".join(f"DC={p}" for p in dom.fqdn.split("."))
    return [
        PSObj(
            [ADM + "ADDomain", ADM + "ADPartition", ADM + "ADEntity", "System.Object"],
            {
                "Name": dom.fqdn.split(".")[0],
                "DNSRoot": dom.fqdn,
                "NetBIOSName": dom.netbios,
                "DomainSID": dom.sid,
                "DistinguishedName": dc,
                "Forest": dom.fqdn,
                "PDCEmulator": f"{dom.dc}.{dom.fqdn}".lower(),
                "DomainMode": "Windows2016Domain",
            },
            to_string=dc,
        )
    ]


def _computer_obj(dom: Domain, obj: Any) -> PSObj:
    return PSObj(
        [
            ADM + "ADComputer",
            ADM + "ADAccount",
            ADM + "ADPrincipal",
            ADM + "ADObject",
            ADM + "ADEntity",
            "System.Object",
        ],
        {
            "Name": obj.name,
            "SamAccountName": obj.name + "$",
            "DNSHostName": f"{obj.name}.{dom.fqdn}".lower(),
            "DistinguishedName": dom.distinguished_name(obj.name),
            "Enabled": obj.enabled,
            "ObjectClass": "computer",
            "SID": obj.sid,
        },
        to_string=dom.distinguished_name(obj.name),
    )


def _not_found(identity: str, dom: Domain, cmdlet_name: str) -> PSError:
    dc = ",".join(f"DC={p}" for p in dom.fqdn.split("."))
    return PSError(
        f"Cannot find an object with identity: '{identity}' under: '{dc}'.",
        fqid=f"ActiveDirectoryCmdlet:Microsoft.ActiveDirectory.Management.ADIdentityNotFoundException,"
        f"Microsoft.ActiveDirectory.Management.Commands.{cmdlet_name.replace('-', '')}",
        category="ObjectNotFound",
        exception=ADM + "ADIdentityNotFoundException",
        target=identity,
    )


@cmdlet("Get-ADComputer", params=["Identity", "Filter", "Server", "Credential"])
def get_adcomputer(ctx: Context, call: Call) -> Iterable[PSObj]:
    _, dom = _ad_module(ctx, "Get-ADComputer", call)
    if call.get("Filter") is not None:
        if str(call.get("Filter")).strip() != "*":
            raise not_modelled("Get-ADComputer -Filter other than *")
        return [_computer_obj(dom, o) for o in sorted(dom.computers.values(), key=lambda o: o.name)]
    identity = str(
        getattr(call.get("Identity"), "get", lambda k: None)("Name") or call.get("Identity")
    )
    obj = dom.computer(identity)
    if obj is None:
        # Get-ADComputer -Identity throws even under SilentlyContinue; the executor
        # lets a raised error through, as PowerShell does for this cmdlet (R-43 note).
        raise _not_found(identity, dom, "Get-ADComputer")
    return [_computer_obj(dom, obj)]


@cmdlet("Remove-ADComputer", params=["Identity", "Confirm", "Server", "Credential"])
def remove_adcomputer(ctx: Context, call: Call) -> None:
    _, dom = _ad_module(ctx, "Remove-ADComputer", call)
    identity = str(
        getattr(call.get("Identity"), "get", lambda k: None)("Name") or call.get("Identity")
    )
    obj = dom.computer(identity)
    if obj is None:
        raise _not_found(identity, dom, "Remove-ADComputer")
    if obj.name.lower() == dom.dc.lower():
        raise not_modelled("removing the domain controller's own computer object")
    dom.computers.pop(obj.name.lower(), None)
    dom.dns.pop(obj.name.lower(), None)


@cmdlet("Remove-ADObject", params=["Identity", "Recursive", "Confirm", "Server", "Credential"])
def remove_adobject(ctx: Context, call: Call) -> None:
    """Remove-ADObject of a computer object, by distinguished name (the model keeps
    computer objects only); -Recursive also removes objects under it (Microsoft's
    Remove-ADComputer page: pipe to Remove-ADObject -Recursive for a computer with
    leaf objects). The model keeps no objects under computers."""
    _, dom = _ad_module(ctx, "Remove-ADObject", call)
    raw = call.get("Identity")
    identity = str(getattr(raw, "get", lambda k: None)("DistinguishedName") or raw)
    obj = next(
        (
            o
            for o in dom.computers.values()
            if dom.distinguished_name(o.name).lower() == identity.lower()
        ),
        None,
    )
    if obj is None:
        raise _not_found(identity, dom, "Remove-ADObject")
    if obj.name.lower() == dom.dc.lower():
        raise not_modelled("removing the domain controller's own computer object")
    # The DNS records are the zone's, not the object's: they stay (no scavenging).
    dom.computers.pop(obj.name.lower(), None)
