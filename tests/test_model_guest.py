"""The guest OS model: first boot and the answer file, phases, heartbeat, reboots,
credentials and PowerShell Direct errors (R-22..R-38)."""

from __future__ import annotations

import pytest
from guestlab import (
    PASSWORD,
    NicSpec,
    add_vm,
    cred,
    encode_admin_password,
    guest_cmd,
    restart,
    start,
    stop,
    unattend_xml,
)

from hvsim.clock import Clock
from hvsim.errors import PSError
from hvsim.model import unattend
from hvsim.model.guest import MSG_CREDENTIAL, MSG_SESSION_ENDED, GuestOS
from hvsim.model.world import World

MAC = "00155D0A0001"


def _world(timescale: float = 0.0) -> World:
    return World.create(timescale=timescale)


def _node(world: World, name: str = "node1", **kw: object) -> object:
    xml = kw.pop(
        "xml", unattend_xml(name, {"00-15-5D-0A-00-01": "10.0.0.11/24"}, dns=["10.0.0.10"])
    )
    return add_vm(world, name, [NicSpec("Mgmt", "lab-mgmt", MAC)], xml=xml, **kw)  # type: ignore[arg-type]


def test_encoded_password_matches_microsoft_example() -> None:
    # the documented example decodes to "pw".
    value = "cAB3AEEAZABtAGkAbgBpAHMAdAByAGEAdABvAHIAUABhAHMAcwB3AG8AcgBkAA=="
    assert unattend.decode_password(value, plain_text=False) == "pw"
    # the local-account example omits the padding and uses the "Password" suffix.
    assert unattend.decode_password("cAB3AFAAYQBzAHMAdwBvAHIAZAA", False, "Password") == "pw"


def test_first_boot_applies_answer_file() -> None:
    world = _world()
    vm = _node(world)
    guest = start(world, vm)
    assert isinstance(guest, GuestOS)
    assert guest.phase() == "Ready"
    assert guest.name == "NODE1"
    assert guest.time_zone == "UTC"
    nic = guest.net.adapters[0]
    assert nic.name == "Ethernet"
    assert [(ip.address, ip.prefix_length) for ip in nic.ips] == [("10.0.0.11", 24)]
    assert nic.dns_servers == ["10.0.0.10"]
    assert nic.hyperv_name == "Mgmt"
    assert guest.os.build == 20348 and guest.os.edition == "ServerDatacenter"
    assert guest.heartbeat() == "OkApplicationsHealthy"
    # the injected file stays until someone deletes it.
    assert guest.fs.exists("C:\\Windows\\Panther\\unattend.xml")


def test_phases_follow_the_clock_at_real_timescale() -> None:
    world = _world()
    world.clock = Clock(timescale=1e-6)  # 1 modelled second = 1 µs real: still ordered
    vm = _node(world)
    world.clock = Clock(timescale=1000.0)  # now time barely moves: we see the first phase
    guest = start(world, vm)
    assert guest is not None
    assert guest.phase() == "Firmware"
    assert guest.heartbeat() == "NoContact"
    assert guest.booting()
    t0 = world.clock.now()
    assert guest.phase(t0 + 30) == "Specialize"
    assert guest.phase(t0 + 80) == "OOBE"
    assert guest.phase(t0 + 200) == "Ready"


def test_unknown_mac_leaves_adapter_on_apipa() -> None:
    world = _world()
    xml = unattend_xml("node1", {"00-15-5D-FF-FF-FF": "10.0.0.11/24"})
    guest = start(world, _node(world, xml=xml))
    ip = guest.net.adapters[0].ips[0]
    assert ip.address.startswith("169.254.")


def test_malformed_answer_file_never_gets_ready() -> None:
    world = _world()
    xml = unattend_xml("node1", {"00-15-5D-0A-00-01": "10.0.0.11/24"}).replace("</unattend>", "")
    vm = _node(world, xml=xml)
    guest = start(world, vm)
    world.clock.sleep(3600)
    assert guest.phase() == "Specialize"
    assert guest.heartbeat() == "OkApplicationsUnknown"
    with pytest.raises(PSError) as err:
        guest_cmd(world, "node1", "Get-Service", Name="WinRM")
    assert err.value.message == MSG_SESSION_ENDED


def test_missing_admin_password_waits_at_oobe() -> None:
    world = _world()
    xml = unattend_xml("node1", {"00-15-5D-0A-00-01": "10.0.0.11/24"}, password=None)
    guest = start(world, _node(world, xml=xml))
    assert guest.phase() == "OOBE"
    with pytest.raises(PSError) as err:
        guest_cmd(world, "node1", "Get-Service", Name="WinRM")
    assert err.value.message == MSG_CREDENTIAL


def test_wrong_password_suffix_makes_whole_string_the_password() -> None:
    world = _world()
    xml = unattend_xml("node1", {"00-15-5D-0A-00-01": "10.0.0.11/24"})
    xml = xml.replace(encode_admin_password(PASSWORD), encode_admin_password(PASSWORD, "Password"))
    start(world, _node(world, xml=xml))
    with pytest.raises(PSError) as err:
        guest_cmd(world, "node1", "Get-Service", Name="WinRM")
    assert err.value.message == MSG_CREDENTIAL
    out = guest_cmd(
        world, "node1", "Get-Service", cred(".\\Administrator", PASSWORD + "Password"), Name="WinRM"
    )
    assert out[0]["Name"] == "WinRM"


def test_setting_in_wrong_pass_is_ignored() -> None:
    world = _world()
    xml = unattend_xml("node1", {"00-15-5D-0A-00-01": "10.0.0.11/24"})
    # ComputerName is not valid in oobeSystem; move it there.
    xml = xml.replace("<ComputerName>node1</ComputerName>", "", 1)
    xml = xml.replace("<UserAccounts>", "<ComputerName>node1</ComputerName><UserAccounts>", 1)
    guest = start(world, _node(world, xml=xml))
    assert guest.name.startswith("WIN-")
    assert any("ComputerName is not valid in pass oobeSystem" in n for n in guest.setup_notes)


def test_invalid_computer_name_keeps_random_name() -> None:
    world = _world()
    xml = unattend_xml("node.1", {"00-15-5D-0A-00-01": "10.0.0.11/24"})
    guest = start(world, _node(world, xml=xml))
    assert guest.name.startswith("WIN-")


def test_powershell_direct_errors_by_state() -> None:
    world = _world()
    vm = _node(world)
    with pytest.raises(PSError) as err:
        guest_cmd(world, "nosuchvm", "Get-Service", Name="WinRM")
    assert (
        err.value.message == "The input VMName parameter does not resolve to any virtual machine."
    )
    with pytest.raises(PSError) as err:
        guest_cmd(world, "node1", "Get-Service", Name="WinRM")  # VM off
    assert err.value.message == MSG_SESSION_ENDED
    start(world, vm)
    with pytest.raises(PSError) as err:
        guest_cmd(world, "node1", "Get-Service", cred(".\\Administrator", "wrong"), Name="WinRM")
    assert err.value.message == MSG_CREDENTIAL
    # a domain account on a workgroup machine is refused.
    with pytest.raises(PSError) as err:
        guest_cmd(world, "node1", "Get-Service", cred("LAB\\Administrator"), Name="WinRM")
    assert err.value.message == MSG_CREDENTIAL


def test_duplicate_vm_names_refused_by_powershell_direct() -> None:
    world = _world()
    start(world, _node(world))
    other = add_vm(world, "node1", [NicSpec("Mgmt", "lab-mgmt", "00155D0A0009")], xml=None)
    assert other.name == "node1"
    with pytest.raises(PSError) as err:
        guest_cmd(world, "node1", "Get-Service", Name="WinRM")
    assert "more than one virtual machine" in err.value.message


def test_results_come_back_deserialized_with_notes() -> None:
    world = _world()
    start(world, _node(world))
    out = guest_cmd(world, "node1", "Get-Service", Name="WinRM")
    obj = out[0]
    assert obj.type_names[0] == "Deserialized.System.ServiceProcess.ServiceController"
    assert obj.notes["PSComputerName"] == "node1"
    assert obj.notes["PSShowComputerName"] is True
    assert "RunspaceId" in obj.notes


def test_inner_errors_stop_and_silently_continue_hides_them() -> None:
    world = _world()
    start(world, _node(world))
    with pytest.raises(PSError) as err:
        guest_cmd(world, "node1", "Get-Service", Name="NoSuchService")
    assert err.value.fqid.startswith("NoServiceFoundForGivenName")
    assert (
        guest_cmd(
            world, "node1", "Get-Service", Name="NoSuchService", ErrorAction="SilentlyContinue"
        )
        == []
    )


def test_reboot_changes_boot_marker_and_kills_sessions() -> None:
    world = _world()
    vm = _node(world)
    guest = start(world, vm)
    boot1 = guest.os.last_boot_time
    epoch = guest.epoch
    restart(world, vm)
    assert guest.os.last_boot_time > boot1
    assert guest.epoch > epoch
    assert guest.phase() == "Ready"
    # A restart asked for inside the session ends it with the abort text.
    with pytest.raises(PSError) as err:
        guest_cmd(world, "node1", "Restart-Computer", Force=True)
    assert "The I/O operation has been aborted" in err.value.message


def test_restart_grace_keeps_answering_then_goes_down() -> None:
    world = _world()
    vm = _node(world)
    guest = start(world, vm)
    world.clock = Clock(timescale=1000.0, start=world.clock.now())
    guest.request_restart()
    assert guest.phase() == "Restarting"  # the old OS still answers
    assert guest.is_ready()
    boot, epoch = guest.os.last_boot_time, guest.epoch
    # Past the grace period the old OS is gone and a new boot has begun.
    world.clock = Clock(timescale=0.0, start=world.clock.now() + 10)
    assert guest.phase() == "Ready"
    assert guest.epoch > epoch and guest.os.last_boot_time > boot


def test_power_off_then_on_is_not_first_boot() -> None:
    world = _world()
    vm = _node(world)
    guest = start(world, vm)
    stop(world, vm)
    assert guest.phase() == "Off"
    assert guest.heartbeat() == "NoContact"
    start(world, vm)
    assert guest.phase() == "Ready"
    assert guest.name == "NODE1"


def test_boot_hang_fault_stops_in_named_phase() -> None:
    world = World.create(faults="boot_hang:vm=node1,phase=OOBE")
    guest = start(world, _node(world))
    world.clock.sleep(7200)
    assert guest.phase() == "OOBE"


def test_slow_first_boot_fault_scales_duration() -> None:
    fast, slow = _world(), World.create(faults="slow_boot:factor=10,vm=node1")
    t_fast0, t_slow0 = fast.clock.now(), slow.clock.now()
    start(fast, _node(fast))
    start(slow, _node(slow))
    assert slow.clock.now() - t_slow0 > 5 * (fast.clock.now() - t_fast0)


def test_unknown_time_zone_keeps_default() -> None:
    world = _world()
    xml = unattend_xml(
        "node1", {"00-15-5D-0A-00-01": "10.0.0.11/24"}, time_zone="Mars Standard Time"
    )
    guest = start(world, _node(world, xml=xml))
    assert guest.time_zone == unattend.DEFAULT_TIME_ZONE
    assert any("Mars Standard Time" in n for n in guest.setup_notes)


def test_heartbeat_through_get_vm_follows_the_boot() -> None:
    from guestlab import host_run

    world = _world()
    _node(world)
    # 0.1 real s per modelled s: Start-VM's own 2 s pass, the 5 s firmware stage has not.
    world.clock = Clock(timescale=0.1, start=world.clock.now())
    host_run(world, "Start-VM", Name="node1")
    vm = host_run(world, "Get-VM", Name="node1")[0]
    assert str(vm["Heartbeat"]) == "NoContact"  # Running is not ready
    assert str(vm["State"]) == "Running"
    world.clock = Clock(timescale=0.0, start=world.clock.now() + 600)
    vm = host_run(world, "Get-VM", Name="node1")[0]
    assert str(vm["Heartbeat"]) == "OkApplicationsHealthy"


def test_boots_side_by_side_take_longer() -> None:
    world = _world()
    names = [f"n{i}" for i in range(8)]
    for i, n in enumerate(names):
        mac = f"00155D0A01{i:02X}"
        xml = unattend_xml(
            n, {"-".join(mac[j : j + 2] for j in range(0, 12, 2)): f"10.0.0.{20 + i}/24"}
        )
        add_vm(world, n, [NicSpec("Mgmt", "lab-mgmt", mac)], xml=xml)
    world.clock = Clock(timescale=1e9, start=world.clock.now())
    guests = [start(world, world.vm(n)) for n in names]
    ready = [next(s.start for s in g.timeline if s.phase == "Ready") for g in guests]
    # 32 logical processors -> 4 boots at full speed; later ones are stretched.
    assert ready[-1] - world.clock.now() > 1.5 * (ready[0] - world.clock.now())


def test_locale_other_than_en_us_breaks_validation() -> None:
    from test_model_cluster import LAB, NODES, build_domain, build_nodes

    world = World.create()
    build_domain(world)
    build_nodes(world)
    world.guest("node2").locale = "de-DE"
    with pytest.raises(PSError) as err:
        guest_cmd(world, "node1", "Test-Cluster", LAB, Node=list(NODES))
    assert err.value.message == "Test report isn't available, try to validate again."


def test_hang_once_clears_after_a_hard_reset() -> None:
    from hvsim.model import vmops

    class Ctx:
        def __init__(self, world: World) -> None:
            self.world = world

        def work(self, seconds: float, what: str) -> None:
            self.world.clock.sleep(seconds)

        def warning(self, text: str) -> None:
            pass

    world = World.create(faults="boot_hang:vm=node1,phase=Specialize,once=1")
    vm = _node(world)
    vmops.start(Ctx(world), world.host.hyperv, vm)
    world.clock.sleep(3600)
    assert vm.guest.phase() == "Specialize"  # stalls until someone acts
    vmops.stop(Ctx(world), world.host.hyperv, vm, turn_off=True, save=False, force=True)
    vmops.start(Ctx(world), world.host.hyperv, vm)
    assert vm.guest.phase() == "Ready"  # the one hard reset helps


def test_saved_world_holds_no_password_in_clear(tmp_path: object) -> None:
    import pickle

    world = _world()
    start(world, _node(world))
    blob = pickle.dumps(world.guest("node1").__dict__.get("_answers"))
    assert PASSWORD.encode() not in blob
    assert PASSWORD.encode("utf-16-le") not in pickle.dumps(world.guest("node1").local_accounts)


def test_no_answer_file_waits_at_oobe() -> None:
    world = _world()
    vm = add_vm(world, "node1", [NicSpec("Mgmt", "lab-mgmt", MAC)], xml=None)
    guest = start(world, vm)
    assert guest.phase() == "OOBE"
    with pytest.raises(PSError) as err:
        guest_cmd(world, "node1", "Get-Service", Name="WinRM")
    assert err.value.message == MSG_CREDENTIAL


def test_old_configuration_version_means_no_nested_hyperv() -> None:
    world = _world()
    vm = _node(world)
    vm.version = "7.0"  # below 8.0 on Intel
    start(world, vm)
    with pytest.raises(PSError) as err:
        guest_cmd(world, "node1", "Install-WindowsFeature", Name=["Hyper-V"])
    assert "virtualization capabilities" in err.value.message


def test_online_join_in_the_answer_file() -> None:
    from test_model_cluster import DOMAIN, build_domain

    world = World.create()
    build_domain(world)
    join = (
        '<settings pass="specialize"><component name="Microsoft-Windows-UnattendedJoin" '
        'processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" '
        'versionScope="nonSxS"><Identification><Credentials><Domain>LAB</Domain>'
        f"<Username>Administrator</Username><Password>{PASSWORD}</Password></Credentials>"
        f"<JoinDomain>{DOMAIN}</JoinDomain></Identification></component></settings>"
    )
    good = unattend_xml("node1", {"00-15-5D-0A-00-11": "10.0.0.11/24"}, dns=["10.0.0.10"])
    good = good.replace("</unattend>", join + "</unattend>")
    vm = add_vm(world, "node1", [NicSpec("Mgmt", "lab-mgmt", "00155D0A0011")], xml=good)
    assert start(world, vm).domain == DOMAIN
    assert world.domains[DOMAIN].computer("NODE1") is not None
    bad = unattend_xml("node2", {"00-15-5D-0A-00-12": "10.0.0.12/24"}, dns=["10.0.0.1"])
    bad = bad.replace("</unattend>", join + "</unattend>")
    vm2 = add_vm(world, "node2", [NicSpec("Mgmt", "lab-mgmt", "00155D0A0012")], xml=bad)
    g2 = start(world, vm2)
    assert g2.domain is None  # DNS does not lead to the DC -> workgroup
    assert any("online join" in n for n in g2.setup_notes)


def test_transient_fault_inside_a_guest() -> None:
    world = World.create(faults="transient:cmdlet=Get-Service,machine=NODE1,nth=1")
    start(world, _node(world))
    with pytest.raises(PSError) as err:
        guest_cmd(world, "node1", "Get-Service", Name="WinRM")
    assert "temporary failure" in err.value.message
    assert guest_cmd(world, "node1", "Get-Service", Name="WinRM")[0]["Name"] == "WinRM"


def test_roles_staged_offline_are_installed_at_first_boot() -> None:
    from guestlab import host_run

    world = _world()
    vm = _node(world)
    os_vhd = vm.drives[0].path
    out = host_run(
        world,
        "Install-WindowsFeature",
        Vhd=os_vhd,
        Name=["Hyper-V", "Failover-Clustering"],
        IncludeManagementTools=True,
    )
    assert out[0]["Success"] is True
    host_run(world, "Start-VM", Name="node1")
    guest = vm.guest
    assert guest.features["Hyper-V"] == "Installed"
    assert guest.features["RSAT-Clustering-PowerShell"] == "Installed"
    assert guest.hyperv is not None and guest.hypervisor_running
    with pytest.raises(PSError) as err:  # the VHD must not be in use
        host_run(world, "Install-WindowsFeature", Vhd=os_vhd, Name=["FS-FileServer"])
    assert "in use" in err.value.message


def test_a_nic_hot_added_to_a_running_gen2_vm_appears_in_the_guest_at_once() -> None:
    """R-140: a generation 2 VM takes a network adapter added while it runs, and its guest
    sees it at once as a new adapter: the next default name, DHCP (APIPA without a DHCP
    server). The host adapter's name reaches the guest only from its next boot (R-75,
    modelled). Hot remove takes it away at once."""
    from guestlab import host_run

    world = _world()
    vm = _node(world)
    guest = start(world, vm)
    assert guest is not None and guest.phase() == "Ready"
    host_run(world, "New-VMSwitch", Name="lab-extra", SwitchType="Internal")
    host_run(
        world,
        "Add-VMNetworkAdapter",
        VMName="node1",
        Name="Backup",
        SwitchName="lab-extra",
        StaticMacAddress="00155D0A00B1",
        DeviceNaming="On",
    )
    seen = {str(a["Name"]): a for a in guest_cmd(world, "node1", "Get-NetAdapter")}
    assert set(seen) == {"Ethernet", "Ethernet 2"}
    assert seen["Ethernet 2"]["MacAddress"] == "00-15-5D-0A-00-B1"
    assert seen["Ethernet 2"]["Status"] == "Up"
    ips = guest_cmd(world, "node1", "Get-NetIPAddress", InterfaceAlias="Ethernet 2")
    v4 = [str(ip["IPAddress"]) for ip in ips if str(ip["AddressFamily"]) == "IPv4"]
    assert len(v4) == 1 and v4[0].startswith("169.254."), v4
    names = guest_cmd(
        world, "node1", "Get-NetAdapterAdvancedProperty", RegistryKeyword="HyperVNetworkAdapterName"
    )
    assert [(str(p["Name"]), str(p["DisplayValue"])) for p in names] == [("Ethernet", "Mgmt")]

    # The guest renames it and gives it an address; both stay through a restart.
    guest_cmd(world, "node1", "Rename-NetAdapter", Name="Ethernet 2", NewName="Backup")
    guest_cmd(
        world,
        "node1",
        "New-NetIPAddress",
        InterfaceAlias="Backup",
        IPAddress="10.0.9.11",
        PrefixLength=24,
    )
    restart(world, vm)
    backup = guest.net.adapter("Backup")
    assert backup is not None and backup.hyperv_name == "Backup"  # R-75, from this boot
    assert [ip.address for ip in backup.ips] == ["10.0.9.11"]

    host_run(world, "Remove-VMNetworkAdapter", VMName="node1", Name="Backup")
    assert [str(a["Name"]) for a in guest_cmd(world, "node1", "Get-NetAdapter")] == ["Ethernet"]
