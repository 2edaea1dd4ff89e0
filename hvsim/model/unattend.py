"""What Windows Setup reads from `Windows\\Panther\\unattend.xml` at first boot.

Parsing is strict (R-33): a malformed file stops setup, and the guest never
becomes ready. Settings are honoured only in the passes where Windows accepts
them (R-22); a known setting in another pass is ignored and noted, so a lab
that misplaces one sees the effect (for example a random computer name).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
import re
import xml.etree.ElementTree as ET

NS = "urn:schemas-microsoft-com:unattend"
_N = "{" + NS + "}"

# (component, setting) -> passes where Windows applies it.
VALID_PASSES: dict[tuple[str, str], frozenset[str]] = {
    ("Microsoft-Windows-Shell-Setup", "ComputerName"): frozenset(
        {"offlineServicing", "specialize"}
    ),
    ("Microsoft-Windows-Shell-Setup", "TimeZone"): frozenset(
        {"specialize", "oobeSystem", "auditSystem"}
    ),
    ("Microsoft-Windows-Shell-Setup", "UserAccounts"): frozenset({"oobeSystem", "auditSystem"}),
    ("Microsoft-Windows-TCPIP", "Interfaces"): frozenset({"specialize", "windowsPE"}),
    ("Microsoft-Windows-DNS-Client", "Interfaces"): frozenset({"specialize"}),
    ("Microsoft-Windows-UnattendedJoin", "Identification"): frozenset({"specialize"}),
    ("Microsoft-Windows-UnattendedJoin", "OfflineIdentification"): frozenset({"offlineServicing"}),
}

# Passes that run when a generalized image boots from Panther: offlineServicing
# settings are not applied from there.
BOOT_PASSES = frozenset({"specialize", "oobeSystem"})

# Time-zone ids the model knows (R-31: a small list of `tzutil /l` ids).
KNOWN_TIME_ZONES = frozenset(
    {
        "UTC",
        "GMT Standard Time",
        "W. Europe Standard Time",
        "Central Europe Standard Time",
        "Romance Standard Time",
        "E. Europe Standard Time",
        "Pacific Standard Time",
        "Mountain Standard Time",
        "Central Standard Time",
        "Eastern Standard Time",
        "Tokyo Standard Time",
        "China Standard Time",
        "India Standard Time",
        "AUS Eastern Standard Time",
    }
)
DEFAULT_TIME_ZONE = "Pacific Standard Time"

# characters a computer name must not contain.
_BAD_NAME_CHARS = set("{}[]|~^\"'`:;<>=?@!#$%()+/\\.,*& ")


class UnattendError(Exception):
    """Setup cannot process the answer file (R-33): the guest stops before it is ready."""


@dataclasses.dataclass
class InterfaceSettings:
    """Static IPv4 settings for one adapter, keyed by its Identifier (R-27, R-28)."""

    identifier: str
    dhcp: bool = True
    addresses: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    gateway: str | None = None
    dns_servers: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class JoinRequest:
    """UnattendedJoin/Identification (R-29): the password is in clear in the file."""

    domain: str
    account_domain: str
    username: str
    password: str

    def __repr__(self) -> str:
        return f"JoinRequest({self.domain!r}, {self.account_domain}\\{self.username}, ****)"


@dataclasses.dataclass
class Answers:
    """The settings first boot applies. `notes` records what setup ignored and why."""

    computer_name: str | None = None
    admin_password: str | None = None
    time_zone: str | None = None
    system_locale: str | None = None
    interfaces: dict[str, InterfaceSettings] = dataclasses.field(default_factory=dict)
    join: JoinRequest | None = None
    notes: list[str] = dataclasses.field(default_factory=list)

    def interface_for(self, mac: str, alias: str) -> InterfaceSettings | None:
        """Settings whose Identifier is this adapter's MAC (any separator) or alias."""
        for key, settings in self.interfaces.items():
            if key == normalise_mac(mac) or key.lower() == alias.lower():
                return settings
        return None


def normalise_mac(text: str) -> str:
    """`00-15-5D-01-02-0A`, `00:15:5d:01:02:0a` and `00155D01020A` are one MAC (R-19)."""
    raw = re.sub(r"[-:]", "", text.strip()).upper()
    return raw if re.fullmatch(r"[0-9A-F]{12}", raw) else text.strip()


def valid_computer_name(name: str) -> bool:
    """R-24: at most 15 bytes, not only digits, none of the listed punctuation."""
    if not name or len(name.encode("utf-8")) > 15 or name.isdigit():
        return False
    return not any(c in _BAD_NAME_CHARS for c in name)


def decode_password(value: str, plain_text: bool, suffix: str = "AdministratorPassword") -> str:
    """R-25/R-26: base64 of UTF-16LE(password + suffix); a wrong suffix keeps it all."""
    if plain_text:
        return value
    text = value.strip()
    text += "=" * (-len(text) % 4)  # pages omit the padding
    try:
        decoded = base64.b64decode(text, validate=True).decode("utf-16-le")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise UnattendError("the encoded password is not valid base64 UTF-16LE") from exc
    return decoded[: -len(suffix)] if decoded.endswith(suffix) else decoded


def _child(elem: ET.Element, name: str) -> ET.Element | None:
    return elem.find(_N + name)


def _text(elem: ET.Element | None) -> str | None:
    return None if elem is None or elem.text is None else elem.text.strip()


def _ordered_values(parent: ET.Element | None, tag: str) -> list[str]:
    """Entries with wcm:keyValue order (R-28), falling back to document order."""
    if parent is None:
        return []
    items = []
    for i, e in enumerate(parent.findall(_N + tag)):
        key = next((v for k, v in e.attrib.items() if k.endswith("keyValue")), None)
        try:
            order = int(key) if key is not None else i
        except ValueError:
            order = i
        if e.text and e.text.strip():
            items.append((order, i, e.text.strip()))
    return [t for _, _, t in sorted(items)]


def parse(xml_text: str) -> Answers:
    """Parse and validate an answer file as first boot of a generalized image would."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:  # strict parser, no recovery
        raise UnattendError(f"the answer file is not well-formed XML ({exc})") from exc
    if root.tag != _N + "unattend":
        raise UnattendError(
            "the root element is not unattend in urn:schemas-microsoft-com:unattend"
        )

    answers = Answers()
    for settings in root.findall(_N + "settings"):
        pass_name = settings.get("pass", "")
        for comp in settings.findall(_N + "component"):
            _component(answers, pass_name, comp)
    return answers


def _component(answers: Answers, pass_name: str, comp: ET.Element) -> None:
    name = comp.get("name", "")
    if comp.get("processorArchitecture") != "amd64":
        # Setup applies only components for the image's architecture.
        answers.notes.append(f"{name} in {pass_name}: not for amd64, ignored")
        return
    for setting in comp:
        tag = setting.tag.removeprefix(_N)
        passes = VALID_PASSES.get((name, tag))
        if passes is None:
            continue  # a setting the model does not read (OOBE, RegisteredOwner, ...)
        if pass_name not in passes:
            answers.notes.append(f"{name}/{tag} is not valid in pass {pass_name}, ignored")
            continue
        if pass_name not in BOOT_PASSES:
            answers.notes.append(f"{name}/{tag} in {pass_name} is not applied from Panther")
            continue
        _apply(answers, name, tag, setting)


def _apply(answers: Answers, comp: str, tag: str, setting: ET.Element) -> None:
    if tag == "ComputerName":
        answers.computer_name = _text(setting)
    elif tag == "TimeZone":
        answers.time_zone = _text(setting)
    elif tag == "UserAccounts":
        pw = _child(setting, "AdministratorPassword")
        if pw is not None:
            value = _text(_child(pw, "Value")) or ""
            plain = (_text(_child(pw, "PlainText")) or "true").lower() == "true"
            answers.admin_password = decode_password(value, plain)
    elif comp == "Microsoft-Windows-TCPIP" and tag == "Interfaces":
        for itf in setting.findall(_N + "Interface"):
            _tcpip_interface(answers, itf)
    elif comp == "Microsoft-Windows-DNS-Client" and tag == "Interfaces":
        for itf in setting.findall(_N + "Interface"):
            ident = _text(_child(itf, "Identifier"))
            if ident:
                entry = answers.interfaces.setdefault(
                    normalise_mac(ident), InterfaceSettings(normalise_mac(ident))
                )
                entry.dns_servers = _ordered_values(
                    _child(itf, "DNSServerSearchOrder"), "IpAddress"
                )
    elif comp == "Microsoft-Windows-UnattendedJoin" and tag == "Identification":
        _identification(answers, setting)
    elif comp == "Microsoft-Windows-UnattendedJoin":
        answers.notes.append(f"{comp}/{tag}: domain join during setup is not modelled")


def _identification(answers: Answers, setting: ET.Element) -> None:
    """R-29: an online join during specialize (Credentials + JoinDomain); provisioning
    blobs (djoin, R-30) are not modelled."""
    if _child(setting, "Provisioning") is not None:
        answers.notes.append("UnattendedJoin Provisioning (offline join blob) is not modelled")
        return
    target = _text(_child(setting, "JoinDomain"))
    creds = _child(setting, "Credentials")
    if not target or creds is None:
        answers.notes.append("UnattendedJoin Identification without JoinDomain/Credentials")
        return
    answers.join = JoinRequest(
        target,
        _text(_child(creds, "Domain")) or target,
        _text(_child(creds, "Username")) or "",
        _text(_child(creds, "Password")) or "",
    )


def _tcpip_interface(answers: Answers, itf: ET.Element) -> None:
    ident = _text(_child(itf, "Identifier"))
    if not ident:
        answers.notes.append("a TCPIP Interface has no Identifier, ignored")
        return
    key = normalise_mac(ident)
    entry = answers.interfaces.setdefault(key, InterfaceSettings(key))
    v4 = _child(itf, "Ipv4Settings")
    dhcp = _text(_child(v4, "DhcpEnabled")) if v4 is not None else None
    entry.dhcp = (dhcp or "true").lower() == "true"
    for value in _ordered_values(_child(itf, "UnicastIpAddresses"), "IpAddress"):
        try:
            net = ipaddress.IPv4Interface(value)
        except ValueError as exc:
            raise UnattendError(f"UnicastIpAddresses value {value!r} is not IPv4/prefix") from exc
        entry.addresses.append((str(net.ip), net.network.prefixlen))
    routes = _child(itf, "Routes")
    if routes is not None:
        for route in routes.findall(_N + "Route"):
            if _text(_child(route, "Prefix")) == "0.0.0.0/0":
                entry.gateway = _text(_child(route, "NextHopAddress"))
