"""hvlab: one YAML file to a nested Hyper-V failover cluster with S2D, and back.

The Python API (hvlab.api): `from hvlab import Lab`; `Lab.load(path).up()`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Lab", "Status", "UpResult", "__version__"]

if TYPE_CHECKING:
    from hvlab.api import Lab, Status, UpResult


def __getattr__(name: str) -> Any:
    # The API loads on first use: `hvlab --list` and the tasks start without it.
    if name in ("Lab", "Status", "UpResult"):
        from hvlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'hvlab' has no attribute {name!r}")
