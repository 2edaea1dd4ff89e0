"""The waits are settings: invoke.yaml's hvlab.waits, with today's deadlines as defaults."""

from __future__ import annotations

import pytest
from invoke import Config
from project import ROOT

from hvlab.errors import ConfigError
from hvlab.waits import Waits


def test_defaults_are_the_rulebooks_deadlines() -> None:
    waits = Waits.load(None)
    assert (waits.first_boot, waits.dc_promotion, waits.migration) == (1200, 1800, 300)
    # The shipped invoke.yaml states the same numbers, read the way Invoke reads it.
    config = Config(runtime_path=str(ROOT / "invoke.yaml"))
    config.load_runtime()
    assert dict(config["hvlab"]["waits"]) and Waits.load(config) == Waits()


def test_a_setting_changes_one_wait() -> None:
    waits = Waits.load({"hvlab": {"waits": {"first_boot": 2400}}})
    assert waits.first_boot == 2400 and waits.reboot == Waits().reboot


@pytest.mark.parametrize(
    ("waits", "message"),
    [
        ({"first_bot": 10}, "no wait 'first_bot'.*did you mean 'first_boot'"),
        ({"reboot": 0}, "from 1 to 86400, not 0"),
        ({"reboot": "10m"}, "whole number of seconds"),
        ({"reboot": True}, "whole number of seconds"),
        (["reboot"], "must be a mapping"),
    ],
)
def test_bad_waits_are_bad_input(waits: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        Waits.load({"hvlab": {"waits": waits}})
    assert info.value.exit_code == 2


@pytest.mark.slow
def test_a_short_first_boot_wait_is_what_the_boot_runs_into(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hvlab import lab as labs
    from hvlab.errors import StepError

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HVSIM_TIMESCALE", "0.01")
    monkeypatch.setenv("HVLAB_MIN_WAIT", "0")
    # A first boot takes 90 modelled seconds (0.9 s here); 10 is far too short, 1200
    # (the default) is not.
    config = {"hvlab": {"hard_reset": False, "waits": {"first_boot": 10}}}
    with pytest.raises(
        StepError, match=r"gave up waiting for \w+ to answer over PowerShell Direct after 0s"
    ):
        labs.up(config, yes=True)
