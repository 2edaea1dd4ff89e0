"""SMB shares on a guest (the file share witness on the DC, R-58): New-SmbShare,
Get-SmbShare, Set-SmbPathAcl, Remove-SmbShare."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from hvsim.cmdlets._hvcommon import as_list
from hvsim.errors import PSError, not_modelled
from hvsim.model.ad import find_domain
from hvsim.model.guest import GuestOS
from hvsim.objects import PSEnum, PSObj
from hvsim.registry import Call, Context, cmdlet

SMB = "Microsoft.Management.Infrastructure.CimInstance#ROOT/Microsoft/Windows/SMB/MSFT_SmbShare"


@dataclasses.dataclass
class Share:
    name: str
    path: str
    full_access: list[str]
    # Set-SmbPathAcl copied the share's access list to the folder's NTFS ACL.
    path_acl: list[str] = dataclasses.field(default_factory=list)
    read_access: list[str] = dataclasses.field(default_factory=list)
    change_access: list[str] = dataclasses.field(default_factory=list)
    # SMB Encryption required for this share (New-SmbShare -EncryptData, R-111).
    encrypt_data: bool = False

    def grants(self, account: str) -> bool:
        """Share permission and NTFS permission both allow full control (R-58). A
        computer account (NAME$) is a member of its domain's Domain Computers, the
        primary group Windows gives every computer account (RID 515)."""
        names = {account.lower()}
        prefix, _, name = account.rpartition("\\")
        if prefix and name.endswith("$"):
            names.add(f"{prefix}\\domain computers".lower())

        def allowed(acl: list[str]) -> bool:
            return any(x.lower() in names for x in acl)

        return allowed(self.full_access) and allowed(self.path_acl)


def _guest(ctx: Context, name: str) -> GuestOS:
    if not isinstance(ctx.machine, GuestOS):
        raise not_modelled(f"{name} on the Hyper-V host itself")
    return ctx.machine


def _cim_error(text: str, code: int, cmdlet_name: str, category: str, target: Any) -> PSError:
    return PSError(
        text,
        fqid=f"Windows System Error {code},{cmdlet_name}",
        category=category,
        exception="Microsoft.Management.Infrastructure.CimException",
        target=target,
    )


def _account_exists(ctx: Context, guest: GuestOS, account: str) -> bool:
    """Accounts in an ACL must resolve to a SID (local, domain user or computer)."""
    prefix, _, name = account.rpartition("\\")
    if prefix.upper() in ("BUILTIN", "NT AUTHORITY") or name.lower() == "everyone":
        return True
    if prefix.lower() in ("", ".", guest.name.lower()) and not guest.is_dc:
        return name.lower() in guest.local_accounts
    dom = find_domain(ctx.world, prefix) if prefix else None
    if dom is None or guest.domain is None or dom.fqdn.lower() != guest.domain.lower():
        return False
    if name.endswith("$"):
        return dom.computer(name) is not None
    return name.lower() in dom.accounts or name.lower() in ("domain admins", "domain computers")


def _share_obj(guest: GuestOS, s: Share) -> PSObj:
    return PSObj(
        [SMB, "Microsoft.Management.Infrastructure.CimInstance", "System.Object"],
        {
            "Name": s.name,
            "Path": s.path,
            "Description": "",
            "ScopeName": "*",
            "ShareState": PSEnum(SMB.split("#")[0] + "#ShareState", "Online", 1),
            "CurrentUsers": 0,
            "FolderEnumerationMode": "Unrestricted",
            "EncryptData": bool(getattr(s, "encrypt_data", False)),
        },
        to_string=s.name,
    )


@cmdlet(
    "New-SmbShare",
    params=[
        "Name",
        "Path",
        "FullAccess",
        "ReadAccess",
        "ChangeAccess",
        "EncryptData",
        "Description",
    ],
)
def new_smb_share(ctx: Context, call: Call) -> Iterable[PSObj]:
    guest = _guest(ctx, "New-SmbShare")
    name = str(call.get("Name"))
    path = str(call.get("Path"))
    if name.lower() in guest.shares:
        raise _cim_error(
            "The name has already been shared.", 2118, "New-SmbShare", "ResourceExists", name
        )
    if not guest.fs.is_dir(path):
        raise _cim_error(
            "The system cannot find the file specified.", 2, "New-SmbShare", "ObjectNotFound", path
        )
    access = [str(a) for a in as_list(call.get("FullAccess"))]
    read = [str(a) for a in as_list(call.get("ReadAccess"))]
    change = [str(a) for a in as_list(call.get("ChangeAccess"))]
    for account in [*access, *read, *change]:
        if not _account_exists(ctx, guest, account):
            raise _cim_error(
                "No mapping between account names and security IDs was done.",
                1332,
                "New-SmbShare",
                "NotSpecified",
                account,
            )
    share = Share(
        name,
        path,
        access,
        read_access=read,
        change_access=change,
        encrypt_data=bool(call.get("EncryptData")),
    )
    guest.shares[name.lower()] = share
    return [_share_obj(guest, share)]


@cmdlet("Get-SmbShare", params=["Name"])
def get_smb_share(ctx: Context, call: Call) -> Iterable[PSObj]:
    guest = _guest(ctx, "Get-SmbShare")
    names = [str(n) for n in as_list(call.get("Name"))]
    if not names:
        return [_share_obj(guest, s) for s in guest.shares.values()]
    out = []
    for n in names:
        s = guest.shares.get(n.lower())
        if s is None:
            ctx.error(
                _cim_error(
                    f"No MSFT_SMBShare objects found with property 'Name' equal to '{n}'.  "
                    "Verify the value of the property and retry.",
                    2,
                    "Get-SmbShare",
                    "ObjectNotFound",
                    n,
                )
            )
            continue
        out.append(_share_obj(guest, s))
    return out


@cmdlet("Set-SmbPathAcl", params=["ShareName"])
def set_smb_path_acl(ctx: Context, call: Call) -> None:
    guest = _guest(ctx, "Set-SmbPathAcl")
    name = str(call.get("ShareName"))
    s = guest.shares.get(name.lower())
    if s is None:
        raise _cim_error(
            f"No MSFT_SMBShare objects found with property 'Name' equal to '{name}'.",
            2,
            "Set-SmbPathAcl",
            "ObjectNotFound",
            name,
        )
    s.path_acl = list(s.full_access)


@cmdlet("Remove-SmbShare", params=["Name", "Force", "Confirm"])
def remove_smb_share(ctx: Context, call: Call) -> None:
    guest = _guest(ctx, "Remove-SmbShare")
    for n in as_list(call.get("Name")):
        if guest.shares.pop(str(n).lower(), None) is None:
            ctx.error(
                _cim_error(
                    f"No MSFT_SMBShare objects found with property 'Name' equal to '{n}'.",
                    2,
                    "Remove-SmbShare",
                    "ObjectNotFound",
                    n,
                )
            )


def find_share(world: Any, unc: str, domain: str | None = None) -> tuple[Any, Share] | None:
    """Resolve \\\\server\\share to the guest and its share (server by computer name,
    short or fully qualified; in `domain`, the asker's, when several guests have the
    name: labs side by side, R-145)."""
    parts = [p for p in unc.replace("/", "\\").split("\\") if p]
    if len(parts) < 2:
        return None
    server = parts[0].split(".")[0].lower()
    m = world.guest_named(server, domain)
    if isinstance(m, GuestOS) and m.is_ready():
        s = m.shares.get(parts[1].lower())
        if s is not None:
            return m, s
    for dom in world.domains.values():
        # A file server of a domain outside the lab, by its name or FQDN.
        fs = dom.file_servers.get(server) if dom.online else None
        if fs is not None and parts[0].lower() in (server, f"{server}.{dom.fqdn}".lower()):
            s = fs.shares.get(parts[1].lower())
            if s is not None:
                return fs, s
    return None
