"""hvlab's tasks for `invoke` in a checkout: `invoke --list`, `invoke lab.up`.

The collection lives in the package (hvlab/tasks.py), so the installed `hvlab`
command and `python -m hvlab` run exactly the same tasks from any folder.
"""

from hvlab.tasks import ns

__all__ = ["ns"]
