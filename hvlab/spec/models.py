"""The typed lab: what a lab file may say, field by field.

These models check each value on its own (types, units, name rules). Rules that
relate values to each other (an IP inside its switch's subnet, one DC, a witness
for two nodes) live in hvlab.spec.rules, which also fills in the defaults. Use
hvlab.spec.load_lab() to get a Lab: it runs both and reports every problem.

Field names in the YAML are the aliases (`memory: 8GiB`); Python code reads the
field names (`vm.memory_bytes`), always in bytes.
"""

from __future__ import annotations

import dataclasses
import re
from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    WithJsonSchema,
    model_validator,
)

from hvlab.spec import names
from hvlab.spec.timezones import check_time_zone
from hvlab.spec.units import GIB, SIZE_PATTERN, format_size, parse_size


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _checked(check: Any, *args: Any) -> Any:
    def run(value: str) -> str:
        check(value, *args)
        return value

    return run


def _ipv4_address(value: object) -> IPv4Address:
    if isinstance(value, IPv4Address):
        return value
    if not isinstance(value, str):
        raise ValueError("an IPv4 address is written as text, such as 10.10.0.11")
    try:
        return IPv4Address(value.strip())
    except ValueError:
        raise ValueError(f"{names.show(value)} is not an IPv4 address") from None


def _ipv4_network(value: object) -> IPv4Network:
    if isinstance(value, IPv4Network):
        return value
    if not isinstance(value, str) or "/" not in value:
        raise ValueError("a subnet is written as address/prefix, such as 10.10.0.0/24")
    try:
        return IPv4Network(value.strip(), strict=True)
    except ValueError:
        try:
            loose = IPv4Network(value.strip(), strict=False)
        except ValueError:
            raise ValueError(f"{names.show(value)} is not an IPv4 subnet") from None
        raise ValueError(
            f"{names.show(value)} has host bits set; the subnet is {loose.with_prefixlen}"
        ) from None


def _mac(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("a MAC address is written as text, such as 00-15-5D-0A-00-0B")
    digits = re.sub(r"[-:.]", "", value.strip()).upper()
    if not re.fullmatch(r"[0-9A-F]{12}", digits):
        raise ValueError(f"{names.show(value)} is not a MAC address (12 hex digits)")
    if int(digits[:2], 16) & 1:
        raise ValueError(f"{names.show(value)} is a multicast address; a NIC needs unicast")
    if digits == "0" * 12:
        raise ValueError("MAC address 000000000000 is not usable")
    return digits


def _text_version(value: object) -> object:
    # YAML reads `version: 2022` as an int; the field is text.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Size = Annotated[
    int,
    BeforeValidator(parse_size),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": SIZE_PATTERN},
            ],
            "description": "bytes, or a size with a unit: 512MB, 4GiB, 256GB (powers of 1024)",
        }
    ),
]
IPv4 = Annotated[
    IPv4Address,
    BeforeValidator(_ipv4_address),
    WithJsonSchema({"type": "string", "format": "ipv4"}),
]
Subnet = Annotated[
    IPv4Network,
    BeforeValidator(_ipv4_network),
    WithJsonSchema({"type": "string", "description": "address/prefix, e.g. 10.10.0.0/24"}),
]
Mac = Annotated[
    str,
    BeforeValidator(_mac),
    WithJsonSchema({"type": "string", "description": "12 hex digits, with or without dashes"}),
]
ComputerName = Annotated[str, AfterValidator(_checked(names.check_computer_name))]
WinPath = Annotated[str, AfterValidator(_checked(names.check_windows_path))]
EnvName = Annotated[str, AfterValidator(_checked(names.check_env_name))]
ImageFileName = Annotated[str, AfterValidator(_checked(names.check_image_name))]


def _ident(what: str) -> Any:
    return Annotated[str, AfterValidator(_checked(names.check_identifier, what))]


SwitchName = _ident("switch name")
NicName = _ident("NIC name")
ImageName = _ident("image name")
VolumeName = _ident("volume name")
VSwitchName = _ident("switch name")
Vlan = Annotated[int, Field(ge=1, le=4094)]

ClusterNetworkRole = Literal["None", "Cluster", "ClusterAndClient"]
CLUSTER_NETWORK_ROLE_VALUES: dict[str, int] = {"None": 0, "Cluster": 1, "ClusterAndClient": 3}
"""Numeric values of the roles (R-59), as templates/guest/Set-ClusterNetworkRole.ps1 takes them."""

WINDOWS_BUILDS: dict[str, int] = {"2016": 14393, "2019": 17763, "2022": 20348, "2025": 26100}


def _lab_name_check(value: str) -> str:
    names.check_lab_name(value)
    return value


def _timezone_check(value: str) -> str:
    check_time_zone(value)
    return value


def _locale_check(value: str) -> str:
    if not re.fullmatch(r"[a-z]{2,3}(-[A-Z][a-z]{3})?-[A-Z]{2}", value):
        raise ValueError(f"{names.show(value)} is not a locale name such as en-US or de-DE")
    return value


def _product_key_check(value: str) -> str:
    if not re.fullmatch(r"[A-Z0-9]{5}(-[A-Z0-9]{5}){4}", value):
        raise ValueError("a product key is five groups of five letters or digits: XXXXX-XXXXX-...")
    return value


def _description_check(value: str) -> str:
    if len(value) > 500 or any(not ch.isprintable() and ch not in "\n\t" for ch in value):
        raise ValueError("description must be printable text of at most 500 characters")
    return value


# --- the host -------------------------------------------------------------------


IMAGES_FOLDER = "C:\\hvlab\\images"
"""Where image.build keeps the images it builds (R-123)."""


class Image(_Model):
    """A sysprepped Generation 2 base VHDX on the host (R-16): by path, or by the name
    image.build gave it (R-123)."""

    path: WinPath | None = Field(None, description="Windows path of the base .vhdx on the host")
    name: ImageFileName | None = Field(
        None, description="an image built by image.build, by its name (see image.list)"
    )
    folder: WinPath = Field(IMAGES_FOLDER, description="where image.build keeps named images")
    edition: Literal["Datacenter", "Standard"] = "Datacenter"
    version: Annotated[Literal["2016", "2019", "2022", "2025"], BeforeValidator(_text_version)] = (
        "2022"
    )
    build: int = Field(20348, ge=1, description="Windows build number (20348 = Server 2022)")
    size_bytes: Size = Field(
        127 * GIB, alias="size", description="virtual size of the image (only for totals)"
    )

    @model_validator(mode="after")
    def _path_or_name(self) -> Image:
        if (self.path is None) == (self.name is None):
            raise ValueError("give either path (a .vhdx on the host) or name (from image.build)")
        if self.name is not None:
            self.path = self._in_folder(f"{self.name}.vhdx")
        return self

    @property
    def vhdx(self) -> str:
        assert self.path is not None
        return self.path

    @property
    def sidecar(self) -> str | None:
        """The facts image.build wrote next to a named image (R-123)."""
        if self.name is None:
            return None
        return self._in_folder(f"{self.name}.json")

    def _in_folder(self, file: str) -> str:
        return self.folder.rstrip("\\") + "\\" + file


class Host(_Model):
    root: WinPath | None = Field(
        None, description="lab folder on the host; default C:\\hvlab\\<lab>"
    )
    images: dict[str, Image] = Field(min_length=1)


# --- networks -------------------------------------------------------------------


class Switch(_Model):
    name: SwitchName
    type: Literal["Internal", "Private", "External"]
    subnet: Subnet
    gateway: IPv4 | None = Field(
        None, description="Internal: the host vNIC's address, the guests' default gateway (R-72)"
    )
    nat: bool = Field(False, description="NAT the subnet to the outside (R-73; one per host)")
    vlan: Vlan | None = None
    net_adapter: str | None = Field(None, description="External switches: the host NIC name")
    _lab: str = PrivateAttr("")

    @property
    def host_name(self) -> str:
        """The switch's name on the host: the lab's namespace (ownership mark)."""
        return f"{self._lab}-{self.name}"

    @property
    def prefix(self) -> int:
        return self.subnet.prefixlen


class NIC(_Model):
    name: NicName
    switch: str = Field(description="name of a switch in `switches`")
    ip: IPv4 | None = None
    prefix: int | None = Field(None, ge=1, le=30, description="default: the switch's subnet")
    gateway: IPv4 | None = Field(None, description="default: the switch's gateway, first NIC only")
    dns: list[IPv4] | None = Field(None, description="default: the DC for the first NIC (R-41)")
    mac: Mac | None = Field(None, description="default: derived from lab, VM and NIC names")
    vlan: Vlan | None = None

    @property
    def mac_dashed(self) -> str:
        """The MAC as unattend wants it: 00-15-5D-0A-00-0B (R-19)."""
        assert self.mac is not None
        return "-".join(self.mac[i : i + 2] for i in range(0, 12, 2))

    @property
    def cidr(self) -> str:
        return f"{self.ip}/{self.prefix}"


# --- machines -------------------------------------------------------------------


class RoleDefaults(_Model):
    cpus: int = Field(ge=1)
    memory_bytes: Size = Field(alias="memory")
    data_disks: int = Field(0, ge=0)
    data_disk_bytes: Size = Field(256 * GIB, alias="data_disk_size")


def _dc_defaults() -> RoleDefaults:
    return RoleDefaults(cpus=2, memory=2 * GIB, data_disks=0)


def _node_defaults() -> RoleDefaults:
    # 8 GiB per node: R-04 (estimate for S2D plus one L2 VM); 4 x 256 GiB.
    return RoleDefaults(cpus=4, memory=8 * GIB, data_disks=4, data_disk_size=256 * GIB)


class Defaults(_Model):
    image: str | None = Field(None, description="key of host.images; default: the only image")
    dc: RoleDefaults = Field(default_factory=_dc_defaults)
    node: RoleDefaults = Field(default_factory=_node_defaults)


class VM(_Model):
    name: ComputerName
    role: Literal["dc", "node"]
    image: str | None = None
    cpus: int | None = Field(None, ge=1)
    memory_bytes: Size | None = Field(None, alias="memory", description="static memory (R-04)")
    nics: list[NIC] = Field(min_length=1, description="the first NIC is the management NIC")
    data_disks: int | None = Field(None, ge=0)
    data_disk_bytes: Size | None = Field(None, alias="data_disk_size")
    _prefix: str = PrivateAttr("")

    @property
    def host_name(self) -> str:
        """The VM's name on the host (Hyper-V, its folder and files, PowerShell Direct's
        -VMName): the lab's vm_prefix, then the computer name the guest keeps (R-145)."""
        return self._prefix + self.name

    @property
    def management_nic(self) -> NIC:
        return self.nics[0]

    @property
    def is_node(self) -> bool:
        return self.role == "node"


# --- domain and cluster -----------------------------------------------------------


class Domain(_Model):
    mode: Literal["new", "existing"] = "new"
    fqdn: Annotated[str, AfterValidator(_checked(names.check_dns_domain))]
    netbios: Annotated[str, AfterValidator(_checked(names.check_netbios_domain))] | None = Field(
        None, description="default: the first label of fqdn in capitals"
    )
    dc: str | None = Field(None, description="new: name of the DC VM (default: the one dc VM)")
    dc_address: IPv4 | None = Field(None, description="existing: a DC's IP (DNS server)")
    join_account: str | None = Field(None, description="existing: DOMAIN\\user that joins nodes")


class Witness(_Model):
    type: Literal["file_share", "cloud", "disk", "none"] = "file_share"
    share: str | None = Field(None, description="file share name; default <cluster>-witness")
    server: str | None = Field(None, description="file share server; default the lab's DC")
    account: str | None = Field(None, description="cloud: the storage account name")

    @property
    def unc(self) -> str:
        """\\\\server\\share of a file share witness."""
        return f"\\\\{self.server}\\{self.share}"


class ClusterNetworks(_Model):
    management: ClusterNetworkRole = Field(
        "ClusterAndClient", description="must stay ClusterAndClient: the cluster address is there"
    )
    storage: ClusterNetworkRole = Field(
        "Cluster", description="role of the other node networks (R-59)"
    )


class Cluster(_Model):
    name: ComputerName
    address: IPv4 = Field(description="static cluster IP inside the management subnet (R-51)")
    witness: Witness = Field(default_factory=Witness)
    management_switch: VSwitchName = Field(
        "ClusterSwitch", description="vSwitch created inside every node for HA VMs (R-70)"
    )
    networks: ClusterNetworks = Field(default_factory=ClusterNetworks)


class Volume(_Model):
    name: VolumeName
    size_bytes: Size | None = Field(None, alias="size")
    percent: int | None = Field(None, ge=1, le=100, description="percent of usable pool capacity")
    # Mirror only: parity needs more fault domains than a lab has, and its footprint
    # follows rules hvlab does not size for.
    resiliency: Literal["Mirror"] = Field(
        "Mirror", description="two-way mirror on 2 nodes, three-way from 3 (R-64)"
    )
    file_system: Literal["CSVFS_ReFS", "CSVFS_NTFS"] = Field(
        "CSVFS_ReFS", description="format of the CSV (New-Volume -FileSystem)"
    )

    @property
    def csv_path(self) -> str:
        """Where the CSV is mounted on every node (R-64, R-65)."""
        return f"C:\\ClusterStorage\\{self.name}"


class HAVM(_Model):
    name: ComputerName
    memory_bytes: Size = Field(GIB, alias="memory")
    cpus: int = Field(1, ge=1)
    disk_bytes: Size = Field(20 * GIB, alias="disk")
    volume: str | None = Field(None, description="name of the CSV volume; default the first")


class SecretNames(_Model):
    """Names of the environment variables that hold the passwords (never the passwords)."""

    admin: EnvName = "HVLAB_ADMIN_PASSWORD"
    domain: EnvName = "HVLAB_DOMAIN_PASSWORD"
    dsrm: EnvName = "HVLAB_DSRM_PASSWORD"
    cloud_witness_key: EnvName = "HVLAB_CLOUD_WITNESS_KEY"


# --- the lab --------------------------------------------------------------------


def _named(items: list[Any], name: str, what: str) -> Any:
    for item in items:
        if item.name.lower() == name.lower():
            return item
    raise KeyError(f"the lab has no {what} named {names.show(name)}")


@dataclasses.dataclass(frozen=True)
class Totals:
    """What the lab asks of the host (L1 VMs only; HA VMs live inside the nodes)."""

    vms: int
    vcpus: int
    memory_bytes: int
    disk_bytes: int
    ha_vms: int

    def summary(self) -> str:
        text = (
            f"{self.vms} VMs, {self.vcpus} vCPUs, {format_size(self.memory_bytes)} memory, "
            f"{format_size(self.disk_bytes)} disk"
        )
        if self.ha_vms:
            text += f" (+{self.ha_vms} HA VM{'s' if self.ha_vms != 1 else ''} inside the cluster)"
        return text


class Lab(_Model):
    """One lab: a DC, cluster nodes, their networks, the cluster, S2D volumes and HA VMs."""

    name: Annotated[str, AfterValidator(_lab_name_check)] = Field(
        description="short id of the lab; default the file name without .yaml"
    )
    description: Annotated[str, AfterValidator(_description_check)] | None = None
    vm_prefix: Annotated[str, AfterValidator(_checked(names.check_vm_prefix))] = Field(
        "",
        description="put before every VM's name on the host (Hyper-V name, folder, disk "
        "files), so labs with the same computer names run side by side; the guests keep "
        "their names (R-145)",
    )
    host: Host
    switches: list[Switch] = Field(min_length=1)
    domain: Domain
    defaults: Defaults = Field(default_factory=Defaults)
    vms: list[VM] = Field(min_length=1)
    cluster: Cluster
    volumes: list[Volume] = Field(min_length=1)
    ha_vms: list[HAVM] = Field(default_factory=list)
    timezone: Annotated[str, AfterValidator(_timezone_check)] = "UTC"
    locale: Annotated[str, AfterValidator(_locale_check)] = "en-US"
    product_key: Annotated[str, AfterValidator(_product_key_check)] | None = None
    updates: WinPath | None = Field(
        None,
        description="folder of update packages (.msu, .msi, .msp) on the host: "
        "lab.drill --kind rolling-update installs them with Cluster-Aware Updating (R-112)",
    )
    secrets: SecretNames = Field(default_factory=SecretNames)
    _warnings: list[str] = PrivateAttr(default_factory=list)
    _source: str = PrivateAttr("")

    # -- lookups --

    @property
    def dc(self) -> VM | None:
        """The domain controller VM (None when the domain already exists)."""
        return next((vm for vm in self.vms if vm.role == "dc"), None)

    @property
    def nodes(self) -> list[VM]:
        return [vm for vm in self.vms if vm.role == "node"]

    @property
    def mark(self) -> str:
        """The ownership mark in VM and switch Notes."""
        return f"hvlab:{self.name}"

    @property
    def warnings(self) -> list[str]:
        return list(self._warnings)

    @property
    def source(self) -> str:
        """The file the lab was read from, as the user named it."""
        return self._source

    def vm(self, name: str) -> VM:
        """The VM named `name` (names compare without case); KeyError if none."""
        return _named(self.vms, name, "VM")

    def switch(self, name: str) -> Switch:
        return _named(self.switches, name, "switch")

    @property
    def fault_names(self) -> list[str]:
        """The names HVSIM_FAULTS' vm= and machine= may give: each VM's computer name
        and its name on the host, and the HA VMs."""
        out = [vm.name for vm in self.vms] + [h.name for h in self.ha_vms]
        return out + [vm.host_name for vm in self.vms if vm.host_name != vm.name]

    def on_host(self, name: str) -> str:
        """The host's name of the lab VM whose computer name is `name` (R-145)."""
        return self.vm_prefix + name

    def by_host_name(self, host_name: str) -> VM | None:
        """The lab VM the host knows as `host_name` (names compare without case)."""
        wanted = host_name.lower()
        return next((vm for vm in self.vms if vm.host_name.lower() == wanted), None)

    def volume(self, name: str) -> Volume:
        return _named(self.volumes, name, "volume")

    def image_of(self, vm: VM) -> Image:
        assert vm.image is not None
        return self.host.images[vm.image]

    @property
    def management_switch(self) -> Switch:
        """The switch of every VM's first NIC (checked to be the same one)."""
        return self.switch(self.vms[0].management_nic.switch)

    # -- files on the host --

    @property
    def root(self) -> str:
        assert self.host.root is not None
        return self.host.root

    def vm_folder(self, vm: VM) -> str:
        """Where New-VM -Path <root> puts the VM: a folder named as the VM on the host."""
        return f"{self.root}\\{vm.host_name}"

    def os_disk_path(self, vm: VM) -> str:
        """Differencing child of the base image (R-16)."""
        return f"{self.vm_folder(vm)}\\{vm.host_name}-os.vhdx"

    def data_disk_paths(self, vm: VM) -> list[str]:
        """One file per data disk, numbered from 1 (R-14)."""
        return [
            f"{self.vm_folder(vm)}\\{vm.host_name}-data{n}.vhdx"
            for n in range(1, (vm.data_disks or 0) + 1)
        ]

    @property
    def marker_path(self) -> str:
        """The file that marks the lab folder as this lab's."""
        return f"{self.root}\\.hvlab-lab"

    @property
    def record_path(self) -> str:
        """The file that lists what the lab created on the host (lab.down's list)."""
        return f"{self.root}\\.hvlab-created"

    # -- cluster --

    @property
    def pool_name(self) -> str:
        """The pool Enable-ClusterStorageSpacesDirect creates (R-62)."""
        return f"S2D on {self.cluster.name}"

    def cluster_networks(self) -> list[dict[str, Any]]:
        """Each node network with the name and role it gets in the cluster (R-59)."""
        out: list[dict[str, Any]] = []
        if not self.nodes:
            return out
        for nic in self.nodes[0].nics:
            switch = self.switch(nic.switch)
            is_mgmt = nic is self.nodes[0].management_nic
            role = self.cluster.networks.management if is_mgmt else self.cluster.networks.storage
            out.append(
                {
                    "name": nic.name,
                    "switch": switch.name,
                    "address": str(switch.subnet.network_address),
                    "prefix": switch.subnet.prefixlen,
                    "role": role,
                    "role_value": CLUSTER_NETWORK_ROLE_VALUES[role],
                }
            )
        return out

    # -- totals --

    def totals(self) -> Totals:
        disk = 0
        for vm in self.vms:
            disk += self.image_of(vm).size_bytes
            disk += (vm.data_disks or 0) * (vm.data_disk_bytes or 0)
        return Totals(
            vms=len(self.vms),
            vcpus=sum(vm.cpus or 0 for vm in self.vms),
            memory_bytes=sum(vm.memory_bytes or 0 for vm in self.vms),
            disk_bytes=disk,
            ha_vms=len(self.ha_vms),
        )
