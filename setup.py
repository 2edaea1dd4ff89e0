"""Package layout that pyproject.toml cannot express on its own.

labs/, templates/ and unattend/ stay at the top of the project (where people look
for them) and ship inside the package as hvlab.labs, hvlab.templates and
hvlab.unattend, so that an installed hvlab reads them with importlib.resources
exactly as a checkout does. Everything else about the package is in pyproject.toml.
"""

from setuptools import find_packages, setup

RESOURCE_PACKAGES = {
    "hvlab.labs": "labs",
    "hvlab.templates": "templates",
    "hvlab.unattend": "unattend",
}

setup(
    packages=[*find_packages(include=["hvlab", "hvlab.*", "hvsim", "hvsim.*"]), *RESOURCE_PACKAGES],
    package_dir=RESOURCE_PACKAGES,
)
