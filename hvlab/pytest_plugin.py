"""A pytest plugin for test beds: a failover cluster as a session fixture.

Installed with hvlab (entry point `pytest11`), it adds the fixture `hvlab_lab`:

    def test_csv_is_shared(hvlab_lab):
        csv = hvlab_lab.csv_paths[0]
        hvlab_lab.run(hvlab_lab.nodes[0], "Set-Content", Path=csv + "\\\\probe.txt", Value="x")
        assert hvlab_lab.run(hvlab_lab.nodes[1], "Get-Content", Path=csv + "\\\\probe.txt") == ["x"]

and these options:

    --hvlab-lab PATH       the lab file, or a shipped lab's name (also: the ini option
                           hvlab_lab, or @pytest.mark.hvlab_lab("PATH") on the tests)
    --hvlab-restore NAME   restore this whole-lab checkpoint before the tests
    --hvlab-keep           leave the lab up at the end (default: take down what this
                           session built; a lab that was complete before is kept)
    --hvlab-home DIR       where hvlab keeps its state (default $HVLAB_HOME or ./.hvlab)

The lab is brought up once per session, or reused when it is already complete. With
no host configured (HVLAB_HOST), it is built on the embedded simulated host.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

MARKER = "hvlab_lab"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hvlab", "hvlab test beds")
    group.addoption("--hvlab-lab", dest="hvlab_lab", help="lab file or shipped lab name")
    group.addoption(
        "--hvlab-restore", dest="hvlab_restore", help="restore this checkpoint of the lab first"
    )
    group.addoption(
        "--hvlab-keep", dest="hvlab_keep", action="store_true", help="leave the lab up at the end"
    )
    group.addoption("--hvlab-home", dest="hvlab_home", help="hvlab's state folder")
    parser.addini(MARKER, "lab file (or shipped lab name) for the hvlab_lab fixture")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(path): the lab the hvlab_lab fixture uses")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The fixture is one per session: the markers of the collected tests must agree.
    wanted = {str(m.args[0]) for item in items for m in item.iter_markers(MARKER) if m.args}
    if len(wanted) > 1:
        raise pytest.UsageError(
            f"tests ask for different labs with @pytest.mark.{MARKER}: {', '.join(sorted(wanted))}; "
            "the hvlab_lab fixture is one per session"
        )
    config._hvlab_marked = next(iter(wanted), None)  # type: ignore[attr-defined]


@dataclasses.dataclass
class LabHandle:
    """What a test gets: names and addresses, and ways to look and act inside the lab."""

    lab: Any  # hvlab.api.Lab, connected for the session
    built_here: bool

    @property
    def name(self) -> str:
        return str(self.lab.name)

    @property
    def nodes(self) -> list[str]:
        return [vm.name for vm in self.lab.spec.nodes]

    @property
    def addresses(self) -> dict[str, str | None]:
        """Each VM's management address."""
        return {
            vm.name: (str(vm.nics[0].ip) if vm.nics and vm.nics[0].ip else None)
            for vm in self.lab.spec.vms
        }

    @property
    def dc(self) -> str | None:
        return None if self.lab.spec.dc is None else self.lab.spec.dc.name

    @property
    def cluster(self) -> str:
        return str(self.lab.spec.cluster.name)

    @property
    def cluster_address(self) -> str:
        return str(self.lab.spec.cluster.address)

    @property
    def csv_paths(self) -> list[str]:
        return [v.csv_path for v in self.lab.spec.volumes]

    @property
    def ha_vms(self) -> list[str]:
        return [h.name for h in self.lab.spec.ha_vms]

    def owner_of(self, ha_vm: str) -> str | None:
        """The node the HA VM runs on now (read from the host)."""
        return self.status().owner_of(ha_vm)

    def uptime(self, vm: str) -> float | None:
        """Seconds a VM has run: a lab VM as the host sees it, an HA VM as the node that
        owns it sees it (None when it is not running)."""
        from hvlab.status import seconds

        if vm in self.ha_vms:
            owner = self.owner_of(vm)
            if not owner:
                return None
            records = self.run(owner, "Get-VM", Name=vm)
        else:
            records = self.host.run("Get-VM", Name=self.lab.spec.on_host(vm))
        return seconds(records[0].get("Uptime")) if records else None

    def status(self) -> Any:
        """hvlab.api.Status of the lab, read now."""
        return self.lab.status()

    def run(self, vm: str, cmdlet: str, **params: Any) -> list[Any]:
        """A cmdlet inside a lab VM through PowerShell Direct; its output records."""
        return self.lab.run(vm, cmdlet, **params)

    @property
    def host(self) -> Any:
        """The host session (hvlab.remote.Host): host.run("Get-VM"), ..."""
        return self.lab.session.host


def _lab_path(config: pytest.Config) -> str | None:
    return (
        config.getoption("hvlab_lab")
        or getattr(config, "_hvlab_marked", None)
        or config.getini(MARKER)
        or None
    )


@pytest.fixture(scope="session")
def hvlab_lab(request: pytest.FixtureRequest) -> Iterator[LabHandle]:
    """The lab, up and healthy for the session (see the module's docstring)."""
    from hvlab.api import Lab
    from hvlab.errors import HvlabError

    config = request.config
    home = config.getoption("hvlab_home")
    try:
        lab = Lab.load(_lab_path(config), home=home)
    except HvlabError as err:
        raise pytest.UsageError(f"hvlab_lab: {err}") from None
    with contextlib.ExitStack() as stack:
        stack.enter_context(lab.connected())
        restore = config.getoption("hvlab_restore")
        if restore:
            lab.restore(restore)
        before = lab.status()
        if not before.healthy:
            lab.up()  # builds what is missing; on a complete lab it changes nothing
        # Only what this session built is taken down: a lab that was there before (kept
        # by an earlier run, maybe stopped) is someone's, and stays.
        built_here = not before.present
        handle = LabHandle(lab, built_here)
        try:
            yield handle
        finally:
            if built_here and not config.getoption("hvlab_keep"):
                lab.down()
