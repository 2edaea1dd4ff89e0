"""PowerShell Direct failures sorted into what a wait may retry (R-34, R-37, R-88)."""

from __future__ import annotations

import pytest

from hvlab.errors import HostError
from hvlab.guest import BAD_CREDENTIAL, NO_SUCH_VM, NOT_READY, OTHER, classify

CASES = [
    (
        "An error has occurred which Windows PowerShell cannot handle. A remote session might have ended.",
        "PSSessionStateBroken",
        NOT_READY,
    ),
    ("Ein Fehler ist aufgetreten (localised text)", "PSSessionStateBroken", NOT_READY),
    (
        "The I/O operation has been aborted because of either a thread exit or an application request.",
        "JobFailure",
        NOT_READY,
    ),
    (
        "The credential is invalid.",
        "CreateRemoteRunspaceForVMFailed,Microsoft.PowerShell.Commands.InvokeCommandCommand",
        BAD_CREDENTIAL,
    ),
    (
        "The input VMName parameter does not resolve to any virtual machine.",
        "InvalidVMNameNotSingle,Microsoft.PowerShell.Commands.InvokeCommandCommand",
        NO_SUCH_VM,
    ),
    ("Access is denied.", "AccessDenied", OTHER),
]


@pytest.mark.parametrize(("message", "error_id", "kind"), CASES)
def test_classify(message: str, error_id: str, kind: str) -> None:
    assert classify(HostError("Invoke-GuestCommand.ps1", message, error_id=error_id)) == kind
