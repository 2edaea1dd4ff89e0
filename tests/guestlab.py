"""Builds small labs in the model for the guest, AD, cluster and S2D tests.

VMs are made the way a person would on the host (differencing disk on the base
image, unattend written into Windows\\Panther while the disk is offline, data
disks of their own), through the Hyper-V model's objects; starting a VM goes
through the same seam Start-VM uses (GuestOS.attach + on_power_on).
"""

from __future__ import annotations

import base64
import dataclasses
import xml.etree.ElementTree as ET
from typing import Any

from hvsim import executor
from hvsim.errors import PSError
from hvsim.model.fs import FileSystem, GiB
from hvsim.model.guest import GuestOS
from hvsim.model.hyperv import VM, HardDrive, VMNetworkAdapter
from hvsim.model.vhd import differencing_child, new_disk
from hvsim.model.world import World
from hvsim.objects import Credential, SecureString

NS = "urn:schemas-microsoft-com:unattend"
WCM = "http://schemas.microsoft.com/WMIConfig/2002/State"
PASSWORD = "Lab-Test-Pw1!"  # a test password, not a secret
BASE = "C:\\hvlab\\images\\ws2022-datacenter.vhdx"
STANDARD = "C:\\hvlab\\images\\ws2022-standard.vhdx"


def encode_admin_password(pw: str, suffix: str = "AdministratorPassword") -> str:
    return base64.b64encode((pw + suffix).encode("utf-16-le")).decode("ascii")


def unattend_xml(
    name: str | None,
    ips: dict[str, str],
    dns: list[str] | None = None,
    password: str | None = PASSWORD,
    gateway: str | None = None,
    time_zone: str = "UTC",
    encoded: bool = True,
) -> str:
    """An answer file like hvlab renders (R-22, R-25, R-27, R-28), built with ElementTree."""
    ET.register_namespace("", NS)
    ET.register_namespace("wcm", WCM)
    root = ET.Element(f"{{{NS}}}unattend")

    def comp(settings: ET.Element, cname: str) -> ET.Element:
        return ET.SubElement(
            settings,
            f"{{{NS}}}component",
            {
                "name": cname,
                "processorArchitecture": "amd64",
                "publicKeyToken": "31bf3856ad364e35",
                "language": "neutral",
                "versionScope": "nonSxS",
            },
        )

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        e = ET.SubElement(parent, f"{{{NS}}}{tag}", {f"{{{WCM}}}{k}": v for k, v in attrs.items()})
        if text is not None:
            e.text = text
        return e

    spec = ET.SubElement(root, f"{{{NS}}}settings", {"pass": "specialize"})
    shell = comp(spec, "Microsoft-Windows-Shell-Setup")
    if name:
        sub(shell, "ComputerName", name)
    sub(shell, "TimeZone", time_zone)
    tcpip = sub(comp(spec, "Microsoft-Windows-TCPIP"), "Interfaces")
    for mac, cidr in ips.items():
        itf = sub(tcpip, "Interface", action="add")
        v4 = sub(itf, "Ipv4Settings")
        sub(v4, "DhcpEnabled", "false")
        sub(itf, "Identifier", mac)
        sub(sub(itf, "UnicastIpAddresses"), "IpAddress", cidr, action="add", keyValue="1")
        if gateway:
            route = sub(sub(itf, "Routes"), "Route", action="add")
            sub(route, "Identifier", "0")
            sub(route, "Prefix", "0.0.0.0/0")
            sub(route, "NextHopAddress", gateway)
            gateway = None
    if dns:
        dnsc = sub(comp(spec, "Microsoft-Windows-DNS-Client"), "Interfaces")
        first_mac = next(iter(ips))
        itf = sub(dnsc, "Interface", action="add")
        sub(itf, "Identifier", first_mac)
        order = sub(itf, "DNSServerSearchOrder")
        for i, server in enumerate(dns, 1):
            sub(order, "IpAddress", server, action="add", keyValue=str(i))
    oobe = ET.SubElement(root, f"{{{NS}}}settings", {"pass": "oobeSystem"})
    shell2 = comp(oobe, "Microsoft-Windows-Shell-Setup")
    if password is not None:
        acc = sub(shell2, "UserAccounts")
        pw = sub(acc, "AdministratorPassword")
        sub(pw, "Value", encode_admin_password(password) if encoded else password)
        sub(pw, "PlainText", "false" if encoded else "true")
    return ET.tostring(root, encoding="unicode")


@dataclasses.dataclass
class NicSpec:
    name: str
    switch: str
    mac: str
    ip: str | None = None  # "10.0.0.11/24"


def add_vm(
    world: World,
    name: str,
    nics: list[NicSpec],
    *,
    xml: str | None,
    data_disks: int = 0,
    base: str = BASE,
    expose: bool = True,
    memory: int = 8 * GiB,
    machine: Any = None,
) -> VM:
    """A Gen2 VM on a differencing OS disk with the answer file injected offline (R-17)."""
    m = machine or world.host
    hv = m.hyperv
    folder = f"C:\\lab\\{name}"
    os_path = f"{folder}\\{name}-os.vhdx"
    parent = m.fs.read(base)
    child = differencing_child(os_path, parent)
    m.fs.write(os_path, child, create_parents=True)
    if xml is not None:
        offline = FileSystem()
        offline.add_drive("X", child.os_partition().volume)
        offline.write("X:\\Windows\\Panther\\unattend.xml", xml)
    vm = VM(
        id=world.new_uuid(),
        name=name,
        path=folder,
        memory_startup=memory,
        processor_count=4,
        expose_virtualization_extensions=expose,
        host_name=m.name,
    )
    for nic in nics:
        vm.adapters.append(
            VMNetworkAdapter(
                nic.name,
                switch=nic.switch,
                mac=nic.mac,
                dynamic_mac=False,
                device_naming=True,
                mac_spoofing=True,
            )
        )
    vm.drives.append(HardDrive(os_path))
    for i in range(data_disks):
        path = f"{folder}\\{name}-data{i + 1}.vhdx"
        disk = new_disk(path, 256 * GiB, ident=str(world.new_uuid()).upper())
        m.fs.write(path, disk)
        vm.drives.append(HardDrive(path, controller_location=i + 1))
    hv.vms.append(vm)
    return vm


def start(world: World, vm: VM) -> GuestOS | None:
    """What Start-VM does at the guest seam (the Hyper-V model owns the rest)."""
    now = world.clock.now()
    vm.state = "Running"
    vm.started_at = now
    vm.boot_count += 1
    vm.booted_with = {
        "expose_virtualization_extensions": vm.expose_virtualization_extensions,
        "version": vm.version,
    }
    guest = GuestOS.attach(world, vm)
    if guest is not None:
        guest.on_power_on(now)
    return guest


def stop(world: World, vm: VM) -> None:
    vm.state = "Off"
    vm.started_at = None
    if vm.guest is not None:
        vm.guest.on_power_off(world.clock.now())


def restart(world: World, vm: VM, *, hard: bool = False) -> None:
    """A clean restart from inside the guest (Restart-Computer), or with `hard` what
    Restart-VM does: a reset without the guest's shutdown work (R-37)."""
    if not hard:
        vm.guest.request_restart()
        vm.guest.phase()  # at timescale 0 the restart is over once looked at
        return
    vm.boot_count += 1
    vm.booted_with = {
        "expose_virtualization_extensions": vm.expose_virtualization_extensions,
        "version": vm.version,
    }
    vm.started_at = world.clock.now()
    vm.guest.on_restart(world.clock.now())


def cred(user: str, pw: str = PASSWORD) -> Credential:
    return Credential(user, SecureString(pw))


class Streams:
    def __init__(self) -> None:
        self.errors: list[PSError] = []
        self.warnings: list[str] = []
        self.verbose_: list[str] = []
        self.info: list[Any] = []

    def error(self, err: PSError) -> None:
        self.errors.append(err)

    def warning(self, text: str) -> None:
        self.warnings.append(text)

    def verbose(self, text: str) -> None:
        self.verbose_.append(text)

    def information(self, data: Any) -> None:
        self.info.append(data)

    def progress(self, activity: str, status: str, percent: int = -1) -> None:
        pass


def host_run(world: World, name: str, streams: Streams | None = None, **params: Any) -> list[Any]:
    """One cmdlet on the host through the executor."""
    cmd = executor.Command(name, [(k, v) for k, v in params.items()])
    return executor.run_pipeline(
        world, world.host, "HV01\\Administrator", [cmd], streams or Streams()
    )


def guest_cmd(
    world: World,
    vm_name: str,
    command: str,
    credential: Credential | None = None,
    streams: Streams | None = None,
    machine: Any = None,
    **params: Any,
) -> list[Any]:
    """A cmdlet inside a guest through templates/host/Invoke-GuestCommand.ps1, as hvlab sends it."""
    from pathlib import Path

    text = (Path(__file__).parent.parent / "templates/host/Invoke-GuestCommand.ps1").read_text()
    cmd = executor.Command(
        text,
        [
            ("VMName", vm_name),
            ("Credential", credential or cred(".\\Administrator")),
            ("Command", command),
            ("Parameters", params),
        ],
        is_script=True,
    )
    return executor.run_pipeline(
        world, machine or world.host, "HV01\\Administrator", [cmd], streams or Streams()
    )


def guest_script(
    world: World, vm_name: str, script: str, credential: Credential, **params: Any
) -> list[Any]:
    from pathlib import Path

    root = Path(__file__).parent.parent / "templates"
    cmd = executor.Command(
        (root / "host/Invoke-GuestScript.ps1").read_text(),
        [
            ("VMName", vm_name),
            ("Credential", credential),
            ("Script", (root / "guest" / script).read_text()),
            ("Parameters", params),
        ],
        is_script=True,
    )
    return executor.run_pipeline(world, world.host, "HV01\\Administrator", [cmd], Streams())
