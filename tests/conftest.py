"""Shared fixtures. Keep small; add fixtures, do not change existing ones."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# The account of every in-process simulated host the tests start.
SIM_USER = "hvadmin"
SIM_PASSWORD = "Hv-Test-Passw0rd!"


@pytest.fixture
def sim_world() -> Any:
    """A fresh simulated host (hvsim.model.world.World), instant modelled time."""
    from hvsim.model.world import World

    return World.create()


@pytest.fixture
def sim_server(sim_world: Any) -> Iterator[Callable[..., Any]]:
    """Start hvsim servers on ephemeral loopback ports: sim_server(auth=, https=, world=,
    allow_unencrypted=). Like Windows, a server refuses unencrypted traffic (Basic over
    HTTP, unsealed bodies) unless allow_unencrypted is given.

    Every server started through the fixture is stopped at the end of the test.
    """
    from hvsim.server import serve_in_thread

    stack = contextlib.ExitStack()

    def start(
        auth: str = "ntlm", https: bool = False, world: Any = None, allow_unencrypted: bool = False
    ) -> Any:
        return stack.enter_context(
            serve_in_thread(
                world if world is not None else sim_world,
                auth=auth,
                https=https,
                user=SIM_USER,
                password=SIM_PASSWORD,
                allow_unencrypted=allow_unencrypted,
            )
        )

    with stack:
        yield start


def pypsrp_wsman(server: Any, auth: str, password: str = SIM_PASSWORD, **kw: Any) -> Any:
    """An unmodified pypsrp 0.9.1 WSMan client for an in-process server."""
    from pypsrp.wsman import WSMan

    kw.setdefault("operation_timeout", 5)
    kw.setdefault("encryption", "never" if auth == "basic" else "auto")
    return WSMan(
        "127.0.0.1",
        port=server.port,
        ssl=server.https,
        auth=auth,
        username=SIM_USER,
        password=password,
        cert_validation=False,
        **kw,
    )


# Settings a developer's shell may carry that would point a lab test elsewhere.
LAB_ENV_CLEARED = (
    "HVLAB_HOST",
    "HVLAB_USER",
    "HVLAB_PASSWORD",
    "HVLAB_HOME",
    "HVLAB_MIN_WAIT",
    "HVSIM_FAULTS",
    "HVSIM_VOLUMES",
    "HVSIM_LATENCY_MS",
    "HVSIM_DOMAINS",
)


@pytest.fixture
def workdir(request: pytest.FixtureRequest, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An empty working folder for lab tasks on the embedded simulated host, at
    timescale 0, with the lab passwords of the test module (its PASSWORDS: each module
    has its own, so that a scan for them finds only its own run)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HVSIM_TIMESCALE", "0")
    for key in LAB_ENV_CLEARED:
        monkeypatch.delenv(key, raising=False)
    for key, value in getattr(request.module, "PASSWORDS", {}).items():
        monkeypatch.setenv(key, value)
    return tmp_path


@pytest.fixture
def wire(sim_server: Any) -> Callable[[Any], contextlib.AbstractContextManager[Any]]:
    """wire(world): hvlab.remote.Host connected over NTLM to a server for that world."""
    from hvlab.remote import Host

    @contextlib.contextmanager
    def connect(world: Any) -> Iterator[Any]:
        server = sim_server(auth="ntlm", world=world)
        with Host.connect(sim_settings(server)) as host:
            yield host

    return connect


def sim_settings(server: Any, **changes: Any) -> Any:
    """hvlab's settings for an in-process server: NTLM as the test account, no
    certificate check, a short operation timeout, no retries unless `changes` says."""
    import dataclasses

    from hvlab.config import Settings
    from hvlab.secrets import Secret

    base = Settings(
        host=server.url,
        user=SIM_USER,
        password=Secret(SIM_PASSWORD),
        auth="ntlm",
        cert_validation=False,
        operation_timeout=5,
        retries=0,
    )
    return dataclasses.replace(base, **changes)
