"""One exception tree, mapped to exit codes at the task boundary.

0 done, 1 the lab could not be built (a step failed, with its reason) or is not as its
file says (changes that wait for lab.up --allow-restart), 2 bad input or configuration,
130 interrupted.
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class HvlabError(Exception):
    """Base of every error hvlab reports. The message says what, why and what next."""

    exit_code = EXIT_FAILED


class ConfigError(HvlabError):
    """Connection settings or environment are wrong (missing password, bad URL)."""

    exit_code = EXIT_BAD_INPUT


class SpecError(HvlabError):
    """The lab file is invalid. Carries every problem found, each with its place."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        count = len(problems)
        super().__init__(f"{path}: {count} problem{'s' if count != 1 else ''}\n{lines}")


class HostError(HvlabError):
    """The host refused a call: the cmdlet, its error id and PowerShell's message."""

    def __init__(
        self,
        cmdlet: str,
        message: str,
        *,
        error_id: str = "",
        category: str = "",
        target: str | None = None,
    ) -> None:
        self.cmdlet = cmdlet
        self.error_id = error_id
        self.category = category
        self.message = message
        self.target = target
        where = f" [{error_id}]" if error_id else ""
        super().__init__(f"{cmdlet}: {message}{where}")


class TransportError(HvlabError):
    """The connection to the host failed after the allowed retries."""


class ResponseLost(TransportError):
    """A call that changes something was sent, and its answer never came back: it may
    have run (R-92). It is not repeated; the step re-reads its facts and converges."""

    def __init__(self, host: str, call: str, cause: str) -> None:
        self.call = call
        super().__init__(
            f"{host}: the answer to {call} was lost ({cause}); it may have run, so it is "
            "not sent again (R-92)"
        )


class WaitTimeout(HvlabError):
    """A bounded wait ran out: what it waited for and the last thing it saw."""

    def __init__(self, what: str, seconds: float, last_seen: str) -> None:
        self.what = what
        self.seconds = seconds
        self.last_seen = last_seen
        super().__init__(f"gave up waiting for {what} after {seconds:.0f}s; last seen: {last_seen}")


class PreflightError(HvlabError):
    """The host cannot carry the lab. Nothing was created. When a problem lies in the
    lab's own settings (a root on a missing drive or a folder that is not the lab's, a
    Standard image), it is bad input: exit 2."""

    def __init__(
        self,
        problems: list[str],
        numbers: dict[str, Any] | None = None,
        *,
        bad_input: bool = False,
    ) -> None:
        self.problems = problems
        self.numbers = numbers or {}
        self.bad_input = bad_input
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"preflight failed, nothing was created:\n{lines}")

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return EXIT_BAD_INPUT if self.bad_input else EXIT_FAILED


class LockedError(ConfigError):
    """Another run holds the lab's lock (R-131): nothing was changed. Bad input: run
    again when it has finished."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, lab: str, holder: str, where: str, stale_after: float) -> None:
        self.lab = lab
        self.holder = holder
        self.where = where
        super().__init__(
            f"lab {lab} is in use by another run: {holder}. Nothing was changed; run again "
            f"when it has finished. A run that was killed leaves its lock behind: it is taken "
            f"over on the same controller once its process is gone, and from anywhere once "
            f"its heartbeat is older than {stale_after:g}s (HVLAB_LOCK_STALE). "
            f"Lock: {where} (R-131)"
        )


class OwnershipError(HvlabError):
    """A resource with a lab name exists but does not carry this lab's mark."""


class StepError(HvlabError):
    """A step of lab.up failed: which step, on what, and why."""

    def __init__(self, step: str, reason: str) -> None:
        self.step = step
        self.reason = reason
        super().__init__(f"step {step} failed: {reason}")


class ChangesWaiting(HvlabError):
    """lab.up did all it could without restarting a VM; these changes wait for
    --allow-restart (R-141). Exit 1: the lab is not as its file says."""

    result = "changes-waiting"  # the report's "result"

    def __init__(self, waiting: dict[str, list[str]]) -> None:
        self.waiting = waiting
        lines = "\n".join(f"  - {vm}: {'; '.join(changes)}" for vm, changes in waiting.items())
        super().__init__(
            f"the lab is not as its file says: {len(waiting)} VM(s) need a restart for "
            f"these changes (R-140):\n{lines}\n"
            "Run lab.up --allow-restart to apply them (cluster nodes one at a time, drained "
            "first), or change the lab file back."
        )


class Interrupted(HvlabError):
    exit_code = EXIT_INTERRUPTED


# Windows errors that say "try again": RPC_S_SERVER_UNAVAILABLE (1722), RPC_S_CALL_FAILED
# (1726), ERROR_TIMEOUT (1460) and ERROR_NOT_READY (21) as HRESULTs.
TRANSIENT_HRESULTS = ("0x800706BA", "0x800706BE", "0x800705B4", "0x80070015")


def is_transient(err: HostError) -> bool:
    """Does Windows class this failure as transient (the same call may succeed later)?"""
    text = err.message.upper()
    return any(h.upper() in text for h in TRANSIENT_HRESULTS)
