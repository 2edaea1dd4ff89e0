"""Cmdlets inside a VM, through PowerShell Direct on the host (R-34, R-47).

A guest call is the constant wrapper templates/host/Invoke-GuestCommand.ps1 with
the VM name, a credential, a cmdlet name and its parameters as a hashtable; or
Invoke-GuestScript.ps1 with the unchanged text of a templates/guest/*.ps1 file.
Nothing is pasted into PowerShell text.
"""

from __future__ import annotations

import functools
from typing import Any

from hvlab.errors import HostError
from hvlab.remote import reads_only
from hvlab.resources import template

NOT_READY = "not-ready"  # VM off, booting, or the session dropped
BAD_CREDENTIAL = "bad-credential"  # wrong password, or OOBE not finished
NO_SUCH_VM = "no-such-vm"
OTHER = "other"


@functools.cache
def _wrapper(name: str) -> str:
    return template(f"host/{name}")


@functools.cache
def guest_script(name: str) -> str:
    return template(f"guest/{name}")


def classify(err: HostError) -> str:
    """Sort a PowerShell Direct failure into what a wait may retry (R-34).

    Windows localises the messages (R-88) and documents no error ids for these
    cases, so a known id decides where there is one and the en-US text otherwise.
    """
    eid = (err.error_id or "").split(",", 1)[0]
    msg = err.message.lower()
    if eid in ("PSSessionStateBroken", "JobFailure"):
        return NOT_READY  # the session broke: guest not up yet, or restarting
    if "credential is invalid" in msg:
        return BAD_CREDENTIAL
    if "does not resolve to any virtual machine" in msg:
        return NO_SUCH_VM
    if "remote session might have ended" in msg or "i/o operation has been aborted" in msg:
        return NOT_READY
    return OTHER


class Guest:
    """One VM's guest OS as seen through PowerShell Direct with one credential."""

    def __init__(self, host: Any, vm: str, credential: Any, on_host: str | None = None) -> None:
        """`vm`: the guest's computer name (labels); `on_host`: its VM name on the
        host, which -VMName takes (R-145), when the lab gives it a prefix."""
        self.host = host
        self.vm = vm
        self.on_host = on_host or vm
        self.credential = credential

    def run(self, command: str, **params: Any) -> list[Any]:
        return self.host.script(
            _wrapper("Invoke-GuestCommand.ps1"),
            _label=f"{command} @{self.vm}",
            _read_only=reads_only(command),
            _inner=list(params),
            VMName=self.on_host,
            Credential=self.credential,
            Command=command,
            Parameters=params,
        )

    def script(self, name: str, **params: Any) -> list[Any]:
        return self.host.script(
            _wrapper("Invoke-GuestScript.ps1"),
            _label=f"{name} @{self.vm}",
            _read_only=reads_only(name),  # guest scripts are named verb-noun too
            _inner=list(params),
            VMName=self.on_host,
            Credential=self.credential,
            Script=guest_script(name),
            Parameters=params,
        )

    def first(self, command: str, **params: Any) -> Any:
        out = self.run(command, **params)
        return out[0] if out else None


def as_whoever_logs_on(host: Any, creds: Any, vm: str, call: Any) -> list[Any]:
    """Run `call(guest)` as the account that last logged on to `vm`; if the guest
    rejects it, try the other one once (R-38: the DC's local SAM goes away at
    promotion, members take both). The other account is kept only when it logs on;
    otherwise the first error stands."""
    try:
        return call(Guest(host, vm, creds.current(vm), creds.on_host(vm)))
    except HostError as err:
        if classify(err) != BAD_CREDENTIAL:
            raise
        other = creds.other(vm)
        try:
            result = call(Guest(host, vm, other, creds.on_host(vm)))
        except HostError as second:
            if classify(second) == BAD_CREDENTIAL:
                raise err from None
            raise
        creds.remember(vm, other)
        return result
