"""unattend.xml and guest data: valid XML, every value round-trips, passes follow R-22."""

from __future__ import annotations

import base64
import json
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from hvlab.render import (
    SETTING_PASSES,
    check_answer_file,
    encode_admin_password,
    render_all,
    render_guest_data,
    render_unattend,
)
from hvlab.secrets import Secret, Secrets
from hvlab.spec import Lab, load_lab, parse_lab

ROOT = Path(__file__).resolve().parent.parent
NS = {"u": "urn:schemas-microsoft-com:unattend"}
WCM = "{http://schemas.microsoft.com/WMIConfig/2002/State}"
HOSTILE_PASSWORDS = [
    "Pa&ss<wo>rd\"'1",
    "]]>Cdata-End1",
    "Grüße-Ω-日本1a",
    "&amp;Literal1",
    "Sp ace-d Pass1",
]


def secrets_with(admin: str, dsrm: str = "Dsrm-Passw0rd") -> Secrets:
    return Secrets(admin=Secret(admin), domain=Secret(admin), dsrm=Secret(dsrm))


@pytest.fixture(scope="module")
def lab() -> Lab:
    return load_lab(ROOT / "labs" / "s2d-2node.yaml")


def parse(text: str) -> ET.Element:
    return ET.fromstring(text)


def component(root: ET.Element, pass_name: str, name: str) -> ET.Element:
    found = root.find(f"u:settings[@pass='{pass_name}']/u:component[@name='{name}']", NS)
    assert found is not None, f"{name} missing from {pass_name}"
    return found


def decode_admin(root: ET.Element) -> str:
    shell = component(root, "oobeSystem", "Microsoft-Windows-Shell-Setup")
    value = shell.findtext("u:UserAccounts/u:AdministratorPassword/u:Value", namespaces=NS)
    plain = shell.findtext("u:UserAccounts/u:AdministratorPassword/u:PlainText", namespaces=NS)
    assert plain == "false"
    assert value is not None
    decoded = base64.b64decode(value).decode("utf-16-le")
    assert decoded.endswith("AdministratorPassword")
    return decoded.removesuffix("AdministratorPassword")


def test_microsoft_example_value() -> None:
    # UNATT:microsoft-windows-shell-setup-useraccounts-administratorpassword
    assert (
        encode_admin_password("pw")
        == "cAB3AEEAZABtAGkAbgBpAHMAdAByAGEAdABvAHIAUABhAHMAcwB3AG8AcgBkAA=="
    )


@pytest.mark.parametrize("password", HOSTILE_PASSWORDS)
def test_password_round_trips_and_is_never_in_clear(lab: Lab, password: str) -> None:
    for vm in lab.vms:
        text = render_unattend(lab, vm, secrets_with(password))
        root = parse(text)
        assert decode_admin(root) == password
        assert password not in text
        assert "Dsrm-Passw0rd" not in text  # DSRM is sent at promotion, never in a file


def test_every_value_round_trips(lab: Lab) -> None:
    for vm in lab.vms:
        root = parse(render_unattend(lab, vm, secrets_with("Abc-12345")))
        shell = component(root, "specialize", "Microsoft-Windows-Shell-Setup")
        assert shell.findtext("u:ComputerName", namespaces=NS) == vm.name
        assert shell.findtext("u:TimeZone", namespaces=NS) == "UTC"
        intl = component(root, "oobeSystem", "Microsoft-Windows-International-Core")
        for key in ("InputLocale", "SystemLocale", "UILanguage", "UserLocale"):
            assert intl.findtext(f"u:{key}", namespaces=NS) == "en-US"
        tcpip = component(root, "specialize", "Microsoft-Windows-TCPIP")
        interfaces = tcpip.findall("u:Interfaces/u:Interface", NS)
        assert len(interfaces) == len(vm.nics)
        for interface, nic in zip(interfaces, vm.nics, strict=True):
            assert interface.get(f"{WCM}action") == "add"
            assert interface.findtext("u:Identifier", namespaces=NS) == nic.mac_dashed
            assert interface.findtext("u:Ipv4Settings/u:DhcpEnabled", namespaces=NS) == "false"
            ip = interface.find("u:UnicastIpAddresses/u:IpAddress", NS)
            assert ip is not None and ip.text == f"{nic.ip}/{nic.prefix}"
            assert ip.get(f"{WCM}keyValue") == "1"
            routes = interface.findall("u:Routes/u:Route", NS)
            if nic is vm.management_nic:
                # only the management NIC gets the default route
                assert len(routes) == 1
                assert routes[0].findtext("u:Prefix", namespaces=NS) == "0.0.0.0/0"
                assert routes[0].findtext("u:Identifier", namespaces=NS) == "0"
                assert routes[0].findtext("u:NextHopAddress", namespaces=NS) == "10.10.0.1"
            else:
                assert routes == []
        dns = component(root, "specialize", "Microsoft-Windows-DNS-Client")
        dns_ifs = dns.findall("u:Interfaces/u:Interface", NS)
        assert [i.findtext("u:Identifier", namespaces=NS) for i in dns_ifs] == [
            vm.management_nic.mac_dashed
        ]
        servers = dns_ifs[0].findall("u:DNSServerSearchOrder/u:IpAddress", NS)
        assert [(s.get(f"{WCM}keyValue"), s.text) for s in servers] == [("1", "10.10.0.10")]


def test_mac_identifier_form(lab: Lab) -> None:
    root = parse(render_unattend(lab, lab.vms[1], secrets_with("Abc-12345")))
    ident = root.find(".//u:Interface/u:Identifier", NS)
    assert ident is not None and ident.text is not None
    assert len(ident.text) == 17 and ident.text.startswith("00-15-5D-")


def test_oobe_skips_every_screen(lab: Lab) -> None:
    root = parse(render_unattend(lab, lab.vms[0], secrets_with("Abc-12345")))
    oobe = component(root, "oobeSystem", "Microsoft-Windows-Shell-Setup").find("u:OOBE", NS)
    assert oobe is not None
    for key in (
        "HideEULAPage",
        "HideLocalAccountScreen",
        "HideOEMRegistrationScreen",
        "HideOnlineAccountScreens",
        "HideWirelessSetupInOOBE",
    ):
        assert oobe.findtext(f"u:{key}", namespaces=NS) == "true"


def test_no_domain_join_and_no_first_logon_commands(lab: Lab) -> None:
    text = render_unattend(lab, lab.vms[1], secrets_with("Abc-12345"))
    # joins happen with Add-Computer after boot: no credentials in the file
    assert "UnattendedJoin" not in text
    assert "Credentials" not in text
    assert "FirstLogonCommands" not in text and "AutoLogon" not in text


def test_components_and_passes_follow_the_whitelist(lab: Lab) -> None:
    seen: set[tuple[str, str, str]] = set()
    for vm in lab.vms:
        root = parse(render_unattend(lab, vm, secrets_with("Abc-12345")))
        assert root.tag == "{urn:schemas-microsoft-com:unattend}unattend"
        for settings in root:
            pass_name = settings.get("pass", "")
            for comp in settings:
                assert comp.get("processorArchitecture") == "amd64"
                assert comp.get("publicKeyToken") == "31bf3856ad364e35"
                assert comp.get("language") == "neutral"
                assert comp.get("versionScope") == "nonSxS"
                for setting in comp:
                    key = (comp.get("name", ""), setting.tag.split("}")[1])
                    assert key in SETTING_PASSES, key
                    assert pass_name in SETTING_PASSES[key], (key, pass_name)
                    seen.add((*key, pass_name))
    # the R-22 rows the template relies on
    assert ("Microsoft-Windows-Shell-Setup", "ComputerName", "specialize") in seen
    assert ("Microsoft-Windows-Shell-Setup", "UserAccounts", "oobeSystem") in seen
    assert ("Microsoft-Windows-TCPIP", "Interfaces", "specialize") in seen
    assert ("Microsoft-Windows-DNS-Client", "Interfaces", "specialize") in seen


def test_whitelist_check_catches_a_misplaced_setting(lab: Lab) -> None:
    text = render_unattend(lab, lab.vms[0], secrets_with("Abc-12345"))
    assert check_answer_file(text) == []
    # ComputerName moved into oobeSystem, where Windows ignores it
    moved = text.replace("</OOBE>", "</OOBE>\n      <ComputerName>x</ComputerName>", 1)
    problems = check_answer_file(moved)
    assert problems == [
        "Microsoft-Windows-Shell-Setup/ComputerName is not valid in pass oobeSystem "
        "(valid: offlineServicing, specialize)"
    ]
    assert check_answer_file("<unattend>") == [
        "not well-formed XML (no element found: line 1, column 10)"
    ]
    wrong_token = text.replace('publicKeyToken="31bf3856ad364e35"', 'publicKeyToken="0"', 1)
    assert check_answer_file(wrong_token) == [
        "Microsoft-Windows-Shell-Setup in specialize: publicKeyToken is not 31bf3856ad364e35"
    ]


def test_tcpip_child_order_is_checked(lab: Lab) -> None:
    text = render_unattend(lab, lab.vms[0], secrets_with("Abc-12345"))
    start = text.index("<Identifier>00-15-5D")
    end = text.index("</Identifier>", start) + len("</Identifier>")
    ident = text[start:end]
    swapped = text[:start] + text[end:]
    swapped = swapped.replace("<Ipv4Settings>", ident + "<Ipv4Settings>", 1)
    problems = check_answer_file(swapped)
    assert len(problems) == 1 and "R-27" in problems[0]


def test_time_zone_locale_and_product_key() -> None:
    data = yaml.safe_load((ROOT / "labs" / "s2d-2node.yaml").read_text())
    data["timezone"] = "W. Europe Standard Time_dstoff"
    data["locale"] = "de-DE"
    data["product_key"] = "WX4NM-KYWYW-QJJR4-XV3QB-6VM33"
    lab = parse_lab(yaml.safe_dump(data))
    root = parse(render_unattend(lab, lab.vms[1], secrets_with("Abc-12345")))
    shell = component(root, "specialize", "Microsoft-Windows-Shell-Setup")
    assert shell.findtext("u:TimeZone", namespaces=NS) == "W. Europe Standard Time_dstoff"
    assert shell.findtext("u:ProductKey", namespaces=NS) == "WX4NM-KYWYW-QJJR4-XV3QB-6VM33"
    intl = component(root, "oobeSystem", "Microsoft-Windows-International-Core")
    assert intl.findtext("u:UserLocale", namespaces=NS) == "de-DE"


def test_guest_data_is_json_and_holds_no_secret(lab: Lab) -> None:
    for vm in lab.vms:
        data = render_guest_data(lab, vm)
        text = json.dumps(data)
        assert "Abc-12345" not in text
        assert data["vm"] == vm.name and data["role"] == vm.role
        assert [n["mac"] for n in data["nics"]] == [n.mac for n in vm.nics]
        assert data["nics"][0]["host_switch"] == "s2d-2node-lab"
    node = render_guest_data(lab, lab.nodes[0])
    assert node["cluster"]["name"] == "hvcluster"
    assert node["cluster"]["witness"] == {
        "type": "file_share",
        "unc": "\\\\dc01\\hvcluster-witness",
    }
    assert node["cluster"]["pool"] == "S2D on hvcluster"
    assert node["volumes"][0]["csv_path"] == "C:\\ClusterStorage\\Volume01"
    assert len(node["data_disks"]) == 4
    dc = render_guest_data(lab, lab.vms[0])
    assert dc["witness_share"]["cluster_account"] == "CORP\\hvcluster$"
    assert "cluster" not in dc


def test_render_all_writes_private_files(lab: Lab, tmp_path: Path) -> None:
    password = "Pa&ss<wo>rd\"'1"
    written = render_all(lab, secrets_with(password), tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == [
        "dc01/guest.json",
        "dc01/unattend.xml",
        "hvhost01/guest.json",
        "hvhost01/unattend.xml",
        "hvhost02/guest.json",
        "hvhost02/unattend.xml",
    ]
    for path in written:
        content = path.read_text(encoding="utf-8")
        assert password not in content
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        if path.name == "unattend.xml":
            assert decode_admin(parse(content)) == password
        else:
            json.loads(content)
    assert stat.S_IMODE((tmp_path / "out" / "dc01").stat().st_mode) == 0o700


def _render(tmp_path, out):  # type: ignore[no-untyped-def]
    from hvlab.render import render_all
    from hvlab.secrets import Secret, Secrets

    admin = Secret("Render-Adm1n-Pass!")
    return render_all(load_lab(ROOT / "labs" / "s2d-2node.yaml"), Secrets(admin, admin, admin), out)


def test_render_never_follows_a_link_into_another_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os

    out = tmp_path / "out"
    (out / "dc01").mkdir(parents=True, mode=0o700)
    out.chmod(0o700)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    os.symlink(victim, out / "dc01" / "unattend.xml")
    _render(tmp_path, out)
    assert victim.read_text() == "keep me"
    assert not (out / "dc01" / "unattend.xml").is_symlink()


def test_render_never_writes_into_an_existing_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os

    out = tmp_path / "out"
    (out / "dc01").mkdir(parents=True, mode=0o700)
    out.chmod(0o700)
    theirs = out / "dc01" / "guest.json"
    theirs.write_text("someone else's")
    os.chmod(theirs, 0o644)
    before = os.stat(theirs).st_ino
    hard = tmp_path / "hardlink"
    os.link(theirs, hard)
    _render(tmp_path, out)
    assert hard.read_text() == "someone else's", "the old file was replaced, not written into"
    assert os.stat(theirs).st_ino != before
    assert os.stat(theirs).st_mode & 0o777 == 0o600


def test_render_refuses_a_folder_others_can_write(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from hvlab.errors import HvlabError

    out = tmp_path / "shared"
    out.mkdir()
    out.chmod(0o777)
    with pytest.raises(HvlabError, match="can be written by others") as info:
        _render(tmp_path, out)
    assert info.value.exit_code == 2
    assert not any(out.iterdir())
    link = tmp_path / "linked"
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link.symlink_to(real)
    with pytest.raises(HvlabError, match="not a folder"):
        _render(tmp_path, link)
