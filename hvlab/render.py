"""A Lab to the files a VM needs: unattend.xml and the guest data.

unattend.xml is rendered from unattend/unattend.xml.j2 with XML autoescaping
(R-33), then parsed back and checked against the table of which setting may go
in which pass (R-22, SETTING_PASSES) before anyone gets it. The administrator
password goes in the encoded form (R-25): obfuscated, not encrypted, so rendered
files are written owner-only and never logged. No domain credentials go into the
file: nodes join with Add-Computer after boot (R-29, R-42).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import stat
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jinja2

from hvlab import resources
from hvlab.errors import ConfigError, HvlabError
from hvlab.secrets import Secrets
from hvlab.spec.models import VM, Lab

TEMPLATE_NAME = "unattend.xml.j2"

NS = "urn:schemas-microsoft-com:unattend"
WCM = "http://schemas.microsoft.com/WMIConfig/2002/State"

COMPONENT_ATTRIBUTES = {
    "processorArchitecture": "amd64",
    "publicKeyToken": "31bf3856ad364e35",
    "language": "neutral",
    "versionScope": "nonSxS",
}
"""Attributes every component carries (R-22)."""

SETTING_PASSES: dict[tuple[str, str], frozenset[str]] = {
    # R-22 table
    ("Microsoft-Windows-Shell-Setup", "ComputerName"): frozenset(
        {"offlineServicing", "specialize"}
    ),
    ("Microsoft-Windows-Shell-Setup", "TimeZone"): frozenset(
        {"specialize", "oobeSystem", "auditSystem"}
    ),
    ("Microsoft-Windows-Shell-Setup", "UserAccounts"): frozenset({"oobeSystem", "auditSystem"}),
    ("Microsoft-Windows-TCPIP", "Interfaces"): frozenset({"windowsPE", "specialize"}),
    ("Microsoft-Windows-DNS-Client", "Interfaces"): frozenset({"specialize"}),
    ("Microsoft-Windows-UnattendedJoin", "Identification"): frozenset({"specialize"}),
    ("Microsoft-Windows-UnattendedJoin", "OfflineIdentification"): frozenset({"offlineServicing"}),
    # UNATT:microsoft-windows-shell-setup-oobe (valid pass: oobeSystem)
    ("Microsoft-Windows-Shell-Setup", "OOBE"): frozenset({"oobeSystem"}),
    # UNATT:microsoft-windows-shell-setup-productkey (valid pass: specialize)
    ("Microsoft-Windows-Shell-Setup", "ProductKey"): frozenset({"specialize"}),
    # UNATT:microsoft-windows-international-core (valid passes: specialize, oobeSystem)
    **{
        ("Microsoft-Windows-International-Core", name): frozenset({"specialize", "oobeSystem"})
        for name in ("InputLocale", "SystemLocale", "UILanguage", "UserLocale")
    },
}
"""Which top-level setting of which component may appear in which pass."""

TCPIP_INTERFACE_ORDER = [
    "Ipv4Settings",
    "Ipv6Settings",
    "Identifier",
    "UnicastIpAddresses",
    "Routes",
]
"""Child order of Microsoft-Windows-TCPIP Interfaces/Interface (R-27)."""

ADMIN_PASSWORD_SUFFIX = "AdministratorPassword"


class RenderError(HvlabError):
    """A rendered file failed its own checks: a bug in hvlab, never the user's input."""


def encode_admin_password(password: str) -> str:
    """The <PlainText>false</PlainText> form: base64(UTF-16LE(password + suffix)) (R-25)."""
    return base64.b64encode((password + ADMIN_PASSWORD_SUFFIX).encode("utf-16-le")).decode("ascii")


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        # The template ships inside the package (hvlab.unattend); a missing one is a
        # broken install (hvlab.resources.ResourceError), reported as such.
        loader=jinja2.FunctionLoader(lambda name: resources.text("unattend", name)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render_unattend(lab: Lab, vm: VM, secrets: Secrets) -> str:
    """unattend.xml for `vm`, checked (R-22, R-27) and parsed back before it is returned."""
    nics = []
    for nic in vm.nics:
        nics.append(
            {
                "identifier": nic.mac_dashed,
                "cidr": nic.cidr,
                "gateway": str(nic.gateway) if nic.gateway else None,
                "dns": [str(d) for d in nic.dns or []],
                "dns_domain": lab.domain.fqdn if nic is vm.management_nic else None,
            }
        )
    text = (
        _environment()
        .get_template(TEMPLATE_NAME)
        .render(
            computer_name=vm.name,
            product_key=lab.product_key,
            timezone=lab.timezone,
            locale=lab.locale,
            nics=nics,
            dns_nics=[n for n in nics if n["dns"]],
            admin_password_encoded=encode_admin_password(secrets.admin.reveal()),
        )
    )
    problems = check_answer_file(text)
    if problems:
        # The message names the rule, never the file's content (it holds a password).
        raise RenderError(f"unattend.xml for {vm.name} fails its checks: " + "; ".join(problems))
    return text


def check_answer_file(text: str) -> list[str]:
    """Problems of an answer file: parse errors, component attributes (R-22), settings
    outside their valid passes (R-22), TCPIP interface child order (R-27)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        return [f"not well-formed XML ({err.msg if hasattr(err, 'msg') else err})"]
    problems: list[str] = []
    if root.tag != f"{{{NS}}}unattend":
        problems.append(f"root element is {root.tag}, not unattend in {NS}")
    for settings in root:
        if settings.tag != f"{{{NS}}}settings":
            problems.append(f"unexpected element {settings.tag} under unattend")
            continue
        pass_name = settings.get("pass", "")
        for component in settings:
            name = component.get("name", "")
            for attr, want in COMPONENT_ATTRIBUTES.items():
                if component.get(attr) != want:
                    problems.append(f"{name} in {pass_name}: {attr} is not {want}")
            for setting in component:
                local = setting.tag.removeprefix(f"{{{NS}}}")
                allowed = SETTING_PASSES.get((name, local))
                if allowed is None:
                    problems.append(f"{name}/{local} is not a setting hvlab knows")
                elif pass_name not in allowed:
                    problems.append(
                        f"{name}/{local} is not valid in pass {pass_name} "
                        f"(valid: {', '.join(sorted(allowed))})"
                    )
                if (name, local) == ("Microsoft-Windows-TCPIP", "Interfaces"):
                    problems += _check_interface_order(setting)
    return problems


def _check_interface_order(interfaces: ET.Element) -> list[str]:
    problems = []
    for interface in interfaces:
        children = [c.tag.removeprefix(f"{{{NS}}}") for c in interface]
        known = [c for c in children if c in TCPIP_INTERFACE_ORDER]
        if known != sorted(known, key=TCPIP_INTERFACE_ORDER.index) or known != children:
            problems.append(f"TCPIP Interface children {children} are not in the order R-27 gives")
    return problems


def render_guest_data(lab: Lab, vm: VM) -> dict[str, Any]:
    """What the guest steps need to know about `vm`, as JSON-able data (no secrets)."""
    data: dict[str, Any] = {
        "lab": lab.name,
        "vm": vm.name,
        "role": vm.role,
        "mark": lab.mark,
        "timezone": lab.timezone,
        "locale": lab.locale,
        "domain": {
            "mode": lab.domain.mode,
            "fqdn": lab.domain.fqdn,
            "netbios": lab.domain.netbios,
            "dc": lab.domain.dc,
            "dc_address": str(lab.domain.dc_address) if lab.domain.dc_address else None,
            "join_account": lab.domain.join_account,
        },
        "nics": [
            {
                "name": nic.name,
                "switch": nic.switch,
                "host_switch": lab.switch(nic.switch).host_name,
                "mac": nic.mac,
                "mac_unattend": nic.mac_dashed,
                "ip": str(nic.ip) if nic.ip else None,
                "prefix": nic.prefix,
                "gateway": str(nic.gateway) if nic.gateway else None,
                "dns": [str(d) for d in nic.dns or []],
                "vlan": nic.vlan,
            }
            for nic in vm.nics
        ],
        "os_disk": lab.os_disk_path(vm),
        "data_disks": lab.data_disk_paths(vm),
        "data_disk_bytes": vm.data_disk_bytes if vm.is_node else None,
    }
    if vm.role == "dc" and lab.cluster.witness.type == "file_share":
        data["witness_share"] = {
            "name": lab.cluster.witness.share,
            "path": f"C:\\Witness\\{lab.cluster.name}",
            "cluster_account": f"{lab.domain.netbios}\\{lab.cluster.name}$",
        }
    if vm.is_node:
        data["cluster"] = {
            "name": lab.cluster.name,
            "address": str(lab.cluster.address),
            "nodes": [n.name for n in lab.nodes],
            "switch": lab.cluster.management_switch,
            "witness": _witness(lab),
            "networks": lab.cluster_networks(),
            "pool": lab.pool_name,
        }
        data["volumes"] = [
            {
                "name": v.name,
                "size_bytes": v.size_bytes,
                "resiliency": v.resiliency,
                "file_system": v.file_system,
                "csv_path": v.csv_path,
            }
            for v in lab.volumes
        ]
        data["ha_vms"] = [
            {
                "name": h.name,
                "memory_bytes": h.memory_bytes,
                "cpus": h.cpus,
                "disk_bytes": h.disk_bytes,
                "volume": h.volume,
                "path": lab.volume(h.volume or "").csv_path,
            }
            for h in lab.ha_vms
        ]
    return data


def _witness(lab: Lab) -> dict[str, Any]:
    w = lab.cluster.witness
    out: dict[str, Any] = {"type": w.type}
    if w.type == "file_share":
        out["unc"] = w.unc
    if w.type == "cloud":
        out["account"] = w.account
        out["key_variable"] = lab.secrets.cloud_witness_key
    return out


def render_all(lab: Lab, secrets: Secrets, out_dir: str | Path) -> list[Path]:
    """Write <out>/<vm>/unattend.xml and guest.json for every VM; the paths written.

    Folders are 0700 and files 0600: unattend.xml holds the encoded (not encrypted)
    administrator password (R-25, R-32). An output folder others can write to is
    refused, a link is never followed, and no existing file is written into: each
    file is created new (O_EXCL | O_NOFOLLOW) under a temporary name and renamed into
    place, which replaces whatever was at the name without touching it.
    """
    out = Path(out_dir)
    _private_folder(out, create_parents=True)
    written: list[Path] = []
    for vm in lab.vms:
        folder = out / vm.name
        _private_folder(folder)
        xml = render_unattend(lab, vm, secrets)
        written.append(_write_private(folder / "unattend.xml", xml))
        guest = json.dumps(render_guest_data(lab, vm), indent=2, sort_keys=True) + "\n"
        written.append(_write_private(folder / "guest.json", guest))
    return written


class UnsafeOutput(ConfigError):
    """The output folder could let someone else read or redirect the rendered files."""


def _private_folder(folder: Path, *, create_parents: bool = False) -> None:
    """A folder of our own that only we can write to: made 0700 when missing; an
    existing one must be a real folder (not a link), ours, and not writable by others."""
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        if create_parents:
            folder.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(folder, 0o700)
        st = os.lstat(folder)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise UnsafeOutput(
            f"{folder} is not a folder (a link or a file); hvlab writes only into folders"
        )
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise UnsafeOutput(f"{folder} belongs to another user; render into a folder of your own")
    if st.st_mode & 0o022:
        raise UnsafeOutput(
            f"{folder} can be written by others (mode {stat.filemode(st.st_mode)}); they could "
            "swap the rendered files. Render into a private folder (chmod 700)"
        )


def _write_private(path: Path, text: str) -> Path:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    tmp = path.with_name(f".{path.name}.{secrets_token()}.tmp")
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def secrets_token() -> str:
    import secrets as pysecrets

    return pysecrets.token_hex(6)
