"""The unattend.xml template, importable as the package resource `hvlab.unattend`.

This folder is the source of truth; setup.py maps it into the package so that an
installed hvlab renders the same file (hvlab.resources)."""
