"""image.build and image.list against hvsim over WinRM (R-115..R-123).

With no HVLAB_HOST, hvlab starts hvsim in-process and talks to it over real
WinRM/PSRP (NTLM, sealed); its state is kept under .hvlab/sim/. The tests put
an ISO (a manifest of editions, hvsim.model.iso) on the simulated host first,
then read the host back through hvsim's Python API.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hvlab import image
from hvlab.errors import EXIT_BAD_INPUT, ConfigError, HostError, TransportError
from hvsim.model import iso
from hvsim.model.winimage import bootable

ISO = "C:\\isos\\server2022-eval.iso"
FOLDER = "C:\\hvlab\\images"


def state_file(workdir: Path) -> Path:
    return workdir / ".hvlab" / "sim" / "host.state"


def host(workdir: Path) -> Any:
    from hvsim import persist

    return persist.load(state_file(workdir))


def prepare(workdir: Path, setup: Callable[[Any], None] | None = None, **profile: Any) -> bytes:
    """A simulated host holding the evaluation ISO (four editions) at ISO."""
    from hvsim import persist
    from hvsim.model.world import HostProfile, World

    world = World.create(HostProfile(**profile)) if profile else World.create()
    media = iso.manifest_bytes(iso.server_2022_indexes(evaluation=True))
    world.host.fs.write(ISO, media, create_parents=True)
    if setup is not None:
        setup(world)
    state_file(workdir).parent.mkdir(parents=True, exist_ok=True)
    persist.save(world, state_file(workdir))
    return media


def files(world: Any, folder: str = FOLDER) -> list[str]:
    return sorted(n.name for n in world.host.fs.listdir(folder))


def mounted_isos(world: Any) -> list[str]:
    return [
        v.owner.image_path for v in world.host.fs.drives.values() if hasattr(v.owner, "image_path")
    ]


def build(**options: Any) -> dict[str, Any]:
    return image.build(None, **options)


# --- a build, a rebuild, a refused rebuild -----------------------------------------------


def test_build_from_an_iso_with_several_editions(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    media = prepare(workdir)
    facts = build(iso=ISO, name="ws2022-node", features="node")
    assert facts["changed"] is True
    world = host(workdir)
    assert files(world) == [
        "ws2022-datacenter.vhdx",
        "ws2022-node.json",
        "ws2022-node.vhdx",
        "ws2022-standard.vhdx",
    ], "no temporary file is left"
    assert mounted_isos(world) == [], "the ISO is dismounted again"
    sidecar = json.loads(world.host.fs.read(f"{FOLDER}\\ws2022-node.json"))
    assert sidecar["image_name"] == "Windows Server 2022 Datacenter Evaluation (Desktop Experience)"
    assert sidecar["edition"] == "ServerDatacenterEval"
    assert sidecar["version"] == "10.0.20348.587" and sidecar["build"] == 20348
    assert sidecar["language"] == "en-US"
    assert sidecar["iso"]["sha256"] == hashlib.sha256(media).hexdigest().upper()
    assert sidecar["iso"]["image_index"] == 4
    assert sidecar["features"] == [
        "Hyper-V",
        "Failover-Clustering",
        "FS-FileServer",
        "Hyper-V-PowerShell",
        "RSAT-Clustering-PowerShell",
    ]
    disk = world.host.fs.read(f"{FOLDER}\\ws2022-node.vhdx")
    assert disk.type == "Dynamic" and disk.size == 60 * 2**30 and disk.partition_style == "GPT"
    assert [p.type for p in disk.partitions] == ["System", "Reserved", "Basic"]
    assert disk.partitions[0].volume.file_system == "FAT32"
    assert disk.image.edition == "ServerDatacenterEval" and disk.image.generalized
    assert "Hyper-V" in disk.image.staged_features and bootable(disk)
    assert not disk.attached

    capsys.readouterr()
    rows = image.list_images(None, as_json=True)
    listed = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows and listed["ws2022-node"]["state"] == "ready"
    assert listed["ws2022-node"]["edition"] == "ServerDatacenterEval"
    assert listed["ws2022-datacenter"]["state"].startswith("no sidecar")


def test_another_edition_by_name_or_index(workdir: Path) -> None:
    prepare(workdir)
    core = build(iso=ISO, edition="Windows Server 2022 Datacenter Evaluation")
    assert core["name"] == "ws2022-datacenter-core-eval", "named after the edition chosen"
    assert core["installation_type"] == "Server Core"
    std = build(iso=ISO, edition="2", name="std")
    assert std["edition"] == "ServerStandardEval"
    assert host(workdir).host.fs.read(f"{FOLDER}\\std.vhdx").image.sku == 79


def test_a_rebuild_changes_nothing(workdir: Path) -> None:
    prepare(workdir)
    build(iso=ISO, name="img", features="dc")
    before = host(workdir).snapshot()
    again = build(iso=ISO, name="img", features="dc")
    assert again["changed"] is False
    assert host(workdir).snapshot() == before
    # The same image asked for differently (by its name in the ISO) is the same image.
    named = build(
        iso=ISO,
        name="img",
        features="AD-Domain-Services",
        edition="Windows Server 2022 Datacenter Evaluation (Desktop Experience)",
    )
    assert named["changed"] is False
    assert host(workdir).snapshot() == before


def test_another_build_under_an_existing_name_is_refused(workdir: Path) -> None:
    prepare(workdir)
    build(iso=ISO, name="img")
    before = host(workdir).snapshot()
    with pytest.raises(ConfigError, match="never overwrites an image") as err:
        build(iso=ISO, name="img", features="node")
    assert err.value.exit_code == EXIT_BAD_INPUT
    world = host(workdir)
    assert world.snapshot() == before and mounted_isos(world) == []
    with pytest.raises(ConfigError, match=r"not built by image\.build"):
        build(iso=ISO, name="ws2022-datacenter")


# --- bad input: exit 2, nothing started --------------------------------------------------


def test_an_edition_the_iso_lacks_lists_those_present(workdir: Path) -> None:
    prepare(workdir)
    before = host(workdir).snapshot()
    with pytest.raises(ConfigError) as err:
        build(iso=ISO, name="x", edition="Windows Server 2022 Datacenter")
    text = str(err.value)
    assert "has no edition 'Windows Server 2022 Datacenter'" in text
    assert "4: Windows Server 2022 Datacenter Evaluation (Desktop Experience)" in text
    assert "1: Windows Server 2022 Standard Evaluation" in text
    world = host(workdir)
    assert world.snapshot() == before and mounted_isos(world) == []


def test_a_missing_iso_and_missing_packages(workdir: Path) -> None:
    prepare(workdir)
    before = host(workdir).snapshot()
    with pytest.raises(ConfigError, match="does not exist on the host; nothing was started"):
        build(iso="C:\\isos\\nope.iso", name="x")
    with pytest.raises(ConfigError, match=r"package C:\\pkgs\\kb\.msu does not exist"):
        build(iso=ISO, name="x", packages="C:\\pkgs\\kb.msu")
    with pytest.raises(ConfigError, match="knows no feature Hyper-Vee"):
        build(iso=ISO, name="x", features="Hyper-Vee")
    assert host(workdir).snapshot() == before


def test_a_host_volume_too_small_is_found_before_anything_is_made(workdir: Path) -> None:
    def big_media(world: Any) -> None:
        index = iso.WimIndex(
            1, "Windows Server 2022 Datacenter", "ServerDatacenter", size=40 * 2**30
        )
        world.host.fs.write("C:\\isos\\big.iso", iso.manifest_bytes([index]))

    prepare(workdir, big_media, c_free=8 * 2**30, images=[])
    before = host(workdir).snapshot()
    with pytest.raises(ConfigError, match=r"has 8\.0 GiB free; the image needs about") as err:
        build(iso=ISO, name="x")
    assert "nothing was started" in str(err.value)
    world = host(workdir)
    assert world.snapshot() == before and mounted_isos(world) == []
    with pytest.raises(ConfigError, match=r"--size 33\.0 GiB is too small: .* takes 40\.0 GiB"):
        build(iso="C:\\isos\\big.iso", name="x", size="33GB")
    assert host(workdir).snapshot() == before


@pytest.mark.parametrize(
    "args",
    [
        ["--iso", 'C:\\isos\\a"b.iso'],
        ["--iso", "C:\\isos\\$(Remove-Item C:\\).iso"],
        ["--iso", ISO, "--name", "a;b"],
        ["--iso", ISO, "--packages", "C:\\p\\$(x).msu"],
        ["--iso", ISO, "--folder", "C:\\img's"],
        ["--iso", ISO, "--size", "8GB"],
        [],
    ],
)
def test_hostile_or_missing_arguments_exit_2_before_any_host_is_asked(
    workdir: Path, args: list[str]
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hvlab", "image.build", *args],
        cwd=workdir,
        env={k: v for k, v in os.environ.items() if not k.startswith("HVLAB_")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() and "Traceback" not in proc.stderr
    assert not state_file(workdir).exists(), "no host was started"


# --- failures and interruptions --------------------------------------------------------


def test_a_failed_build_leaves_nothing_behind(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepare(workdir)
    before = files(host(workdir))
    monkeypatch.setenv("HVSIM_FAULTS", "transient:cmdlet=Expand-WindowsImage,nth=1")
    with pytest.raises(HostError, match="temporary failure") as err:
        build(iso=ISO, name="img")
    assert err.value.exit_code == 1
    world = host(workdir)
    assert files(world) == before, "the half-made image was removed"
    assert mounted_isos(world) == []
    assert not any(
        getattr(f.content, "mounted", False) for _, f in world.host.fs.files("C:\\hvlab")
    )
    monkeypatch.delenv("HVSIM_FAULTS")
    assert build(iso=ISO, name="img")["changed"] is True


def test_a_run_killed_between_the_renames_is_finished_by_the_next(workdir: Path) -> None:
    prepare(workdir)
    build(iso=ISO, name="img")
    from hvsim import persist

    world = host(workdir)
    world.host.fs.rename(f"{FOLDER}\\img.json", "img.building.json")
    persist.save(world, state_file(workdir))
    again = build(iso=ISO, name="img")
    assert again["changed"] is False
    assert files(host(workdir)).count("img.json") == 1
    assert "img.building.json" not in files(host(workdir))


@pytest.fixture
def served_host(tmp_path: Path) -> Iterator[tuple[Any, dict[str, str]]]:
    """hvsim in this process at timescale 0.01 (an apply takes ~2 s), for a controller
    in a child process that the test kills."""
    from hvsim.model.world import World
    from hvsim.server import serve_in_thread

    world = World.create(timescale=0.01)
    world.host.fs.write(
        ISO, iso.manifest_bytes(iso.server_2022_indexes(evaluation=True)), create_parents=True
    )
    with serve_in_thread(world, auth="ntlm", user="hvadmin", password="Kill-Test-Pw1!") as srv:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HVLAB_", "HVSIM_"))}
        env.update(
            HVLAB_HOST=srv.url,
            HVLAB_USER="hvadmin",
            HVLAB_PASSWORD="Kill-Test-Pw1!",
            HVLAB_AUTH="ntlm",
            HVLAB_CERT_VALIDATION="false",
            HVLAB_HOME=str(tmp_path / "home"),
        )
        yield world, env


def _controller(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hvlab", "image.build", "--yes", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_killed_build_then_a_rebuild(served_host: tuple[Any, dict[str, str]]) -> None:
    world, env = served_host
    proc = _controller(env, "--iso", ISO, "--name", "img")
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # bounded: the child ends or is killed below
        seen.append(line)
        if line.startswith("applying "):
            time.sleep(0.5)
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    time.sleep(3)  # the host finishes the call it was running
    with world.lock:
        left = files(world)
        assert "img.building.vhdx" in left and "img.vhdx" not in left and "img.json" not in left
    rerun = subprocess.run(
        [sys.executable, "-m", "hvlab", "image.build", "--yes", "--iso", ISO, "--name", "img"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "removing what an interrupted build of img left behind" in rerun.stdout
    assert "is mounted already; using it as it is" in rerun.stdout
    with world.lock:
        assert [f for f in files(world) if f.startswith("img")] == ["img.json", "img.vhdx"]
        disk = world.host.fs.read(f"{FOLDER}\\img.vhdx")
        assert bootable(disk) and not disk.attached


def test_an_interrupted_build_removes_what_it_made(served_host: tuple[Any, dict[str, str]]) -> None:
    world, env = served_host
    proc = _controller(env, "--iso", ISO, "--name", "img")
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # bounded: the child ends or is interrupted below
        seen.append(line)
        if line.startswith("applying "):
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    assert proc.returncode == 130, "".join(seen)
    time.sleep(2.5)  # the host finishes the call it was running
    with world.lock:
        assert not [f for f in files(world) if f.startswith("img")], files(world)
        assert mounted_isos(world) == []


# --- --iso-local: upload with progress, checksum and resume (R-122) ----------------------


def local_iso(tmp_path: Path, mib: float = 3.5) -> Path:
    path = tmp_path / "server.iso"
    path.write_bytes(
        iso.manifest_bytes(iso.server_2022_indexes(evaluation=True), padding=int(mib * 2**20))
    )
    return path


def test_upload_resumes_after_a_dropped_connection(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prepare(workdir)
    local = local_iso(workdir)
    # The third chunk never gets through: its answer is lost four times in a row.
    monkeypatch.setenv(
        "HVSIM_FAULTS", ";".join(f"drop:cmdlet=Write-FileChunk,nth={n}" for n in (3, 4, 5, 6))
    )
    with pytest.raises(TransportError, match="the answers to 4 chunks in a row were lost"):
        build(iso_local=str(local), name="img")
    world = host(workdir)
    partial = world.host.fs.read("C:\\hvlab\\iso\\server.iso.partial")
    assert partial == local.read_bytes()[: 2 * 2**20]
    assert not world.host.fs.exists("C:\\hvlab\\iso\\server.iso")
    monkeypatch.delenv("HVSIM_FAULTS")
    capsys.readouterr()
    facts = build(iso_local=str(local), name="img")
    said = capsys.readouterr().out
    assert f"resuming the upload at {2 * 2**20} of {local.stat().st_size} bytes" in said
    assert "uploading server.iso: 100.0%" in said
    world = host(workdir)
    assert world.host.fs.read("C:\\hvlab\\iso\\server.iso") == local.read_bytes()
    assert not world.host.fs.exists("C:\\hvlab\\iso\\server.iso.partial")
    assert facts["iso"]["sha256"] == hashlib.sha256(local.read_bytes()).hexdigest().upper()


def test_a_retried_chunk_is_not_written_twice(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepare(workdir)
    local = local_iso(workdir, mib=2.5)
    monkeypatch.setenv("HVSIM_FAULTS", "drop:cmdlet=Write-FileChunk,nth=2")
    build(iso_local=str(local), name="img")
    assert host(workdir).host.fs.read("C:\\hvlab\\iso\\server.iso") == local.read_bytes()


def test_a_partial_file_that_does_not_match_is_sent_again(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = local_iso(workdir, mib=1.5)

    def stale(world: Any) -> None:
        world.host.fs.write("C:\\hvlab\\iso\\server.iso.partial", b"x" * 2**20, create_parents=True)

    prepare(workdir, stale)
    build(iso_local=str(local), name="img")
    assert "does not match the local file; starting the upload over" in capsys.readouterr().out
    assert host(workdir).host.fs.read("C:\\hvlab\\iso\\server.iso") == local.read_bytes()


def test_a_different_file_at_the_destination_is_not_overwritten(workdir: Path) -> None:
    local = local_iso(workdir, mib=0.1)

    def other(world: Any) -> None:
        world.host.fs.write("C:\\hvlab\\iso\\server.iso", b"another file", create_parents=True)

    prepare(workdir, other)
    with pytest.raises(ConfigError, match="never overwrites it"):
        build(iso_local=str(local), name="img")
    assert host(workdir).host.fs.read("C:\\hvlab\\iso\\server.iso") == b"another file"


def test_image_list_shows_unfinished_builds(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def leftover(world: Any) -> None:
        from hvsim.model.vhd import new_disk

        world.host.fs.write(f"{FOLDER}\\half.building.vhdx", new_disk("x", 60 * 2**30))

    prepare(workdir, leftover)
    capsys.readouterr()
    image.list_images(None)
    text = capsys.readouterr().out
    assert "half" in text and "incomplete build" in text
    assert "ws2022-standard" in text and "no sidecar" in text
