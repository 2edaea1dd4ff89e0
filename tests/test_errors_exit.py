"""Errors a person can fix are said at once, as bad input (exit 2), never as a traceback
or after pointless retries: an untrusted certificate, CredSSP without its package."""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import SIM_PASSWORD, SIM_USER

from hvlab.config import Settings
from hvlab.errors import EXIT_BAD_INPUT, ConfigError
from hvlab.remote import Host


def _settings(server: Any, **extra: Any) -> Settings:
    env = {
        "HVLAB_HOST": f"https://127.0.0.1:{server.port}/wsman",
        "HVLAB_USER": SIM_USER,
        "HVLAB_PASSWORD": SIM_PASSWORD,
        "HVLAB_AUTH": "ntlm",
        **extra,
    }
    return Settings.load({}, env=env)


def test_an_untrusted_certificate_says_how_to_trust_it_at_once(sim_server: Any) -> None:
    server = sim_server(auth="ntlm", https=True)
    start = time.monotonic()
    with pytest.raises(ConfigError) as info:
        Host.connect(_settings(server))
    assert info.value.exit_code == EXIT_BAD_INPUT
    assert "not trusted" in str(info.value) and "HVLAB_CA_FILE" in str(info.value)
    assert time.monotonic() - start < 5, "no retries for a certificate that will not verify"


def test_the_ca_file_makes_it_trusted(sim_server: Any) -> None:
    server = sim_server(auth="ntlm", https=True)
    with Host.connect(_settings(server, HVLAB_CA_FILE=server.cert_path)) as host:
        assert host.run("Get-VMHost")


def test_credssp_without_its_package_is_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "requests_credssp" else real(name, *a),
    )
    with pytest.raises(ConfigError, match="needs the requests-credssp package"):
        Settings.load({}, env={"HVLAB_AUTH": "credssp"})
