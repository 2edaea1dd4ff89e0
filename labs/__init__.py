"""The lab files shipped with hvlab, importable as the package resource `hvlab.labs`.

This folder is the source of truth; setup.py maps it into the package so that an
installed hvlab finds the same files (hvlab.resources)."""
