"""What hvlab renders is what the simulated guest reads: the two sides of unattend.xml
(hvlab.render and hvsim.model.unattend) agree on every value first boot applies."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hvlab.render import render_unattend
from hvlab.secrets import Secret, Secrets
from hvlab.spec import Lab, load_lab, parse_lab
from hvsim.model import unattend

ROOT = Path(__file__).resolve().parent.parent


def secrets(password: str) -> Secrets:
    return Secrets(admin=Secret(password), domain=Secret(password), dsrm=Secret("Dsrm-Passw0rd"))


def existing_domain_lab() -> Lab:
    data = yaml.safe_load((ROOT / "labs" / "s2d-2node.yaml").read_text())
    del data["vms"][0]
    data["domain"] = {
        "mode": "existing",
        "fqdn": "corp.example.com",
        "dc_address": "192.168.1.5",
        "join_account": "CORP\\joiner",
    }
    data["switches"][0]["nat"] = True  # the nodes reach the domain's DC through NAT
    data["cluster"]["witness"] = {"type": "file_share", "server": "fs01"}
    return parse_lab(yaml.safe_dump(data))


LABS = {
    "s2d-2node": lambda: load_lab(ROOT / "labs" / "s2d-2node.yaml"),
    "s2d-4node": lambda: load_lab(ROOT / "labs" / "s2d-4node.yaml"),
    "example-full": lambda: load_lab(ROOT / "labs" / "example-full.yaml"),
    "existing-domain": existing_domain_lab,
}


@pytest.mark.parametrize("name", sorted(LABS))
@pytest.mark.parametrize("password", ["Abc-12345", "Pa&ss<wo>rd\"'1", "Grüße-Ω-1a"])
def test_simulated_guest_reads_what_hvlab_wrote(name: str, password: str) -> None:
    lab = LABS[name]()
    for vm in lab.vms:
        answers = unattend.parse(render_unattend(lab, vm, secrets(password)))
        assert answers.notes == []  # nothing ignored or misplaced
        assert answers.computer_name == vm.name
        assert answers.admin_password == password
        assert answers.time_zone == lab.timezone
        for nic in vm.nics:
            got = answers.interface_for(nic.mac or "", nic.name)
            assert got is not None, f"{vm.name}/{nic.name}"
            assert got.dhcp is False
            assert got.addresses == [(str(nic.ip), nic.prefix)]
            assert got.gateway == (str(nic.gateway) if nic.gateway else None)
            assert got.dns_servers == [str(d) for d in nic.dns or []]
