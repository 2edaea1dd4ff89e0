"""Get-EventLog: the classic logs of the machine it runs on (hvsim.model.eventlog).

Semantics follow Windows PowerShell 5.1's GetEventLogCommand (PowerShell's
src/Microsoft.PowerShell.Commands.Management/commands/management/EventLog.cs):
entries are read newest first, the filters (-EntryType, -Source, -InstanceId,
-Message, -After, -Before) apply before -Newest counts, a log with no match writes
the non-terminating "No matches found" (GetEventLogNoEntriesFound, ObjectNotFound)
unless a wildcard or a date was part of the filter, and a log that does not exist
is a terminating EventLogNotFound.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Iterable
from typing import Any

from hvsim.cmdlets._hvcommon import as_list
from hvsim.errors import PSError, not_modelled
from hvsim.model.eventlog import EventEntry
from hvsim.model.machine import at
from hvsim.objects import Int64, PSEnum, PSObj
from hvsim.registry import Call, Context, cmdlet

CLS = "Microsoft.PowerShell.Commands.GetEventLogCommand"
ENTRY = "System.Diagnostics.EventLogEntry"
ENTRY_TYPE = {"Error": 1, "Warning": 2, "Information": 4, "SuccessAudit": 8, "FailureAudit": 16}


def _wild(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _when(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    raise not_modelled("Get-EventLog -After/-Before given as anything but a DateTime")


def entry_obj(log: str, machine: str, e: EventEntry) -> PSObj:
    when = at(e.time)
    return PSObj(
        [
            f"{ENTRY}#{log}/{e.source}/{e.event_id}",
            f"{ENTRY}#{log}/{e.source}",
            ENTRY,
            "System.ComponentModel.Component",
            "System.MarshalByRefObject",
            "System.Object",
        ],
        {
            "EventID": e.event_id,
            "MachineName": machine,
            "Data": [],
            "Index": e.index,
            "Category": "(0)",
            "CategoryNumber": 0,
            "EntryType": PSEnum(
                "System.Diagnostics.EventLogEntryType", e.entry_type, ENTRY_TYPE[e.entry_type]
            ),
            "Message": e.message,
            "Source": e.source,
            "ReplacementStrings": [],
            # Modelled: the id without the qualifier bits some sources set.
            "InstanceId": Int64(e.event_id),
            "TimeGenerated": when,
            "TimeWritten": when,
            "UserName": None,
            "Site": None,
            "Container": None,
        },
        to_string=ENTRY,
    )


@cmdlet(
    "Get-EventLog",
    params=[
        "LogName",
        "Newest",
        "EntryType",
        "Source",
        "InstanceId",
        "Message",
        "After",
        "Before",
        "Index",
        "AsBaseObject",
    ],
)
def get_event_log(ctx: Context, call: Call) -> Iterable[Any]:
    if call.parameter_set == "List":
        raise not_modelled("Get-EventLog -List")
    name = str(call["LogName"])
    events = getattr(ctx.machine, "events", None)
    entries = events.entries(name) if events is not None else None
    if entries is None:
        raise PSError(
            f"The event log '{name}' on computer '.' does not exist.",
            fqid=f"EventLogNotFound,{CLS}",
            category="ObjectNotFound",
            exception="System.InvalidOperationException",
            target=name,
        )
    newest = int(call.get("Newest", 2**31 - 1))
    if newest < 0:
        raise PSError(
            f"Cannot validate argument on parameter 'Newest'. The {newest} argument is less "
            "than the minimum allowed range of 0. Supply an argument that is greater than or "
            "equal to 0 and then try the command again.",
            fqid=f"ParameterArgumentValidationError,{CLS}",
            category="InvalidData",
            exception="System.Management.Automation.ParameterBindingValidationException",
        )
    types = [str(t).lower() for t in as_list(call.get("EntryType"))] or None
    sources = [str(s) for s in as_list(call.get("Source"))] or None
    ids = {int(i) for i in as_list(call.get("InstanceId"))} or None
    indexes = {int(i) for i in as_list(call.get("Index"))} or None
    message = call.get("Message")
    after, before = _when(call.get("After")), _when(call.get("Before"))
    # A wildcard or a date in the filter makes an empty answer no error (EventLog.cs).
    quiet_when_empty = (
        any(_wild(s) for s in sources or [])
        or (message is not None and _wild(str(message)))
        or after is not None
        or before is not None
    )

    def matches(e: EventEntry) -> bool:
        when = at(e.time)
        return (
            (indexes is None or e.index in indexes)
            and (ids is None or e.event_id in ids)
            and (types is None or e.entry_type.lower() in types)
            and (
                sources is None
                or any(fnmatch.fnmatchcase(e.source.lower(), s.lower()) for s in sources)
            )
            and (message is None or fnmatch.fnmatchcase(e.message.lower(), str(message).lower()))
            and (after is None or when > after)
            and (before is None or when < before)
        )

    found = []
    for e in reversed(entries):
        if len(found) >= newest:
            break
        if matches(e):
            found.append(entry_obj(name_of(name), ctx.machine.name, e))
    if not found and newest and not quiet_when_empty:
        ctx.error(
            PSError(
                "No matches found",
                fqid=f"GetEventLogNoEntriesFound,{CLS}",
                category="ObjectNotFound",
                exception="System.ArgumentException",
            )
        )
    return found


def name_of(log: str) -> str:
    from hvsim.model.eventlog import LOGS

    return next((n for n in LOGS if n.lower() == log.lower()), log)
