"""Hyper-V networking cmdlets: virtual switches (R-70, R-71) and VM network adapters
(R-06, R-19, R-74, R-75)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any

from hvsim import timing
from hvsim.cmdlets import _hvshapes as S
from hvsim.cmdlets._hvcommon import as_list, hyperv_of, resolve_vms, vm_from_object
from hvsim.cmdlets.hyperv import _flag, _mac, prompt_failed
from hvsim.model import hverrors as E
from hvsim.model.hyperv import VM, HyperV, VMNetworkAdapter, VMSwitch
from hvsim.model.net import NetAdapter
from hvsim.objects import PSObj
from hvsim.registry import Call, Context, cmdlet

# -- switches --------------------------------------------------------------------


def host_vnic_name(switch: str) -> str:
    """R-71: an internal switch (or one shared with the management OS) adds this adapter."""
    return f"vEthernet ({switch})"


def _switch(hv: HyperV, name: str, cmdlet: str) -> VMSwitch:
    found = [s for s in hv.switches if s.name.lower() == name.lower()]
    if not found:
        raise E.switch_not_found(name, cmdlet)
    if len(found) > 1:
        # Hyper-V keys switches by Id, so names can repeat; connecting by an
        # ambiguous name is refused (modelled).
        raise E.hv(
            f'Hyper-V found more than one virtual switch named "{name}". Specify the switch by object.',
            "InvalidParameter",
            cmdlet,
            "InvalidArgument",
            name,
        )
    return found[0]


@cmdlet("Get-VMSwitch", params=["Name", "Id", "SwitchType"])
def get_vmswitch(ctx: Context, call: Call) -> Iterable[Any]:
    hv = hyperv_of(ctx, call.name)
    kind = str(call.get("SwitchType") or "").lower()
    if "Id" in call:
        # Guid[]: each Id given, in order.
        want = [str(i).lower() for i in as_list(call.params["Id"])]
        items = [s for w in want for s in hv.switches if str(s.id).lower() == w]
    elif "Name" in call:
        items = []
        for name in as_list(call.params["Name"]):
            found = hv.find_switches(str(name))
            if not found and not any(ch in str(name) for ch in "*?["):
                ctx.error(E.switch_not_found(str(name), call.name))
            items.extend(s for s in found if s not in items)
    else:
        items = list(hv.switches)
    for s in items:
        if not kind or s.switch_type.lower() == kind:
            yield S.switch_obj(hv, s)


@cmdlet(
    "New-VMSwitch",
    params=["Name", "SwitchType", "NetAdapterName", "AllowManagementOS", "Notes"],
)
def new_vmswitch(ctx: Context, call: Call) -> Iterable[Any]:
    hv = hyperv_of(ctx, call.name)
    m = ctx.machine
    name = str(call.params["Name"])
    notes = str(call.get("Notes") or "")
    if "NetAdapterName" in call:
        nic_name = str(as_list(call.params["NetAdapterName"])[0])  # String[] in the catalog
        nic = m.net.adapter(nic_name)
        if nic is None:
            raise E.hv(
                f"Failed while adding virtual Ethernet switch connections.\nThe network adapter "
                f"'{nic_name}' was not found.",
                "ObjectNotFound",
                call.name,
                "ObjectNotFound",
                nic_name,
            )
        if any(s.net_adapter and s.net_adapter.lower() == nic.name.lower() for s in hv.switches):
            raise E.hv(
                "Failed while adding virtual Ethernet switch connections.\nExternal Ethernet adapter "
                f"'{nic.description}' is already bound to the Microsoft Virtual Switch protocol.",
                "InvalidOperation",
                call.name,
                "InvalidOperation",
                nic_name,
            )
        # AllowManagementOS defaults to True for an external switch (WPD:Hyper-V/New-VMSwitch).
        mgmt = bool(call.get("AllowManagementOS", True))
        sw = VMSwitch(name, "External", ctx.world.new_uuid(), notes, nic.name, mgmt)
        hv.switches.append(sw)
        if mgmt:
            vnic = _add_vnic(m, hv, sw)
            # The management OS keeps its address: it moves to the vNIC, and the
            # network on it drops for a moment while it does.
            moved = bool(nic.ips)
            vnic.ips, nic.ips = nic.ips, []
            vnic.dns_servers, vnic.gateway, vnic.dhcp = list(nic.dns_servers), nic.gateway, nic.dhcp
            nic.dns_servers, nic.gateway = [], None
            if moved:
                _network_moved_under_cluster(ctx, m)
    else:
        kind = str(call.get("SwitchType") or "")
        if kind not in ("Internal", "Private"):
            raise E.hv(
                "Specify -SwitchType Internal or Private, or -NetAdapterName for an external switch.",
                "InvalidParameter",
                call.name,
                "InvalidArgument",
                name,
            )
        sw = VMSwitch(name, kind, ctx.world.new_uuid(), notes, None, kind == "Internal")
        hv.switches.append(sw)
        if kind == "Internal":
            vnic = _add_vnic(m, hv, sw)
            # An internal vNIC without an address configures itself by APIPA (R-27 note).
            vnic.dhcp = True
    ctx.work(timing.seconds("switch.create"), f"creating switch {name}")
    yield S.switch_obj(hv, sw)


def _network_moved_under_cluster(ctx: Context, m: Any) -> None:
    """A node of a running cluster: the core resources fail and restart (R-70)."""
    from hvsim.model.cluster import cluster_of

    cl = cluster_of(ctx.world, m)
    if cl is not None and m.name in cl.up_nodes(ctx.world):
        cl.management_network_dropped(ctx.world, m.name)


def _add_vnic(m: Any, hv: HyperV, sw: VMSwitch) -> NetAdapter:
    base = host_vnic_name(sw.name)
    alias, n = base, 2
    while m.net.adapter(alias) is not None:
        alias, n = f"{base} {n}", n + 1
    a = m.net.add_adapter(
        alias, f"Hyper-V Virtual Ethernet Adapter #{len(m.net.adapters)}", hv.allocate_mac()
    )
    a.switch = sw.name
    a.switch_id = str(sw.id)
    return a


@cmdlet("Remove-VMSwitch", params=["Name", "VMSwitch", "Force"])
def remove_vmswitch(ctx: Context, call: Call) -> Iterable[Any]:
    hv = hyperv_of(ctx, call.name)
    m = ctx.machine
    targets: list[VMSwitch] = []
    objs = as_list(call.get("VMSwitch")) or ([] if "Name" in call else list(ctx.input))
    for obj in objs:
        want = str(obj.get("Id")).lower() if hasattr(obj, "get") else ""
        targets.extend(s for s in hv.switches if str(s.id).lower() == want)
    for name in as_list(call.get("Name")):
        found = hv.find_switches(str(name))
        if not found:
            raise E.switch_not_found(str(name), call.name)
        targets.extend(s for s in found if s not in targets)
    for sw in targets:
        if not call.switch("Force"):
            raise prompt_failed(
                f'Are you sure you want to remove the virtual switch "{sw.name}"?', call.name
            )
        for vm in hv.vms:
            for a in vm.adapters:
                if a.switch_id == str(sw.id):
                    a.switch, a.switch_id = None, None
        ours = [
            a
            for a in m.net.adapters
            if (a.switch_id == str(sw.id) if a.switch_id else a.switch == sw.name)
        ]
        for a in ours:
            if sw.switch_type == "External" and sw.net_adapter:
                nic = m.net.adapter(sw.net_adapter)
                if nic is not None:
                    nic.ips, nic.dns_servers, nic.gateway = a.ips, a.dns_servers, a.gateway
            m.net.adapters.remove(a)
        hv.switches.remove(sw)
    return []


# -- VM network adapters --------------------------------------------------------------


def _adapters_of(
    ctx: Context, call: Call, *, name_param: str = "Name"
) -> tuple[HyperV, list[tuple[VM, VMNetworkAdapter]]]:
    """(vm, adapter) pairs a call targets: piped/-VMNetworkAdapter objects, or -VMName + -Name."""
    hv = hyperv_of(ctx, call.name)
    objs = as_list(call.get("VMNetworkAdapter"))
    if not objs and not call.get("VMName") and not call.get("VM") and ctx.input:
        objs = [
            o for o in ctx.input if "VMNetworkAdapter" in str(getattr(o, "type_names", [""])[0])
        ]
    pairs: list[tuple[VM, VMNetworkAdapter]] = []
    if objs:
        for obj in objs:
            vm = vm_from_object(hv, obj)
            name = obj.get("Name") if hasattr(obj, "get") else None
            if vm is None:
                raise E.vm_not_found(
                    str(obj.get("VMName") if hasattr(obj, "get") else obj), call.name
                )
            pairs.extend((vm, a) for a in vm.adapters if a.name == name)
        return hv, pairs
    vms = resolve_vms(ctx, call, call.name, name_param="VMName")
    for vm in vms:
        names = as_list(call.get(name_param))
        if not names:
            pairs.extend((vm, a) for a in vm.adapters)
            continue
        for name in names:
            found = vm.adapter(str(name))
            if not found:
                raise E.adapter_not_found(vm.name, str(name), call.name)
            pairs.extend((vm, a) for a in found)
    return hv, pairs


def _management_adapters(ctx: Context, hv: HyperV, name: str | None) -> list[PSObj]:
    out = []
    for sw in hv.switches:
        if not sw.allow_management_os:
            continue
        if name and not fnmatch.fnmatchcase(sw.name.lower(), name.lower()):
            continue
        vnic = next((a for a in ctx.machine.net.adapters if a.switch == sw.name), None)
        a = VMNetworkAdapter(
            sw.name, sw.name, str(sw.id), vnic.mac if vnic else "000000000000", True
        )
        a.ips = [ip.address for ip in vnic.ips] if vnic else []
        out.append(S.adapter_obj(hv, None, a, management_os=True))
    return out


@cmdlet(
    "Get-VMNetworkAdapter", params=["VMName", "VM", "Name", "ManagementOS", "SwitchName", "All"]
)
def get_vmnetworkadapter(ctx: Context, call: Call) -> Iterable[Any]:
    hv = hyperv_of(ctx, call.name)
    if call.switch("ManagementOS") or call.switch("All"):
        yield from _management_adapters(ctx, hv, call.get("Name"))
        if call.switch("ManagementOS"):
            return
        for vm in hv.vms:
            for a in vm.adapters:
                yield S.adapter_obj(hv, vm, a)
        return
    for vm in resolve_vms(ctx, call, call.name, name_param="VMName", terminating=False):
        for a in vm.adapters:
            if "Name" in call and not fnmatch.fnmatchcase(
                a.name.lower(), str(call.params["Name"]).lower()
            ):
                continue
            if (
                "SwitchName" in call
                and (a.switch or "").lower() != str(call.params["SwitchName"]).lower()
            ):
                continue
            yield S.adapter_obj(hv, vm, a)


@cmdlet(
    "Add-VMNetworkAdapter",
    params=[
        "VMName",
        "VM",
        "Name",
        "SwitchName",
        "StaticMacAddress",
        "DynamicMacAddress",
        "DeviceNaming",
        "IsLegacy",
        "Passthru",
    ],
)
def add_vmnetworkadapter(ctx: Context, call: Call) -> Iterable[Any]:
    hv = hyperv_of(ctx, call.name)
    vms = resolve_vms(ctx, call, call.name, name_param="VMName")
    sw = _switch(hv, str(call.params["SwitchName"]), call.name) if call.get("SwitchName") else None
    for vm in vms:
        if call.switch("IsLegacy") and vm.generation == 2:
            # Gen2 has no legacy network adapter.
            raise E.hv(
                "Generation 2 virtual machines do not support legacy network adapters.",
                "InvalidParameter",
                call.name,
                "InvalidArgument",
                vm.name,
            )
        if vm.state != "Off" and vm.generation == 1:
            raise E.invalid_state("Network Adapter", call.name, vm.name)
        if len(vm.adapters) >= 12:
            raise E.hv(
                f"Failed to add device 'Network Adapter'.\n'{vm.name}' already has the maximum of 12 network adapters.",
                "InvalidOperation",
                call.name,
                "InvalidOperation",
                vm.name,
            )
        a = VMNetworkAdapter(str(call.get("Name") or "Network Adapter"))
        if sw is not None:
            a.switch, a.switch_id = sw.name, str(sw.id)
        if "StaticMacAddress" in call:
            a.mac, a.dynamic_mac = _mac(call.params["StaticMacAddress"], call.name), False
        if "DeviceNaming" in call:
            a.device_naming = _flag(call.params["DeviceNaming"])
        if vm.state == "Running" and a.dynamic_mac:
            a.mac = hv.allocate_mac()
        vm.adapters.append(a)
        if vm.state == "Running" and vm.guest is not None:
            vm.guest.on_adapters_changed()  # hot add: the guest sees it at once
        if call.switch("Passthru"):
            yield S.adapter_obj(hv, vm, a)


@cmdlet("Remove-VMNetworkAdapter", params=["VMName", "VM", "Name", "VMNetworkAdapter", "Passthru"])
def remove_vmnetworkadapter(ctx: Context, call: Call) -> Iterable[Any]:
    """Hot remove on a running generation 2 VM; a generation 1 VM must be Off (R-140)."""
    hv, pairs = _adapters_of(ctx, call)
    if not pairs and call.get("Name"):
        raise E.hv(
            f"No network adapter named '{call.get('Name')}' was found.",
            "ObjectNotFound",
            call.name,
            "ObjectNotFound",
            str(call.get("Name")),
        )
    for vm, _a in pairs:
        if vm.state != "Off" and vm.generation == 1:
            raise E.invalid_state("Network Adapter", call.name, vm.name)
    for vm, a in pairs:
        if vm.state == "Running" and vm.guest is not None and a.switch:
            vm.guest.on_adapter_link(a.mac, False)  # the guest loses the device's link
        vm.adapters.remove(a)
        if vm.state == "Running" and vm.guest is not None:
            vm.guest.on_adapters_changed()  # hot remove: the device goes at once
        if call.switch("Passthru"):
            yield S.adapter_obj(hv, vm, a)


@cmdlet(
    "Set-VMNetworkAdapter",
    params=[
        "VMName",
        "VM",
        "Name",
        "VMNetworkAdapter",
        "StaticMacAddress",
        "DynamicMacAddress",
        "MacAddressSpoofing",
        "AllowTeaming",
        "DeviceNaming",
        "Passthru",
    ],
)
def set_vmnetworkadapter(ctx: Context, call: Call) -> Iterable[Any]:
    hv, pairs = _adapters_of(ctx, call)
    for vm, _a in pairs:
        if ("StaticMacAddress" in call or call.switch("DynamicMacAddress")) and vm.state != "Off":
            # The MAC is fixed while the VM runs (modelled on the R-01 text family).
            raise E.invalid_state("Network Adapter", call.name, vm.name)
        if "StaticMacAddress" in call:
            _mac(call.params["StaticMacAddress"], call.name)
    for vm, a in pairs:
        if "StaticMacAddress" in call:
            a.mac, a.dynamic_mac = _mac(call.params["StaticMacAddress"], call.name), False
        if call.switch("DynamicMacAddress"):
            a.dynamic_mac = True
        if "MacAddressSpoofing" in call:
            a.mac_spoofing = _flag(call.params["MacAddressSpoofing"])
        if "AllowTeaming" in call:
            a.allow_teaming = _flag(call.params["AllowTeaming"])
        if "DeviceNaming" in call:
            a.device_naming = _flag(
                call.params["DeviceNaming"]
            )  # the guest sees it from its next boot
        if call.switch("Passthru"):
            yield S.adapter_obj(hv, vm, a)


@cmdlet(
    "Rename-VMNetworkAdapter",
    params=["VMName", "VM", "Name", "VMNetworkAdapter", "NewName", "Passthru"],
)
def rename_vmnetworkadapter(ctx: Context, call: Call) -> Iterable[Any]:
    hv, pairs = _adapters_of(ctx, call)
    for vm, a in pairs:
        a.name = str(call.params["NewName"])
        if call.switch("Passthru"):
            yield S.adapter_obj(hv, vm, a)


@cmdlet(
    "Connect-VMNetworkAdapter",
    params=["VMName", "Name", "VMNetworkAdapter", "SwitchName", "Passthru"],
)
def connect_vmnetworkadapter(ctx: Context, call: Call) -> Iterable[Any]:
    hv, pairs = _adapters_of(ctx, call)
    sw = _switch(hv, str(call.params["SwitchName"]), call.name)
    for vm, a in pairs:
        was = a.switch
        a.switch, a.switch_id = sw.name, str(sw.id)
        if not was and vm.state == "Running" and vm.guest is not None:
            vm.guest.on_adapter_link(a.mac, True)  # the guest sees its link back
        if call.switch("Passthru"):
            yield S.adapter_obj(hv, vm, a)


@cmdlet(
    "Disconnect-VMNetworkAdapter",
    params=["VMName", "Name", "VMNetworkAdapter", "Passthru"],
)
def disconnect_vmnetworkadapter(ctx: Context, call: Call) -> Iterable[Any]:
    """Take an adapter off its switch: SwitchName becomes empty and a running guest sees
    its link go down at once, as when a cable is pulled (R-110)."""
    hv, pairs = _adapters_of(ctx, call)
    for vm, a in pairs:
        was = a.switch
        a.switch, a.switch_id = None, None
        if was and vm.state == "Running" and vm.guest is not None:
            vm.guest.on_adapter_link(a.mac, False)
        if call.switch("Passthru"):
            yield S.adapter_obj(hv, vm, a)


@cmdlet(
    "Get-VMNetworkAdapterVlan", params=["VMName", "VM", "VMNetworkAdapterName", "VMNetworkAdapter"]
)
def get_vmnetworkadaptervlan(ctx: Context, call: Call) -> Iterable[Any]:
    _hv, pairs = _adapters_of(ctx, call, name_param="VMNetworkAdapterName")
    for vm, a in pairs:
        yield S.vlan_obj(vm, a)


@cmdlet(
    "Set-VMNetworkAdapterVlan",
    params=[
        "VMName",
        "VM",
        "VMNetworkAdapterName",
        "VMNetworkAdapter",
        "Access",
        "VlanId",
        "Trunk",
        "AllowedVlanIdList",
        "NativeVlanId",
        "Untagged",
        "Passthru",
    ],
)
def set_vmnetworkadaptervlan(ctx: Context, call: Call) -> Iterable[Any]:
    hv, pairs = _adapters_of(ctx, call, name_param="VMNetworkAdapterName")
    for vm, a in pairs:
        # Access needs a VLAN id 1..4094; Trunk an allowed list and a native id.
        if call.switch("Access"):
            vid = int(call.get("VlanId") or 0)
            if not 1 <= vid <= 4094:
                raise E.hv(
                    f"The VLAN identifier {vid} is not valid: use 1 to 4094.",
                    "InvalidParameter",
                    call.name,
                    "InvalidArgument",
                    vid,
                )
            a.vlan.mode, a.vlan.access_vlan_id = "Access", vid
        elif call.switch("Trunk"):
            a.vlan.mode = "Trunk"
            a.vlan.allowed_vlan_id_list = str(call.get("AllowedVlanIdList") or "")
            a.vlan.native_vlan_id = int(call.get("NativeVlanId") or 0)
        elif call.switch("Untagged"):
            a.vlan.mode, a.vlan.access_vlan_id = "Untagged", 0
        if call.switch("Passthru"):
            yield S.adapter_obj(hv, vm, a)
