"""Labs on images image.build made, against hvsim over WinRM (R-120, R-123, R-55, R-88).

The images are built from a modelled evaluation ISO, so what the guests report
(Datacenter Evaluation, SKU 80) differs from the simulated host's default images
(Datacenter, SKU 8): it can only come from the built image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from project import LABS

from hvlab import image
from hvlab import lab as labs
from hvlab.errors import PreflightError
from hvsim.model import iso

ISO = "C:\\isos\\server2022-eval.iso"
PASSWORDS = {
    "HVLAB_ADMIN_PASSWORD": "Adm1n-Xyzzy-7731!",
    "HVLAB_DOMAIN_PASSWORD": "Adm1n-Xyzzy-7731!",
    "HVLAB_DSRM_PASSWORD": "Dsrm-Plugh-4417!",
}
DEFAULT_IMAGE = """    ws2022:
      path: C:\\hvlab\\images\\ws2022-datacenter.vhdx
      edition: Datacenter
      version: "2022"
      build: 20348
"""


def host(workdir: Path) -> Any:
    from hvsim import persist

    return persist.load(workdir / ".hvlab" / "sim" / "host.state")


def prepare(workdir: Path, language: str = "en-US") -> None:
    from hvsim import persist
    from hvsim.model.world import World

    world = World.create()
    indexes = iso.server_2022_indexes(evaluation=True, language=language)
    world.host.fs.write(ISO, iso.manifest_bytes(indexes), create_parents=True)
    path = workdir / ".hvlab" / "sim" / "host.state"
    path.parent.mkdir(parents=True)
    persist.save(world, path)


def lab_file(
    workdir: Path, images: str, *, dc_image: str | None = None, source: str = "s2d-2node"
) -> Path:
    text = (LABS / f"{source}.yaml").read_text()
    assert DEFAULT_IMAGE in text
    text = text.replace(DEFAULT_IMAGE, images).replace("  image: ws2022\n", "  image: node\n")
    if dc_image:
        text = text.replace("    role: dc\n", f"    role: dc\n    image: {dc_image}\n")
    path = workdir / "lab.yaml"
    path.write_text(text)
    return path


NAMED = """    node:
      name: ws2022-node
    dc:
      name: ws2022-dc
"""


def test_a_lab_on_built_images_reports_their_edition_and_skips_the_roles(workdir: Path) -> None:
    prepare(workdir)
    image.build(None, iso=ISO, name="ws2022-node", features="node")
    image.build(None, iso=ISO, name="ws2022-dc", features="dc")
    report = labs.up(None, lab=str(lab_file(workdir, NAMED, dc_image="dc")), as_json=True)
    assert report["result"] == "ok"
    steps = {s["step"]: s for s in report["steps"]}
    for node in ("hvhost01", "hvhost02"):
        # What the guest said over PowerShell Direct at its first boot (Win32_OperatingSystem).
        assert any(
            "answers: Microsoft Windows Server 2022 Datacenter Evaluation build 20348" in r
            for r in steps[f"boot:{node}"]["reasons"]
        ), steps[f"boot:{node}"]["reasons"]
        changes = steps[f"roles:{node}"]["changes"]
        assert not any(c.startswith("Install-WindowsFeature") for c in changes), changes
        restarts = [c for c in changes if c.startswith("Restart-")]
        assert restarts == [f"Restart-Computer in {node} (domain join)"], (
            "one restart, no Hyper-V double boot (R-120)"
        )
    assert not any(
        c.startswith("Install-WindowsFeature") for c in steps["domain:dc01"]["changes"]
    ), "AD DS was staged into the DC's image"
    world = host(workdir)
    for node in ("hvhost01", "hvhost02"):
        guest = world.guest(node)
        assert guest.os.edition == "ServerDatacenterEval" and guest.os.sku == 80
        assert guest.features["Hyper-V"] == "Installed" and guest.hypervisor_running
    assert world.cluster("hvcluster").pool is not None, "S2D accepted the evaluation Datacenter"
    # And inside a node, asked now over the wire as a person would.
    from hvlab.guest import Guest
    from hvlab.remote import Credential
    from hvlab.session import open_session

    with open_session(None) as session:
        os_info = Guest(
            session.host,
            "hvhost01",
            Credential("CORP\\Administrator", PASSWORDS["HVLAB_ADMIN_PASSWORD"]),
        ).first("Get-CimInstance", ClassName="Win32_OperatingSystem")
    assert os_info["Caption"] == "Microsoft Windows Server 2022 Datacenter Evaluation"
    assert int(os_info["OperatingSystemSKU"]) == 80


def test_a_standard_image_is_refused_by_preflight(workdir: Path) -> None:
    prepare(workdir)
    image.build(
        None,
        iso=ISO,
        name="ws2022-std",
        edition="Windows Server 2022 Standard Evaluation (Desktop Experience)",
    )
    before = host(workdir).snapshot()
    named = "    node:\n      name: ws2022-std\n"
    with pytest.raises(PreflightError) as info:
        labs.up(None, lab=str(lab_file(workdir, named)))
    text = str(info.value)
    assert "ws2022-std" in text and "ServerStandardEval" in text and "(R-55)" in text
    assert host(workdir).snapshot() == before, "preflight created nothing"


def test_an_image_in_another_language_is_refused_by_preflight(workdir: Path) -> None:
    prepare(workdir, language="de-DE")
    image.build(None, iso=ISO, name="ws2022-de")
    named = "    node:\n      name: ws2022-de\n"
    with pytest.raises(PreflightError) as info:
        labs.up(None, lab=str(lab_file(workdir, named)))
    assert "de-DE image" in str(info.value) and "R-88" in str(info.value)


def test_a_missing_named_image_says_how_to_build_it(workdir: Path) -> None:
    prepare(workdir)
    named = "    node:\n      name: nowhere\n"
    with pytest.raises(PreflightError) as info:
        labs.up(None, lab=str(lab_file(workdir, named)))
    text = str(info.value)
    assert "no image named nowhere in C:\\hvlab\\images" in text
    assert "invoke image.build --name nowhere" in text


def test_a_named_image_without_its_sidecar_is_refused(workdir: Path) -> None:
    """A VHDX whose build did not finish its last rename is not used by name (R-123)."""
    prepare(workdir)
    image.build(None, iso=ISO, name="ws2022-node")
    from hvsim import persist

    world = host(workdir)
    world.host.fs.rename("C:\\hvlab\\images\\ws2022-node.json", "ws2022-node.building.json")
    persist.save(world, workdir / ".hvlab" / "sim" / "host.state")
    named = "    node:\n      name: ws2022-node\n"
    with pytest.raises(PreflightError, match="has no readable sidecar"):
        labs.up(None, lab=str(lab_file(workdir, named)))


def test_named_images_in_the_lab_file() -> None:
    from hvlab.spec.models import Image

    by_name = Image(name="ws2022-node")
    assert by_name.vhdx == "C:\\hvlab\\images\\ws2022-node.vhdx"
    assert by_name.sidecar == "C:\\hvlab\\images\\ws2022-node.json"
    other = Image(name="x", folder="D:\\images\\")
    assert other.vhdx == "D:\\images\\x.vhdx"
    assert Image(path="C:\\i\\a.vhdx").sidecar is None
    for bad in ({}, {"name": "a", "path": "C:\\a.vhdx"}):
        with pytest.raises(ValueError, match="either path"):
            Image(**bad)
    for name in ("a b", "x.building", "$(x)", 'a"b', "-a"):
        with pytest.raises(ValueError):
            Image(name=name)


def test_a_lab_file_with_a_bad_image_entry_is_a_spec_error(workdir: Path) -> None:
    from hvlab.errors import SpecError
    from hvlab.spec import load_lab

    path = lab_file(workdir, "    node:\n      name: $(evil)\n")
    with pytest.raises(SpecError, match="image name") as err:
        load_lab(path)
    assert err.value.exit_code == 2
