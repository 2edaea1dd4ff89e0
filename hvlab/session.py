"""Connecting to the host a task works on: the configured one, or the embedded hvsim.

With no HVLAB_HOST (nor hvlab.host in invoke.yaml), hvlab starts hvsim in-process
on loopback, talks to it over real WinRM with NTLM and message encryption, and
keeps the simulated host's state under .hvlab/sim/ between invocations.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets as pysecrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hvlab.errors import ConfigError

# Real seconds per modelled second on the embedded host: the default lab builds in
# well under a minute while waits and parallelism still happen for real.
DEFAULT_TIMESCALE = 0.02


@dataclasses.dataclass
class Session:
    host: Any  # hvlab.remote.Host
    simulated: bool
    description: str
    time_factor: float
    world: Any = None  # the embedded hvsim world (for modelled time only; never for facts)

    def modelled_seconds(self) -> float | None:
        if self.world is None:
            return None
        return float(self.world.clock.now())

    def clock(self) -> float:
        """The host's clock: modelled seconds on the embedded host, real ones otherwise."""
        modelled = self.modelled_seconds()
        return time.monotonic() if modelled is None else modelled


def sim_state_path(base: Path | None = None) -> Path:
    """The embedded simulated host's state, under hvlab's home (hvlab.paths.home)."""
    from hvlab.paths import home

    return (base or home()) / "sim" / "host.state"


def embedded_timescale(env: dict[str, str] | None = None) -> float:
    env = dict(os.environ if env is None else env)
    raw = env.get("HVSIM_TIMESCALE")
    if raw is None or raw == "":
        return DEFAULT_TIMESCALE
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"HVSIM_TIMESCALE must be a number >= 0, not {raw!r}") from None
    if value < 0:
        raise ConfigError(f"HVSIM_TIMESCALE must be >= 0, not {raw!r}")
    return value


def ask_password(settings: Any, ask: Any = None) -> Any:
    """HVLAB_PASSWORD unset: ask on a terminal (once, not echoed); elsewhere (CI) say what
    to set. The answer lives in this process only."""
    import getpass
    import sys

    from hvlab.secrets import Secret

    if settings.secret() or not settings.user:
        return settings
    if ask is None:
        if not sys.stdin.isatty():
            raise ConfigError(
                f"no password for {settings.user} on {settings.host}: set HVLAB_PASSWORD "
                "(hvlab asks for it only on a terminal)"
            )
        ask = getpass.getpass
    answer = ask(f"Password for {settings.user} on {settings.host}: ")
    if not answer:
        raise ConfigError("no password given; nothing was changed")
    return dataclasses.replace(settings, password=Secret(answer))


def embedded_profile() -> Any:
    """The embedded host's profile: the default, with HVSIM_VOLUMES as its data volumes
    when set (used when the host is first made; a saved host keeps its volumes)."""
    from hvsim.model.world import HostProfile, parse_volumes

    raw = os.environ.get("HVSIM_VOLUMES")
    if not raw:
        return HostProfile()
    try:
        return HostProfile(volumes=parse_volumes(raw))
    except ValueError as err:
        raise ConfigError(f"HVSIM_VOLUMES: {err}") from None


@contextlib.contextmanager
def open_session(
    config: Any = None, *, parallel: int = 0, state_base: Path | None = None
) -> Iterator[Session]:
    from hvlab.config import Settings
    from hvlab.remote import Host

    settings = Settings.load(config)
    pool = max(4, parallel or 8)
    if settings.host:
        settings = ask_password(settings)
        factor = float(os.environ.get("HVLAB_TIME_FACTOR", "1") or 1)
        with Host.connect(settings, max_runspaces=pool) as host:
            yield Session(host, False, f"host {settings.host}", factor)
        return

    from hvsim import catalog as sim_catalog
    from hvsim import faults as sim_faults
    from hvsim import persist
    from hvsim.model.world import World
    from hvsim.server import serve_in_thread

    timescale = embedded_timescale()
    try:
        # Every call is bound against the catalog: a broken install fails here, at once.
        sim_catalog.catalog()
    except sim_catalog.CatalogError as err:
        raise ConfigError(str(err)) from None
    from hvlab.paths import home

    path = sim_state_path(state_base or home(config))
    if path.exists():
        try:
            world = persist.load(path, timescale=timescale)
        except persist.StateFileError as err:
            raise ConfigError(
                f"the embedded simulated host cannot be loaded: {err} "
                "Its VMs are simulated; nothing real is lost."
            ) from None
    else:
        world = World.create(profile=embedded_profile(), timescale=timescale)
    spec = os.environ.get("HVSIM_FAULTS")
    if spec:
        world.faults = sim_faults.parse(spec)
    # A throwaway account for this process only: the embedded host lives as long as the task.
    user = "hvlab"
    password = pysecrets.token_urlsafe(18) + "aA1!"
    try:
        with serve_in_thread(world, auth="ntlm", user=user, password=password) as server:
            local = dataclasses.replace(
                settings,
                host=server.url,
                user=user,
                password=password,
                auth="ntlm",
                cert_validation=False,
            )
            with Host.connect(local, max_runspaces=pool) as host:
                yield Session(
                    host,
                    True,
                    f"simulated host (hvsim, embedded, timescale {timescale:g}, state {path})",
                    timescale,
                    world,
                )
    finally:
        persist.save(world, path)
