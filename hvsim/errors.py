"""Errors as PowerShell reports them: an ErrorRecord's message, FQID and category."""

from __future__ import annotations

from typing import Any


class PSError(Exception):
    """An ErrorRecord. Raise it for a terminating error; pass it to ctx.error() for a
    non-terminating one (Get-VM of a missing name writes one and goes on, R-21).

    `fqid` is the FullyQualifiedErrorId ("InvalidParameter,Microsoft.HyperV.PowerShell.
    Commands.GetVM"); `category` an ErrorCategory member name; `exception` the .NET
    exception type name.
    """

    def __init__(
        self,
        message: str,
        *,
        fqid: str,
        category: str = "NotSpecified",
        exception: str = "System.Management.Automation.RuntimeException",
        target: Any = None,
        activity: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fqid = fqid
        self.category = category
        self.exception = exception
        self.target = target
        self.activity = activity

    def __repr__(self) -> str:
        return f"PSError({self.message!r}, fqid={self.fqid!r}, category={self.category!r})"


def not_modelled(what: str) -> PSError:
    """A cmdlet or script the catalog knows but the model does not implement."""
    return PSError(
        f"hvsim does not model {what}. The simulated host refuses it rather than pretend.",
        fqid="NotModelled,hvsim",
        category="NotImplemented",
        exception="System.NotImplementedException",
    )
