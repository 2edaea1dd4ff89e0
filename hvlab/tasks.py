"""hvlab's tasks: `hvlab --list` (or `invoke --list` in a checkout) shows every task,
`hvlab --help TASK` its options.

Tasks parse their arguments, call one function of the package, and turn its
errors into exit codes (hvlab.errors). No logic lives here. The same collection
serves the `hvlab` command (hvlab.main), `python -m hvlab` and `invoke` in a
checkout (the top-level tasks.py imports it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from invoke import Collection, Exit, task

LAB_HELP = (
    "Lab file, or the name of a lab shipped with hvlab (s2d-2node, s2d-4node, example-full). "
    "Default: labs/s2d-2node.yaml here, else the shipped s2d-2node."
)


VERBOSITY = {
    "verbose": "More on the terminal: -v for steps, waits and retries, -vv for every host call.",
    "quiet": "Only problems on the terminal (.hvlab/<host>/<lab>/run.log still records everything).",
}


def hvlab_task(*args: Any, **kwargs: Any) -> Any:
    """@task with -v (counts: -vv) and -q explained, as every hvlab task takes them."""
    kwargs["help"] = {**kwargs.get("help", {}), **VERBOSITY}
    kwargs.setdefault("incrementable", ["verbose"])
    return task(*args, **kwargs)


def _run(
    fn: Callable[..., Any], *args: Any, verbosity: tuple[int, bool] = (0, False), **kwargs: Any
) -> None:
    from hvlab import log
    from hvlab.errors import EXIT_INTERRUPTED, HvlabError

    log.configure(*verbosity)
    try:
        fn(*args, **kwargs)
    except HvlabError as err:
        raise Exit(str(err), code=err.exit_code) from None
    except KeyboardInterrupt:
        raise Exit(
            "interrupted; run the same command again to resume", code=EXIT_INTERRUPTED
        ) from None


@hvlab_task(
    help={
        "lab": LAB_HELP,
        "parallel": "How many VMs to work on at once (default: all).",
        "json": "Print a JSON report on stdout; progress goes to stderr.",
        "yes": "Do not ask before creating resources on a real host.",
        "trace": "Write every host call (cmdlet, parameter names, duration) to this file.",
        "allow-restart": "Apply changes that need a VM off (memory, processors, MACs, "
        "adapters to remove): cluster nodes one at a time (drain, shut down, change, start, "
        "resume, storage repair), other VMs shut down, changed and started.",
        "junit": "Write the run as a JUnit XML report to this file: each step a test case, "
        "Test-Cluster's results a suite of their own.",
    }
)
def up(
    c,
    lab=None,
    parallel=0,
    json=False,
    yes=False,
    trace=None,
    allow_restart=False,
    junit=None,
    verbose=0,
    quiet=False,
):
    """Build the lab: switches, VMs, domain, cluster, S2D, CSV and an HA VM.

    Every step reads the host first and changes only what is missing: run it again
    to resume after a failure or an interrupt; on a complete lab it changes nothing.
    A change of a built lab that needs a VM off (memory, processors, a MAC) is made
    only with --allow-restart; without it lab.up does the rest, names what waits,
    and exits 1, because the lab is not as its file says.
    With no HVLAB_HOST set it works on the embedded simulated host (hvsim).
    Passwords come from HVLAB_ADMIN_PASSWORD and HVLAB_DSRM_PASSWORD (or a prompt).
    Exit codes: 0 done, 1 a step failed or changes wait for --allow-restart,
    2 bad input or settings, 130 interrupted.
    """
    from hvlab import cli

    _run(
        cli.up,
        c.config,
        lab=lab,
        parallel=parallel,
        as_json=json,
        yes=yes,
        trace=trace,
        allow_restart=allow_restart,
        junit=junit,
        verbosity=(verbose, quiet),
    )


@hvlab_task(
    help={"lab": LAB_HELP, "yes": "Do not ask for confirmation.", "json": "Print a JSON report."}
)
def down(c, lab=None, yes=False, json=False, verbose=0, quiet=False):
    """Remove what the lab created, and nothing else.

    Only resources that carry the lab's mark are removed (VM and switch Notes
    'hvlab:<lab>', the lab folder's .hvlab-lab file); it lists them and asks first.
    """
    from hvlab import cli

    _run(
        cli.down,
        c.config,
        lab=lab,
        yes=yes,
        as_json=json,
        verbosity=(verbose, quiet),
    )


@hvlab_task(help={"lab": LAB_HELP, "json": "Print the lab's state as JSON on stdout."})
def status(c, lab=None, json=False, verbose=0, quiet=False):
    """Show VMs, cluster nodes, witness, S2D pool, CSVs and HA VMs."""
    from hvlab import cli

    _run(
        cli.status,
        c.config,
        lab=lab,
        as_json=json,
        verbosity=(verbose, quiet),
    )


@hvlab_task(help={"lab": LAB_HELP, "json": "Print a JSON report on stdout."})
def stop(c, lab=None, json=False, verbose=0, quiet=False):
    """Shut the lab down cleanly: HA VMs, the cluster, the nodes, then the DC.

    Each VM shuts down through its guest (no power cut) and is waited for until Off.
    """
    from hvlab import cli

    _run(cli.stop, c.config, lab=lab, as_json=json, verbosity=(verbose, quiet))


@hvlab_task(help={"lab": LAB_HELP, "json": "Print a JSON report on stdout."})
def start(c, lab=None, json=False, verbose=0, quiet=False):
    """Start the lab in order: the DC and AD, the nodes, the cluster, the HA VMs.

    Returns once lab.status is healthy (every VM running, nodes Up, pool Healthy,
    CSVs and HA VMs online), or fails saying what is not.
    """
    from hvlab import cli

    _run(cli.start, c.config, lab=lab, as_json=json, verbosity=(verbose, quiet))


@hvlab_task(
    name="checkpoint",
    help={
        "name": "The checkpoint's name (letters, digits, '.', '_', '-').",
        "lab": LAB_HELP,
        "json": "Print a JSON report on stdout.",
    },
)
def checkpoint_(c, name, lab=None, json=False, verbose=0, quiet=False):
    """Checkpoint every VM of the lab at one moment.

    The lab is shut down cleanly first (HA VMs, cluster, nodes, DC) so the cluster
    and its pool come back healthy from the checkpoint; a lab that was running is
    started again and waited for until healthy. The checkpoints are named
    hvlab:<lab>:<NAME>; lab.down removes them.
    """
    from hvlab import cli

    _run(cli.checkpoint, c.config, name, lab=lab, as_json=json, verbosity=(verbose, quiet))


@hvlab_task(
    help={
        "name": "The checkpoint to go back to (lab.checkpoints lists them).",
        "lab": LAB_HELP,
        "json": "Print a JSON report on stdout.",
    }
)
def restore(c, name, lab=None, json=False, verbose=0, quiet=False):
    """Put every VM of the lab back to a checkpoint and start the lab.

    Every VM is turned off (its state is discarded), restored, and the lab started
    in order until lab.status is healthy. A lab is restored whole: a checkpoint
    missing on any VM is refused (R-13).
    """
    from hvlab import cli

    _run(cli.restore, c.config, name, lab=lab, as_json=json, verbosity=(verbose, quiet))


@hvlab_task(help={"lab": LAB_HELP, "json": "Print the checkpoints as JSON."})
def checkpoints(c, lab=None, json=False, verbose=0, quiet=False):
    """List the lab's checkpoints: name, when taken, and whether every VM has it."""
    from hvlab import cli

    _run(cli.checkpoints, c.config, lab=lab, as_json=json, verbosity=(verbose, quiet))


@hvlab_task(
    name="run",
    iterable=["param"],
    help={
        "vm": "The lab VM to run the cmdlet in.",
        "cmdlet": "A cmdlet name (Verb-Noun).",
        "param": "A parameter as NAME=VALUE, the value read as YAML (3, true, null, 'text'); "
        "repeat for more.",
        "lab": LAB_HELP,
        "json": "Print the records as JSON.",
    },
)
def run_(c, cmdlet, vm=None, param=None, lab=None, json=False, verbose=0, quiet=False):
    """Run one cmdlet inside a lab VM (PowerShell Direct) and print what it returns.

    Example: hvlab lab.run --vm hvhost01 Get-ClusterNode
             hvlab lab.run --vm dc01 Get-Service --param Name=NTDS
    """
    from hvlab import cli

    _run(
        cli.run_in_vm,
        c.config,
        vm=vm,
        cmdlet=cmdlet,
        params=param,
        lab=lab,
        as_json=json,
        verbosity=(verbose, quiet),
    )


@hvlab_task(help={"vm": "The lab VM.", "lab": LAB_HELP, "json": "Print it as JSON."})
def connect(c, vm=None, lab=None, json=False, verbose=0, quiet=False):
    """Show how to reach a lab VM: its console (vmconnect), PowerShell Direct, its address."""
    from hvlab import cli

    _run(cli.connect, c.config, vm=vm, lab=lab, as_json=json, verbosity=(verbose, quiet))


@hvlab_task(name="list", help={"json": "Print the labs as JSON."})
def list_(c, json=False, verbose=0, quiet=False):
    """List every lab on the host by its mark: VMs and their states, switches, folder.

    Needs no lab file: it reads the marks (VM and switch Notes 'hvlab:<lab>', lab
    folders' .hvlab-lab) and says which lab is in use by a run, and by whom.
    """
    from hvlab import cli

    _run(cli.list_labs, c.config, as_json=json, verbosity=(verbose, quiet))


@hvlab_task(
    help={
        "lab": LAB_HELP,
        "kind": "node-failure, maintenance, rolling-update, disk-failure or network.",
        "recover": "Bring the lab back after an interrupted drill: every node, link and "
        "drive back, paused nodes resumed, roles started, storage repaired.",
        "json": "Print the drill's report as JSON on stdout; progress goes to stderr.",
        "junit": "Write the phases as a JUnit XML report to this file.",
    }
)
def drill(c, kind=None, lab=None, recover=False, json=False, junit=None, verbose=0, quiet=False):
    """Prove the lab's high availability: break one thing, measure, bring it back.

    The lab must be complete and healthy (otherwise nothing is changed, exit 2). Each
    drill prints its timeline, the HA VM's downtime and the storage repair time, and
    passes or fails against its expectation (exit 0 or 1). An interrupted drill leaves
    the lab recoverable: run `lab.drill --recover` (or lab.up).
    """
    from hvlab import cli

    _run(
        cli.drill,
        c.config,
        lab=lab,
        kind=kind,
        recover=recover,
        as_json=json,
        junit=junit,
        verbosity=(verbose, quiet),
    )


@hvlab_task(
    help={
        "lab": LAB_HELP,
        "json": "Print the plan as JSON.",
        "offline": "Do not contact a host; list everything the lab would create.",
    }
)
def plan(c, lab=None, json=False, offline=False, verbose=0, quiet=False):
    """Show what lab.up would change and why, without changing anything.

    Against a host each step reports its first change, or why it has none; steps
    after a change show as pending. --offline lists everything the lab holds.
    """
    from hvlab import cli

    _run(
        cli.plan,
        c.config,
        lab=lab,
        as_json=json,
        offline=offline,
        verbosity=(verbose, quiet),
    )


@hvlab_task(help={"lab": LAB_HELP})
def validate(c, lab=None, verbose=0, quiet=False):
    """Check a lab file; print a one-line summary or every problem found."""
    from hvlab import cli

    _run(
        cli.validate,
        c.config,
        lab=lab,
        verbosity=(verbose, quiet),
    )


@hvlab_task(
    help={
        "lab": LAB_HELP,
        "out": "Folder to write the rendered files to (with --diagram: default here).",
        "diagram": "Write only a picture of the lab's topology, <lab>-topology.svg.",
    }
)
def render(c, out=None, lab=None, diagram=False, verbose=0, quiet=False):
    """Write every rendered file (unattend.xml, guest data) per VM, for inspection.

    With --diagram, draw the lab instead: host, switches and subnets, VMs and their
    NICs, the cluster, its CSVs and HA VMs (needs matplotlib: hvlab[pictures]).
    """
    from hvlab import cli

    _run(
        cli.render,
        c.config,
        lab=lab,
        out=out,
        diagram=diagram,
        verbosity=(verbose, quiet),
    )


@hvlab_task(
    help={
        "lab": LAB_HELP,
        "timeline": "Draw the run as a chart of steps per VM over time, to this .svg or .png file.",
        "report": "A report.json to read instead of the lab's last one.",
    }
)
def report(c, lab=None, timeline=None, report=None, verbose=0, quiet=False):
    """Summarise the last lab.up: result, steps, where the time went.

    With --timeline FILE, draw it: one row per VM, a bar per step coloured by phase,
    on the host's clock (modelled seconds on the simulated host).
    """
    from hvlab import cli

    _run(
        cli.report,
        c.config,
        lab=lab,
        timeline=timeline,
        report_file=report,
        verbosity=(verbose, quiet),
    )


@hvlab_task
def schema(c, verbose=0, quiet=False):
    """Print the JSON Schema of lab files (for editor completion)."""
    from hvlab import cli

    _run(
        cli.schema,
        verbosity=(verbose, quiet),
    )


@hvlab_task(
    help={
        "port": "TCP port (default 5985, or 5986 with --https).",
        "https": "Serve HTTPS with a self-signed certificate (or --cert/--key).",
        "auth": "basic or ntlm (default ntlm).",
        "user": "Account clients log on with (default: HVSIM_USER, else 'hvadmin').",
        "password": "Its password (default: HVSIM_PASSWORD).",
        "cert": "PEM certificate for --https.",
        "key": "PEM private key for --https.",
        "state": "Keep the host in this file across restarts.",
        "timescale": "Real seconds per modelled second (0 = instant; default HVSIM_TIMESCALE or 0).",
        "faults": "Fault injection spec (see hvsim/faults.py), or HVSIM_FAULTS.",
        "allow_unencrypted": "Accept Basic over HTTP and unsealed messages (AllowUnencrypted=true).",
        "latency": "Milliseconds each HTTP exchange takes, as over a real link "
        "(default HVSIM_LATENCY_MS or 0).",
    },
    # No one-letter flags: -h would be --https, where everyone expects help.
    auto_shortflags=False,
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
    latency=None,
    verbose=0,
    quiet=False,
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
        latency=latency,
        verbosity=(verbose, quiet),
    )


@hvlab_task(help={"state": "State file of the simulated host (default: the embedded host's)."})
def show(c, state=None, verbose=0, quiet=False):
    """Print the simulated host as a tree."""
    from hvsim import cli

    _run(
        cli.show,
        state=state,
        verbosity=(verbose, quiet),
    )


@hvlab_task(help={"number": "A rule number as messages cite it: R-38, or 38."})
def rule(c, number, verbose=0, quiet=False):
    """Explain a rule that messages cite, such as R-38.

    Prints its entry in hvlab's rule reference: what Windows does, where that is
    documented, and what hvlab and its simulated host do about it."""
    from hvlab import cli

    _run(
        cli.rule,
        number,
        verbosity=(verbose, quiet),
    )


IMAGE_FOLDER_HELP = "Folder of the images on the host (default C:\\hvlab\\images)."


@hvlab_task(
    name="build",
    help={
        "iso": "The Windows Server ISO, a path on the host.",
        "iso_local": "An ISO on this machine: uploaded to C:\\hvlab\\iso first (resumable, checked).",
        "edition": "The image to apply, by its name in the ISO or its index "
        "(default: Datacenter with the Desktop Experience).",
        "name": "Name of the image (NAME.vhdx, NAME.json); labs refer to it as `name: NAME`.",
        "size": "Virtual size of the VHDX (default 60GB, at least 32GB).",
        "features": "Roles to stage offline, comma-separated; 'node' = the roles hvlab installs on "
        "cluster nodes, 'dc' = AD-Domain-Services.",
        "packages": "Update or driver packages (.msu/.cab) on the host, comma-separated.",
        "folder": IMAGE_FOLDER_HELP,
        "json": "Print the image's facts as JSON on stdout; progress goes to stderr.",
        "yes": "Do not ask before creating files on a real host.",
    },
)
def image_build(
    c,
    iso=None,
    iso_local=None,
    edition=None,
    name=None,
    size=None,
    features=None,
    packages=None,
    folder=None,
    json=False,
    yes=False,
    verbose=0,
    quiet=False,
):
    """Build a base image from a Windows Server ISO on the host.

    Mounts the ISO, applies the edition to a new dynamic Generation 2 VHDX (EFI, MSR
    and Windows partitions), makes it bootable, adds packages, stages roles offline,
    and writes a sidecar JSON next to it. The same ISO, edition and roles again do
    nothing; an image is never overwritten; an interrupted build leaves nothing a lab
    uses and the next run cleans it up. Exit codes: 0 done, 1 failed, 2 bad input
    (nothing started), 130 interrupted.
    """
    from hvlab import cli

    _run(
        cli.image_build,
        c.config,
        iso=iso,
        iso_local=iso_local,
        edition=edition,
        name=name,
        size=size,
        features=features,
        packages=packages,
        folder=folder,
        as_json=json,
        yes=yes,
        verbosity=(verbose, quiet),
    )


@hvlab_task(name="list", help={"folder": IMAGE_FOLDER_HELP, "json": "Print the images as JSON."})
def image_list(c, folder=None, json=False, verbose=0, quiet=False):
    """Show the images in the host's image folder with their sidecar facts."""
    from hvlab import cli

    _run(cli.image_list, c.config, folder=folder, as_json=json, verbosity=(verbose, quiet))


lab = Collection(
    "lab",
    up,
    down,
    status,
    plan,
    validate,
    render,
    report,
    schema,
    stop,
    start,
    checkpoint_,
    restore,
    checkpoints,
    run_,
    connect,
    list_,
    drill,
)
sim = Collection("sim", serve, show)
image = Collection("image", image_build, image_list)
ns = Collection(lab, sim, image, rule)
