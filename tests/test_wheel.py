"""hvlab stands on its own: the wheel, installed into a fresh venv, works from an
empty folder with nothing of the source tree beside it.

The wheel is built from the tracked files only (a copy of `git ls-files`), without
build isolation, so this runs offline. The fresh venv gets the wheel with
--no-deps and reaches the dependencies through a .pth line naming this venv's
site-packages: that line adds the folder to sys.path without running its .pth
files, so the checkout's editable install stays out of reach and `import hvlab`
can only find the wheel's copy (the test checks that it does).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from project import ROOT

pytestmark = pytest.mark.slow


def _tracked_copy(dest: Path) -> None:
    """The files a fresh clone has: git's list when there is a repository, else the tree
    without what a run or an install leaves."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
        ).stdout.decode()
        files = [f for f in listed.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = []
    if not files:
        ignore = shutil.ignore_patterns(".venv", ".git", ".hvlab", "__pycache__", "*.egg-info")
        shutil.copytree(ROOT, dest, ignore=ignore)
        return
    for name in files:
        source = ROOT / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with hvlab installed from its wheel; returns the venv folder."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"
    _tracked_copy(source)
    dist = base / "dist"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    wheels = list(dist.glob("hvlab-*.whl"))
    assert len(wheels) == 1, wheels
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            str(wheels[0]),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def _run(venv: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HVLAB_", "HVSIM_", "INVOKE_")) and k != "PYTHONPATH"
    }
    clean.update(HVSIM_TIMESCALE="0", **env)
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_wheel_carries_everything_and_not_the_tree(installed: Path, tmp_path: Path) -> None:
    probe = _run(
        installed,
        tmp_path,
        "python",
        "-c",
        "import hvlab, hvsim, hvlab.resources as r, hvsim.catalog as c;"
        "print(hvlab.__file__); print(hvsim.__file__); print(c.default_path());"
        "print(r.lab_names()); print(len(r.template('host/Invoke-GuestCommand.ps1')));"
        "print(len(r.text('unattend', 'unattend.xml.j2'))); print(len(r.text('hvlab', 'rules.md')))",
    )
    assert probe.returncode == 0, probe.stderr
    hvlab_file, hvsim_file, catalog, labs, *sizes = probe.stdout.splitlines()
    for path in (hvlab_file, hvsim_file, catalog):
        assert path.startswith(str(installed)), f"{path} is not the wheel's copy"
    assert (
        Path(catalog).stat().st_size == (ROOT / "hvsim/data/powershell-cmdlets.json").stat().st_size
    )
    assert (
        labs == "['example-full', 'existing-domain', 's2d-2node', 's2d-2node-beside', 's2d-4node']"
    )
    assert all(int(n) > 100 for n in sizes)
    (notice,) = [p for p in installed.rglob("NOTICE*") if "dist-info" in str(p)] or [None]
    assert notice is not None and "CC BY 4.0" in notice.read_text()


def test_hvlab_lists_its_tasks_from_any_folder(installed: Path, tmp_path: Path) -> None:
    listed = _run(installed, tmp_path, "hvlab", "--list")
    assert listed.returncode == 0, listed.stderr
    for name in ("lab.up", "lab.down", "lab.validate", "sim.serve", "rule"):
        assert name in listed.stdout
    as_module = _run(installed, tmp_path, "python", "-m", "hvlab", "--list")
    assert as_module.stdout == listed.stdout
    unknown = _run(installed, tmp_path, "hvlab", "lab.nosuch")
    assert unknown.returncode == 2
    assert "No idea what 'lab.nosuch' is" in unknown.stderr
    assert "lab.up" in unknown.stdout and "Traceback" not in unknown.stderr
    rule = _run(installed, tmp_path, "hvlab", "rule", "R-38")
    assert rule.returncode == 0, rule.stderr
    assert rule.stdout.startswith("### R-38 ") and "**Windows:**" in rule.stdout


def test_validate_up_down_from_an_empty_folder(installed: Path, tmp_path: Path) -> None:
    work = tmp_path / "empty"
    work.mkdir()
    validate = _run(installed, work, "hvlab", "lab.validate")
    assert validate.returncode == 0, validate.stderr
    assert "(default, shipped with hvlab): lab s2d-2node is valid" in validate.stdout

    up = _run(installed, work, "hvlab", "lab.up")
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    first = up.stdout.splitlines()[0]
    assert first.startswith("hvlab lab.up s2d-2node from ")
    assert "shipped with hvlab" in first and "simulated host" in first
    assert (work / ".hvlab" / "sim" / "s2d-2node" / "report.json").is_file()
    assert (work / ".hvlab" / "sim").is_dir()

    down = _run(installed, work, "hvlab", "lab.down", "--yes")
    assert down.returncode == 0, down.stdout[-3000:] + down.stderr[-3000:]
    assert "removed" in down.stdout
    status = _run(installed, work, "hvlab", "lab.status", "--json")
    assert status.returncode == 0, status.stderr
    assert '"running"' not in status.stdout.lower()


def test_home_setting_moves_the_state(installed: Path, tmp_path: Path) -> None:
    home = tmp_path / "elsewhere"
    work = tmp_path / "work"
    work.mkdir()
    run = _run(installed, work, "hvlab", "lab.plan", "--json", HVLAB_HOME=str(home))
    assert run.returncode == 0, run.stderr
    assert (home / "sim").is_dir()
    assert not (work / ".hvlab").exists()


def _broken_copy(installed: Path, tmp_path: Path) -> Path:
    """A second venv whose hvlab install has lost files, as a broken install has."""
    broken = tmp_path / "broken"
    shutil.copytree(installed, broken, symlinks=True)
    for script in (broken / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            text = script.read_text(errors="replace")
            if text.startswith("#!"):
                script.write_text(text.replace(str(installed), str(broken)))
    return broken


@pytest.mark.parametrize(
    ("victim", "args", "named"),
    [
        (
            "hvlab/unattend/unattend.xml.j2",
            ("lab.render", "--out", "r"),
            "unattend/unattend.xml.j2",
        ),
        ("hvsim/data/powershell-cmdlets.json", ("lab.plan",), "powershell-cmdlets.json"),
        ("hvlab/labs/s2d-2node.yaml", ("lab.validate",), "labs/s2d-2node.yaml"),
    ],
    ids=["answer-file template", "cmdlet catalog", "default lab"],
)
def test_a_broken_install_says_what_is_missing(
    installed: Path, tmp_path: Path, victim: str, args: tuple[str, ...], named: str
) -> None:
    broken = _broken_copy(installed, tmp_path)
    (target,) = list(broken.glob(f"lib/python*/site-packages/{victim}"))
    target.unlink()
    work = tmp_path / "w"
    work.mkdir()
    passwords = {
        "HVLAB_ADMIN_PASSWORD": "Wheel-Test-Pw1!",
        "HVLAB_DSRM_PASSWORD": "Wheel-Dsrm-Pw1!",
    }
    run = _run(broken, work, "hvlab", *args, **passwords)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert named in lines[0] and "reinstall" in lines[0]
