"""One run at a time per lab: a lock file on the Hyper-V host, next to the lab's mark (R-131).

A run that changes a lab (up, down, checkpoint, restore, stop, start) holds
`<root>\\.hvlab-lock` for its whole length. It is created with `New-Item -ItemType
File`, which fails when the file exists, so of two runs, from this controller or
another, exactly one gets it; the other is refused at once (exit 2) and told who
holds it (controller, pid, user, command) and since when. The lock lives on the
host because two controllers share nothing else.

A lock whose run was killed is taken over: on the same controller when its process
is gone, from anywhere once its heartbeat (refreshed by the holder every
HVLAB_LOCK_HEARTBEAT seconds while it runs, 30 by default) is older than
HVLAB_LOCK_STALE seconds (300). The takeover renames the old lock aside, checks that
what it moved is the lock it judged dead (else puts it back), and only then creates
its own: two runs that find the same dead lock cannot both win. The embedded
simulated host belongs to one process at a time (hvlab.session), so there the
process check suffices and no heartbeat is written.

When the lab root does not exist yet (a first lab.up), there is nothing to lock:
the folder step creates the root and its mark (both idempotent), and the lock is
taken right after it, before any other change. lab.down removes the lock file it
holds with the lab's mark, before the root folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import getpass
import json
import logging
import os
import secrets
import socket
import sys
import threading
from typing import IO, Any

from hvlab.errors import ConfigError, HostError, LockedError

log = logging.getLogger("hvlab.lock")

LOCK_NAME = ".hvlab-lock"
SILENT = {"ErrorAction": "SilentlyContinue"}
DEFAULT_HEARTBEAT = 30.0
DEFAULT_STALE = 300.0


def lock_path(lab: Any) -> str:
    return f"{lab.root}\\{LOCK_NAME}"


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be more than 0 seconds, not {raw!r}")
    return value


def heartbeat_seconds() -> float:
    return _seconds("HVLAB_LOCK_HEARTBEAT", DEFAULT_HEARTBEAT)


def stale_seconds() -> float:
    return _seconds("HVLAB_LOCK_STALE", DEFAULT_STALE)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _stamp(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(when: Any) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(str(when), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def controller_name() -> str:
    return socket.gethostname().lower()


def pid_alive(pid: int) -> bool:
    """Does a process with this id run on this machine? (Never signals it.)"""
    if pid <= 0:
        return False
    if os.name == "nt":
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return kernel32.GetLastError() == 5  # access denied: it exists
        try:
            code = ctypes.c_ulong()
            kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclasses.dataclass
class Holder:
    """Who holds a lab's lock, as its lock file says."""

    lab: str
    controller: str
    pid: int
    user: str
    command: str
    since: str
    heartbeat: str
    token: str

    @classmethod
    def new(cls, lab: str, command: str) -> Holder:
        now = _stamp(_now())
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        return cls(
            lab=lab,
            controller=controller_name(),
            pid=os.getpid(),
            user=user,
            command=command,
            since=now,
            heartbeat=now,
            token=secrets.token_hex(8),
        )

    @classmethod
    def parse(cls, raw: Any) -> Holder | None:
        try:
            data = json.loads(raw if isinstance(raw, str) else "\n".join(map(str, raw or [])))
            fields = {f.name for f in dataclasses.fields(cls)}
            if not isinstance(data, dict) or not fields <= set(data):
                return None
            values = {k: data[k] for k in fields}
            values["pid"] = int(values["pid"])
            return cls(**{k: (v if k == "pid" else str(v)) for k, v in values.items()})
        except (ValueError, TypeError):
            return None

    def text(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    def age(self) -> float | None:
        """Seconds since the last heartbeat, on this controller's clock."""
        beat = _parse(self.heartbeat)
        return None if beat is None else max(0.0, (_now() - beat).total_seconds())

    def describe(self) -> str:
        age = self.age()
        beat = "" if age is None else f", last heartbeat {age:.0f}s ago"
        return (
            f"{self.command} by {self.user} on controller {self.controller} (pid {self.pid}) "
            f"since {self.since}{beat}"
        )

    def dead_because(self, stale_after: float) -> str | None:
        """Why the run that holds the lock is gone, or None when it may still run."""
        me = controller_name()
        if self.controller == me and self.pid != os.getpid() and not pid_alive(self.pid):
            return f"its process {self.pid} no longer runs on this controller"
        age = self.age()
        if age is not None and age > stale_after:
            return f"its heartbeat is {age:.0f}s old (the limit is {stale_after:g}s)"
        return None


class LabLock:
    """The lock of one lab on one host, for one run."""

    def __init__(
        self,
        host: Any,
        lab: Any,
        command: str,
        *,
        simulated: bool,
        out: IO[str] | None = None,
    ) -> None:
        self.host = host
        self.lab = lab
        self.command = command
        self.simulated = simulated
        self.out = out
        self.path = lock_path(lab)
        self.me = Holder.new(lab.name, command)
        self.held = False
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def _say(self, line: str) -> None:
        from hvlab.lab import say

        say(self.out, line)

    # -- reading ------------------------------------------------------------------

    def _read(self, path: str | None = None) -> tuple[bool, Holder | None]:
        """(the file exists, its holder when readable)."""
        lines = self.host.run("Get-Content", Path=path or self.path, Raw=True, **SILENT)
        if not lines:
            present = self.host.run("Test-Path", Path=path or self.path)
            return bool(present) and present[0] is True, None
        return True, Holder.parse(lines[0] if len(lines) == 1 else lines)

    def marked(self) -> bool:
        # Imported here: hvlab.steps imports this module for its lock step.
        from hvlab.steps.common import mark_owner

        marker = self.host.run("Get-Content", Path=self.lab.marker_path, **SILENT)
        return mark_owner(marker) == self.lab.name

    # -- taking and giving back ----------------------------------------------------

    def acquire_if_marked(self) -> bool:
        """Take the lock when the lab's folder exists and is the lab's (else there is
        no folder to hold it yet; see the module's docstring)."""
        if self.held:
            return True
        if not self.marked():
            return False
        self.acquire()
        return True

    def acquire(self) -> None:
        """Take the lock, or raise LockedError naming who holds it."""
        if self.held:
            return
        stale_after = stale_seconds()
        for _ in range(4):
            try:
                self.host.run("New-Item", ItemType="File", Path=self.path, Value=self.me.text())
            except HostError as err:
                if not _exists(err):
                    raise
            else:
                self.held = True
                self._start_heartbeat()
                log.info("took the lock %s", self.path)
                return
            present, holder = self._read()
            if not present:
                continue  # released in between: try again
            if holder is None:
                # A lock file without a readable record: its writer died while
                # creating it (the record goes in with the file).
                self._take_over(None, "its lock file holds no readable record")
                continue
            why = holder.dead_because(stale_after)
            if why is None:
                raise LockedError(self.lab.name, holder.describe(), self.path, stale_after)
            self._take_over(holder, why)
        raise LockedError(self.lab.name, "another run (it kept changing)", self.path, stale_after)

    def _take_over(self, holder: Holder | None, why: str) -> None:
        aside_name = f"{LOCK_NAME}.stale-{self.me.token}"
        aside = f"{self.lab.root}\\{aside_name}"
        try:
            self.host.run("Rename-Item", Path=self.path, NewName=aside_name)
        except HostError:
            return  # someone else moved or removed it first
        _, moved = self._read(aside)
        if holder is not None and (moved is None or moved.token != holder.token):
            # Not the lock judged dead: a run took it meanwhile. Put it back.
            with contextlib.suppress(HostError):
                self.host.run("Rename-Item", Path=aside, NewName=LOCK_NAME)
            return
        self.host.run("Remove-Item", Path=aside, Force=True, **SILENT)
        who = holder.describe() if holder is not None else "an unknown run"
        self._say(f"took over the lock of lab {self.lab.name} from {who}: {why} (R-131)")

    def release(self) -> None:
        """Give the lock back (remove the file, if it is still ours)."""
        if not self.held:
            return
        self.held = False
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=10)
        try:
            _, holder = self._read()
            if holder is None or holder.token != self.me.token:
                log.warning("the lock %s is no longer this run's; left as it is", self.path)
                return
            self.host.run("Remove-Item", Path=self.path, Force=True)
        except HostError as err:
            log.warning("could not remove the lock %s: %s", self.path, err)

    @contextlib.contextmanager
    def holding(self) -> Any:
        try:
            yield self
        finally:
            self.release()

    # -- the heartbeat ---------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        if self.simulated:
            return  # the embedded host is this process's alone (hvlab.session)
        self._stop.clear()
        self._beat = threading.Thread(
            target=self._heartbeat, name="hvlab-lock-heartbeat", daemon=True
        )
        self._beat.start()

    def _heartbeat(self) -> None:
        every = heartbeat_seconds()
        while not self._stop.wait(every):
            try:
                _, holder = self._read()
                if holder is None or holder.token != self.me.token:
                    log.warning(
                        "the lock of lab %s was taken over (%s); this run no longer holds it",
                        self.lab.name,
                        holder.describe() if holder else "removed",
                    )
                    return
                self.me.heartbeat = _stamp(_now())
                self.host.run("Set-Content", Path=self.path, Value=self.me.text(), NoNewline=True)
            except Exception as err:  # a lost heartbeat must not stop the run
                log.warning("lock heartbeat failed: %s", err)


def _exists(err: HostError) -> bool:
    return "already exists" in err.message.lower() or "NewItemIOError" in (err.error_id or "")


def lock_step(ctx: Any) -> None:
    """The step of lab.up after the lab's folder exists: take the lab's lock there
    (a run that found the folder marked took it before its first step)."""
    if ctx.planning:
        ctx.ok(f"a run takes the lab's lock {lock_path(ctx.lab)} here")
        return
    lock = ctx.run.services.get("lab_lock")
    if lock is None:
        ctx.ok("this task takes no lock")
        return
    if not lock.held:
        lock.acquire()
    ctx.ok(f"this run holds the lab's lock {lock.path}")


def owner_line(verb: str, lab: str | None) -> str:
    """What the embedded host's owner file says about the task that holds it."""
    holder = Holder.new(lab or "", f"lab.{verb}")
    data = dataclasses.asdict(holder)
    data["locks_lab"] = bool(lab)
    data["argv"] = " ".join(sys.argv[:3])[:120]
    return json.dumps(data, sort_keys=True)
