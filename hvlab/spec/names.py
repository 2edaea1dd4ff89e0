"""Name rules for everything a lab names, and safe display of rejected values.

Each check returns nothing or raises ValueError with a message that names the
rule. Rejected values are shown through `show()`, which escapes control and
non-ASCII characters, so a hostile name cannot move the terminal's cursor or
hide itself in an error message.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

_NETBIOS_RE = re.compile(r"^[A-Za-z0-9-]{1,15}$")
_LABEL_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_LAB_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$")
_IDENT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_PATH_SEGMENT_RE = re.compile(r"^[A-Za-z0-9 _.()+-]+$")
_RESERVED_DEVICE_NAMES = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}


def show(value: object, limit: int = 40) -> str:
    """A value quoted for an error message: printable ASCII only, clipped."""
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    escaped = text.encode("ascii", "backslashreplace").decode("ascii")
    escaped = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in escaped)
    return "'" + escaped.replace("'", "\\'") + "'"


def _bad_characters(value: str, allowed: re.Pattern[str]) -> str:
    bad = sorted({ch for ch in value if not allowed.match(ch)})
    return ", ".join(show(ch) for ch in bad[:5])


_NETBIOS_CHAR = re.compile(r"[A-Za-z0-9-]")


def check_computer_name(value: str, what: str = "computer name") -> None:
    """NetBIOS computer name (R-24): 1-15 of A-Z a-z 0-9 and hyphen, at least one letter.

    hvlab also refuses a leading or trailing hyphen, because the same name becomes a
    DNS host label (RFC 1123).
    """
    if not value:
        raise ValueError(f"{what} is empty")
    if len(value) > 15:
        raise ValueError(f"{what} {show(value)} is {len(value)} characters; at most 15 (R-24)")
    if not _NETBIOS_RE.match(value):
        raise ValueError(
            f"{what} {show(value)} may contain only letters, digits and hyphens; "
            f"found {_bad_characters(value, _NETBIOS_CHAR)} (R-24)"
        )
    if value.isdigit():
        raise ValueError(f"{what} {show(value)} must not be only digits (R-24)")
    if not any(ch.isalpha() for ch in value):
        raise ValueError(f"{what} {show(value)} needs at least one letter (R-24)")
    if value.startswith("-") or value.endswith("-"):
        raise ValueError(f"{what} {show(value)} must not start or end with a hyphen")


def check_server_name(value: str, what: str = "server") -> None:
    """A server to reach over the network: a computer name (R-24), or a fully qualified
    DNS name such as fs01.corp.example.com, whose labels follow RFC 1123 (the host label
    of an FQDN is a DNS label, up to 63 characters; only the NetBIOS name stops at 15)."""
    if "." not in value:
        check_computer_name(value, what)
        return
    if len(value.rstrip(".")) > 253:
        raise ValueError(f"{what} {show(value)} is {len(value)} characters; at most 253")
    for label in value.rstrip(".").split("."):
        if not _LABEL_RE.match(label):
            raise ValueError(
                f"{what} {show(value)} has an invalid label {show(label)}: labels are 1-63 "
                "letters, digits and inner hyphens"
            )


def check_netbios_domain(value: str) -> None:
    """NetBIOS domain name: the same 15-character rule as computer names (R-40, R-24)."""
    check_computer_name(value, "NetBIOS domain name")


def check_dns_domain(value: str) -> None:
    """A DNS domain name with at least two labels (Active Directory refuses single-label
    names for new forests in hvlab); labels 1-63 characters, total at most 253."""
    if not value:
        raise ValueError("domain name is empty")
    if len(value) > 253:
        raise ValueError(f"domain name is {len(value)} characters; at most 253")
    labels = value.split(".")
    if len(labels) < 2:
        raise ValueError(
            f"domain name {show(value)} needs at least two labels, such as lab.example.test"
        )
    for label in labels:
        if not _LABEL_RE.match(label):
            raise ValueError(
                f"domain name {show(value)} has an invalid label {show(label)}: labels are 1-63 "
                "letters, digits or hyphens, not starting or ending with a hyphen"
            )
    if labels[-1].isdigit():
        raise ValueError(f"domain name {show(value)} must not end in an all-digit label")


def check_lab_name(value: str) -> None:
    """The lab's id: a DNS-label-like word, used in switch names, notes and folders."""
    if not _LAB_NAME_RE.match(value):
        raise ValueError(
            f"lab name {show(value)} must be 1-32 letters, digits or hyphens, "
            "starting and ending with a letter or digit"
        )


_VM_PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,23}$")
VM_PREFIX_MAX = 24


def check_vm_prefix(value: str) -> None:
    """The lab's vm_prefix: what goes before each computer name to make the VM's name on
    the host, and so its folder and disk file names (R-145). Letters, digits, '_', '.'
    and '-': characters a VM name (no * ? : < > / | \\ ") and a folder name both take;
    at most 24 (hvlab limit), so prefix and computer name stay far below Hyper-V's 100."""
    if value == "":
        return
    if not _VM_PREFIX_RE.match(value):
        raise ValueError(
            f"vm_prefix {show(value)} must be 1-{VM_PREFIX_MAX} letters, digits, '_', '.' or '-', "
            "starting with a letter or digit (R-145)"
        )


def check_identifier(value: str, what: str) -> None:
    """Names of switches, NICs, volumes, images: a letter, then letters, digits, _ or -."""
    if not _IDENT_RE.match(value):
        raise ValueError(
            f"{what} {show(value)} must start with a letter and contain only letters, digits, "
            "'_' or '-' (at most 32 characters)"
        )


_IMAGE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}[A-Za-z0-9]$|^[A-Za-z0-9]$")


def check_image_name(value: str) -> None:
    """The name of an image image.build keeps as <name>.vhdx and <name>.json: a word of
    letters, digits, '.', '_' or '-' (at most 64). Names ending in '.building' are the
    temporary files of a build in progress (R-123)."""
    if not _IMAGE_NAME_RE.match(value):
        raise ValueError(
            f"image name {show(value)} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )
    if value.lower().endswith(".building") or value.split(".")[0].upper() in _RESERVED_DEVICE_NAMES:
        raise ValueError(f"image name {show(value)} is reserved")


def looks_like_password(value: str) -> bool:
    """Capitals, small letters and digits together: the shape Windows' complexity rule
    asks of a password (3 of 4 classes), never the shape of a variable name, which is
    written in one case (HVLAB_ADMIN_PASSWORD, hvlab_admin_password)."""
    return (
        any(c.isupper() for c in value)
        and any(c.islower() for c in value)
        and any(c.isdigit() for c in value)
    )


def check_env_name(value: str) -> None:
    if not _ENV_RE.match(value) or looks_like_password(value):
        # Never show the value: a password put here by mistake must not be echoed.
        raise ValueError(
            "must name an environment variable (letters, digits, '_'), such as "
            "HVLAB_ADMIN_PASSWORD; put the password itself in that variable, not in the lab file"
        )


def check_windows_path(value: str, what: str = "path") -> None:
    """An absolute local Windows path (`C:\\hvlab\\lab`) of plain characters.

    Windows allows more (quotes, `$`, `;`), but hvlab refuses them: none of its paths
    need them, and refusing keeps every later message and call unambiguous.
    """
    if len(value) > 240:
        raise ValueError(f"{what} is {len(value)} characters; hvlab limit is 240")
    if not re.match(r"^[A-Za-z]:\\", value):
        raise ValueError(f"{what} {show(value)} must be an absolute Windows path such as C:\\hvlab")
    rest = value[3:].rstrip("\\")
    if not rest:
        return
    for segment in rest.split("\\"):
        if not segment:
            raise ValueError(f"{what} {show(value)} has an empty folder name (double backslash)")
        if segment in (".", ".."):
            raise ValueError(f"{what} {show(value)} must not contain '.' or '..' folders")
        if not _PATH_SEGMENT_RE.match(segment):
            raise ValueError(
                f"{what} {show(value)}: folder name {show(segment)} may contain only letters, "
                "digits, spaces and _ . ( ) + -"
            )
        if segment.endswith((" ", ".")):
            raise ValueError(
                f"{what} {show(value)}: Windows drops a trailing space or period in {show(segment)}"
            )
        if segment.split(".")[0].upper() in _RESERVED_DEVICE_NAMES:
            raise ValueError(f"{what} {show(value)}: {show(segment)} is a reserved device name")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        if word.lower() in lowered:
            close = [lowered[word.lower()]]
    return f"; did you mean {show(close[0])}?" if close else ""
