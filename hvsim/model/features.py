"""Server roles and features the model knows (Get-/Install-WindowsFeature, R-44..R-46).

Names and display names as Windows Server 2022 lists them. `restart` says what
an install needs before the feature is Installed: "no", "yes" (one reboot) or
"hyperv" (two boots, R-46). `tools` are what -IncludeManagementTools adds.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class FeatureInfo:
    name: str
    display_name: str
    feature_type: str  # Role, Role Service, Feature
    parent: str | None = None
    restart: str = "no"
    tools: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()


_ROWS = [
    FeatureInfo(
        "AD-Domain-Services",
        "Active Directory Domain Services",
        "Role",
        tools=("RSAT-AD-Tools", "RSAT-ADDS", "RSAT-AD-PowerShell", "RSAT-AD-AdminCenter", "GPMC"),
    ),
    FeatureInfo("DNS", "DNS Server", "Role", tools=("RSAT-DNS-Server",)),
    FeatureInfo("FileAndStorage-Services", "File and Storage Services", "Role"),
    FeatureInfo(
        "File-Services", "File and iSCSI Services", "Role Service", "FileAndStorage-Services"
    ),
    FeatureInfo("FS-FileServer", "File Server", "Role Service", "File-Services"),
    FeatureInfo("Storage-Services", "Storage Services", "Role Service", "FileAndStorage-Services"),
    FeatureInfo(
        "Hyper-V",
        "Hyper-V",
        "Role",
        restart="hyperv",
        tools=("RSAT-Hyper-V-Tools", "Hyper-V-Tools", "Hyper-V-PowerShell"),
    ),
    FeatureInfo(
        "Failover-Clustering",
        "Failover Clustering",
        "Feature",
        tools=("RSAT-Clustering", "RSAT-Clustering-Mgmt", "RSAT-Clustering-PowerShell"),
    ),
    FeatureInfo("NET-Framework-45-Features", ".NET Framework 4.8 Features", "Feature"),
    FeatureInfo(
        "NET-Framework-45-Core", ".NET Framework 4.8", "Feature", "NET-Framework-45-Features"
    ),
    FeatureInfo("PowerShellRoot", "Windows PowerShell", "Feature"),
    FeatureInfo("PowerShell", "Windows PowerShell 5.1", "Feature", "PowerShellRoot"),
    FeatureInfo("WoW64-Support", "WoW64 Support", "Feature"),
    FeatureInfo("Windows-Defender", "Microsoft Defender Antivirus", "Feature"),
    FeatureInfo("RSAT", "Remote Server Administration Tools", "Feature"),
    FeatureInfo("RSAT-Feature-Tools", "Feature Administration Tools", "Feature", "RSAT"),
    FeatureInfo("RSAT-Role-Tools", "Role Administration Tools", "Feature", "RSAT"),
    FeatureInfo("RSAT-Clustering", "Failover Clustering Tools", "Feature", "RSAT-Feature-Tools"),
    FeatureInfo(
        "RSAT-Clustering-Mgmt", "Failover Cluster Management Tools", "Feature", "RSAT-Clustering"
    ),
    FeatureInfo(
        "RSAT-Clustering-PowerShell",
        "Failover Cluster Module for Windows PowerShell",
        "Feature",
        "RSAT-Clustering",
    ),
    FeatureInfo("RSAT-Hyper-V-Tools", "Hyper-V Management Tools", "Feature", "RSAT-Role-Tools"),
    FeatureInfo("Hyper-V-Tools", "Hyper-V GUI Management Tools", "Feature", "RSAT-Hyper-V-Tools"),
    FeatureInfo(
        "Hyper-V-PowerShell",
        "Hyper-V Module for Windows PowerShell",
        "Feature",
        "RSAT-Hyper-V-Tools",
    ),
    FeatureInfo("RSAT-AD-Tools", "AD DS and AD LDS Tools", "Feature", "RSAT-Role-Tools"),
    FeatureInfo(
        "RSAT-AD-PowerShell",
        "Active Directory module for Windows PowerShell",
        "Feature",
        "RSAT-AD-Tools",
    ),
    FeatureInfo("RSAT-ADDS", "AD DS Tools", "Feature", "RSAT-AD-Tools"),
    FeatureInfo(
        "RSAT-AD-AdminCenter", "Active Directory Administrative Center", "Feature", "RSAT-ADDS"
    ),
    FeatureInfo("RSAT-DNS-Server", "DNS Server Tools", "Feature", "RSAT-Role-Tools"),
    FeatureInfo("GPMC", "Group Policy Management", "Feature"),
]

FEATURES: dict[str, FeatureInfo] = {f.name.lower(): f for f in _ROWS}


def lookup(name: str) -> FeatureInfo | None:
    return FEATURES.get(name.lower())


# Files a feature brings that the model reads. The Failover Clustering Tools bring the
# ClusterAwareUpdating module and, in its folder, the sample hotfix configuration file
# that the hotfix plug-in expects in its root folder (cluster-aware-updating-plug-ins:
# "Copy the DefaultHotfixConfig.xml file (which is provided in the
# %systemroot%\System32\WindowsPowerShell\v1.0\Modules\ClusterAwareUpdating folder ...)").
CAU_MODULE = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\Modules\\ClusterAwareUpdating"
HOTFIX_CONFIG = "DefaultHotfixConfig.xml"
# The model's own stand-in for the file: the documented element structure
# (DefaultRules / ExtensionRules / Extension per .msi, .msu, .msp), not Microsoft's text.
HOTFIX_CONFIG_TEXT = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    "<HotfixPluginConfiguration>\n"
    "  <DefaultRules>\n"
    "    <ExtensionRules>\n"
    '      <Extension name="MSI"/>\n'
    '      <Extension name="MSU"/>\n'
    '      <Extension name="MSP"/>\n'
    "    </ExtensionRules>\n"
    "  </DefaultRules>\n"
    "</HotfixPluginConfiguration>\n"
)
FEATURE_FILES = {
    "RSAT-Clustering-PowerShell": {f"{CAU_MODULE}\\{HOTFIX_CONFIG}": HOTFIX_CONFIG_TEXT},
}


def place_feature_files(guest: object) -> None:
    """Write the files of installed features that are not there yet."""
    features = getattr(guest, "features", {})
    fs = getattr(guest, "fs", None)
    if fs is None:
        return
    for name, files in FEATURE_FILES.items():
        if features.get(name) != "Installed":
            continue
        for path, text in files.items():
            if not fs.exists(path):
                fs.write(path, text, create_parents=True)
