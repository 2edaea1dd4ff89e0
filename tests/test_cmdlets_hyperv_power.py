"""The VM power state machine (Off, Running, Stopping, Saved) through the cmdlets,
with the real guest model behind the heartbeat (R-36, R-37, R-80)."""

from __future__ import annotations

import datetime as dt

import pytest
from hostkit import GiB, i64, out, run

from hvsim.errors import PSError
from hvsim.model.world import World

IMG = "C:\\hvlab\\images\\ws2022-datacenter.vhdx"
HV = "Microsoft.HyperV.PowerShell.Commands."


@pytest.fixture
def world() -> World:
    w = World.create()
    w.host.fs.mkdir("C:\\lab")
    out(w, "New-VHD", Path="C:\\lab\\n1.vhdx", ParentPath=IMG, Differencing=True)
    out(
        w,
        "New-VM",
        Name="n1",
        Generation=2,
        MemoryStartupBytes=i64(2 * GiB),
        VHDPath="C:\\lab\\n1.vhdx",
        Path="C:\\lab",
    )
    return w


def state(w: World) -> str:
    return str(out(w, "Get-VM", Name="n1")[0]["State"])


def test_start_is_running_at_once_and_guest_attached(world: World) -> None:
    out(world, "Start-VM", Name="n1")
    assert state(world) == "Running"  # Running before the guest is ready
    vm = world.vm("n1")
    assert vm.guest is not None and vm.boot_count == 1
    [v] = out(world, "Get-VHD", Path="C:\\lab\\n1.vhdx")
    assert v["Attached"] is True and v["DiskNumber"] is None
    _, streams = run(world, "Start-VM", Name="n1")
    assert streams.warnings == ["The virtual machine 'n1' is already in the specified state."]


def test_restart_needs_force_and_resets_uptime(world: World) -> None:
    out(world, "Start-VM", Name="n1")
    world.clock.sleep(600)
    up1 = out(world, "Get-VM", Name="n1")[0]["Uptime"]
    assert up1 >= dt.timedelta(seconds=600)
    with pytest.raises(PSError) as exc:
        run(world, "Restart-VM", Name="n1")
    assert exc.value.fqid == f"HostFunctionNotImplemented,{HV}RestartVM"
    assert 'restart virtual machine "n1"?' in exc.value.message
    out(world, "Restart-VM", Name="n1", Force=True)
    up2 = out(world, "Get-VM", Name="n1")[0]["Uptime"]
    assert up2 < up1
    assert world.vm("n1").boot_count == 2


def test_restart_of_an_off_vm_fails(world: World) -> None:
    with pytest.raises(PSError) as exc:
        run(world, "Restart-VM", Name="n1", Force=True)
    assert exc.value.category == "InvalidOperation"


def test_graceful_stop_needs_a_guest_that_answers(world: World) -> None:
    out(world, "New-VM", Name="blank", Generation=2, NoVHD=True)
    out(world, "Start-VM", Name="blank")  # no OS disk: nothing answers the shutdown request
    [vm] = out(world, "Get-VM", Name="blank")
    assert str(vm["Heartbeat"]) == "NoContact"
    with pytest.raises(PSError) as exc:
        run(world, "Stop-VM", Name="blank")
    assert exc.value.fqid == f"InvalidState,{HV}StopVM" and "-TurnOff" in exc.value.message
    out(world, "Stop-VM", Name="blank", TurnOff=True)
    assert world.vm("blank").state == "Off"
    out(world, "Start-VM", Name="n1")
    hb = str(out(world, "Get-VM", Name="n1")[0]["Heartbeat"])
    assert hb.startswith("Ok")  # the guest's integration services run once Windows boots
    t0 = world.clock.now()
    out(world, "Stop-VM", Name="n1")
    assert state(world) == "Off" and world.clock.now() - t0 >= 15  # the shutdown took its time
    [vm] = out(world, "Get-VM", Name="n1")
    assert vm["Heartbeat"] is None and int(vm["MemoryAssigned"]) == 0


def test_save_and_resume(world: World) -> None:
    out(world, "Start-VM", Name="n1")
    free_running = world.host.memory_free()
    out(world, "Stop-VM", Name="n1", Save=True)
    assert state(world) == "Saved" and world.host.memory_free() == free_running + 2 * GiB
    out(world, "Start-VM", Name="n1")
    assert state(world) == "Running" and world.vm("n1").boot_count == 1  # resumed, not booted


def test_stop_of_an_off_vm_warns(world: World) -> None:
    _, streams = run(world, "Stop-VM", Name="n1", TurnOff=True)
    assert streams.warnings == ["The virtual machine 'n1' is already in the specified state."]


def test_start_with_a_missing_disk_fails(world: World) -> None:
    world.host.fs.remove("C:\\lab\\n1.vhdx")
    with pytest.raises(PSError) as exc:
        run(world, "Start-VM", Name="n1")
    assert "The system cannot find the file specified." in exc.value.message


def test_transient_fault_through_the_executor() -> None:
    w = World.create(faults="transient:cmdlet=Get-VMHost,nth=1")
    with pytest.raises(PSError) as exc:
        run(w, "Get-VMHost")
    assert exc.value.fqid == f"TransientFailure,{HV}GetVMHost"
    assert out(w, "Get-VMHost")[0]["ComputerName"] == "HV01"


def test_suspend_resume_and_saved_uptime(world: World) -> None:
    out(world, "Start-VM", Name="n1")
    free = world.host.memory_free()
    out(world, "Suspend-VM", Name="n1")
    [vm] = out(world, "Get-VM", Name="n1")
    assert str(vm["State"]) == "Paused" and str(vm["Heartbeat"]) == "Paused"
    assert world.host.memory_free() == free  # a paused VM keeps its memory
    with pytest.raises(PSError):
        run(world, "Stop-VM", Name="n1")  # a paused guest cannot shut itself down
    out(world, "Resume-VM", Name="n1")
    assert state(world) == "Running"
    out(world, "Save-VM", Name="n1")
    [vm] = out(world, "Get-VM", Name="n1")
    assert str(vm["State"]) == "Saved" and vm["Uptime"] == dt.timedelta(0)
    with pytest.raises(PSError) as exc:
        run(world, "Suspend-VM", Name="n1")
    assert exc.value.category == "InvalidOperation"
