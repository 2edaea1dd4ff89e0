"""hvlab's command line: `invoke --list` shows every task, `invoke --help TASK` its options.

Tasks parse their arguments, call one function of the package, and turn its
errors into exit codes (hvlab.errors). No logic lives here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from invoke import Collection, Exit, task

LAB_HELP = "Lab file (default: labs/s2d-2node.yaml)."


def _run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    from hvlab.errors import EXIT_INTERRUPTED, HvlabError

    try:
        fn(*args, **kwargs)
    except HvlabError as err:
        raise Exit(str(err), code=err.exit_code) from None
    except KeyboardInterrupt:
        raise Exit(
            "interrupted; run the same command again to resume", code=EXIT_INTERRUPTED
        ) from None


@task(
    help={
        "lab": LAB_HELP,
        "parallel": "How many VMs to work on at once (default: all).",
        "json": "Print a JSON report on stdout; progress goes to stderr.",
        "yes": "Do not ask before creating resources on a real host.",
        "trace": "Write every host call (cmdlet, parameter names, duration) to this file.",
    }
)
def up(c, lab=None, parallel=0, json=False, yes=False, trace=None):
    """Build the lab: switches, VMs, domain, cluster, S2D, CSV and an HA VM.

    Every step reads the host first and changes only what is missing: run it again
    to resume after a failure or an interrupt; on a complete lab it changes nothing.
    With no HVLAB_HOST set it works on the embedded simulated host (hvsim).
    Passwords come from HVLAB_ADMIN_PASSWORD and HVLAB_DSRM_PASSWORD (or a prompt).
    Exit codes: 0 done, 1 a step failed, 2 bad input or settings, 130 interrupted.
    """
    from hvlab import cli

    _run(cli.up, c.config, lab=lab, parallel=parallel, as_json=json, yes=yes, trace=trace)


@task(help={"lab": LAB_HELP, "yes": "Do not ask for confirmation.", "json": "Print a JSON report."})
def down(c, lab=None, yes=False, json=False):
    """Remove what the lab created, and nothing else.

    Only resources that carry the lab's mark are removed (VM and switch Notes
    'hvlab:<lab>', the lab folder's .hvlab-lab file); it lists them and asks first.
    """
    from hvlab import cli

    _run(cli.down, c.config, lab=lab, yes=yes, as_json=json)


@task(help={"lab": LAB_HELP, "json": "Print the lab's state as JSON on stdout."})
def status(c, lab=None, json=False):
    """Show VMs, cluster nodes, witness, S2D pool, CSVs and HA VMs."""
    from hvlab import cli

    _run(cli.status, c.config, lab=lab, as_json=json)


@task(
    help={
        "lab": LAB_HELP,
        "json": "Print the plan as JSON.",
        "offline": "Do not contact a host; list everything the lab would create.",
    }
)
def plan(c, lab=None, json=False, offline=False):
    """Show what lab.up would change and why, without changing anything.

    Against a host each step reports its first change, or why it has none; steps
    after a change show as pending. --offline lists everything the lab holds.
    """
    from hvlab import cli

    _run(cli.plan, c.config, lab=lab, as_json=json, offline=offline)


@task(help={"lab": LAB_HELP})
def validate(c, lab=None):
    """Check a lab file; print a one-line summary or every problem found."""
    from hvlab import cli

    _run(cli.validate, lab=lab)


@task(help={"lab": LAB_HELP, "out": "Folder to write the rendered files to."})
def render(c, out, lab=None):
    """Write every rendered file (unattend.xml, guest data) per VM, for inspection."""
    from hvlab import cli

    _run(cli.render, lab=lab, out=out)


@task
def schema(c):
    """Print the JSON Schema of lab files (for editor completion)."""
    from hvlab import cli

    _run(cli.schema)


@task(
    help={
        "port": "TCP port (default 5985, or 5986 with --https).",
        "https": "Serve HTTPS with a self-signed certificate (or --cert/--key).",
        "auth": "basic or ntlm (default ntlm).",
        "user": "Account clients log on with (default: the environment's HVSIM_USER or 'vagrant').",
        "password": "Its password (default: HVSIM_PASSWORD).",
        "cert": "PEM certificate for --https.",
        "key": "PEM private key for --https.",
        "state": "Keep the host in this file across restarts.",
        "timescale": "Real seconds per modelled second (0 = instant; default HVSIM_TIMESCALE or 0).",
        "faults": "Fault injection spec (see hvsim/faults.py), or HVSIM_FAULTS.",
        "allow_unencrypted": "Accept Basic over HTTP and unsealed messages (AllowUnencrypted=true).",
    }
)
def serve(
    c,
    port=0,
    https=False,
    auth="ntlm",
    user=None,
    password=None,
    cert=None,
    key=None,
    state=None,
    timescale=None,
    faults=None,
    allow_unencrypted=False,
):
    """Serve the simulated Hyper-V host over WinRM on 127.0.0.1."""
    from hvsim import cli

    _run(
        cli.serve,
        port=port,
        https=https,
        auth=auth,
        user=user,
        password=password,
        cert=cert,
        key=key,
        state=state,
        timescale=timescale,
        faults=faults,
        allow_unencrypted=allow_unencrypted,
    )


@task(help={"state": "State file of the simulated host (default: the embedded host's)."})
def show(c, state=None):
    """Print the simulated host as a tree."""
    from hvsim import cli

    _run(cli.show, state=state)


lab = Collection("lab", up, down, status, plan, validate, render, schema)
sim = Collection("sim", serve, show)
ns = Collection(lab, sim)
