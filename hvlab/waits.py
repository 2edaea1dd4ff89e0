"""How long each kind of wait may take before hvlab gives up (host seconds).

Defaults are the orchestrator deadlines of the rulebook's timing table (docs/timing.md;
hyperv-facts §11): generous, so a deadline only ever catches a hang. They are
settings: the `waits:` mapping in the hvlab section of invoke.yaml, for example

    hvlab:
      waits:
        first_boot: 2400     # a slow host: give first boots 40 minutes

On the simulated host every wait is scaled by its timescale, as before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from hvlab.errors import ConfigError
from hvlab.spec.names import did_you_mean


@dataclasses.dataclass(frozen=True)
class Waits:
    first_boot: int = 20 * 60  # specialize and OOBE until PowerShell Direct answers
    reboot: int = 10 * 60  # an ordinary restart until the guest answers again
    roles: int = 20 * 60  # role install with its restarts; Hyper-V boots twice
    dc_promotion: int = 30 * 60  # AD DS promotion and its restart
    ad_ready: int = 20 * 60  # AD answering after the promotion restart
    cluster_up: int = 10 * 60  # every node Up after New-Cluster
    migration: int = 5 * 60  # a live migration to end
    repair: int = 60 * 60  # a storage resync after a node or drive returns

    @classmethod
    def load(cls, config: Any = None) -> Waits:
        """The defaults, overlaid with the `waits` setting; bad names or values are
        bad input (exit 2)."""
        raw = _section(config)
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping) and not callable(getattr(raw, "items", None)):
            # (Invoke's config sections are mappings that do not say so.)
            raise ConfigError("hvlab.waits must be a mapping of wait names to seconds")
        names = [f.name for f in dataclasses.fields(cls)]
        values: dict[str, int] = {}
        for key, value in raw.items():
            if key not in names:
                raise ConfigError(
                    f"hvlab.waits has no wait {key!r}{did_you_mean(str(key), names)} "
                    f"(the waits are {', '.join(names)})"
                )
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 86400:
                raise ConfigError(
                    f"hvlab.waits.{key} must be a whole number of seconds from 1 to 86400, "
                    f"not {value!r}"
                )
            values[key] = value
        return cls(**values)


def _section(config: Any) -> Any:
    if config is None:
        return None
    try:
        return config["hvlab"]["waits"]
    except (KeyError, TypeError, AttributeError):
        return None
