"""Persistence, fault injection, timing and contention of the host model."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hostkit import GiB, i64, out, run, u64

from hvsim import persist, timing
from hvsim.errors import PSError
from hvsim.faults import DropConnection, Faults, FaultSpecError
from hvsim.model.world import World
from hvsim.show import render

IMG = "C:\\hvlab\\images\\ws2022-datacenter.vhdx"


def build(w: World, name: str = "n1") -> None:
    w.host.fs.mkdir("C:\\lab")
    out(w, "New-VMSwitch", Name="lab-mgmt", SwitchType="Internal", Notes="hvlab:lab")
    out(w, "New-VHD", Path=f"C:\\lab\\{name}-os.vhdx", ParentPath=IMG, Differencing=True)
    out(
        w,
        "New-VM",
        Name=name,
        Generation=2,
        MemoryStartupBytes=i64(4 * GiB),
        Path="C:\\lab",
        VHDPath=f"C:\\lab\\{name}-os.vhdx",
        SwitchName="lab-mgmt",
    )


# -- persistence ---------------------------------------------------------------------


def test_state_round_trip(tmp_path: Path) -> None:
    w = World.create()
    build(w)
    out(w, "Start-VM", Name="n1")
    before = w.snapshot()
    t = w.clock.now()
    path = tmp_path / "state.bin"
    persist.save(w, path)
    assert not list(tmp_path.glob("*.tmp"))  # the temporary file was moved into place
    w2 = persist.load(path)
    assert w2.snapshot() == before
    assert w2.clock.now() >= t  # modelled time continues from the saved value
    vm = w2.vm("n1")
    assert vm.state == "Running" and vm.guest is not None and vm.guest.world is w2
    # The loaded world works: cmdlets run against it.
    out(w2, "Stop-VM", Name="n1", TurnOff=True)
    assert w2.vm("n1").state == "Off"


def test_load_state_in_place_keeps_faults(tmp_path: Path) -> None:
    w = World.create()
    build(w)
    path = tmp_path / "s.bin"
    w.save_state(str(path))
    fresh = World.create(faults="slow_reboot:factor=3")
    fresh.load_state(str(path))
    assert [vm.name for vm in fresh.host.hyperv.vms] == ["n1"]
    assert fresh.faults.boot_factor(fresh.vm("n1")) == 3


def test_state_refuses_other_versions(tmp_path: Path) -> None:
    path = tmp_path / "old.bin"
    path.write_bytes(b'{"format": "hvsim-state", "schema": 0, "objects": []}')
    with pytest.raises(persist.StateFileError, match="schema 0"):
        persist.load(path)
    path.write_bytes(b"HVSIM-STATE 1 0123456789abcdef\n" + b"junk")
    with pytest.raises(persist.StateFileError, match="never loads pickles"):
        persist.load(path)
    path.write_bytes(b"not a state file")
    with pytest.raises(persist.StateFileError, match="not an hvsim state file"):
        persist.load(path)


def test_show_tree_lists_host_switches_vms(tmp_path: Path) -> None:
    w = World.create()
    build(w)
    text = render(w)
    assert "HV01" in text and "lab-mgmt (Internal)" in text and "n1 Off" in text
    assert "C:\\lab\\n1-os.vhdx" in text


# -- faults --------------------------------------------------------------------------


def test_fault_spec_grammar() -> None:
    f = Faults.parse(
        "boot_hang:vm=hvhost02;transient:cmdlet=New-VHD,nth=2;drop:cmdlet=Install-WindowsFeature,rate=0.1;"
        "slow_reboot:factor=10;disk_full:after_bytes=1000;seed=7"
    )
    assert f.seed == 7 and [x.kind for x in f.faults] == [
        "boot_hang",
        "transient",
        "drop",
        "slow_reboot",
        "disk_full",
    ]
    for bad, msg in [
        ("explode:vm=x", "unknown kind"),
        ("boot_hang", "needs vm"),
        ("transient:cmdlet=X,nth=two", "whole number"),
        ("drop:cmdlet=X,rate=2", "within 0..1"),
        ("slow_reboot:factor=10,colour=red", "no option 'colour'"),
        ("seed=abc", "bad seed"),
    ]:
        with pytest.raises(FaultSpecError, match=msg):
            Faults.parse(bad)


class _Call:
    def __init__(self, name: str) -> None:
        self.name = name


def test_transient_fault_fires_once_on_nth_call() -> None:
    w = World.create(faults="transient:cmdlet=New-VHD,nth=2")
    calls = []
    for _ in range(3):
        try:
            w.faults.check(None, _Call("New-VHD"))
            calls.append("ok")
        except PSError as err:
            calls.append(err.category)
    assert calls == ["ok", "ResourceUnavailable", "ok"]


def test_drop_fault_raises_drop_connection() -> None:
    w = World.create(faults="drop:cmdlet=Get-VM,nth=1")
    with pytest.raises(DropConnection):
        w.faults.check(None, _Call("Get-VM"))
    w.faults.check(None, _Call("Get-VM"))


def test_drop_rate_is_seeded() -> None:
    def pattern(seed: int) -> list[bool]:
        f = Faults.parse(f"drop:cmdlet=X,rate=0.5;seed={seed}")
        got = []
        for _ in range(20):
            try:
                f.check(None, _Call("X"))
                got.append(False)
            except DropConnection:
                got.append(True)
        return got

    assert pattern(7) == pattern(7) and any(pattern(7)) and not all(pattern(7))


def test_disk_full_fault_fills_host_volume() -> None:
    w = World.create(faults=f"disk_full:after_bytes={10 * 1024**2}")
    w.host.fs.mkdir("C:\\lab")
    out(w, "New-VHD", Path="C:\\lab\\a.vhdx", SizeBytes=u64(GiB), Dynamic=True)  # 4 MiB
    with pytest.raises(PSError, match="not enough space"):
        for i in range(3):
            run(w, "New-VHD", Path=f"C:\\lab\\b{i}.vhdx", SizeBytes=u64(GiB), Dynamic=True)


def test_boot_hang_and_slow_reboot_hooks() -> None:
    w = World.create(faults="boot_hang:vm=n1,phase=Specialize,once=1;slow_reboot:factor=10,vm=n2")
    build(w)
    vm = w.vm("n1")
    assert w.faults.stuck_phase(vm) == "Specialize"
    out(w, "Start-VM", Name="n1")
    out(w, "Stop-VM", Name="n1", TurnOff=True)  # the hard reset clears a once-only hang
    assert w.faults.stuck_phase(vm) is None

    class _V:
        name = "n2"

    assert w.faults.boot_factor(_V()) == 10 and w.faults.boot_factor(vm) == 1


# -- timing --------------------------------------------------------------------------


def test_timescale_zero_is_instant_but_modelled_time_advances() -> None:
    w = World.create()
    w.host.fs.mkdir("C:\\lab")
    t0 = time.monotonic()
    m0 = w.modelled_now()
    out(w, "New-VHD", Path="C:\\lab\\f.vhdx", SizeBytes=u64(10 * GiB), Fixed=True)
    assert time.monotonic() - t0 < 1.0
    expected = timing.seconds("vhd.create_dynamic") + 10 * timing.seconds(
        "vhd.create_fixed_per_gib"
    )
    assert w.modelled_now() - m0 == pytest.approx(expected)


def test_small_timescale_really_takes_time() -> None:
    w = World.create(timescale=0.002)
    w.host.fs.mkdir("C:\\lab")
    t0 = time.monotonic()
    out(w, "New-VHD", Path="C:\\lab\\f.vhdx", SizeBytes=u64(100 * GiB), Fixed=True)
    real = time.monotonic() - t0
    modelled = timing.seconds("vhd.create_dynamic") + 100 * timing.seconds(
        "vhd.create_fixed_per_gib"
    )
    assert real >= modelled * 0.002 * 0.9  # 51 modelled s at 0.002 -> about 0.1 s


def test_contention_factor() -> None:
    w = World.create()
    assert w.parallel_boots() == 4  # 32 logical processors / 8
    assert w.boot_slowdown() == 1.0  # one boot alone
    assert w.boot_slowdown(extra=3) == 1.0  # four side by side still run at full speed
    assert w.boot_slowdown(extra=7) == 2.0  # eight share four slots


def test_contention_counts_guests_that_are_booting() -> None:
    # At timescale 0.01 a 90 s boot takes 0.9 s real: the five boots overlap.
    w = World.create(timescale=0.01)
    w.host.fs.mkdir("C:\\lab")
    for i in range(5):
        out(w, "New-VHD", Path=f"C:\\lab\\v{i}.vhdx", ParentPath=IMG, Differencing=True)
        out(
            w,
            "New-VM",
            Name=f"v{i}",
            Generation=2,
            MemoryStartupBytes=i64(2 * GiB),
            VHDPath=f"C:\\lab\\v{i}.vhdx",
        )
    for i in range(5):
        out(w, "Start-VM", Name=f"v{i}")
    assert w.booting_count() == 5
    assert w.boot_slowdown() == pytest.approx(6 / 4)


def test_timing_table_markdown() -> None:
    md = timing.markdown_table()
    assert "| `vm.first_boot` | 90 |" in md and "| `cluster.test` | 80 |" in md
    assert timing.DURATIONS["s2d.enable"] == 180 and timing.DURATIONS["vm.reboot"] == 45


def test_docs_timing_page_is_generated_from_the_table() -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "timing.md").read_text(encoding="utf-8")
    assert page.endswith(timing.markdown_table()), "regenerate docs/timing.md from hvsim.timing"


def test_state_round_trip_of_a_whole_cluster_lab(tmp_path: Path) -> None:
    """Domain, nodes, cluster and S2D pool as the guest tests build them survive a
    save and load unchanged (persistence covers the guest model's objects too)."""
    from test_model_cluster import _s2d, build_cluster, build_domain, build_nodes

    w = World.create()
    build_domain(w)
    build_nodes(w)
    build_cluster(w)
    _s2d(w)
    assert w.clusters and w.domains
    before = w.snapshot()
    path = tmp_path / "lab.state"
    persist.save(w, path)
    w2 = persist.load(path)
    assert w2.snapshot() == before
    assert render(w2)  # sim.show draws the loaded world


def test_faults_assigned_after_creation_take_effect() -> None:
    """A Faults object put on world.faults later (as an embedding program may do)
    applies its state faults at the first checked call."""
    from hvsim import faults

    w = World.create()
    w.host.fs.mkdir("C:\\lab")
    w.faults = faults.parse(f"disk_full:after_bytes={5 * 1024**2}")
    out(w, "New-VHD", Path="C:\\lab\\a.vhdx", SizeBytes=u64(GiB), Dynamic=True)
    with pytest.raises(PSError, match="not enough space"):
        run(w, "New-VHD", Path="C:\\lab\\b.vhdx", SizeBytes=u64(GiB), Dynamic=True)


def _vm_with_os(w: World, name: str = "n1") -> None:
    w.host.fs.mkdir("C:\\lab")
    out(w, "New-VHD", Path=f"C:\\lab\\{name}.vhdx", ParentPath=IMG, Differencing=True)
    out(
        w,
        "New-VM",
        Name=name,
        Generation=2,
        MemoryStartupBytes=i64(2 * GiB),
        VHDPath=f"C:\\lab\\{name}.vhdx",
    )


def test_boot_at_timescale_zero_is_done_at_once_and_advances_the_clock() -> None:
    w = World.create()
    _vm_with_os(w)
    t0, real0 = w.modelled_now(), time.monotonic()
    out(w, "Start-VM", Name="n1")
    [vm] = out(w, "Get-VM", Name="n1")
    assert str(vm["Heartbeat"]).startswith("Ok")  # the first boot is over already
    assert w.modelled_now() - t0 >= timing.seconds("vm.first_boot")
    assert time.monotonic() - real0 < 1.0


def test_boot_at_small_timescale_really_takes_time() -> None:
    w = World.create(timescale=0.002)  # the 90 s first boot takes 0.18 s
    _vm_with_os(w)
    out(w, "Start-VM", Name="n1")
    [vm] = out(w, "Get-VM", Name="n1")
    assert str(vm["Heartbeat"]) == "NoContact"  # still in firmware
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:  # bounded: waits for the guest's heartbeat
        if str(out(w, "Get-VM", Name="n1")[0]["Heartbeat"]).startswith("Ok"):
            break
        time.sleep(0.02)
    else:
        pytest.fail("the guest did not report a heartbeat within 5 s real (90 s modelled)")
    assert w.modelled_now() >= timing.seconds("vm.firmware")


def test_the_fourth_boot_of_four_runs_at_full_speed() -> None:
    # docs/model-notes.md, Boot contention: factor = max(1, (booting_now + 1) / 4).
    # Three guests boot; the fourth starts: (3 + 1) / 4 = 1, full speed. The fifth
    # shares: (4 + 1) / 4 = 1.25.
    w = World.create(timescale=0.01)
    w.host.fs.mkdir("C:\\lab")
    for i in range(5):
        out(w, "New-VHD", Path=f"C:\\lab\\v{i}.vhdx", ParentPath=IMG, Differencing=True)
        out(
            w,
            "New-VM",
            Name=f"v{i}",
            Generation=2,
            MemoryStartupBytes=i64(2 * GiB),
            VHDPath=f"C:\\lab\\v{i}.vhdx",
        )
    lengths = []
    for i in range(5):
        out(w, "Start-VM", Name=f"v{i}")
        stages = w.guest(f"v{i}").timeline
        lengths.append(stages[-1].start - stages[0].start)
    alone = lengths[0]
    assert lengths[3] == pytest.approx(alone, rel=0.02)
    assert lengths[4] == pytest.approx(alone * 1.25, rel=0.02)
