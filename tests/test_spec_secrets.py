"""Secrets: the Secret type never shows its value; resolve_secrets finds, checks and refuses."""

from __future__ import annotations

import copy
import json
import logging
import pickle
from pathlib import Path

import pytest

from hvlab.errors import EXIT_BAD_INPUT, ConfigError
from hvlab.secrets import Secret, Secrets, demo_password, resolve_secrets
from hvlab.spec import Lab, load_lab, parse_lab

ROOT = Path(__file__).resolve().parent.parent
PW = "Corr3ct-Horse!"
DSRM = "Dsrm-Passw0rd"


@pytest.fixture
def lab() -> Lab:
    return load_lab(ROOT / "labs" / "s2d-2node.yaml")


def test_secret_does_not_show_itself(caplog: pytest.LogCaptureFixture) -> None:
    s = Secret(PW)
    assert s.reveal() == PW
    old_style = "%s" % (s,)  # noqa: UP031 - the %-operator is a way to leak too
    for text in (repr(s), str(s), f"{s}", f"{s!r}", f"{s:>20}", old_style, str([s]), str({"k": s})):
        assert PW not in text
    logging.getLogger("t").warning("value %s %r", s, s)
    assert PW not in caplog.text
    with pytest.raises(TypeError):
        pickle.dumps(s)
    with pytest.raises(TypeError):
        copy.deepcopy(s)
    with pytest.raises(TypeError):
        json.dumps({"pw": s})
    assert Secret(PW) == Secret(PW) and Secret(PW) != Secret(PW + "x")


def test_secrets_repr_is_masked(lab) -> None:
    secrets = resolve_secrets(lab, env={"HVLAB_ADMIN_PASSWORD": PW, "HVLAB_DSRM_PASSWORD": DSRM})
    assert PW not in repr(secrets) and DSRM not in repr(secrets)
    assert secrets.admin.reveal() == PW
    assert secrets.domain.reveal() == PW  # a new forest's Administrator
    assert secrets.dsrm is not None and secrets.dsrm.reveal() == DSRM


def test_missing_variables_are_named(lab) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_secrets(lab, env={})
    assert info.value.exit_code == EXIT_BAD_INPUT
    assert "HVLAB_ADMIN_PASSWORD (local Administrator)" in str(info.value)
    assert "HVLAB_DSRM_PASSWORD (Directory Services Restore Mode)" in str(info.value)


def test_variable_names_come_from_the_lab() -> None:
    text = (
        ROOT / "labs" / "s2d-2node.yaml"
    ).read_text() + "secrets: {admin: MY_PW, dsrm: MY_DSRM}\n"
    lab = parse_lab(text)
    assert resolve_secrets(lab, env={"MY_PW": PW, "MY_DSRM": DSRM}).admin.reveal() == PW
    with pytest.raises(ConfigError, match="MY_PW"):
        resolve_secrets(lab, env={"HVLAB_ADMIN_PASSWORD": PW})


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("Sh0rt!", "shorter than 8 characters"),
        ("alllowercase", "3 of these 4 groups"),
        ("lowercase1", "3 of these 4 groups"),
        ("MyAdministrator1!", "contains the account name Administrator"),
        ("Tab\there-1A", "control character"),
        ("A1!" + "x" * 130, "longer than 127 characters"),
    ],
)
def test_weak_password_refused_without_echo(lab, password: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_secrets(lab, env={"HVLAB_ADMIN_PASSWORD": password, "HVLAB_DSRM_PASSWORD": DSRM})
    assert reason in str(info.value)
    assert "HVLAB_ADMIN_PASSWORD" in str(info.value)
    assert password not in str(info.value)


def test_non_ascii_password_counts(lab) -> None:
    secrets = resolve_secrets(
        lab, env={"HVLAB_ADMIN_PASSWORD": "Grüße-aus-Köln1", "HVLAB_DSRM_PASSWORD": DSRM}
    )
    assert secrets.admin.reveal() == "Grüße-aus-Köln1"


def test_prompt_asks_twice(lab) -> None:
    answers = iter([PW, PW, DSRM, DSRM])
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return next(answers)

    secrets = resolve_secrets(lab, env={}, prompt=prompt)
    assert secrets.admin.reveal() == PW and secrets.dsrm and secrets.dsrm.reveal() == DSRM
    assert len(asked) == 4 and "HVLAB_ADMIN_PASSWORD" in asked[0]


def test_prompt_mismatch_gives_up(lab) -> None:
    answers = iter(["Aa-1aaaaa", "Bb-2bbbbb"] * 3)
    with pytest.raises(ConfigError, match="did not match three times"):
        resolve_secrets(lab, env={}, prompt=lambda _: next(answers))


def test_simulated_demo_password_is_deterministic_and_complex(lab) -> None:
    one = resolve_secrets(lab, env={}, simulated=True)
    two = resolve_secrets(lab, env={}, simulated=True)
    assert one.admin == two.admin and one.dsrm == two.dsrm
    assert one.admin != one.dsrm
    assert one.admin.reveal() == demo_password("s2d-2node", "admin")
    assert demo_password("s2d-2node", "admin") != demo_password("s2d-4node", "admin")
    # the environment still wins over the demo value
    three = resolve_secrets(lab, env={"HVLAB_ADMIN_PASSWORD": PW}, simulated=True)
    assert three.admin.reveal() == PW


def test_new_forest_refuses_a_different_domain_password(lab) -> None:
    env = {
        "HVLAB_ADMIN_PASSWORD": PW,
        "HVLAB_DSRM_PASSWORD": DSRM,
        "HVLAB_DOMAIN_PASSWORD": "Other-Pass1",
    }
    with pytest.raises(ConfigError) as info:
        resolve_secrets(lab, env=env)
    assert "R-38" in str(info.value)
    assert "Other-Pass1" not in str(info.value) and PW not in str(info.value)
    env["HVLAB_DOMAIN_PASSWORD"] = PW
    assert resolve_secrets(lab, env=env).domain.reveal() == PW


def test_existing_domain_needs_the_join_password() -> None:
    text = (ROOT / "labs" / "s2d-2node.yaml").read_text()
    import yaml

    data = yaml.safe_load(text)
    del data["vms"][0]
    data["domain"] = {
        "mode": "existing",
        "fqdn": "corp.example.com",
        "dc_address": "192.168.1.5",
        "join_account": "CORP\\joiner",
    }
    data["switches"][0]["nat"] = True  # the nodes reach the domain's DC through NAT
    data["cluster"]["witness"] = {"type": "file_share", "server": "fs01"}
    lab = parse_lab(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        resolve_secrets(lab, env={"HVLAB_ADMIN_PASSWORD": PW})
    assert "HVLAB_DOMAIN_PASSWORD (domain join account CORP\\joiner)" in str(info.value)
    s = resolve_secrets(
        lab, env={"HVLAB_ADMIN_PASSWORD": PW, "HVLAB_DOMAIN_PASSWORD": "J0in-Account"}
    )
    assert isinstance(s, Secrets) and s.dsrm is None and s.domain.reveal() == "J0in-Account"


@pytest.mark.parametrize("value", ["Winter2025xyz", "Summer-2024!", "P@ssw0rd", "Hvlab_Admin_1"])
def test_a_password_put_where_a_variable_name_goes_is_refused_unechoed(
    tmp_path, value: str
) -> None:
    """`admin: Winter2025xyz` under secrets is a password, not a variable name: refused
    at the spec boundary, and the value appears in no message."""
    from project import LABS

    from hvlab.errors import SpecError
    from hvlab.spec import load_lab

    text = (LABS / "s2d-2node.yaml").read_text() + f"\nsecrets:\n  admin: '{value}'\n"
    lab = tmp_path / "lab.yaml"
    lab.write_text(text)
    with pytest.raises(SpecError) as info:
        load_lab(lab)
    assert "secrets.admin" in str(info.value)
    assert value not in str(info.value)


@pytest.mark.parametrize("value", ["HVLAB_ADMIN_PASSWORD", "lab2_admin_pw", "ADMIN_PW_2"])
def test_variable_names_in_one_case_are_accepted(tmp_path, value: str) -> None:
    from project import LABS

    from hvlab.spec import load_lab

    text = (LABS / "s2d-2node.yaml").read_text() + f"\nsecrets:\n  admin: {value}\n"
    lab = tmp_path / "lab.yaml"
    lab.write_text(text)
    assert load_lab(lab).secrets.admin == value
