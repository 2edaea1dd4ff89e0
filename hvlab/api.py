"""hvlab's Python API: a lab on a host, as objects.

    from hvlab import Lab

    lab = Lab.load("labs/s2d-2node.yaml")      # or a shipped lab's name: Lab.load("s2d-4node")
    result = lab.up()                          # builds what is missing; raises hvlab.errors.*
    status = lab.status()
    print(status.healthy, status.owner_of("havm01"), status.csv_paths)
    with lab.connected():                      # one host session for several calls
        lab.run("hvhost01", "Get-ClusterNode")  # a cmdlet inside a VM (PowerShell Direct)
    lab.checkpoint("base")                     # every VM at one moment (lab shut down cleanly)
    lab.restore("base")                        # the whole lab back to it, healthy again
    lab.stop(); lab.start()                    # in order: HA VMs, cluster, nodes, DC, and back
    lab.down()

The API prints nothing unless asked (`output=sys.stderr` shows the progress the tasks
show). It raises hvlab's exceptions (hvlab.errors), whose `exit_code` the tasks turn
into exit codes. Settings come from `config` (a mapping like invoke.yaml's `hvlab:`
section, or Invoke's config) and the HVLAB_* environment; with no host configured,
the embedded simulated host is used. State goes under `home` (default $HVLAB_HOME,
else ./.hvlab). The tasks (`hvlab lab.up`, ...) are thin callers of this API.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from hvlab import paths
from hvlab.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class UpResult:
    """What lab.up did: the result, the steps, and where to reach the lab."""

    lab: str
    ok: bool
    changed: int
    steps: list[dict[str, Any]]
    endpoints: dict[str, Any]
    report: dict[str, Any]

    @property
    def no_change(self) -> bool:
        return self.ok and self.changed == 0


@dataclasses.dataclass(frozen=True)
class Status:
    """The lab as the host sees it (the same data `lab.status --json` prints)."""

    data: dict[str, Any]

    @property
    def lab(self) -> str:
        return str(self.data.get("lab"))

    @property
    def present(self) -> bool:
        """Whether any of the lab's VMs is on the host."""
        return any(vm.get("state") not in ("Missing", "NotOurs") for vm in self.data["vms"])

    @property
    def vms(self) -> dict[str, str]:
        """Each lab VM and its state (Running, Off, Missing, NotOurs...)."""
        return {vm["name"]: vm["state"] for vm in self.data["vms"]}

    @property
    def nodes(self) -> dict[str, str]:
        """Each cluster node and its state (Up, Down, Paused...)."""
        cluster = self.data.get("cluster") or {}
        return {n["name"]: n["state"] for n in cluster.get("nodes", [])}

    @property
    def csv_paths(self) -> list[str]:
        return [c["path"] for c in self.data.get("csv", [])]

    @property
    def ha_vms(self) -> dict[str, dict[str, Any]]:
        return {h["name"]: h for h in self.data.get("ha_vms", [])}

    def owner_of(self, ha_vm: str) -> str | None:
        """The node an HA VM runs on."""
        entry = self.ha_vms.get(ha_vm)
        return None if entry is None else entry.get("owner_node")

    @property
    def pool_health(self) -> str | None:
        s2d = self.data.get("s2d") or {}
        return (s2d.get("pool") or {}).get("health")

    @property
    def healthy(self) -> bool:
        """Every VM running, every node Up, the pool Healthy, every CSV and HA VM online."""
        if not self.data["vms"] or any(s != "Running" for s in self.vms.values()):
            return False
        if not self.nodes or any(s != "Up" for s in self.nodes.values()):
            return False
        if self.pool_health != "Healthy":
            return False
        if any(str(c.get("state")) != "Online" for c in self.data.get("csv", [])):
            return False
        return all(str(h.get("state")) in ("Online", "Running") for h in self.ha_vms.values())


class Lab:
    """One lab (a lab file) on one host (the configured one, or the embedded hvsim)."""

    def __init__(
        self,
        spec: Any,
        source: str,
        *,
        config: Any = None,
        home: Path | None = None,
        output: IO[str] | None = None,
    ) -> None:
        self.spec = spec
        self.source = source
        self.config = config
        self.home = Path(home) if home is not None else paths.home(config)
        self.output = output
        self._session: Any = None
        self._book: Any = None

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        config: Any = None,
        home: str | Path | None = None,
        output: IO[str] | None = None,
    ) -> Lab:
        """Read and check a lab file (or a shipped lab by name; None: the default lab).
        Raises SpecError (every problem, with its line) or ConfigError."""
        from hvlab.cli import described
        from hvlab.spec import load_lab

        file, how = paths.lab_path(config, None if path is None else str(path))
        return cls(
            load_lab(file),
            described(file, how),
            config=config,
            home=Path(home) if home is not None else None,
            output=output,
        )

    @property
    def name(self) -> str:
        return str(self.spec.name)

    @property
    def state_dir(self) -> Path:
        """Where this lab's state, reports, trace and run log are kept."""
        return paths.state_dir(self.name, self.home, paths.host_id(self.config))

    def __repr__(self) -> str:
        return f"Lab({self.name!r}, from {self.source})"

    # -- the host session ---------------------------------------------------------

    @contextlib.contextmanager
    def connected(self, parallel: int = 0) -> Iterator[Lab]:
        """Keep one session to the host open for every call inside the block (on the
        embedded host: hold it, so other tasks wait, and save each change as made)."""
        if self._session is not None:
            yield self
            return
        from hvlab.session import open_session

        with open_session(
            self.config,
            parallel=parallel,
            state_base=self.home,
            writes=True,
            verb="api",
            vms=self.spec.fault_names,
            lab_lock=self.name,
        ) as session:
            self._session = session
            try:
                yield self
            finally:
                self._session = None

    @property
    def session(self) -> Any:
        """The open host session (inside `connected()`), else None."""
        return self._session

    def _target(self) -> Any:
        from hvlab.lab import Target

        return Target(self.spec, self.source, self.output, self._session)

    # -- the lifecycle ------------------------------------------------------------

    def plan(self) -> dict[str, Any]:
        """What up() would change and why, changing nothing."""
        from hvlab import lab as labs

        return labs.plan(self.config, state_base=self.home, target=self._target())

    def up(
        self,
        *,
        parallel: int = 0,
        trace: str | Path | None = None,
        ask: bool = False,
        allow_restart: bool = False,
        junit: str | Path | None = None,
    ) -> UpResult:
        """Build the lab, or finish it; raises the failing step's error, which carries
        the run's report as `.report` (written under state_dir with the diagnostics).
        `ask` asks on the terminal before building on a real host. Changes that need a
        VM off are made only with `allow_restart`; without it, after the rest is done,
        ChangesWaiting (exit 1) names them. `junit`: write the run as a JUnit XML report
        there too (each step a case, Test-Cluster's results a suite of their own), also
        when a step failed."""
        from hvlab import lab as labs

        report = labs.up(
            self.config,
            parallel=parallel,
            yes=not ask,
            trace=None if trace is None else str(trace),
            state_base=self.home,
            target=self._target(),
            allow_restart=allow_restart,
            junit=None if junit is None else str(junit),
        )
        return UpResult(
            lab=self.name,
            ok=report["result"] == "ok",
            changed=int(report["changed"]),
            steps=report["steps"],
            endpoints=report.get("endpoints") or {},
            report=report,
        )

    def status(self) -> Status:
        from hvlab import status as lab_status

        return Status(lab_status.status(self.config, state_base=self.home, target=self._target()))

    def down(self, *, ask: bool = False) -> dict[str, Any]:
        """Remove what the lab provably created, and nothing else. Calling it is the
        confirmation unless `ask` (then it lists and asks on the terminal). Returns what
        was removed and what was left; a failure carries that as `.report`."""
        from hvlab import teardown

        return teardown.down(self.config, yes=not ask, state_base=self.home, target=self._target())

    def stop(self) -> dict[str, Any]:
        """Shut the lab down cleanly: HA VMs, cluster, nodes, DC (each waited for until Off)."""
        from hvlab import lifecycle

        return lifecycle.stop(self.config, state_base=self.home, target=self._target())

    def start(self) -> dict[str, Any]:
        """Start the lab in order (DC and AD, nodes, cluster, HA VMs) and wait until healthy."""
        from hvlab import lifecycle

        return lifecycle.start(self.config, state_base=self.home, target=self._target())

    # -- whole-lab checkpoints ----------------------------------------------------

    def checkpoint(self, name: str) -> dict[str, Any]:
        """A checkpoint of every VM at one moment, taken with the lab shut down cleanly;
        a lab that was running is started again and waited for until healthy. Raises
        ConfigError when the lab has a checkpoint of that name already."""
        from hvlab import lifecycle

        return lifecycle.checkpoint(self.config, name, state_base=self.home, target=self._target())

    def restore(self, name: str) -> dict[str, Any]:
        """Every VM back to the checkpoint `name`, started in order, waited for until
        healthy. The report's `host_seconds` is how long it took on the host's clock."""
        from hvlab import lifecycle

        return lifecycle.restore(self.config, name, state_base=self.home, target=self._target())

    def checkpoints(self) -> list[dict[str, Any]]:
        """The lab's checkpoints: name, when taken, which VMs have it."""
        from hvlab import lifecycle

        return lifecycle.checkpoints(self.config, state_base=self.home, target=self._target())

    # -- inside the VMs -----------------------------------------------------------

    def run(self, vm: str, cmdlet: str, **params: Any) -> list[Any]:
        """Run one cmdlet inside a lab VM through PowerShell Direct, as the account that
        logs on there now (local before the domain, the domain's after; R-38). Returns
        the records; raises HostError as the guest reported it."""
        # Cluster cmdlets report node names in capitals: match as Windows does.
        name = next((v.name for v in self.spec.vms if v.name.lower() == vm.lower()), None)
        if name is None:
            raise ConfigError(
                f"{vm} is not a VM of lab {self.name} ({', '.join(v.name for v in self.spec.vms)})"
            )
        with self.connected() as lab:
            return lab._run_in(name, cmdlet, params)

    def _run_in(self, vm: str, cmdlet: str, params: dict[str, Any]) -> list[Any]:
        from hvlab.guest import as_whoever_logs_on

        return as_whoever_logs_on(
            self._session.host, self._creds(), vm, lambda g: g.run(cmdlet, **params)
        )

    def _creds(self) -> Any:
        """Who logs on where, kept for the lab's life: a built lab's VMs take the domain
        account first (members and the DC alike; R-38), the local one otherwise."""
        if self._book is None:
            from hvlab.creds import CredentialBook
            from hvlab.lab import credential, lab_secrets

            self._book = CredentialBook(
                self.spec, lab_secrets(self.spec, self._session, dsrm=False), credential
            )
            for vm in self.spec.vms:
                self._book.use_domain(vm.name)
        return self._book
