"""Cmdlet families. Each module registers its handlers with hvsim.registry.cmdlet.

Add a family by importing it here.
"""

import importlib
import pkgutil

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")
