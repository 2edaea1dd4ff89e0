"""Connecting to the host a task works on: the configured one, or the embedded hvsim.

With no HVLAB_HOST (nor hvlab.host in invoke.yaml), hvlab starts hvsim in-process
on loopback, talks to it over real WinRM with NTLM and message encryption, and
keeps the simulated host's state under .hvlab/sim/ between invocations: one task at
a time holds it (a file lock), read-only tasks never write it, and a task that
changes the host writes each change as it is made.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
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
# Longest a task waits for another to release the embedded host (HVLAB_SIM_LOCK_WAIT).
DEFAULT_LOCK_WAIT = 900.0


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
    from hvlab.paths import EMBEDDED_HOST, home

    return (base or home()) / EMBEDDED_HOST / "host.state"


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


def embedded_latency_ms(env: dict[str, str] | None = None) -> float:
    """HVSIM_LATENCY_MS: the round trip the embedded host's link adds to every HTTP
    exchange (0 by default: loopback), so a benchmark pays for round trips as over
    a real link."""
    from hvsim.server import check_latency_ms

    env = dict(os.environ if env is None else env)
    raw = env.get("HVSIM_LATENCY_MS", "")
    if not raw:
        return 0.0
    try:
        return check_latency_ms(raw)
    except ValueError as err:
        raise ConfigError(f"HVSIM_LATENCY_MS: {err}") from None


def lock_wait_seconds(env: dict[str, str] | None = None) -> float:
    """How long a task waits for another one to release the embedded host."""
    env = dict(os.environ if env is None else env)
    raw = env.get("HVLAB_SIM_LOCK_WAIT", "")
    if not raw:
        return DEFAULT_LOCK_WAIT
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"HVLAB_SIM_LOCK_WAIT must be a number of seconds, not {raw!r}") from None
    if value < 0:
        raise ConfigError(f"HVLAB_SIM_LOCK_WAIT must be >= 0, not {raw!r}")
    return value


@contextlib.contextmanager
def host_state_lock(
    path: Path, verb: str, notice: Any = None, lab_lock: str | None = None
) -> Iterator[None]:
    """Hold the embedded host's state for the whole task: one task at a time reads or
    changes it (a file lock the operating system releases when the process dies).

    A task that changes lab `lab_lock` does not wait for a task that holds that same
    lab's lock: it is refused at once, as on any host (R-131)."""
    from filelock import FileLock, Timeout

    from hvlab import locking

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path) + ".lock")
    owner = Path(str(path) + ".owner")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        wait = lock_wait_seconds()
        holder = _read_owner(owner)
        other = _owner_record(owner)
        if (
            lab_lock
            and other is not None
            and other.get("locks_lab")
            and other.get("lab") == lab_lock
        ):
            from hvlab.errors import LockedError

            record = locking.Holder.parse(json.dumps(other))
            raise LockedError(
                lab_lock,
                record.describe() if record is not None else holder,
                f"the embedded simulated host ({path})",
                locking.stale_seconds(),
            ) from None
        if notice is not None:
            notice(
                f"waiting up to {wait:g}s for the embedded simulated host: another hvlab task "
                f"uses it ({holder})"
            )
        try:
            lock.acquire(timeout=wait)
        except Timeout:
            raise ConfigError(
                f"the embedded simulated host is still in use by another hvlab task ({holder}) "
                f"after {wait:g}s; run again when it has finished (HVLAB_SIM_LOCK_WAIT sets the wait)"
            ) from None
    try:
        with contextlib.suppress(OSError):
            owner.write_text(locking.owner_line(verb, lab_lock), encoding="utf-8")
        yield
    finally:
        lock.release()


def _owner_record(owner: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(owner.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _read_owner(owner: Path) -> str:
    record = _owner_record(owner)
    if record is not None:
        return f"{record.get('command', 'a task')}, pid {record.get('pid', '?')}"
    try:
        return owner.read_text(encoding="utf-8").strip()[:80] or "unknown"
    except OSError:
        return "unknown"


def load_embedded_world(path: Path, timescale: float, vms: list[str] | None = None) -> Any:
    """The embedded host as the last task left it, or a new one; faults come only
    from this process's HVSIM_FAULTS, never from the file."""
    from hvsim import persist
    from hvsim.faults import Faults, FaultSpecError
    from hvsim.model.world import World

    persist.remove_leftovers(path)
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
    spec = os.environ.get("HVSIM_FAULTS", "")
    if spec.strip():
        try:
            world.faults = Faults.parse(spec, seed=world.seed, vms=vms)
        except FaultSpecError as err:
            raise ConfigError(f"HVSIM_FAULTS: {err}") from None
        world.faults.install(world)
    return world


def fault_notes(world: Any) -> str:
    """What the first line of a task says about faults on the embedded host."""
    notes = []
    if world.faults.faults:
        notes.append("faults injected by HVSIM_FAULTS: " + "; ".join(world.faults.describe()[1:]))
    if world.dropped_faults:
        notes.append(
            "the state file carried injected faults of an earlier run ("
            + ", ".join(world.dropped_faults)
            + "); they were dropped: faults apply only to the task that asks for them"
        )
    return "; ".join(notes)


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
    and HVSIM_DOMAINS as the domains outside the lab when set (used when the host is
    first made; a saved host keeps its volumes and domains)."""
    from hvsim.model.world import HostProfile, parse_domains, parse_volumes

    profile = HostProfile()
    for name, parse, field in (
        ("HVSIM_VOLUMES", parse_volumes, "volumes"),
        ("HVSIM_DOMAINS", parse_domains, "domains"),
    ):
        raw = os.environ.get(name)
        if not raw:
            continue
        try:
            setattr(profile, field, parse(raw))
        except ValueError as err:
            raise ConfigError(f"{name}: {err}") from None
    return profile


@contextlib.contextmanager
def open_session(
    config: Any = None,
    *,
    parallel: int = 0,
    state_base: Path | None = None,
    writes: bool = True,
    verb: str = "task",
    notice: Any = None,
    vms: list[str] | None = None,
    lab_lock: str | None = None,
    warm: int = 0,
) -> Iterator[Session]:
    """The host a task works on. On the embedded host, `writes=False` (status, plan)
    never writes its state; a task that writes saves each change as it is made.
    `lab_lock` names the lab whose lock the task takes (hvlab.locking). `warm`:
    connections to open once the first one logged on, for the parallel calls (each
    with the session key guest credentials need; hvlab.remote.Host.warm)."""
    from hvlab.config import Settings
    from hvlab.remote import Host

    settings = Settings.load(config)
    pool = max(4, parallel or 8)
    if settings.host:
        settings = ask_password(settings)
        factor = float(os.environ.get("HVLAB_TIME_FACTOR", "1") or 1)
        with Host.connect(settings, max_runspaces=pool, warm=warm, keys=True) as host:
            yield Session(host, False, f"host {settings.host}", factor)
        return

    from hvsim import catalog as sim_catalog
    from hvsim import persist
    from hvsim.server import serve_in_thread

    timescale = embedded_timescale()
    latency_ms = embedded_latency_ms()
    try:
        # Every call is bound against the catalog: a broken install fails here, at once.
        sim_catalog.catalog()
    except sim_catalog.CatalogError as err:
        raise ConfigError(str(err)) from None
    from hvlab.paths import home

    path = sim_state_path(state_base or home(config))
    with host_state_lock(path, verb, notice, lab_lock):
        world = load_embedded_world(path, timescale, vms)
        journal = persist.Journal(world, path) if writes else None
        world.journal = journal
        # A throwaway account for this process only: the embedded host lives as long as the task.
        user = "hvlab"
        password = pysecrets.token_urlsafe(18) + "aA1!"
        mode = "" if writes else ", read only"
        link = f", latency {latency_ms:g} ms" if latency_ms else ""
        faults = fault_notes(world)
        description = (
            f"simulated host (hvsim, embedded, timescale {timescale:g}{link}, state {path}{mode})"
            + (f" [{faults}]" if faults else "")
        )
        try:
            with serve_in_thread(
                world, auth="ntlm", user=user, password=password, latency_ms=latency_ms
            ) as server:
                local = dataclasses.replace(
                    settings,
                    host=server.url,
                    user=user,
                    password=password,
                    auth="ntlm",
                    cert_validation=False,
                )
                with Host.connect(local, max_runspaces=pool, warm=warm, keys=True) as host:
                    yield Session(host, True, description, timescale, world)
        finally:
            world.journal = None
            if journal is not None:
                journal.flush()
