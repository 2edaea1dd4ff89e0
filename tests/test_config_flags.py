"""Every true/false setting parses true/false, yes/no, on/off, 1/0 strictly and refuses
anything else; `INVOKE_HVLAB_ALLOW_BASIC_OVER_HTTP=false` never turns Basic on."""

from __future__ import annotations

import pytest
from project import ROOT

from hvlab.config import Settings, flag_setting
from hvlab.errors import ConfigError


def invoke_config(monkeypatch: pytest.MonkeyPatch, **env: str):  # type: ignore[no-untyped-def]
    """The config tasks get: invoke.yaml overlaid with INVOKE_* by invoke itself."""
    from invoke import Config

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = Config(project_location=str(ROOT))
    config.load_project()
    config.load_shell_env()
    return config


@pytest.mark.parametrize("word", ["false", "no", "off", "0", "FALSE", " No "])
def test_false_words_keep_basic_over_http_off(monkeypatch: pytest.MonkeyPatch, word: str) -> None:
    config = invoke_config(monkeypatch, INVOKE_HVLAB_ALLOW_BASIC_OVER_HTTP=word)
    env = {"HVLAB_HOST": "http://hv01.example.com:5985/wsman", "HVLAB_AUTH": "basic"}
    env["INVOKE_HVLAB_ALLOW_BASIC_OVER_HTTP"] = word
    with pytest.raises(ConfigError, match="Basic authentication over plain HTTP"):
        Settings.load(config, env=env)


@pytest.mark.parametrize("word", ["true", "yes", "on", "1"])
def test_true_words_allow_it(monkeypatch: pytest.MonkeyPatch, word: str) -> None:
    config = invoke_config(monkeypatch, INVOKE_HVLAB_ALLOW_BASIC_OVER_HTTP=word)
    env = {
        "HVLAB_HOST": "http://hv01.example.com:5985/wsman",
        "HVLAB_AUTH": "basic",
        "INVOKE_HVLAB_ALLOW_BASIC_OVER_HTTP": word,
    }
    assert Settings.load(config, env=env).endpoint().ssl is False


@pytest.mark.parametrize("word", ["nope", "2", "ja", "truee", ""])
def test_anything_else_is_refused(monkeypatch: pytest.MonkeyPatch, word: str) -> None:
    env = {"INVOKE_HVLAB_CERT_VALIDATION": word}
    with pytest.raises(ConfigError, match="INVOKE_HVLAB_CERT_VALIDATION must be true or false"):
        Settings.load({}, env=env)
    with pytest.raises(ConfigError, match="HVLAB_CERT_VALIDATION must be true or false"):
        Settings.load({}, env={"HVLAB_CERT_VALIDATION": word or "maybe"})
    with pytest.raises(ConfigError, match="INVOKE_HVLAB_HARD_RESET"):
        flag_setting({}, "hard_reset", True, env={"INVOKE_HVLAB_HARD_RESET": word})


def test_hard_reset_false_from_invoke_is_false(monkeypatch: pytest.MonkeyPatch) -> None:
    config = invoke_config(monkeypatch, INVOKE_HVLAB_HARD_RESET="false")
    assert (
        flag_setting(config, "hard_reset", True, env={"INVOKE_HVLAB_HARD_RESET": "false"}) is False
    )
