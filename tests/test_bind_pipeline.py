"""Pipeline input binding (hvsim.bind_pipeline): per input object ByValue and
ByPropertyName, without then with coercion, default set first, the set narrowed
by what bound; InputObjectNotBound and other per-object errors; and the
end-to-end effect through the executor (R-20, R-06). Order and texts:
docs/binding.md, "Pipeline input"."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from conftest import sim_settings
from hostkit import Streams, out, run

from hvlab.errors import HostError
from hvlab.remote import Host
from hvsim.bind import bind
from hvsim.bind_pipeline import BoundInput, PipelineCall, PipelineRun, assignable
from hvsim.catalog import catalog
from hvsim.errors import PSError
from hvsim.executor import Command, run_pipeline
from hvsim.model.world import World
from hvsim.objects import PSObj, UInt32

HV = "Microsoft.HyperV.PowerShell."
HVC = HV + "Commands."
BASE = [HV + "VirtualizationObject", "System.Object"]
NOT_BOUND = (
    "The input object cannot be bound to any parameters for the command either because the "
    "command does not take pipeline input or the input and its properties do not match any of "
    "the parameters that take pipeline input."
)
BINDING_EXCEPTION = "System.Management.Automation.ParameterBindingException"
ADMIN = "HV01\\Administrator"


def vm(name: str = "n1", vm_id: uuid.UUID | None = None) -> PSObj:
    vid = vm_id or uuid.UUID(int=7, version=4)
    return PSObj(
        [HV + "VirtualMachine", HV + "VirtualMachineBase", *BASE],
        {"Name": name, "VMName": name, "VMId": vid, "Id": vid, "Path": "C:\\lab\\" + name},
        to_string=f"VirtualMachine (Name = '{name}') [Id = '{vid}']",
    )


def deserialized(obj: PSObj) -> PSObj:
    """As Invoke-Command hands an object back (hyperv-facts, Object shapes)."""
    return PSObj(
        ["Deserialized." + t for t in obj.type_names],
        dict(obj.props),
        to_string=obj.to_string,
        notes={"PSComputerName": "n1", "PSShowComputerName": True},
    )


def adapter(kind: str = "VMNetworkAdapter", vm_name: str = "n1") -> PSObj:
    return PSObj(
        [HV + kind, HV + "VMNetworkAdapterBase", *BASE],
        {"Name": "Network Adapter", "VMName": vm_name, "VMId": uuid.UUID(int=7, version=4)},
    )


def custom(**props: Any) -> PSObj:
    return PSObj(["System.Management.Automation.PSCustomObject", "System.Object"], props)


def pipe(cmdlet: str, inputs: list[Any], *args: tuple[str | None, Any]) -> PipelineCall:
    call = bind(cmdlet, list(args), pipeline_input=inputs)
    assert isinstance(call, PipelineCall)
    return call


def only_bound(call: PipelineCall) -> BoundInput:
    [item] = call.pipeline
    assert isinstance(item, BoundInput), getattr(item, "message", item)
    return item


# ---------------------------------------------------------------------------
# ByValue by type


def test_live_vm_binds_vm_and_selects_vmobject_r20() -> None:
    # Stop-VM's default set is Name; a VirtualMachine is no String, so it binds -VM
    # (VirtualMachine[]) in the other set, and acts on that VM only.
    obj = vm()
    call = pipe("Stop-VM", [obj], ("TurnOff", None), ("Force", None))
    bound = only_bound(call)
    assert bound.parameter_set == "VMObject"
    assert bound.params == {"VM": [obj]}
    [run_] = call.runs()
    assert isinstance(run_, PipelineRun)
    assert run_.call.parameter_set == "VMObject"
    assert run_.call.params == {"TurnOff": True, "Force": True, "VM": [obj]}
    assert run_.inputs == [obj]


def test_string_binds_name_in_default_set() -> None:
    bound = only_bound(pipe("Stop-VM", ["dup"], ("TurnOff", None)))
    assert (bound.parameter_set, bound.params) == ("Name", {"Name": ["dup"]})


@pytest.mark.parametrize("kind", ["VMNetworkAdapter", "VMInternalNetworkAdapter"])
def test_derived_type_binds_base_type_parameter_r06(kind: str) -> None:
    # Set-VMNetworkAdapter -VMNetworkAdapter is VMNetworkAdapterBase; both adapter
    # classes derive from it.
    obj = adapter(kind)
    bound = only_bound(pipe("Set-VMNetworkAdapter", [obj], ("MacAddressSpoofing", "On")))
    assert bound.parameter_set == "ResourceObject"
    assert bound.params == {"VMNetworkAdapter": obj}


def test_full_catalog_type_names_match_whole() -> None:
    # PowerShell-Docs pages write full names ('System.Object[]'): Set-Content -Value.
    bound = only_bound(pipe("Set-Content", ["line"], ("Path", "C:\\x.txt")))
    assert bound.params == {"Value": ["line"]}


def test_type_matching_rules() -> None:
    cmd = catalog().get("Stop-VM")
    assert cmd is not None
    vm_param, name_param = cmd.params["VM"], cmd.params["Name"]
    assert assignable(vm(), vm_param)
    assert not assignable(vm(), name_param)
    assert assignable("n1", name_param)
    assert not assignable(adapter(), vm_param)
    # The last segment must match whole, not as a suffix.
    other = PSObj(["Contoso.NotAVirtualMachine", "System.Object"], {})
    assert not assignable(other, vm_param)
    # A CIM class decoration after '#' is not part of the .NET type.
    disk = PSObj(
        [
            "Microsoft.Management.Infrastructure.CimInstance#ROOT/Microsoft/Windows/Storage/MSFT_Disk",
            "Microsoft.Management.Infrastructure.CimInstance",
            "System.Object",
        ],
        {},
    )
    clear = catalog().get("Clear-Disk")
    assert clear is not None
    assert assignable(disk, clear.params["InputObject"])


# ---------------------------------------------------------------------------
# Deserialized objects


def test_deserialized_vm_does_not_bind_live_type() -> None:
    # A Deserialized.* object is a property bag: no ByValue match to VirtualMachine
    # (PowerShell/PowerShell#14948: InputObjectNotBound for a deserialized BitsJob).
    # Stop-VM's -Name then takes it by coercion to String: its ToString text.
    obj = deserialized(vm())
    bound = only_bound(pipe("Stop-VM", [obj], ("TurnOff", None)))
    assert bound.parameter_set == "Name"
    assert bound.params == {"Name": [obj.to_string]}


def test_deserialized_object_binds_psobject_parameter() -> None:
    # Get-VM -ClusterObject is PSObject ByValue: it takes any object, deserialized too.
    obj = deserialized(vm())
    bound = only_bound(pipe("Get-VM", [obj]))
    assert (bound.parameter_set, bound.params) == ("ClusterObject", {"ClusterObject": obj})


def test_deserialized_harddisk_is_not_bound() -> None:
    drive = PSObj([HV + "HardDiskDrive", HV + "Drive", *BASE], {"VMName": "n1"})
    assert isinstance(only_bound(pipe("Remove-VMHardDiskDrive", [drive])), BoundInput)
    [err] = pipe("Remove-VMHardDiskDrive", [deserialized(drive)]).pipeline
    assert isinstance(err, PSError) and err.fqid.startswith("InputObjectNotBound,")


# ---------------------------------------------------------------------------
# ByPropertyName


def test_by_property_name_default_set_first() -> None:
    # Get-VHD: Path (default set, alias FullName), VMId (alias Id), both ByValue and
    # ByPropertyName. A VM object has a Path property (its folder): the default
    # set's parameter binds in step 2 and VMId is never tried.
    obj = vm()
    bound = only_bound(pipe("Get-VHD", [obj]))
    assert (bound.parameter_set, bound.params) == ("Path", {"Path": ["C:\\lab\\n1"]})


def test_by_property_name_other_set_and_alias() -> None:
    # Without a Path/FullName property the VMId set takes the Guid (no coercion).
    vid = uuid.UUID(int=9, version=4)
    bound = only_bound(pipe("Get-VHD", [custom(VMId=vid, Name="x")]))
    assert (bound.parameter_set, bound.params) == ("VMId", {"VMId": [vid]})
    # FileInfo objects bind Path through its alias FullName.
    file = PSObj(
        ["System.IO.FileInfo", "System.IO.FileSystemInfo", "System.Object"],
        {"Name": "d1.vhdx", "FullName": "C:\\lab\\d1.vhdx"},
    )
    bound = only_bound(pipe("Get-VHD", [file]))
    assert (bound.parameter_set, bound.params) == ("Path", {"Path": ["C:\\lab\\d1.vhdx"]})


def test_by_property_name_with_coercion_selects_set() -> None:
    # New-NetIPAddress: IPAddress (every set) binds in step 2; InterfaceIndex (alias
    # ifIndex, UInt32) only with coercion from the string, in step 4, which leaves
    # the set ByInterfaceIndex although the default is ByInterfaceAlias.
    obj = custom(IPAddress="10.0.0.5", ifIndex="12")
    bound = only_bound(pipe("New-NetIPAddress", [obj], ("PrefixLength", 24)))
    assert bound.parameter_set == "ByInterfaceIndex"
    assert bound.params == {"IPAddress": "10.0.0.5", "InterfaceIndex": UInt32(12)}
    assert type(bound.params["InterfaceIndex"]) is UInt32


def test_property_names_are_case_insensitive_and_notes_count() -> None:
    obj = PSObj(["System.Management.Automation.PSCustomObject", "System.Object"], {})
    obj.notes["ipaddress"] = "10.0.0.6"
    obj.notes["INTERFACEALIAS"] = "Ethernet"
    bound = only_bound(pipe("New-NetIPAddress", [obj], ("PrefixLength", 24)))
    assert bound.parameter_set == "ByInterfaceAlias"
    assert bound.params == {"IPAddress": "10.0.0.6", "InterfaceAlias": "Ethernet"}


def test_by_property_name_failed_transformation_is_that_objects_error() -> None:
    # A CDXML function converts in an argument transformation; a value taken by
    # property name that fails it is an error for that object, not "not bound".
    bad = custom(IPAddress="10.0.0.7", ifIndex="abc")
    good = custom(IPAddress="10.0.0.8", InterfaceAlias="Ethernet")
    call = pipe("New-NetIPAddress", [bad, good], ("PrefixLength", 24))
    first, second = call.pipeline
    assert isinstance(first, PSError)
    assert first.fqid == "ParameterArgumentTransformationError,New-NetIPAddress"
    assert first.target is bad
    assert isinstance(second, BoundInput)
    assert second.params == {"IPAddress": "10.0.0.8", "InterfaceAlias": "Ethernet"}


# ---------------------------------------------------------------------------
# Sets, runs and errors


def test_command_line_set_leaves_nothing_for_the_object() -> None:
    # -Name binds the Name set; the VM object fits no unbound parameter there.
    obj = vm()
    call = pipe("Stop-VM", [obj], ("Name", "other"), ("TurnOff", None))
    [err] = call.pipeline
    assert isinstance(err, PSError)
    assert err.message == NOT_BOUND
    assert err.fqid == "InputObjectNotBound," + HVC + "StopVM"
    assert err.category == "InvalidArgument"
    assert err.exception == BINDING_EXCEPTION
    assert err.target is obj
    assert call.runs() == [err]


def test_type_that_matches_nothing() -> None:
    # Remove-VMHardDiskDrive takes only HardDiskDrive[] from the pipeline.
    obj = vm()
    [err] = pipe("Remove-VMHardDiskDrive", [obj]).pipeline
    assert isinstance(err, PSError)
    assert (err.message, err.category, err.target) == (NOT_BOUND, "InvalidArgument", obj)
    assert err.fqid == "InputObjectNotBound," + HVC + "RemoveVMHardDiskDrive"
    # New-VMSwitch takes pipeline input by property name only; a string has none.
    [err] = pipe("New-VMSwitch", ["x"], ("Name", "s"), ("SwitchType", "Internal")).pipeline
    assert isinstance(err, PSError) and err.fqid == "InputObjectNotBound," + HVC + "NewVMSwitch"


def test_runs_split_by_set_in_input_order() -> None:
    a, b = vm("a", uuid.UUID(int=1, version=4)), vm("b", uuid.UUID(int=2, version=4))
    unbound = 5  # an Int32 converts to String: Name "5"
    call = pipe("Stop-VM", [a, b, "c", unbound, a], ("Force", None))
    runs = call.runs()
    assert [r.call.parameter_set for r in runs if isinstance(r, PipelineRun)] == [
        "VMObject",
        "Name",
        "VMObject",
    ]
    first, second, third = runs
    assert isinstance(first, PipelineRun) and first.call.params["VM"] == [a, b]
    assert first.inputs == [a, b]
    assert isinstance(second, PipelineRun) and second.call.params["Name"] == ["c", "5"]
    assert isinstance(third, PipelineRun) and third.call.params["VM"] == [a]


def test_errors_sit_between_runs() -> None:
    drive = PSObj([HV + "HardDiskDrive", HV + "Drive", *BASE], {"VMName": "n1"})
    runs = pipe("Remove-VMHardDiskDrive", [drive, vm(), drive]).runs()
    assert [type(r).__name__ for r in runs] == ["PipelineRun", "PSError", "PipelineRun"]


def test_scalar_parameter_from_several_objects_is_a_list() -> None:
    a, b = adapter(vm_name="a"), adapter(vm_name="b")
    [run_] = pipe("Set-VMNetworkAdapter", [a, b], ("MacAddressSpoofing", "On")).runs()
    assert isinstance(run_, PipelineRun)
    assert run_.call.params["VMNetworkAdapter"] == [a, b]


def test_keep_leaves_out_parameters_a_handler_does_not_declare() -> None:
    [run_] = pipe("Stop-VM", [vm()], ("Force", None)).runs(keep=["Name", "Force"])
    assert isinstance(run_, PipelineRun)
    assert run_.call.params == {"Force": True}
    assert run_.call.parameter_set == "VMObject"


def test_missing_mandatory_after_the_object_bound() -> None:
    # Connect-VMNetworkAdapter with only pipeline input: the set Object_SwitchObject
    # also needs -VMSwitch, which an adapter object cannot supply.
    obj = adapter()
    [err] = pipe("Connect-VMNetworkAdapter", [obj]).pipeline
    assert isinstance(err, PSError)
    assert err.message == (
        "The input object cannot be bound because it did not contain the information "
        "required to bind all mandatory parameters:  VMSwitch"
    )
    assert err.fqid == "InputObjectMissingMandatory," + HVC + "ConnectVMNetworkAdapter"
    assert err.target is obj


def test_validation_error_is_per_object() -> None:
    call = pipe("Stop-VM", ["", "n1"], ("Force", None))
    first, second = call.pipeline
    assert isinstance(first, PSError)
    assert (
        first.message == "Cannot bind argument to parameter 'Name' because it is an empty string."
    )
    assert first.target == ""
    assert isinstance(second, BoundInput) and second.params == {"Name": ["n1"]}


def test_mandatory_not_from_pipeline_fails_before_input() -> None:
    # -NewName takes no pipeline input: the whole command fails, as without input.
    with pytest.raises(PSError) as exc:
        bind("Rename-VMNetworkAdapter", [], pipeline_input=[adapter()])
    assert exc.value.fqid.startswith("MissingMandatoryParameter,")
    assert "NewName" in exc.value.message


def test_without_pipeline_input_nothing_changes() -> None:
    call = bind("Stop-VM", [("TurnOff", None)], has_pipeline_input=True)
    assert type(call).__name__ == "Call"
    assert (call.parameter_set, call.params) == ("Name", {"TurnOff": True})


def test_empty_input_runs_the_command_line_call_once() -> None:
    call = pipe("Stop-VM", [], ("TurnOff", None))
    [run_] = call.runs()
    assert isinstance(run_, PipelineRun)
    assert (run_.call.parameter_set, run_.call.params, run_.inputs) == (
        "Name",
        {"TurnOff": True},
        [],
    )


# ---------------------------------------------------------------------------
# Through the executor, with the model


@pytest.fixture
def world() -> World:
    w = World.create()
    for _ in range(2):
        out(w, "New-VM", Name="dup", Generation=2, NoVHD=True)
    out(w, "New-VM", Name="other", Generation=2, NoVHD=True)
    out(w, "Start-VM", Name="dup")
    return w


def _states(world: World, name: str = "dup") -> dict[uuid.UUID, str]:
    return {v["VMId"]: str(v["State"]) for v in out(world, "Get-VM", Name=name)}


def _pipeline(world: World, *commands: Command, input: list[Any] | None = None) -> Streams:
    streams = Streams()
    run_pipeline(world, world.host, ADMIN, list(commands), streams, input=input)
    return streams


def test_stop_by_id_stops_only_that_vm_r20(world: World) -> None:
    one, two = _states(world)
    streams = _pipeline(
        world,
        Command("Get-VM", [("Id", str(one))]),
        Command("Stop-VM", [("TurnOff", None), ("Force", None)]),
    )
    assert streams.errors == []
    assert _states(world) == {one: "Off", two: "Running"}


def test_remove_by_id_removes_only_that_vm_r20(world: World) -> None:
    one, two = _states(world)
    _pipeline(
        world,
        Command("Get-VM", [("Id", str(one))]),
        Command("Stop-VM", [("TurnOff", None), ("Force", None)]),
    )
    streams = _pipeline(
        world, Command("Get-VM", [("Id", str(one))]), Command("Remove-VM", [("Force", None)])
    )
    assert streams.errors == []
    assert list(_states(world)) == [two]


def test_piped_name_acts_on_every_match_r20(world: World) -> None:
    streams = _pipeline(
        world, Command("Stop-VM", [("TurnOff", None), ("Force", None)]), input=["dup"]
    )
    assert streams.errors == []
    assert set(_states(world).values()) == {"Off"}


def test_vm_object_with_name_on_the_command_line_is_not_bound(world: World) -> None:
    # Windows refuses the object (InputObjectNotBound) and stops nothing; acting on
    # -Name would stop both VMs named dup.
    one, _two = _states(world)
    streams = _pipeline(
        world,
        Command("Get-VM", [("Id", str(one))]),
        Command("Stop-VM", [("Name", "dup"), ("TurnOff", None), ("Force", None)]),
    )
    [err] = streams.errors
    assert err.fqid == "InputObjectNotBound," + HVC + "StopVM"
    assert err.target["VMId"] == one
    assert set(_states(world).values()) == {"Running"}


def test_unbound_object_with_erroraction_stop_terminates(world: World) -> None:
    one, _two = _states(world)
    with pytest.raises(PSError) as exc:
        _pipeline(
            world,
            Command("Get-VM", [("Id", str(one))]),
            Command("Remove-VMHardDiskDrive", [("ErrorAction", "Stop")]),
        )
    assert exc.value.fqid == "InputObjectNotBound," + HVC + "RemoveVMHardDiskDrive"


def test_adapter_pipeline_sets_spoofing_on_that_vm_only_r06(world: World) -> None:
    streams = _pipeline(
        world,
        Command("Get-VMNetworkAdapter", [("VMName", "other")]),
        Command("Set-VMNetworkAdapter", [("MacAddressSpoofing", "On"), ("AllowTeaming", "On")]),
    )
    assert streams.errors == []
    spoofing = {
        a["VMName"]: str(a["MacAddressSpoofing"])
        for name in ("dup", "other")
        for a in out(world, "Get-VMNetworkAdapter", VMName=name)
    }
    assert spoofing == {"dup": "Off", "other": "On"}


def test_upstream_error_leaves_nothing_to_stop(world: World) -> None:
    result, streams = run(world, "Get-VM", Name="nope", ErrorAction="SilentlyContinue")
    assert result == [] and streams.errors == []
    streams = _pipeline(
        world,
        Command("Get-VM", [("Name", "nope"), ("ErrorAction", "SilentlyContinue")]),
        Command("Stop-VM", [("TurnOff", None), ("Force", None)]),
    )
    assert streams.errors == []
    assert set(_states(world).values()) == {"Running"}


# ---------------------------------------------------------------------------
# Over the wire: lab.down's calls through hvlab.remote and pypsrp


def test_lab_down_pipelines_over_the_wire_r20(sim_server: Any, world: World) -> None:
    server = sim_server(auth="ntlm", world=world)
    settings = sim_settings(server)
    one, two = _states(world)
    with Host.connect(settings) as host:
        host.pipeline([("Get-VM", {"Id": one}), ("Stop-VM", {"TurnOff": True, "Force": True})])
        host.pipeline([("Get-VM", {"Id": one}), ("Remove-VM", {"Force": True})])
        with pytest.raises(HostError) as info:
            host.pipeline([("Get-VM", {"Id": two}), ("Remove-VMHardDiskDrive", {})])
    assert _states(world) == {two: "Running"}
    assert info.value.error_id == "InputObjectNotBound," + HVC + "RemoveVMHardDiskDrive"
