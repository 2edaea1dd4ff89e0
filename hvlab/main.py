"""The `hvlab` command (and `python -m hvlab`): Invoke's own Program over hvlab's tasks.

`hvlab lab.up`, `hvlab --list` and `hvlab --help lab.up` read exactly like
`invoke lab.up` in a checkout, from any folder. Like `invoke`, it reads
`invoke.yaml` in the current folder (the `hvlab:` section) and INVOKE_* and
HVLAB_* variables.
"""

from __future__ import annotations

import os
import sys

from invoke import Exit, ParseError, Program

from hvlab import __version__
from hvlab.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED
from hvlab.tasks import ns


class HvlabProgram(Program):
    def parse_collection(self) -> None:
        super().parse_collection()
        # The collection is built in, so Invoke has no project folder to read
        # invoke.yaml from: the current folder is the project, as `.hvlab/` is.
        self.config.set_project_location(os.getcwd())
        self.config.load_project()

    def task_list_opener(self, extra: str = "") -> str:
        # Invoke titles a built-in collection "Subcommands"; say "Available tasks"
        # (with its depth and root notes) as `invoke --list` does in a checkout.
        namespace, self.namespace = self.namespace, None
        try:
            return super().task_list_opener(extra)
        finally:
            self.namespace = namespace

    def parse_tasks(self) -> None:
        try:
            super().parse_tasks()
        except ParseError as err:
            # An unknown task or option: say so, then show what there is.
            print(f"{self.binary}: {err}", file=sys.stderr)
            self.list_tasks()
            raise Exit(code=EXIT_BAD_INPUT) from None

    def run(self, argv: list[str] | None = None, exit: bool = True) -> None:
        try:
            super().run(argv, exit)
        except KeyboardInterrupt:
            # Ctrl-C before a task started (tasks map their own interrupts).
            print("interrupted", file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            # The reader went away (`hvlab --list | head`): stay quiet, also when
            # Python flushes stdout at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


program = HvlabProgram(namespace=ns, name="hvlab", binary="hvlab", version=__version__)


def main() -> None:
    program.run()
