"""The lab spec: YAML -> typed, checked Lab (pydantic), units, name rules.

from hvlab.spec import load_lab
lab = load_lab("labs/s2d-2node.yaml")   # SpecError lists every problem
"""

from __future__ import annotations

from hvlab.spec.loader import load_lab, parse_lab
from hvlab.spec.models import (
    HAVM,
    NIC,
    VM,
    Cluster,
    Domain,
    Host,
    Image,
    Lab,
    SecretNames,
    Switch,
    Totals,
    Volume,
    Witness,
)
from hvlab.spec.units import format_size, parse_size

__all__ = [
    "HAVM",
    "NIC",
    "VM",
    "Cluster",
    "Domain",
    "Host",
    "Image",
    "Lab",
    "SecretNames",
    "Switch",
    "Totals",
    "Volume",
    "Witness",
    "format_size",
    "load_lab",
    "parse_lab",
    "parse_size",
]
