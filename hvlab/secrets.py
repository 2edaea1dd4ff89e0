"""Passwords: where they come from, and a type that will not print them.

A `Secret` holds one password. Its repr, str and format show a mask, it cannot
be pickled or copied into a state file, and only `.reveal()` gives the text, so
every place that uses a password says so. Passwords come from environment
variables named in the lab's `secrets` section, from a prompt on a terminal, or,
only for the embedded simulated host, from a demo password derived from the lab
name (predictable by design: it protects nothing and must never meet a real host).
"""

from __future__ import annotations

import dataclasses
import getpass
import hashlib
import hmac
import os
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from hvlab.errors import ConfigError
from hvlab.spec.models import Lab

MASK = "********"


class Secret:
    """A password that does not leak through repr, str, f-strings, logs or pickle."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("a Secret holds text")
        self._value = value

    def reveal(self) -> str:
        """The password itself: call this only where the password is sent or encoded."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("Secret", hashlib.sha256(self._value.encode()).digest()))

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled or copied; pass it, do not store it")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        self.__reduce__()
        raise AssertionError  # unreachable

    def __len__(self) -> int:
        return len(self._value)


@dataclasses.dataclass(frozen=True, repr=False)
class Secrets:
    """The lab's passwords. `domain` is the password of the account that joins nodes:
    for a new forest that is the Administrator's (R-38), so it equals `admin`.
    `dsrm` is only needed to promote a new forest (R-40)."""

    admin: Secret
    domain: Secret
    dsrm: Secret | None

    def __repr__(self) -> str:
        return f"Secrets(admin={MASK}, domain={MASK}, dsrm={MASK if self.dsrm else None})"

    def all(self) -> list[Secret]:
        return [s for s in (self.admin, self.domain, self.dsrm) if s is not None]


Prompt = Callable[[str], str]


def resolve_secrets(
    lab: Lab,
    env: Mapping[str, str] | None = None,
    prompt: Prompt | bool | None = None,
    simulated: bool = False,
    *,
    dsrm: bool = True,
) -> Secrets:
    """The lab's passwords from the environment, a prompt, or (simulated host only) demo values.

    `dsrm=False` leaves out the DSRM password (only a promotion uses it): tasks that
    only log on to the guests (status, run, stop, start, checkpoints) ask for the
    accounts they use and nothing more.

    Order per password: the environment variable the lab names; with `simulated`,
    the demo password; with `prompt` (an interactive terminal, e.g. getpass.getpass),
    ask twice (`prompt=True` means getpass on the terminal). Otherwise ConfigError
    naming every variable to set. Every password is checked against Windows'
    complexity rule; no message ever contains one.
    """
    env = os.environ if env is None else env
    if prompt is True:
        prompt = getpass.getpass
    elif prompt is False:
        prompt = None
    names = lab.secrets
    new_forest = lab.domain.mode == "new"
    wanted: list[tuple[str, str, str]] = [("admin", names.admin, "local Administrator")]
    if new_forest:
        if dsrm:
            wanted.append(("dsrm", names.dsrm, "Directory Services Restore Mode"))
    else:
        wanted.append(("domain", names.domain, f"domain join account {lab.domain.join_account}"))

    found: dict[str, Secret] = {}
    missing: list[str] = []
    for key, var, purpose in wanted:
        value = env.get(var)
        if value:
            found[key] = Secret(value)
        elif simulated:
            found[key] = Secret(
                demo_join_password() if key == "domain" else demo_password(lab.name, key)
            )
        elif prompt is not None:
            found[key] = _ask(prompt, var, purpose)
        else:
            missing.append(f"{var} ({purpose})")
    if missing:
        raise ConfigError(
            "missing password(s): set the environment variable(s) "
            + ", ".join(missing)
            + " and run again (the lab's `secrets` section names these variables)"
        )
    for key, var, purpose in wanted:
        _check_complexity(found[key], var, purpose)

    admin = found["admin"]
    if new_forest:
        # After Install-ADDSForest the local Administrator becomes the domain's, with the
        # same password; a different HVLAB_DOMAIN_PASSWORD could only be a mistake.
        given = env.get(names.domain)
        if given and not hmac.compare_digest(given.encode(), admin.reveal().encode()):
            raise ConfigError(
                f"{names.domain} is set but differs from {names.admin}; in a new forest the "
                "domain Administrator keeps the local Administrator's password (R-38). "
                f"Unset {names.domain} or make them equal."
            )
        return Secrets(admin=admin, domain=admin, dsrm=found.get("dsrm"))
    return Secrets(admin=admin, domain=found["domain"], dsrm=None)


def demo_password(lab_name: str, key: str) -> str:
    """A fixed password per lab and purpose for the embedded simulated host only.

    It is derived from public data, so anyone can compute it: it exists so that a
    fresh checkout can build the simulated lab without setup, nothing more.
    """
    digest = hashlib.sha256(f"hvlab-demo/{lab_name}/{key}".encode()).hexdigest()
    return f"Demo-{digest[:10]}-Lab1!"


def demo_join_password() -> str:
    """The join account's password of the embedded simulated host's outside domain
    (corp.example.com), public by design like the demo passwords: hvsim's own."""
    from hvsim.model.world import DEMO_JOIN_PASSWORD

    return DEMO_JOIN_PASSWORD


def _ask(prompt: Prompt, var: str, purpose: str) -> Secret:
    for _ in range(3):
        first = prompt(f"Password for {purpose} ({var} is not set): ")
        second = prompt("Again, to confirm: ")
        if first and hmac.compare_digest(first.encode(), second.encode()):
            return Secret(first)
    raise ConfigError(f"the two entries for {var} did not match three times; set {var} instead")


def _check_complexity(secret: Secret, var: str, purpose: str) -> None:
    """Windows' default password complexity: 8+ characters, 3 of 4 character classes,
    not containing the account name (Administrator)."""
    value = secret.reveal()
    where = f"the password in {var} ({purpose})"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ConfigError(f"{where} contains a control character; use printable characters")
    if len(value) < 8:
        raise ConfigError(f"{where} is shorter than 8 characters; Windows will refuse it")
    if len(value) > 127:
        raise ConfigError(f"{where} is longer than 127 characters; Windows will refuse it")
    classes = sum(
        (
            any(ch.isupper() for ch in value),
            any(ch.islower() for ch in value),
            any(ch.isdigit() for ch in value),
            any(not ch.isalnum() for ch in value),
        )
    )
    if classes < 3:
        raise ConfigError(
            f"{where} needs characters from 3 of these 4 groups: capitals, small letters, "
            "digits, symbols (Windows password complexity)"
        )
    if "administrator" in value.lower():
        raise ConfigError(f"{where} contains the account name Administrator; Windows refuses that")
