"""Command-line entry points of hvsim, called by tasks.py (`invoke sim.*`)."""

from __future__ import annotations

import os
import sys
from typing import Any

from hvsim.server import DEFAULT_USER


def serve(
    *,
    port: int = 0,
    https: bool = False,
    auth: str = "ntlm",
    user: str | None = None,
    password: str | None = None,
    cert: str | None = None,
    key: str | None = None,
    state: str | None = None,
    timescale: float | str | None = None,
    faults: str | None = None,
    allow_unencrypted: bool = False,
    latency: float | str | None = None,
) -> None:
    """Serve the simulated host on 127.0.0.1 until interrupted.

    Prints exactly one line, `hvsim listening on <url> (user ..., ...)`, once
    connections are accepted: the URL, then which account clients log on with.
    Without a password (--password or HVSIM_PASSWORD) it exits with code 2 and says
    how to give one. allow_unencrypted is WinRM's AllowUnencrypted=true: Basic over
    HTTP and unsealed bodies are accepted. latency (milliseconds, default
    HVSIM_LATENCY_MS or 0) delays every HTTP exchange as a link of that round-trip
    time would.
    """
    from hvsim import persist, server
    from hvsim.faults import Faults
    from hvsim.model.world import HostProfile, World, parse_domains, parse_volumes

    user = user or os.environ.get("HVSIM_USER") or DEFAULT_USER
    password_given = bool(password)
    password = password or os.environ.get("HVSIM_PASSWORD")
    if not password:
        _exit(
            "sim.serve needs the password clients log on with: pass --password or set "
            "HVSIM_PASSWORD in the environment.",
        )
    auth = (auth or "ntlm").lower()
    if auth not in ("basic", "ntlm"):
        _exit(f"--auth must be basic or ntlm, not {auth!r}.")
    if bool(cert) != bool(key):
        _exit("--cert and --key go together.")
    if (cert or key) and not https:
        _exit("--cert/--key need --https.")
    port = int(port or 0) or (5986 if https else 5985)
    scale_text = timescale if timescale is not None else os.environ.get("HVSIM_TIMESCALE", "0")
    try:
        scale = float(scale_text)
    except ValueError:
        _exit(f"--timescale must be a number, not {scale_text!r}.")
    latency_text = latency if latency is not None else os.environ.get("HVSIM_LATENCY_MS", "0")
    try:
        latency_ms = server.check_latency_ms(latency_text or 0)
    except ValueError as exc:
        _exit(f"--latency: {exc}.")
    fault_spec = faults if faults is not None else os.environ.get("HVSIM_FAULTS", "")
    lock = None
    if state:
        # One process at a time keeps this host (hvlab's embedded tasks take the same lock).
        from filelock import FileLock, Timeout

        os.makedirs(os.path.dirname(os.path.abspath(state)), exist_ok=True)
        lock = FileLock(state + ".lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            _exit(f"cannot start the simulated host: {state} is in use by another process.")
        persist.remove_leftovers(state)
    try:
        if state and os.path.exists(state):
            # The host as the last run left it (hvsim.persist); faults apply anew.
            world = persist.load(state, timescale=scale)
            if fault_spec:
                world.faults = Faults.parse(fault_spec, seed=world.seed)
                world.faults.install(world)
            if world.dropped_faults:
                print(
                    f"{state} carried injected faults of an earlier run "
                    f"({', '.join(world.dropped_faults)}); they were dropped",
                    file=sys.stderr,
                )
        else:
            profile = HostProfile()
            if os.environ.get("HVSIM_VOLUMES"):
                profile.volumes = parse_volumes(os.environ["HVSIM_VOLUMES"])
            if os.environ.get("HVSIM_DOMAINS"):
                profile.domains = parse_domains(os.environ["HVSIM_DOMAINS"])
            world = World.create(profile=profile, timescale=scale, faults=fault_spec or None)
    except (ValueError, persist.StateFileError) as exc:
        _exit(f"cannot start the simulated host: {exc}")
    if fault_spec.strip():
        print("faults injected: " + "; ".join(world.faults.describe()), file=sys.stderr)
    journal = persist.Journal(world, state) if state else None
    # Each change is written as it is made: a killed server loses at most one call.
    world.journal = journal
    try:
        running = server.start(
            world,
            auth=auth,
            https=https,
            user=user,
            password=password,
            port=port,
            cert=cert,
            key=key,
            in_thread=False,
            allow_unencrypted=bool(allow_unencrypted),
            latency_ms=latency_ms,
        )
    except OSError as exc:
        _exit(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}")
    # One line; the URL first (scripts read it), then how to log on.
    source = "--password" if password_given else "HVSIM_PASSWORD"
    link = f", latency {latency_ms:g} ms per exchange" if latency_ms else ""
    print(
        f"hvsim listening on {running.url} (user {user}, password from {source}, auth {auth}"
        f"{link})",
        flush=True,
    )
    try:
        running.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
        world.journal = None
        if journal is not None:
            journal.flush()
        if lock is not None:
            lock.release()


def _exit(message: str) -> Any:
    print(message, file=sys.stderr)
    raise SystemExit(2)


def show(state: str | None = None) -> None:
    """Print the simulated host as a tree: from a state file (--state, HVSIM_STATE,
    or the embedded host's .hvlab/sim/host.state), else a fresh default host."""
    from rich.console import Console

    from hvsim import persist
    from hvsim.model.world import World
    from hvsim.show import build_tree

    path = state or os.environ.get("HVSIM_STATE")
    # Without one, the state the embedded host of `hvlab lab.*` keeps under HVLAB_HOME
    # (default .hvlab/ in this folder).
    home = os.environ.get("HVLAB_HOME") or os.path.join(os.getcwd(), ".hvlab")
    embedded = os.path.join(home, "sim", "host.state")
    if not path and os.path.exists(embedded):
        path = embedded
    if path:
        try:
            world = persist.load(path)
        except persist.StateFileError as exc:
            _exit(str(exc))
    else:
        world = World.create()
    Console().print(build_tree(world))
