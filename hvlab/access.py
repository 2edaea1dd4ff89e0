"""Reaching a lab VM: `lab.run` (one cmdlet inside it, through PowerShell Direct) and
`lab.connect` (how a person gets to it: console, PowerShell Direct, the network).

`lab.run --vm NAME CMDLET --param K=V ...` sends the cmdlet as the constant wrapper
templates/host/Invoke-GuestCommand.ps1 with the parameters as a hashtable (R-34): no
text is pasted into PowerShell. Each value is read as a YAML scalar (`3` a number,
`true` a Boolean, `null` nothing, `'3'` text). It logs on as the account that works
there now: the domain's Administrator on a built lab, the local one otherwise (R-38).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import IO, Any

import yaml

from hvlab.creds import CredentialBook
from hvlab.errors import ConfigError
from hvlab.lab import Target, credential, lab_secrets, on_host, say
from hvlab.steps.common import SILENT, first, lab_folder_is_ours, owns_vm, text, val

CMDLET_RE = re.compile(r"^[A-Za-z]+-[A-Za-z0-9]+$")
PARAM_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")


def parse_params(items: list[str] | tuple[str, ...] | None) -> dict[str, Any]:
    """`K=V` pairs: names checked, values read as YAML scalars."""
    params: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = str(item).partition("=")
        key = key.strip().lstrip("-")
        if not sep or not PARAM_RE.match(key):
            raise ConfigError(
                f"--param {item!r}: write NAME=VALUE, NAME a parameter name (letters and digits)"
            )
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise ConfigError(f"--param {key}: {raw!r} is not a YAML scalar ({err})") from None
        if isinstance(value, list | dict):
            raise ConfigError(
                f"--param {key}: {raw!r} is a YAML {type(value).__name__}; only scalars "
                "(text, numbers, true/false, null) are accepted"
            )
        if key in params:
            raise ConfigError(f"--param {key} is given twice")
        params[key] = value
    return params


def check_cmdlet(name: str) -> str:
    if not CMDLET_RE.match(str(name or "")):
        raise ConfigError(f"{name!r} is not a cmdlet name (Verb-Noun, such as Get-Service)")
    return str(name)


def _vm_spec(spec: Any, name: str | None) -> Any:
    names = [vm.name for vm in spec.vms]
    if not name:
        raise ConfigError(f"--vm is required: one of {', '.join(names)}")
    # The computer name, or the name the host knows the VM by (vm_prefix first, R-145).
    found = next((vm for vm in spec.vms if vm.name.lower() == str(name).lower()), None)
    found = found or spec.by_host_name(str(name))
    if found is None:
        raise ConfigError(f"{name} is not a VM of lab {spec.name} ({', '.join(names)})")
    return found


def _book(spec: Any, session: Any) -> CredentialBook:
    book = CredentialBook(spec, lab_secrets(spec, session, dsrm=False), credential)
    for vm in spec.vms:
        book.use_domain(vm.name)  # a built lab logs on with the domain first
    return book


def run(
    config: Any = None,
    *,
    vm: str | None = None,
    cmdlet: str = "",
    params: dict[str, Any] | None = None,
    lab: str | None = None,
    as_json: bool = False,
    state_base: Path | None = None,
    target: Target | None = None,
) -> list[Any]:
    """Run one cmdlet inside a lab VM; returns its output as plain values."""
    from hvlab.guest import as_whoever_logs_on
    from hvlab.remote import plain

    check_cmdlet(cmdlet)
    with on_host("run", config, lab, as_json, state_base, target=target) as (spec, session, _out):
        vm_spec = _vm_spec(spec, vm)
        _must_be_the_labs(spec, session.host, vm_spec.host_name)
        book = _book(spec, session)
        records = as_whoever_logs_on(
            session.host, book, vm_spec.name, lambda g: g.run(cmdlet, **(params or {}))
        )
    values = [_jsonable(plain(r)) for r in records]
    if target is None:
        if as_json:
            print(json.dumps(values, indent=2, default=str))
        else:
            _print_records(values)
    return values


def _must_be_the_labs(spec: Any, host: Any, name: str) -> None:
    rec = first(host.run("Get-VM", Name=name, **SILENT))
    if rec is None:
        raise ConfigError(f"VM {name} is not on the host ('lab.up' builds it)")
    if not owns_vm(rec, spec, lab_folder_is_ours(host, spec)):
        raise ConfigError(f"the VM named {name} on the host is not lab {spec.name}'s")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict) or hasattr(value, "keys"):
        return {str(k): _jsonable(value[k]) for k in value}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _print_records(values: list[Any]) -> None:
    for n, value in enumerate(values):
        if n:
            print()
        if isinstance(value, dict):
            width = max((len(k) for k in value), default=0)
            for key, item in value.items():
                shown = json.dumps(item, default=str) if isinstance(item, list | dict) else item
                print(f"{key:<{width}} : {'' if shown is None else shown}")
        else:
            print(value)


def connect(
    config: Any = None,
    *,
    vm: str | None = None,
    lab: str | None = None,
    as_json: bool = False,
    state_base: Path | None = None,
    target: Target | None = None,
) -> dict[str, Any]:
    """How to reach a lab VM: its console, PowerShell Direct, and its address."""
    with on_host("connect", config, lab, as_json, state_base, target=target) as (
        spec,
        session,
        out,
    ):
        vm_spec = _vm_spec(spec, vm)
        host = session.host
        rec = first(host.run("Get-VM", Name=vm_spec.host_name, **SILENT))
        vmhost = first(host.run("Get-VMHost"))
        state = text(val(rec, "State")) if rec is not None else "Missing"
        host_name = text(val(vmhost, "ComputerName")) or "localhost"
        simulated = session.simulated
    user = _logon_user(spec, vm_spec)
    address = str(vm_spec.nics[0].ip) if vm_spec.nics and vm_spec.nics[0].ip else None
    switch = vm_spec.nics[0].switch if vm_spec.nics else None
    info: dict[str, Any] = {
        "lab": spec.name,
        "vm": vm_spec.name,
        "host_vm": vm_spec.host_name,
        "host": host_name,
        "state": state,
        "simulated": simulated,
        "console": f'vmconnect.exe {host_name} "{vm_spec.host_name}"',
        "powershell_direct": f"Enter-PSSession -VMName {vm_spec.host_name} -Credential {user}",
        "address": address,
        "network": (
            f"Enter-PSSession -ComputerName {address} -Credential {user}" if address else None
        ),
        "hvlab": f"hvlab lab.run --vm {vm_spec.name} Get-Service",
        "password_from": _password_variable(spec),
    }
    if as_json and target is None:
        print(json.dumps(info, indent=2))
    elif out is not None:
        _print_connect(out, info, switch)
    return info


def _logon_user(spec: Any, vm_spec: Any) -> str:
    if spec.domain.mode == "new":
        return f"{spec.domain.netbios}\\Administrator"
    return str(spec.domain.join_account)


def _password_variable(spec: Any) -> str:
    names = spec.secrets
    return names.admin if spec.domain.mode == "new" else names.domain


def _print_connect(out: IO[str], info: dict[str, Any], switch: str | None) -> None:
    named = info["vm"]
    if info["host_vm"] != info["vm"]:
        named += f" (on the host: {info['host_vm']})"
    say(out, f"VM {named} of lab {info['lab']} on host {info['host']}: {info['state']}")
    if info["simulated"]:
        say(
            out,
            "  (a simulated host: the console and sessions below are what a real host takes; "
            "here 'lab.run' reaches the guest)",
        )
    say(out, f"  console, on the host:            {info['console']}")
    say(out, f"  PowerShell Direct, on the host:  {info['powershell_direct']}")
    if info["address"]:
        where = f" (switch {switch})" if switch else ""
        say(out, f"  network address{where}:  {info['address']}")
        say(out, f"  over the network:                {info['network']}")
    say(out, f"  from here:                       {info['hvlab']}")
    say(out, f"  the password is the one in {info['password_from']} (never printed)")
