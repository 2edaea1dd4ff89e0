"""The classic event logs of a machine (System, Application, ...) and Windows Setup's
text logs in C:\\Windows\\Panther.

Guests write what the model does to them: boots and shutdowns (EventLog 6005, 6006,
6008, 6009 and USER32 1074, Microsoft KB 196452), role installs, the domain join, the
promotion, cluster events (FailoverClustering 1069) and the failures hvsim injects
(source "hvsim", so nobody mistakes them for Windows' own). Get-EventLog reads them
(hvsim.cmdlets.eventlog). Each log keeps its newest MAX_ENTRIES entries, as a log set
to "overwrite events as needed" does. Sources and ids the notes do not cite are
modelled (docs/model-notes.md, "Event logs and setup logs").
"""

from __future__ import annotations

import dataclasses
from typing import Any

# The classic logs every Windows Server has; Get-EventLog of another name fails.
LOGS = ("Application", "Security", "System", "Windows PowerShell")
MAX_ENTRIES = 1000
ENTRY_TYPES = ("Error", "Warning", "Information", "SuccessAudit", "FailureAudit")

PANTHER = "C:\\Windows\\Panther"
SETUPACT = f"{PANTHER}\\setupact.log"
SETUPERR = f"{PANTHER}\\setuperr.log"


@dataclasses.dataclass
class EventEntry:
    index: int
    source: str
    event_id: int
    entry_type: str  # one of ENTRY_TYPES
    message: str
    time: float  # modelled seconds (hvsim.model.machine.at)


@dataclasses.dataclass
class EventLogs:
    """One machine's classic logs: name -> entries, oldest first."""

    logs: dict[str, list[EventEntry]] = dataclasses.field(default_factory=dict)
    next_index: int = 1

    def write(
        self, log: str, source: str, event_id: int, entry_type: str, message: str, time: float
    ) -> EventEntry:
        assert log in LOGS and entry_type in ENTRY_TYPES, (log, entry_type)
        entry = EventEntry(self.next_index, source, int(event_id), entry_type, message, time)
        self.next_index += 1
        entries = self.logs.setdefault(log, [])
        entries.append(entry)
        del entries[:-MAX_ENTRIES]
        return entry

    def entries(self, log: str) -> list[EventEntry] | None:
        """The log's entries oldest first; None when no log has that name."""
        name = next((n for n in LOGS if n.lower() == log.lower()), None)
        if name is None:
            return None
        return list(self.logs.get(name, []))


def log_event(
    machine: Any, log: str, source: str, event_id: int, entry_type: str, message: str
) -> None:
    """Write an entry into one of `machine`'s logs at the current modelled time."""
    events = getattr(machine, "events", None)
    world = getattr(machine, "world", None)
    if events is None:
        return
    now = float(world.clock.now()) if world is not None else 0.0
    events.write(log, source, event_id, entry_type, message, now)


def setup_log(machine: Any, t: float, level: str, component: str, message: str) -> None:
    """A line in setupact.log (and, for errors, setuperr.log), as Windows Setup writes
    them in %WINDIR%\\Panther during specialize and OOBE. The layout (time, level,
    component, text) follows real logs; the texts are modelled. Best effort: a full
    disk loses the line, as it would."""
    from hvsim.model.fs import FsError
    from hvsim.model.machine import at

    stamp = at(t).strftime("%Y-%m-%d %H:%M:%S")
    line = f"{stamp}, {level:<21} [{component}] {message}\r\n"
    targets = [SETUPACT] + ([SETUPERR] if level == "Error" else [])
    fs = machine.fs
    for path in targets:
        try:
            old = fs.read(path) if fs.exists(path) else ""
            fs.write(path, (old if isinstance(old, str) else "") + line, create_parents=True)
        except FsError:
            return
