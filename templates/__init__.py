"""Constant PowerShell scripts (host/ and guest/), importable as the package resource
`hvlab.templates`.

This folder is the source of truth; setup.py maps it into the package so that an
installed hvlab sends the same files (hvlab.resources)."""
