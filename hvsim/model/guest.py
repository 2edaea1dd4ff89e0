"""The Windows inside a VM: boot phases, first-boot setup, accounts, features,
pending reboots, and the Hyper-V role once it runs.

A GuestOS is created by `GuestOS.attach(world, vm)` at the VM's first start
(the Hyper-V model calls it), then told `on_power_on`, `on_power_off` and
`on_restart`. Phases follow R-34/R-36/R-37:

    Off -> Firmware -> Specialize -> OOBE -> Ready            (first boot, R-23)
    Off -> Firmware -> Booting -> Ready                       (later boots)
    Ready -> Restarting (still answers, R-37) -> Firmware -> Booting -> Ready

Progress is lazy: each boot is a timeline of stages whose start times come from
`world.clock.due()` when the boot begins (so at timescale 0 the clock jumps and
the boot is already done); the guest catches up with the clock whenever it is
looked at. Actions tied to a stage (apply the answer file, finish a feature
install, complete a domain join or a promotion) run once, in order, then.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import zlib
from typing import Any

from hvsim import timing
from hvsim.errors import PSError
from hvsim.model import unattend
from hvsim.model.eventlog import setup_log
from hvsim.model.fs import FileSystem, FsError
from hvsim.model.machine import Machine, OSInfo
from hvsim.model.net import IPAddr

PANTHER = "C:\\Windows\\Panther\\unattend.xml"

OFF = "Off"
FIRMWARE = "Firmware"
SPECIALIZE = "Specialize"
OOBE = "OOBE"
BOOTING = "Booting"
READY = "Ready"
RESTARTING = "Restarting"

# heartbeat by phase. Integration services start during Windows boot, so
# setup and late boot report OkApplicationsUnknown; Ready reports healthy.
_HEARTBEAT = {
    OFF: "NoContact",
    FIRMWARE: "NoContact",
    SPECIALIZE: "OkApplicationsUnknown",
    OOBE: "OkApplicationsUnknown",
    BOOTING: "OkApplicationsUnknown",
    READY: "OkApplicationsHealthy",
    RESTARTING: "OkApplicationsHealthy",
}

# PowerShell Direct errors (R-34, VDOC:powershell-direct).
MSG_SESSION_ENDED = (
    "An error has occurred which Windows PowerShell cannot handle. A remote session might have "
    "ended."
)
MSG_CREDENTIAL = "The credential is invalid."
MSG_ABORTED = (
    "The I/O operation has been aborted because of either a thread exit or an application request."
)


def pw_hash(password: str) -> str:
    """Passwords are kept only as digests, so a saved world holds no secret in clear."""
    return hashlib.sha256(("hvsim-account:" + password).encode("utf-8")).hexdigest()


def session_ended(vm_name: str) -> PSError:
    return PSError(
        MSG_SESSION_ENDED,
        fqid="PSSessionStateBroken",
        category="OpenError",
        exception="System.Management.Automation.Remoting.PSRemotingTransportException",
        target=vm_name,
    )


def credential_invalid(vm_name: str) -> PSError:
    return PSError(
        MSG_CREDENTIAL,
        fqid="CreateRemoteRunspaceForVMFailed,Microsoft.PowerShell.Commands.InvokeCommandCommand",
        category="InvalidArgument",
        exception="System.Management.Automation.PSArgumentException",
        target=vm_name,
    )


def session_aborted(vm_name: str) -> PSError:
    """R-37/R-82: a restart inside a PowerShell Direct session kills it."""
    return PSError(
        MSG_ABORTED,
        fqid="JobFailure",
        category="OperationStopped",
        exception="System.Management.Automation.Remoting.PSRemotingTransportException",
        target=vm_name,
    )


@dataclasses.dataclass
class Stage:
    start: float
    phase: str
    action: str | None = None
    done: bool = False


@dataclasses.dataclass
class Principal:
    """Who a PowerShell Direct logon resolved to (R-38)."""

    user: str  # as the guest names it: NETBIOS\\name or COMPUTER\\name
    domain: str | None  # FQDN for a domain account, None for a local one


class GuestOS(Machine):
    """The OS inside one VM. `name` is the computer name (WIN-... until specialize)."""

    def __init__(self, world: Any, vm: Any, owner: Machine, vhd: Any) -> None:
        image = vhd.chain()[-1].image  # identity comes from the base image
        fs = FileSystem(clock=world.clock)
        fs.add_drive("C", vhd.os_partition().volume)
        super().__init__(name=_random_name(world), fs=fs)
        self.world = world
        self.vm = vm
        self.owner = owner  # the machine whose Hyper-V runs the VM
        self.os = OSInfo(
            caption=image.caption,
            edition=image.edition,
            version=f"10.0.{image.build}",
            build=image.build,
            sku=image.sku,
            language=image.language,
            install_type=image.installation_type,
        )
        self.hardware = dataclasses.replace(owner.hardware)
        self.hardware.logical_processors = vm.processor_count
        self.hardware.memory_bytes = vm.memory_startup
        self.hardware.sockets = 1
        self.os_reserve_bytes = min(2 * 1024**3, vm.memory_startup // 2)
        self.generalized = bool(image.generalized)
        self.features = dict(BASE_FEATURES)
        # Roles staged offline into the OS disk or its parent finish at the
        # first boot; a child carries its parent's image facts from creation.
        staged = list(vhd.image.staged_features) if vhd.image is not None else []
        for name in staged:
            self.features[name] = "InstallPending"
        self.pending_features = [n for n in staged if n != "Hyper-V"]
        self.pending_hyperv = "Hyper-V" in staged
        self.services = dict(BASE_SERVICES)
        self.registry = {
            "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\spaceport\\Parameters": {
                "HwTimeout": (0x1770, "DWord")  # R-61 default
            }
        }
        self.setup = "pending" if self.generalized else "done"
        self.setup_notes: list[str] = []
        # Settings read at specialize, used at OOBE; emptied once applied.
        self._answers = unattend.Answers()
        self._admin_hash: str | None = None
        # Restarts asked for inside the guest; a PowerShell Direct call that caused
        # one ends with the session-aborted error.
        self.restart_requests = 0
        self.time_zone = unattend.DEFAULT_TIME_ZONE
        self.locale = image.language
        self.local_accounts: dict[str, str] = {}
        self.timeline: list[Stage] = [Stage(world.clock.now(), OFF, done=True)]
        # Bumped whenever the running OS goes away; a session started in an older
        # epoch is dead.
        self.epoch = 0
        self.is_dc = False
        # Pending work that the next boot completes (pending_features and
        # pending_hyperv are set above from staged roles).
        self.pending_join: str | None = None
        self.pending_promotion: dict[str, Any] | None = None
        # A feature install that needs a reboot blocks further installs.
        self.feature_reboot_pending = False
        # Features a hard reset interrupted: reverted by the next boot.
        self.features_to_roll_back: list[str] = []
        # A promotion finished by a hard reset: the directory does not start.
        self.ad_damaged = False
        # Registry writes not yet on disk: (key path, name, old value, written at).
        self.registry_unflushed: list[tuple[str, str, Any, float]] = []
        # Cluster configuration left on the node: the cluster's name.
        self.cluster_config: str | None = None
        # What the VM looked like at the last start.
        self.nested_at_boot = False
        self.boot_count = 0
        # Domain logons this member has seen: NETBIOS\\account -> password digest.
        self.cached_logons: dict[str, str] = {}
        # SMB shares: name lower-case -> Share (hvsim.cmdlets.smb, R-58).
        self.shares: dict[str, Any] = {}

    # -- creation --------------------------------------------------------------

    @classmethod
    def attach(cls, world: Any, vm: Any) -> GuestOS | None:
        """Create `vm.guest` at first start if the VM boots a Windows image; idempotent."""
        if vm.guest is not None:
            return vm.guest
        owner = _owner_of(world, vm)
        drive = vm.os_drive()
        if owner is None or drive is None:
            return None
        try:
            vhd = owner.fs.read(drive.path)
        except FsError:
            return None
        if getattr(vhd, "image", None) is None or vhd.os_partition() is None:
            return None  # a blank disk: the VM runs but no OS answers
        from hvsim.model.winimage import bootable

        if not bootable(vhd):
            return None  # no boot manager on an ESP: the firmware finds no OS
        vm.guest = cls(world, vm, owner, vhd)
        return vm.guest

    def is_guest(self) -> bool:
        return True

    @property
    def hypervisor_running(self) -> bool:
        """The Hyper-V role is in place and this boot had usable virtualization
        extensions (R-01..R-03). A role installed through DISM without them leaves
        VMMS running but the hypervisor off (R-07, R-08)."""
        return self.hyperv is not None and self.nested_at_boot

    def check_can_run_vm(self, vm: Any, cmdlet: str) -> None:
        """Called by the Hyper-V model before a VM starts here (R-08)."""
        if self.hypervisor_running:
            return
        from hvsim.model import hverrors as E

        raise E.hv(
            f"'{vm.name}' failed to start.\nThe Virtual Machine Management Service failed to "
            f"start the virtual machine '{vm.name}' because one of the Hyper-V components is not "
            f"running (Virtual machine ID {str(vm.id).upper()}).",
            "VMStartFailed",
            cmdlet,
            "InvalidOperation",
            vm.name,
        )

    def edition_is_datacenter(self) -> bool:
        """R-55: S2D needs Datacenter (EditionID ServerDatacenter, also Eval/Core)."""
        return "datacenter" in self.os.edition.lower()

    @property
    def computer_name(self) -> str:
        return self.name

    # -- the timeline ------------------------------------------------------------

    def _now(self) -> float:
        return float(self.world.clock.now())

    def _advance(self) -> None:
        # An action may replace the timeline (a failed setup, a restart): start over
        # on the new one until every due stage has run.
        while True:
            now = self._now()
            timeline = self.timeline
            for stage in timeline:
                if stage.start > now:
                    return
                if not stage.done:
                    stage.done = True
                    if stage.action:
                        getattr(self, "_do_" + stage.action)(stage.start)
                    if self.timeline is not timeline:
                        break
            else:
                return

    def phase(self, now: float | None = None) -> str:
        self._advance()
        t = self._now() if now is None else now
        current = self.timeline[0].phase
        for stage in self.timeline:
            if stage.start <= t:
                current = stage.phase
        return current

    def _schedule(self, stages: list[tuple[str, float, str | None]]) -> None:
        """Replace the timeline: each (phase, seconds, action-on-enter); the last stage
        is open-ended (its seconds are ignored). Times come from clock.due()."""
        total = sum(secs for _, secs, _ in stages[:-1])
        end = float(self.world.clock.due(total))
        t = end - total
        self.timeline = []
        for phase, secs, action in stages:
            self.timeline.append(Stage(t, phase, action))
            t += secs
        self._advance()

    def _boot_factor(self, kind: str) -> float:
        faults = getattr(self.world, "faults", None)
        f = faults.boot_factor(self.vm, kind) if faults is not None else 1.0
        # boot_slowdown already counts the boot that starts now (+1): no extra here.
        return f * float(self.world.boot_slowdown())

    def _boot_stages(self) -> list[tuple[str, float, str | None]]:
        """The stages of a boot starting now, with the pending work it completes."""
        fw = timing.seconds("vm.firmware")
        stuck = self.world.faults.stuck_phase(self.vm) if self.world.faults else None
        if self.setup != "done":
            f = self._boot_factor("first_boot")
            rest = max(0.0, timing.seconds("vm.first_boot") - fw) * f
            if self.pending_features or self.pending_hyperv:
                # Roles staged offline are finished during setup.
                rest += timing.seconds("feature.staged_first_boot") * f
            stages: list[tuple[str, float, str | None]] = [
                (FIRMWARE, fw * f, "power_on"),
                (SPECIALIZE, rest * 0.6, "specialize"),
                (OOBE, rest * 0.4, "oobe"),
                (READY, 0, "ready"),
            ]
        else:
            f = self._boot_factor("reboot")
            base = timing.seconds("vm.reboot")
            if self.pending_join:
                base = max(base, timing.seconds("domain.join_restart"))
            if self.pending_promotion:
                # The promotion's own reboot configures AD on first start.
                base = max(base, timing.seconds("ad.promote") - timing.seconds("feature.install"))
            stages = [(FIRMWARE, fw * f, "power_on")]
            if self.pending_hyperv:
                # the Hyper-V role boots twice; the first boot answers briefly.
                # §11's 4 minutes cover the install call (feature.install) and both boots.
                whole = (
                    max(
                        base,
                        timing.seconds("feature.hyperv_install")
                        - timing.seconds("feature.install"),
                    )
                    * f
                )
                grace = timing.seconds("vm.restart_grace")
                boot = max(0.0, (whole - 2 * fw - grace) / 2)
                stages += [
                    (BOOTING, boot, None),
                    (READY, grace, "hyperv_first_boot"),
                    (FIRMWARE, fw, "going_down"),
                    (BOOTING, boot, "power_on"),
                ]
            else:
                stages.append((BOOTING, max(0.0, base * f - fw * f), None))
            stages.append((READY, 0, "ready"))
            if self.pending_promotion:
                ad = timing.seconds("ad.ready") * self.world.faults.factor("ad_slow")
                stages[-1] = (READY, ad, "ready")
                stages.append((READY, 0, "ad_ready"))
        if stuck:
            # boot_hang fault: cut the timeline at the named phase.
            names = [p for p, _, _ in stages]
            if stuck in names:
                stages = stages[: names.index(stuck) + 1]
        return stages

    # -- power events (called by the Hyper-V model) -------------------------------

    def on_power_on(self, now: float) -> None:
        self._advance()
        self._sync_adapters()
        self.nested_at_boot = _nested_ok(self.world, self.owner, self.vm)
        self.boot_count += 1
        self._schedule(self._boot_stages())

    def on_power_off(self, now: float, *, hard: bool = True) -> None:
        """The VM went Off: a power cut (`hard`: Stop-VM -TurnOff, Remove-VM, the host
        going down) or a shutdown through the guest (Stop-VM without -TurnOff)."""
        self._advance()
        if hard:
            self._note_power_cut()
        self._going_down(hard=hard)
        self.timeline = [Stage(self._now(), OFF, done=True)]

    def on_restart(self, now: float) -> None:
        """Restart-VM: a hard reset from the host, no grace period and no shutdown (R-37)."""
        self._advance()
        self._note_power_cut()
        self._going_down(hard=True)
        self.on_power_on(now)

    def request_restart(self) -> None:
        """A restart asked for inside the guest (Restart-Computer, a promotion without
        -NoRebootOnCompletion): the OS answers a little longer, then goes down (R-37)."""
        self._advance()
        self.restart_requests += 1
        # USER32 1074: a process asked for the restart (KB 196452's family of events).
        self.event(
            "System",
            "USER32",
            1074,
            "Information",
            f"The process C:\\Windows\\system32\\wsmprovhost.exe ({self.name}) has initiated "
            f"the restart of computer {self.name} on behalf of a PowerShell Direct session.",
        )
        grace = timing.seconds("vm.restart_grace")
        self._schedule([(RESTARTING, grace, None), (OFF, 0, "restart_now")])

    def on_removed(self) -> None:
        """Remove-VM of this guest's VM. What only existed in this OS goes with it: a
        forest whose sole DC this was, and a cluster that has no node left. Computer
        objects of members stay in AD (R-43)."""
        if self.is_dc and self.domain:
            dom = self.world.domains.get(self.domain.lower())
            if dom is not None and dom.dc.lower() == self.name.lower():
                del self.world.domains[self.domain.lower()]
        if self.cluster_config:
            cl = self.world.clusters.get(self.cluster_config.lower())
            alive = {
                m.name.lower()
                for m in self.world.machines()
                if m is not self and getattr(m, "cluster_config", None) == self.cluster_config
            }
            if cl is not None and not alive & {n.lower() for n in cl.nodes}:
                del self.world.clusters[self.cluster_config.lower()]

    def _do_restart_now(self, t: float) -> None:
        self._going_down()
        self._sync_adapters()
        self.nested_at_boot = _nested_ok(self.world, self.owner, self.vm)
        self.boot_count += 1
        self._schedule(self._boot_stages())

    def _going_down(self, *, hard: bool = False) -> None:
        """The OS goes away. A shutdown (`hard` False) flushes the registry and lets
        pending servicing finish on the next boot; a hard reset does neither (R-37)."""
        if hard:
            self._interrupt_servicing()
        else:
            self.event(
                "System", "EventLog", 6006, "Information", "The Event log service was stopped."
            )
        self.registry_unflushed = []
        self.epoch += 1
        from hvsim.model.cluster import cluster_of

        cl = cluster_of(self.world, self)
        if cl is not None:
            # A clean shutdown leaves the membership; a power cut is noticed by the
            # others only through missed heartbeats.
            cl.node_leaving(self.world, self.name, hard)
        for name in ("vmms", "ADWS", "NTDS", "DNS", "ClusSvc"):
            if name in self.services:
                self.services[name] = "Stopped"
        # L2 VMs die with their host (a cluster fails clustered ones over, R-69).
        if self.hyperv is not None:
            for vm in self.hyperv.vms:
                if vm.state != "Off" and vm.state != "Saved":
                    vm.state = "Off"
                    vm.started_at = None
                    for d in vm.drives:
                        disk = self.hyperv.vhd_at(d.path)
                        if disk is not None and disk.in_use_by == vm.id:
                            disk.in_use_by = None
                    if vm.guest is not None:
                        vm.guest.on_power_off(self._now())
        from hvsim.model.s2d import on_node_reboot

        on_node_reboot(self)

    def on_adapter_link(self, mac: str, connected: bool) -> None:
        """A VM adapter was connected to or disconnected from its switch on the host
        (Connect-/Disconnect-VMNetworkAdapter): the guest sees its link come or go."""
        self._advance()
        for ad in self.net.adapters:
            if ad.mac == mac.upper() and not ad.switch:
                ad.status = "Up" if connected else "Disconnected"
        from hvsim.model.cluster import cluster_of

        cl = cluster_of(self.world, self)
        if cl is not None:
            cl.link_changed(self.world, self)

    def note_registry_write(self, path: str, name: str, old: Any) -> None:
        """Set-ItemProperty changed a value; it reaches the hive on disk only with the
        lazy flusher or at shutdown (RegFlushKey docs)."""
        self.registry_unflushed.append((path, name, old, self._now()))

    def _interrupt_servicing(self) -> None:
        """A hard reset while servicing waits for its restart (R-37 correction; the
        exact symptoms are (unconfirmed), this is modelled): feature installs stay
        InstallPending and roll back on the next boot, a promotion leaves a DC whose
        directory does not come up healthy, and registry writes the lazy flusher has
        not written yet are lost."""
        rolled = list(self.pending_features) + (["Hyper-V"] if self.pending_hyperv else [])
        if rolled:
            self.pending_features = []
            self.pending_hyperv = False
            self.features_to_roll_back = [*self.features_to_roll_back, *rolled]
            self.setup_notes.append(
                "hard reset with a feature install pending: " + ", ".join(rolled) + " roll back"
            )
        if self.pending_promotion is not None:
            self.pending_promotion["interrupted"] = True
            self.setup_notes.append("hard reset with a promotion pending: AD will not start")
        flush = timing.seconds("registry.lazy_flush")
        now = self._now()
        for path, name, old, written in reversed(self.registry_unflushed):
            if now - written >= flush:
                continue
            key = self.reg_key(path)
            if key is None:
                continue
            if old is None:
                key.pop(name, None)
            else:
                key[name] = old

    # -- stage actions -------------------------------------------------------------

    def _do_power_on(self, t: float) -> None:
        self.os.last_boot_time = t
        # KB 196452: 6008 for a previous shutdown that was not clean, then 6005 and 6009
        # as the Event Log service starts.
        cut = getattr(self, "unclean_shutdown", None)
        if cut is not None:
            self.unclean_shutdown = None
            when = _clock_text(cut)
            self.event(
                "System",
                "EventLog",
                6008,
                "Error",
                f"The previous system shutdown at {when[1]} on {when[0]} was unexpected.",
                t,
            )
        self.event(
            "System", "EventLog", 6005, "Information", "The Event log service was started.", t
        )
        self.event(
            "System",
            "EventLog",
            6009,
            "Information",
            f"Microsoft (R) Windows (R) {self.os.version}. Multiprocessor Free.",
            t,
        )
        if self.setup == "pending":
            setup_log(
                self,
                t,
                "Info",
                "windeploy.exe",
                "Windows Deployment: first boot of a generalized image",
            )

    def event(
        self,
        log: str,
        source: str,
        event_id: int,
        entry_type: str,
        message: str,
        t: float | None = None,
    ) -> None:
        """An entry in one of this guest's event logs (hvsim.model.eventlog)."""
        self.events.write(
            log, source, event_id, entry_type, message, self._now() if t is None else t
        )

    def _note_power_cut(self) -> None:
        """A power cut while Windows ran: the next boot logs EventLog 6008."""
        if self.timeline and self.phase() not in (OFF, FIRMWARE):
            self.unclean_shutdown = self._now()

    def _do_going_down(self, t: float) -> None:
        self._going_down()

    def _do_specialize(self, t: float) -> None:
        """Read and apply Windows\\Panther\\unattend.xml (R-23, R-22, R-24, R-27, R-28, R-31)."""
        setup_log(self, t, "Info", "windeploy.exe", "Starting the specialize configuration pass")
        try:
            text = self.fs.read(PANTHER)
        except FsError:
            self.setup_notes.append("no answer file in Windows\\Panther: setup waits at OOBE")
            setup_log(self, t, "Warning", "setup.exe", f"No answer file at {PANTHER}")
            self._answers = unattend.Answers()
            return
        if isinstance(text, bytes):
            text = text.decode("utf-8-sig", errors="replace")
        try:
            answers = unattend.parse(str(text).lstrip("\ufeff"))
        except unattend.UnattendError as exc:
            # setup stops; the guest never becomes ready.
            self.setup = "failed"
            self.setup_notes.append(f"Windows could not parse the answer file: {exc}")
            setup_log(
                self,
                t,
                "Error",
                "setup.exe",
                f"Windows could not parse or process the unattend answer file [{PANTHER}] for "
                f"pass [specialize]: {exc}",
            )
            self.timeline = [s for s in self.timeline if s.start <= t]
            return
        self.setup_notes.extend(answers.notes)
        for note in answers.notes:
            setup_log(self, t, "Warning", "Shell Unattend", note)
        # Keep only a digest of the password from here on (a saved world holds no secret).
        if answers.admin_password is not None:
            self._admin_hash = pw_hash(answers.admin_password)
            answers.admin_password = None
        self._answers = answers
        name = answers.computer_name
        if name and name != "*" and unattend.valid_computer_name(name):
            self.name = name.upper()
        elif name and name != "*":
            self.setup_notes.append(f"ComputerName {name!r} is not valid (R-24); kept {self.name}")
            setup_log(self, t, "Warning", "Shell Unattend", f"ComputerName {name!r} is not valid")
        setup_log(self, t, "Info", "Shell Unattend", f"ComputerName is {self.name}")
        tz = answers.time_zone
        if tz:
            if tz.removesuffix("_dstoff") in unattend.KNOWN_TIME_ZONES:
                self.time_zone = tz
            else:
                self.setup_notes.append(f"TimeZone {tz!r} is unknown (R-31); kept the default")
        self._apply_addresses(answers)
        for ad in self.net.adapters:
            if not ad.dhcp:
                addresses = ", ".join(f"{ip.address}/{ip.prefix_length}" for ip in ad.ips)
                setup_log(self, t, "Info", "TCPIP", f"{ad.name} ({ad.mac}): static {addresses}")
        if answers.join is not None:
            self._online_join(answers.join, t)
            answers.join = None  # the model keeps no password in clear

    def _online_join(self, req: unattend.JoinRequest, t: float) -> None:
        """R-29: join during specialize if the DC answers through the DNS set by R-28 and
        the account is valid; otherwise the machine stays in the workgroup (R-29 says
        this is silent, (unconfirmed))."""
        from hvsim.model.ad import dc_address, find_domain, reachable

        dom = find_domain(self.world, req.domain)
        dc_ip = dc_address(self.world, dom)
        ok = (
            dom is not None
            and reachable(self.world, dom, self)
            and dc_ip is not None
            and self.first_dns_server() == dc_ip
            and req.account_domain.lower() in (dom.fqdn.lower(), dom.netbios.lower())
            and dom.accounts.get(req.username.lower()) == pw_hash(req.password)
        )
        if not ok or dom is None:
            self.setup_notes.append(f"the online join to {req.domain} failed; still in a workgroup")
            setup_log(self, t, "Error", "DJOIN.EXE", f"UnattendedJoin: joining {req.domain} failed")
            self.joined_event(req.domain, ok=False, t=t)
            return
        dom.computer(self.name) or dom.add_computer(self.name, t)
        dom.register(self.name, self.dns_addresses())
        self.domain = dom.fqdn
        setup_log(self, t, "Info", "DJOIN.EXE", f"UnattendedJoin: joined {dom.fqdn}")
        self.joined_event(dom.fqdn, ok=True, t=t)

    def joined_event(
        self, domain: str, *, ok: bool, t: float | None = None, code: int = 1355
    ) -> None:
        """NetJoin in the System log: 4097 when a join failed (with the Win32 code;
        1355 is ERROR_NO_SUCH_DOMAIN); the success entry is modelled."""
        if ok:
            self.event(
                "System",
                "NetJoin",
                4096,
                "Information",
                f"The machine {self.name} joined the domain {domain}.",
                t,
            )
        else:
            self.event(
                "System",
                "NetJoin",
                4097,
                "Error",
                f"The machine {self.name} attempted to join the domain {domain} but failed. "
                f"The error code was {code}.",
                t,
            )

    def _do_oobe(self, t: float) -> None:
        setup_log(self, t, "Info", "windeploy.exe", "The specialize configuration pass completed")
        setup_log(self, t, "Info", "oobe", "Starting the oobeSystem configuration pass")
        if self._admin_hash is None:
            # a Server image waits at the console for a password.
            self.setup = "no_password"
            self.setup_notes.append("no AdministratorPassword in oobeSystem: waiting at OOBE")
            setup_log(
                self,
                t,
                "Warning",
                "oobe",
                "No AdministratorPassword in oobeSystem: waiting for a password at the console",
            )
            self.timeline = [s for s in self.timeline if s.start <= t]
            return
        self.local_accounts["administrator"] = self._admin_hash
        self.setup = "done"
        self.setup_finishing = True
        self._answers = unattend.Answers()

    def _do_ready(self, t: float) -> None:
        self.services["WinRM"] = "Running"
        self.services["vmicheartbeat"] = "Running"
        if getattr(self, "setup_finishing", False):
            self.setup_finishing = False
            setup_log(self, t, "Info", "oobe", "The oobeSystem configuration pass completed")
            setup_log(self, t, "Info", "windeploy.exe", "Windows Setup completed")
        if self.features_to_roll_back:
            # The boot after a hard reset reverts what the install left half done.
            for name in self.features_to_roll_back:
                self.features[name] = "Available"
            self.event(
                "System",
                "Microsoft-Windows-ServerManager",
                1001,
                "Error",
                "The installation of "
                + ", ".join(self.features_to_roll_back)
                + " was interrupted by a restart that was not clean and has been rolled back.",
                t,
            )
            self.features_to_roll_back = []
        if self.pending_join:
            self.domain = self.pending_join
            self.pending_join = None
        if self.pending_promotion:
            self._complete_promotion(t)
            if self.ad_damaged:
                # A promotion finished by a hard reset: the directory does not start.
                self.event(
                    "System",
                    "Service Control Manager",
                    7023,
                    "Error",
                    "The Active Directory Domain Services service terminated with the "
                    "following error: The directory service is unavailable.",
                    t,
                )
            else:
                self.event(
                    "System",
                    "Microsoft-Windows-ActiveDirectory_DomainService",
                    1000,
                    "Information",
                    f"Active Directory Domain Services startup complete: {self.domain}.",
                    t,
                )
        if self.pending_features:
            for name in self.pending_features:
                self.features[name] = "Installed"
            self.feature_event(self.pending_features, t)
            self.pending_features = []
        if self.pending_hyperv:
            self._complete_hyperv()
            self.feature_event(["Hyper-V"], t)
        self.feature_reboot_pending = False
        from hvsim.model.features import place_feature_files

        place_feature_files(self)
        if self.features.get("Failover-Clustering") == "Installed" and self.cluster_config:
            self.services["ClusSvc"] = "Running"
        if self.hyperv is not None and self.features.get("Hyper-V") == "Installed":
            self.services["vmms"] = "Running"
        self._register_in_dns()
        if self.is_dc and self.domain and not self.ad_damaged:
            # A promoted DC starts its directory services on every boot.
            self.services["NTDS"] = "Running"
            if self.features.get("DNS") == "Installed":
                self.services["DNS"] = "Running"
            dom = self.world.domains.get(self.domain.lower())
            if dom is not None and t >= dom.ready_at:
                self.services["ADWS"] = "Running"

    def feature_event(self, names: list[str], t: float | None = None) -> None:
        """Role installs in the System log (modelled: Windows records servicing in the
        Setup channel, which Get-EventLog does not read)."""
        if names:
            self.event(
                "System",
                "Microsoft-Windows-ServerManager",
                1000,
                "Information",
                "Installed: " + ", ".join(names) + ".",
                t,
            )

    def _do_hyperv_first_boot(self, t: float) -> None:
        """The first of the two Hyper-V boots (R-46): the machine already boots joined
        and with its other features; the hypervisor comes with the second boot."""
        self.services["WinRM"] = "Running"
        if self.pending_join:
            self.domain = self.pending_join
            self.pending_join = None
        for name in self.pending_features:
            self.features[name] = "Installed"
        self.feature_event(self.pending_features, t)
        self.pending_features = []

    def _do_ad_ready(self, t: float) -> None:
        if not self.ad_damaged:
            self.services["ADWS"] = "Running"

    def _complete_hyperv(self) -> None:
        from hvsim.model.hyperv import HyperV

        self.pending_hyperv = False
        self.features["Hyper-V"] = "Installed"
        if self.hyperv is None:
            hv = HyperV(self, default_version=self.owner.hyperv.default_version)
            # Each node draws MACs from its own pool, stable per computer name.
            hv.mac_prefix = "00155D" + f"{zlib.crc32(self.name.encode()) & 0xFFFF:04X}"
            self.hyperv = hv
        self.services["vmms"] = "Running"
        self.services["vmcompute"] = "Running"

    def _complete_promotion(self, t: float) -> None:
        from hvsim.model.ad import Domain

        p = self.pending_promotion
        assert p is not None
        self.pending_promotion = None
        # A promotion whose restart was a hard reset: the forest exists, but the
        # directory never comes up healthy (modelled).
        self.ad_damaged = bool(p.get("interrupted"))
        rng = self.world.rng
        sid = "S-1-5-21-" + "-".join(str(rng.randrange(10**8, 10**10)) for _ in range(3))
        dom = Domain(
            fqdn=p["fqdn"],
            netbios=p["netbios"],
            sid=sid,
            dc=self.name,
            created=t,
            # AD queries work only from the ad_ready stage of this boot on.
            ready_at=float("inf")
            if self.ad_damaged
            else next((s.start for s in self.timeline if s.action == "ad_ready"), t),
        )
        # the local SAM is gone; the domain Administrator keeps its password.
        dom.accounts["administrator"] = self.local_accounts.get("administrator", "")
        self.local_accounts = {}
        dom.add_computer(self.name, t)
        dom.register(self.name, self.dns_addresses())
        self.world.domains[dom.fqdn.lower()] = dom
        self.domain = dom.fqdn
        self.is_dc = True
        self.features["AD-Domain-Services"] = "Installed"
        if p.get("install_dns", True):
            self.features["DNS"] = "Installed"
            self.services["DNS"] = "Running"
        self.services["NTDS"] = "Stopped" if self.ad_damaged else "Running"
        self.services.setdefault("ADWS", "Stopped")

    # -- networking ------------------------------------------------------------------

    def on_adapters_changed(self) -> None:
        """A network adapter was added to or removed from the running VM on the host: a
        generation 2 guest sees the device come or go at once (R-140, hot add and
        remove), without a restart."""
        self._advance()
        self._sync_adapters(hot=True)

    def _sync_adapters(self, *, hot: bool = False) -> None:
        """Guest adapters follow the VM's adapters by device (the VM adapter's Id); a
        MAC changed while the VM was off is the same adapter with a new address (R-140).
        New ones are named in enumeration order ("Ethernet", "Ethernet 2", ...), R-75.
        `hot`: the VM runs (a device plugged or unplugged); names read at boot stay, and
        a new device shows no host-side name until the next boot (R-75, modelled)."""
        ids = {a.id for a in self.vm.adapters}
        for a in self.vm.adapters:
            mac = a.mac.upper()
            ad = next((g for g in self.net.adapters if g.device_id == a.id), None)
            if ad is None:  # a state file from before device ids: by MAC, once
                ad = next(
                    (g for g in self.net.adapters if g.device_id is None and g.mac == mac), None
                )
            new = ad is None
            if ad is not None:
                ad.device_id, ad.mac = a.id, mac
            else:
                n = len(self.net.adapters) + 1
                name = "Ethernet" if n == 1 else f"Ethernet {n}"
                while self.net.adapter(name) is not None:
                    n += 1
                    name = f"Ethernet {n}"
                ad = self.net.add_adapter(
                    name, "Microsoft Hyper-V Network Adapter" + ("" if n == 1 else f" #{n}"), mac
                )
                ad.dhcp = True
                ad.ips = [_apipa(mac)]
                ad.device_id = a.id
            # the host-side name is visible only when DeviceNaming was On at boot.
            if hot and new:
                ad.hyperv_name = None
            elif not hot:
                naming = (self.vm.booted_with or {}).get("device_naming", {})
                ad.hyperv_name = a.name if naming.get(a.name, a.device_naming) else None
            ad.status = "Up" if a.switch else "Disconnected"
        # Adapters of the VM that were removed disappear; host vNICs of switches inside
        # this guest (vEthernet (...)) belong to its own Hyper-V and stay.
        self.net.adapters = [g for g in self.net.adapters if g.device_id in ids or g.switch]

    def _apply_addresses(self, answers: unattend.Answers) -> None:
        for ad in self.net.adapters:
            cfg = answers.interface_for(ad.mac, ad.name)
            if cfg is None:
                continue  # no match -> stays on DHCP (APIPA on internal switches)
            if cfg.addresses and not cfg.dhcp:
                ad.dhcp = False
                ad.ips = [IPAddr(ip, prefix) for ip, prefix in cfg.addresses]
                ad.gateway = cfg.gateway
            if cfg.dns_servers:
                ad.dns_servers = list(cfg.dns_servers)

    def dns_addresses(self) -> list[str]:
        """The IPv4 addresses the DNS client registers: those of every adapter with
        "Register this connection's addresses" on (R-93), APIPA excluded."""
        return [
            ip.address
            for ad in self.net.adapters
            if ad.register_dns
            for ip in ad.ips
            if ip.family == "IPv4" and not ip.address.startswith("169.254.")
        ]

    def _register_in_dns(self) -> None:
        """A member's DNS client registers its addresses when it starts (R-93)."""
        from hvsim.model.ad import find_domain, reachable

        dom = find_domain(self.world, self.domain) if self.domain else None
        if dom is not None and (self.is_dc or reachable(self.world, dom, self)):
            dom.register(self.name, self.dns_addresses())

    def primary_ip(self) -> str | None:
        for ad in self.net.adapters:
            for ip in ad.ips:
                if ip.family == "IPv4" and not ip.address.startswith("169.254."):
                    return ip.address
        return None

    def ipv4_interfaces(self) -> list[ipaddress.IPv4Interface]:
        return [
            ipaddress.IPv4Interface(f"{ip.address}/{ip.prefix_length}")
            for ad in self.net.adapters
            for ip in ad.ips
            if ip.family == "IPv4" and not ip.address.startswith("169.254.")
        ]

    def first_dns_server(self) -> str | None:
        for ad in self.net.adapters:
            if ad.dns_servers:
                return ad.dns_servers[0]
        return None

    # -- what the host and the wrappers ask -------------------------------------------

    def heartbeat(self, now: float | None = None) -> str:
        """Get-VM .Heartbeat / the Heartbeat integration service (R-36)."""
        phase = self.phase(now)
        if phase == READY and self.setup != "done":
            return "OkApplicationsUnknown"
        return _HEARTBEAT.get(phase, "NoContact")

    def booting(self, now: float | None = None) -> bool:
        """In a boot that takes disk and CPU from the host (World.boot_slowdown)."""
        return self.phase(now) in (FIRMWARE, SPECIALIZE, OOBE, BOOTING)

    def is_ready(self) -> bool:
        return self.phase() in (READY, RESTARTING) and self.setup == "done"

    def logon(self, user: str, password: str) -> Principal:
        """Open a PowerShell Direct session (R-34, R-38); raises the R-34 errors."""
        phase = self.phase()
        if phase == OOBE or (phase == READY and self.setup == "no_password"):
            raise credential_invalid(self.vm.name)
        if phase not in (READY, RESTARTING) or self.setup != "done":
            raise session_ended(self.vm.name)
        principal = self.check_credential(user, password)
        if principal is None:
            raise credential_invalid(self.vm.name)
        return principal

    def check_credential(self, user: str, password: str) -> Principal | None:
        """R-38: local accounts before promotion (and on members), domain accounts on
        the DC and on members whose domain is reachable."""
        from hvsim.model.ad import find_domain, reachable

        prefix, _, account = user.rpartition("\\")
        if "@" in account and not prefix:
            account, _, prefix = account.partition("@")
        account_l = account.lower()
        local = prefix in ("", ".") or prefix.lower() == self.name.lower()
        if local and not self.is_dc:
            stored = self.local_accounts.get(account_l)
            if stored is not None and stored == pw_hash(password):
                return Principal(f"{self.name}\\{account}", None)
            return None
        dom = find_domain(self.world, prefix or self.name)
        if dom is None or self.domain is None or dom.fqdn.lower() != self.domain.lower():
            return None  # a domain account on a non-member
        key = f"{dom.netbios.lower()}\\{account_l}"
        if not self.is_dc and not reachable(self.world, dom, self):
            # Cached domain logon: a member that saw this account log on before lets it
            # in while no DC answers (Windows' cached credentials).
            if self.cached_logons.get(key) != pw_hash(password):
                return None
            return Principal(f"{dom.netbios}\\{account}", dom.fqdn)
        stored = dom.accounts.get(account_l)
        if stored is None or stored != pw_hash(password):
            return None
        self.cached_logons[key] = stored
        return Principal(f"{dom.netbios}\\{account}", dom.fqdn)

    def snapshot(self) -> dict[str, Any]:
        snap = super().snapshot()
        snap["vm"] = self.vm.name
        snap["phase"] = self.phase()
        snap["is_dc"] = self.is_dc
        snap["cluster_config"] = self.cluster_config
        return snap


# Features of a fresh Windows Server 2022 Datacenter (Desktop Experience) image that
# the model reads; everything in FEATURES not listed here is Available.
BASE_FEATURES = {
    "FileAndStorage-Services": "Installed",
    "Storage-Services": "Installed",
    "NET-Framework-45-Features": "Installed",
    "NET-Framework-45-Core": "Installed",
    "PowerShellRoot": "Installed",
    "PowerShell": "Installed",
    "WoW64-Support": "Installed",
    "Windows-Defender": "Installed",
}

BASE_SERVICES = {
    "WinRM": "Stopped",
    "vmicheartbeat": "Stopped",
    "vmicvmsession": "Running",
    "LanmanServer": "Running",
    "LanmanWorkstation": "Running",
    "Dnscache": "Running",
    "W32Time": "Running",
}


def _random_name(world: Any) -> str:
    """What an unnamed Windows calls itself: WIN- plus 11 characters (R-24)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "WIN-" + "".join(world.rng.choice(alphabet) for _ in range(11))


def _clock_text(t: float) -> tuple[str, str]:
    """(date, time) of a modelled instant as en-US Windows writes them in messages."""
    from hvsim.model.machine import at

    when = at(t)
    return f"{when.month}/{when.day}/{when.year}", when.strftime("%I:%M:%S %p").lstrip("0")


def _apipa(mac: str) -> IPAddr:
    """No DHCP answers on an internal or private switch: 169.254/16 (R-27)."""
    n = int(mac[-4:], 16) if len(mac) >= 4 else 1
    return IPAddr(f"169.254.{(n >> 8) % 254 + 1}.{n % 254 + 1}", 16, origin="WellKnown")


def _owner_of(world: Any, vm: Any) -> Machine | None:
    for m in world.machines():
        if m.hyperv is not None and any(v is vm for v in m.hyperv.vms):
            return m
    return None


def _nested_ok(world: Any, owner: Machine, vm: Any) -> bool:
    """Whether the guest sees usable virtualization extensions (R-01..R-03, R-07)."""
    from hvsim.model.hyperv import version_tuple

    booted = getattr(vm, "booted_with", None) or {}
    exposed = booted.get("expose_virtualization_extensions", vm.expose_virtualization_extensions)
    version = booted.get("version", vm.version)
    hw = owner.hardware
    amd = hw.manufacturer == "AuthenticAMD"
    if not exposed or not hw.virtualization_firmware_enabled or not hw.slat:
        return False
    if amd and owner.os.build < 20348:
        return False
    return version_tuple(version) >= ((9, 3) if amd else (8, 0))
