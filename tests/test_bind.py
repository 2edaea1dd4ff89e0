"""hvsim.bind against the catalog: each call and the exact result or ErrorRecord
PowerShell gives for it (texts and their sources: docs/binding.md)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from hvsim import catalog as catalog_mod
from hvsim.bind import bind, command_type_name, resolve_command
from hvsim.errors import PSError
from hvsim.objects import Credential, Int32, Int64, PSEnum, ScriptBlock, SecureString, UInt64

GIB = 1024**3
HV = "Microsoft.HyperV.PowerShell.Commands."
NOT_RECOGNIZED = (
    "The term '{}' is not recognized as the name of a cmdlet, function, script file, or "
    "operable program. Check the spelling of the name, or if a path was included, verify "
    "that the path is correct and try again."
)
TWICE = (
    "Cannot bind parameter because parameter '{}' is specified more than once. To provide "
    "multiple values to parameters that can accept multiple values, use the array syntax. "
    'For example, "-parameter value1,value2,value3".'
)
PW = SecureString("P@ssw0rd-not-logged")
CRED = Credential("LAB\\Administrator", PW)

# (id, cmdlet, args, has_pipeline_input, expected name, expected set, expected params)
OK_CASES: list[tuple[str, str, list[tuple[str | None, Any]], bool, str, str, dict[str, Any]]] = [
    ("exact", "Get-VM", [("Name", "n1")], False, "Get-VM", "Name", {"Name": ["n1"]}),
    (
        "cmdlet name case-insensitive",
        "get-vm",
        [("name", "n1")],
        False,
        "Get-VM",
        "Name",
        {"Name": ["n1"]},
    ),
    ("parameter alias", "Get-VM", [("VMName", "n1")], False, "Get-VM", "Name", {"Name": ["n1"]}),
    ("positional", "Get-VM", [(None, "n1")], False, "Get-VM", "Name", {"Name": ["n1"]}),
    ("no arguments: default set", "Get-VM", [], False, "Get-VM", "Name", {}),
    (
        "Id set by Guid string",
        "Get-VM",
        [("Id", "6f1e4a52-7d0e-4d8e-9c2c-0d3f2b1e9a11")],
        False,
        "Get-VM",
        "Id",
        {"Id": uuid.UUID("6f1e4a52-7d0e-4d8e-9c2c-0d3f2b1e9a11")},
    ),
    (
        "prefix of a parameter name",
        "New-VM",
        [("Name", "n1"), ("MemoryStartup", Int64(4 * GIB)), ("Gen", 2)],
        False,
        "New-VM",
        "No VHD",
        {"Name": "n1", "MemoryStartupBytes": Int64(4 * GIB), "Generation": 2},
    ),
    (
        "New-VM New VHD set",
        "New-VM",
        [
            ("Name", "ha1"),
            ("NewVHDPath", r"C:\ClusterStorage\v\ha1.vhdx"),
            ("NewVHDSizeBytes", UInt64(40 * GIB)),
        ],
        False,
        "New-VM",
        "New VHD",
        {
            "Name": "ha1",
            "NewVHDPath": r"C:\ClusterStorage\v\ha1.vhdx",
            "NewVHDSizeBytes": UInt64(40 * GIB),
        },
    ),
    (
        "New-VHD Dynamic, UInt64 from '256GB' (1024-based)",
        "New-VHD",
        [("Path", "d1.vhdx"), ("SizeBytes", "256GB"), ("Dynamic", None)],
        False,
        "New-VHD",
        "DynamicWithoutSource",
        {"Path": ["d1.vhdx"], "SizeBytes": UInt64(256 * GIB), "Dynamic": True},
    ),
    (
        "New-VHD UInt64 from Int64 and from a numeric string",
        "New-VHD",
        [("Path", "d1.vhdx"), ("SizeBytes", Int64(3 * GIB))],
        False,
        "New-VHD",
        "DynamicWithoutSource",
        {"Path": ["d1.vhdx"], "SizeBytes": UInt64(3 * GIB)},
    ),
    (
        "New-VHD UInt64 from a plain numeric string",
        "New-VHD",
        [("Path", "d1.vhdx"), ("SizeBytes", "1073741824"), ("Fixed", True)],
        False,
        "New-VHD",
        "FixedWithoutSource",
        {"Path": ["d1.vhdx"], "SizeBytes": UInt64(GIB), "Fixed": True},
    ),
    (
        "New-VHD Differencing",
        "New-VHD",
        [("Path", "os.vhdx"), ("ParentPath", "base.vhdx"), ("Differencing", None)],
        False,
        "New-VHD",
        "Differencing",
        {"Path": ["os.vhdx"], "ParentPath": "base.vhdx", "Differencing": True},
    ),
    (
        "New-VHD Differencing positional: position 1 goes to ParentPath after -Differencing",
        "New-VHD",
        [("Differencing", None), (None, "os.vhdx"), (None, "base.vhdx")],
        False,
        "New-VHD",
        "Differencing",
        {"Path": ["os.vhdx"], "ParentPath": "base.vhdx", "Differencing": True},
    ),
    (
        "New-VHD positional size binds SizeBytes of the default set",
        "New-VHD",
        [(None, "d1.vhdx"), (None, "10GB")],
        False,
        "New-VHD",
        "DynamicWithoutSource",
        {"Path": ["d1.vhdx"], "SizeBytes": UInt64(10 * GIB)},
    ),
    (
        "New-VHD positional string that is no number falls to ParentPath",
        "New-VHD",
        [(None, "os.vhdx"), (None, "base.vhdx")],
        False,
        "New-VHD",
        "Differencing",
        {"Path": ["os.vhdx"], "ParentPath": "base.vhdx"},
    ),
    (
        "New-VHD Path mandatory satisfied by pipeline",
        "New-VHD",
        [("SizeBytes", UInt64(GIB))],
        True,
        "New-VHD",
        "DynamicWithoutSource",
        {"SizeBytes": UInt64(GIB)},
    ),
    (
        "Set-ClusterQuorum file share witness",
        "Set-ClusterQuorum",
        [("FileShareWitness", r"\\dc1\witness")],
        False,
        "Set-ClusterQuorum",
        "__AllParameterSets",
        {"FileShareWitness": r"\\dc1\witness"},
    ),
    (
        "Set-ClusterQuorum by alias NodeAndFileShareMajority",
        "Set-ClusterQuorum",
        [("NodeAndFileShareMajority", r"\\dc1\witness")],
        False,
        "Set-ClusterQuorum",
        "__AllParameterSets",
        {"FileShareWitness": r"\\dc1\witness"},
    ),
    (
        "Set-ClusterQuorum -NoWitness by alias NodeMajority",
        "Set-ClusterQuorum",
        [("NodeMajority", None)],
        False,
        "Set-ClusterQuorum",
        "__AllParameterSets",
        {"NoWitness": True},
    ),
    (
        "cmdlet alias Enable-ClusterS2D, enum normalised, -Confirm:$false",
        "Enable-ClusterS2D",
        [("CacheState", "disabled"), ("Confirm", False)],
        False,
        "Enable-ClusterStorageSpacesDirect",
        "Auto",
        {"CacheState": "Disabled", "Confirm": False},
    ),
    (
        "5.1 alias icm",
        "icm",
        [
            ("VMName", "n1"),
            ("Credential", CRED),
            ("ScriptBlock", ScriptBlock("hostname")),
            ("ArgumentList", ["a", 1]),
        ],
        False,
        "Invoke-Command",
        "VMName",
        {
            "VMName": ["n1"],
            "Credential": CRED,
            "ScriptBlock": ScriptBlock("hostname"),
            "ArgumentList": ["a", 1],
        },
    ),
    (
        "common parameter alias -ea, value normalised",
        "Get-VM",
        [("Name", "n1"), ("ea", "silentlycontinue")],
        False,
        "Get-VM",
        "Name",
        {"Name": ["n1"], "ErrorAction": "SilentlyContinue"},
    ),
    (
        "ErrorAction by number (1 = Stop) and from an enum object; -wi",
        "Stop-VM",
        [
            ("Name", "n1"),
            ("ErrorAction", 1),
            ("WarningAction", PSEnum("System.Management.Automation.ActionPreference", "Ignore", 4)),
            ("wi", None),
        ],
        False,
        "Stop-VM",
        "Name",
        {"Name": ["n1"], "ErrorAction": "Stop", "WarningAction": "Ignore", "WhatIf": True},
    ),
    (
        "Boolean from $false and from 1; switch given True",
        "Set-VM",
        [
            ("Name", "n1"),
            ("AutomaticCheckpointsEnabled", False),
            ("GuestControlledCacheTypes", 1),
            ("StaticMemory", True),
            ("CheckpointType", "disabled"),
        ],
        False,
        "Set-VM",
        "Name",
        {
            "Name": ["n1"],
            "AutomaticCheckpointsEnabled": False,
            "GuestControlledCacheTypes": True,
            "StaticMemory": True,
            "CheckpointType": "Disabled",
        },
    ),
    (
        "Int32 that fits, from a wire Int32",
        "Set-VMNetworkAdapterVlan",
        [
            ("VMName", "n1"),
            ("VMNetworkAdapterName", "Storage1"),
            ("a", None),
            ("VlanId", Int32(711)),
        ],
        False,
        "Set-VMNetworkAdapterVlan",
        "VMName",
        {"VMName": ["n1"], "VMNetworkAdapterName": "Storage1", "Access": True, "VlanId": 711},
    ),
    (
        "SecureString accepted as SecureString",
        "Install-ADDSForest",
        [
            ("DomainName", "lab.test"),
            ("SafeModeAdministratorPassword", PW),
            ("InstallDns", None),
            ("Force", None),
        ],
        False,
        "Install-ADDSForest",
        "__AllParameterSets",
        {
            "DomainName": "lab.test",
            "SafeModeAdministratorPassword": PW,
            "InstallDns": True,
            "Force": True,
        },
    ),
    (
        "StringCollection from a list; Node of New-Cluster",
        "New-Cluster",
        [
            ("Name", "cl1"),
            ("Node", ["n1", "n2"]),
            ("StaticAddress", "10.0.0.50"),
            ("NoStorage", None),
        ],
        False,
        "New-Cluster",
        "__AllParameterSets",
        {"Name": "cl1", "Node": ["n1", "n2"], "StaticAddress": ["10.0.0.50"], "NoStorage": True},
    ),
    (
        "registry value kind normalised",
        "Set-ItemProperty",
        [
            ("Path", r"HKLM:\SYSTEM\CurrentControlSet\Services\spaceport\Parameters"),
            ("Name", "HwTimeout"),
            ("Value", 30000),
            ("Type", "dword"),
        ],
        False,
        "Set-ItemProperty",
        "propertyValuePathSet",
        {
            "Path": [r"HKLM:\SYSTEM\CurrentControlSet\Services\spaceport\Parameters"],
            "Name": "HwTimeout",
            "Value": 30000,
            "Type": "DWord",
        },
    ),
    (
        "ValidateSet value normalised (Int16 Generation in {1,2})",
        "New-VM",
        [("Name", "n1"), ("Generation", "2")],
        False,
        "New-VM",
        "No VHD",
        {"Name": "n1", "Generation": 2},
    ),
    (
        "a one-element array to a scalar parameter is its element",
        "New-VM",
        [(None, ["n1"]), ("MemoryStartupBytes", [Int64(GIB)])],
        False,
        "New-VM",
        "No VHD",
        {"Name": "n1", "MemoryStartupBytes": Int64(GIB)},
    ),
    (
        "an empty string is fine where the parameter is mandatory nowhere",
        "Set-VM",
        [("Name", "n1"), ("Notes", "")],
        False,
        "Set-VM",
        "Name",
        {"Name": ["n1"], "Notes": ""},
    ),
    (
        "TimeSpan from a string",
        "Get-NetIPAddress",
        [("ValidLifetime", "01:00:00")],
        False,
        "Get-NetIPAddress",
        "__AllParameterSets",
        {"ValidLifetime": [dt.timedelta(hours=1)]},
    ),
]


@pytest.mark.parametrize(
    ("cmdlet", "args", "pipe", "name", "pset", "params"),
    [pytest.param(*case[1:], id=case[0]) for case in OK_CASES],
)
def test_binds(
    cmdlet: str,
    args: list[tuple[str | None, Any]],
    pipe: bool,
    name: str,
    pset: str,
    params: dict[str, Any],
) -> None:
    call = bind(cmdlet, args, has_pipeline_input=pipe)
    assert call.name == name
    assert call.parameter_set == pset
    assert call.params == params


def test_converted_values_keep_their_dotnet_type() -> None:
    call = bind("New-VHD", [("Path", "d.vhdx"), ("SizeBytes", "256GB")])
    size = call.params["SizeBytes"]
    assert type(size) is UInt64 and size.clr == "System.UInt64"
    call = bind("New-VM", [("Name", "n"), ("MemoryStartupBytes", Int32(1024))])
    assert type(call.params["MemoryStartupBytes"]) is Int64


# (id, cmdlet, args, has_pipeline_input, message, fqid, category)
ERROR_CASES: list[tuple[str, str, list[tuple[str | None, Any]], bool, str, str, str]] = [
    (
        "unknown cmdlet",
        "Get-VMM",
        [("Name", "x")],
        False,
        NOT_RECOGNIZED.format("Get-VMM"),
        "CommandNotFoundException",
        "ObjectNotFound",
    ),
    (
        "unknown parameter",
        "Get-VM",
        [("Nmae", "x")],
        False,
        "A parameter cannot be found that matches parameter name 'Nmae'.",
        f"NamedParameterNotFound,{HV}GetVM",
        "InvalidArgument",
    ),
    (
        "ProgressAction is PowerShell 7.4+, not a parameter on Windows PowerShell 5.1",
        "Get-VM",
        [("ProgressAction", "SilentlyContinue")],
        False,
        "A parameter cannot be found that matches parameter name 'ProgressAction'.",
        f"NamedParameterNotFound,{HV}GetVM",
        "InvalidArgument",
    ),
    (
        "ambiguous prefix among common parameters",
        "Get-VM",
        [("Name", "x"), ("Error", "Stop")],
        False,
        "Parameter cannot be processed because the parameter name 'Error' is ambiguous. "
        "Possible matches include: -ErrorAction -ErrorVariable.",
        f"AmbiguousParameter,{HV}GetVM",
        "InvalidArgument",
    ),
    (
        "ambiguous prefix among cmdlet parameters",
        "New-VHD",
        [("Path", "x.vhdx"), ("P", "y")],
        False,
        "Parameter cannot be processed because the parameter name 'P' is ambiguous. "
        "Possible matches include: -ParentPath -Path -PhysicalSectorSizeBytes -PipelineVariable.",
        f"AmbiguousParameter,{HV}NewVHD",
        "InvalidArgument",
    ),
    (
        "ambiguous prefix: common parameters before WhatIf/Confirm, as the binder meets them",
        "Stop-VM",
        [("Name", "n1"), ("w", "Stop")],
        False,
        "Parameter cannot be processed because the parameter name 'w' is ambiguous. "
        "Possible matches include: -WarningAction -WarningVariable -WhatIf.",
        f"AmbiguousParameter,{HV}StopVM",
        "InvalidArgument",
    ),
    (
        "parameter given twice (name and alias)",
        "Get-VM",
        [("Name", "a"), ("VMName", "b")],
        False,
        TWICE.format("Name"),
        f"ParameterAlreadyBound,{HV}GetVM",
        "InvalidArgument",
    ),
    (
        "a second positional argument Get-VM has no place for",
        "Get-VM",
        [(None, "a"), (None, "b")],
        False,
        "A positional parameter cannot be found that accepts argument 'b'.",
        f"PositionalParameterNotFound,{HV}GetVM",
        "InvalidArgument",
    ),
    (
        "New-VHD: Differencing and Fixed are in no common set",
        "New-VHD",
        [("Path", "x.vhdx"), ("ParentPath", "p.vhdx"), ("Fixed", None)],
        False,
        "Parameter set cannot be resolved using the specified named parameters.",
        f"AmbiguousParameterSet,{HV}NewVHD",
        "InvalidArgument",
    ),
    (
        "New-VHD without SizeBytes: the default set's mandatory parameter is missing",
        "New-VHD",
        [("Path", "x.vhdx")],
        False,
        "Cannot process command because of one or more missing mandatory parameters: SizeBytes.",
        f"MissingMandatoryParameter,{HV}NewVHD",
        "InvalidArgument",
    ),
    (
        "New-VHD without Path and without pipeline input",
        "New-VHD",
        [("SizeBytes", UInt64(GIB))],
        False,
        "Cannot process command because of one or more missing mandatory parameters: Path.",
        f"MissingMandatoryParameter,{HV}NewVHD",
        "InvalidArgument",
    ),
    (
        "New-VM -NewVHDPath without -NewVHDSizeBytes (one set left)",
        "New-VM",
        [("Name", "x"), ("NewVHDPath", "x.vhdx")],
        False,
        "Cannot process command because of one or more missing mandatory parameters: "
        "NewVHDSizeBytes.",
        f"MissingMandatoryParameter,{HV}NewVM",
        "InvalidArgument",
    ),
    (
        "a non-switch parameter given without a value",
        "Get-VM",
        [("Name", None)],
        False,
        "Missing an argument for parameter 'Name'. Specify a parameter of type "
        "'System.String[]' and try again.",
        f"MissingArgument,{HV}GetVM",
        "InvalidArgument",
    ),
    (
        "an array to a scalar String parameter of a cmdlet",
        "New-VM",
        [("Name", ["a", "b"])],
        False,
        "Cannot convert 'System.Object[]' to the type 'System.String' required by parameter "
        "'Name'. Specified method is not supported.",
        f"CannotConvertArgument,{HV}NewVM",
        "InvalidArgument",
    ),
    (
        "an empty string to a mandatory String parameter",
        "Test-Path",
        [("LiteralPath", "")],
        False,
        "Cannot bind argument to parameter 'LiteralPath' because it is an empty string.",
        "ParameterArgumentValidationErrorEmptyStringNotAllowed,"
        "Microsoft.PowerShell.Commands.TestPathCommand",
        "InvalidData",
    ),
    (
        "an empty array to a mandatory String[] parameter",
        "New-VHD",
        [("Path", []), ("SizeBytes", UInt64(GIB))],
        False,
        "Cannot bind argument to parameter 'Path' because it is an empty array.",
        f"ParameterArgumentValidationErrorEmptyArrayNotAllowed,{HV}NewVHD",
        "InvalidData",
    ),
    (
        "a positional null to a mandatory String parameter",
        "New-Cluster",
        [(None, None)],
        False,
        "Cannot bind argument to parameter 'Name' because it is null.",
        "ParameterArgumentValidationErrorNullNotAllowed,"
        "Microsoft.FailoverClusters.PowerShell.NewClusterCommand",
        "InvalidData",
    ),
    (
        "Int32 overflow from a 64-bit value",
        "Set-VMNetworkAdapterVlan",
        [("VMName", "n1"), ("Access", None), ("VlanId", Int64(3_000_000_000))],
        False,
        "Cannot bind parameter 'VlanId'. Cannot convert value \"3000000000\" to type "
        '"System.Int32". Error: "Value was either too large or too small for an Int32."',
        f"CannotConvertArgumentNoMessage,{HV}SetVMNetworkAdapterVlan",
        "InvalidArgument",
    ),
    (
        "Int32 overflow from a numeric string",
        "Set-VMMemory",
        [("VMName", "n1"), ("Priority", "3000000000")],
        False,
        "Cannot bind parameter 'Priority'. Cannot convert value \"3000000000\" to type "
        '"System.Int32". Error: "Value was either too large or too small for an Int32."',
        f"CannotConvertArgumentNoMessage,{HV}SetVMMemory",
        "InvalidArgument",
    ),
    (
        "UInt64 refuses a negative number",
        "New-VHD",
        [("Path", "x.vhdx"), ("SizeBytes", -1)],
        False,
        "Cannot bind parameter 'SizeBytes'. Cannot convert value \"-1\" to type "
        '"System.UInt64". Error: "Value was either too large or too small for a UInt64."',
        f"CannotConvertArgumentNoMessage,{HV}NewVHD",
        "InvalidArgument",
    ),
    (
        "not a number",
        "New-VHD",
        [("Path", "x.vhdx"), ("SizeBytes", "big")],
        False,
        "Cannot bind parameter 'SizeBytes'. Cannot convert value \"big\" to type "
        '"System.UInt64". Error: "Input string was not in a correct format."',
        f"CannotConvertArgumentNoMessage,{HV}NewVHD",
        "InvalidArgument",
    ),
    (
        "enum value not in the enum",
        "Set-VMNetworkAdapter",
        [("VMName", "n1"), ("MacAddressSpoofing", "Yes")],
        False,
        "Cannot bind parameter 'MacAddressSpoofing'. Cannot convert value \"Yes\" to type "
        '"Microsoft.HyperV.PowerShell.OnOffState". Error: "Unable to match the identifier '
        "name Yes to a valid enumerator name. Specify one of the following enumerator names "
        'and try again:\r\nOn, Off"',
        f"CannotConvertArgumentNoMessage,{HV}SetVMNetworkAdapter",
        "InvalidArgument",
    ),
    (
        "ErrorAction value not an ActionPreference",
        "Get-VM",
        [("ErrorAction", "Quietly")],
        False,
        "Cannot bind parameter 'ErrorAction'. Cannot convert value \"Quietly\" to type "
        '"System.Management.Automation.ActionPreference". Error: "Unable to match the '
        "identifier name Quietly to a valid enumerator name. Specify one of the following "
        "enumerator names and try again:\r\nSilentlyContinue, Stop, Continue, Inquire, "
        'Ignore, Suspend"',
        f"CannotConvertArgumentNoMessage,{HV}GetVM",
        "InvalidArgument",
    ),
    (
        "ValidateSet value not in the set",
        "New-VM",
        [("Name", "x"), ("Generation", 3)],
        False,
        "Cannot validate argument on parameter 'Generation'. The argument \"3\" does not "
        'belong to the set "1,2" specified by the ValidateSet attribute. Supply an argument '
        "that is in the set and then try the command again.",
        f"ParameterArgumentValidationError,{HV}NewVM",
        "InvalidData",
    ),
    (
        "a plain string to a SecureString parameter (value masked)",
        "Install-ADDSForest",
        [("DomainName", "lab.test"), ("SafeModeAdministratorPassword", "P@ssw0rd-in-clear")],
        False,
        "Cannot bind parameter 'SafeModeAdministratorPassword'. Cannot convert the "
        '"********" value of type "System.String" to type "System.Security.SecureString".',
        "CannotConvertArgumentNoMessage,"
        "Microsoft.DirectoryServices.Deployment.PowerShell.Commands.InstallADDSForestCommand",
        "InvalidArgument",
    ),
    (
        "a user name to a PSCredential parameter would prompt; remoting cannot",
        "Add-Computer",
        [("DomainName", "lab.test"), ("Credential", "LAB\\Administrator")],
        False,
        "Cannot process argument transformation on parameter 'Credential'. A command that "
        "prompts the user failed because the host program or the command type does not "
        "support user interaction. The host was attempting to request confirmation with the "
        "following message: Enter your credentials.",
        "ParameterArgumentTransformationError,Microsoft.PowerShell.Commands.AddComputerCommand",
        "InvalidData",
    ),
    (
        "a string to a Boolean parameter",
        "Set-VMProcessor",
        [("VMName", "n1"), ("ExposeVirtualizationExtensions", "true")],
        False,
        "Cannot bind parameter 'ExposeVirtualizationExtensions'. Cannot convert value "
        '"System.String" to type "System.Boolean". Boolean parameters accept only Boolean '
        "values and numbers, such as $True, $False, 1 or 0.",
        f"CannotConvertArgumentNoMessage,{HV}SetVMProcessor",
        "InvalidArgument",
    ),
    (
        "a string to a ScriptBlock parameter",
        "Invoke-Command",
        [("ScriptBlock", "hostname")],
        False,
        "Cannot bind parameter 'ScriptBlock'. Cannot convert the \"hostname\" value of type "
        '"System.String" to type "System.Management.Automation.ScriptBlock".',
        "CannotConvertArgumentNoMessage,Microsoft.PowerShell.Commands.InvokeCommandCommand",
        "InvalidArgument",
    ),
    (
        "CDXML function: conversion fails in the argument transformation",
        "New-NetIPAddress",
        [
            ("InterfaceAlias", "vEthernet (lab-mgmt)"),
            ("IPAddress", "10.0.0.1"),
            ("PrefixLength", "x"),
        ],
        False,
        "Cannot process argument transformation on parameter 'PrefixLength'. Cannot convert "
        'value "x" to type "System.Byte". Error: "Input string was not in a correct format."',
        "ParameterArgumentTransformationError,New-NetIPAddress",
        "InvalidData",
    ),
    (
        "CDXML function: unknown parameter names the function",
        "Get-NetIPAddress",
        [("InterfaceAddressFamily", "IPv4")],
        False,
        "A parameter cannot be found that matches parameter name 'InterfaceAddressFamily'.",
        "NamedParameterNotFound,Get-NetIPAddress",
        "InvalidArgument",
    ),
    (
        "ServerManager reports Install-WindowsFeature's class AddWindowsFeatureCommand",
        "Install-WindowsFeature",
        [("Name", "Hyper-V"), ("Vhd", "x.vhdx"), ("ConfigurationFilePath", "c.xml")],
        False,
        "Parameter set cannot be resolved using the specified named parameters.",
        "AmbiguousParameterSet,Microsoft.Windows.ServerManager.Commands.AddWindowsFeatureCommand",
        "InvalidArgument",
    ),
    (
        "Invoke-Command -VMName needs -Credential",
        "Invoke-Command",
        [("VMName", "n1"), ("ScriptBlock", ScriptBlock("hostname"))],
        False,
        "Cannot process command because of one or more missing mandatory parameters: Credential.",
        "MissingMandatoryParameter,Microsoft.PowerShell.Commands.InvokeCommandCommand",
        "InvalidArgument",
    ),
]


@pytest.mark.parametrize(
    ("cmdlet", "args", "pipe", "message", "fqid", "category"),
    [pytest.param(*case[1:], id=case[0]) for case in ERROR_CASES],
)
def test_refuses(
    cmdlet: str,
    args: list[tuple[str | None, Any]],
    pipe: bool,
    message: str,
    fqid: str,
    category: str,
) -> None:
    with pytest.raises(PSError) as caught:
        bind(cmdlet, args, has_pipeline_input=pipe)
    err = caught.value
    assert err.message == message
    assert err.fqid == fqid
    assert err.category == category


def test_unknown_cmdlet_record() -> None:
    with pytest.raises(PSError) as caught:
        bind("Get-Foo", [])
    err = caught.value
    assert err.exception == "System.Management.Automation.CommandNotFoundException"
    assert err.target == "Get-Foo"


def test_binding_errors_are_parameter_binding_exceptions() -> None:
    with pytest.raises(PSError) as caught:
        bind("Get-VM", [("Nmae", "x")])
    assert caught.value.exception == "System.Management.Automation.ParameterBindingException"


def test_secret_never_in_error_text() -> None:
    secret = "Sup3r-S3cret-Value"
    with pytest.raises(PSError) as caught:
        bind("Install-ADDSForest", [("DomainName", "d"), ("SafeModeAdministratorPassword", secret)])
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1KB", 1024),
        ("1kb", 1024),
        ("4MB", 4 * 1024**2),
        ("2TB", 2 * 1024**4),
        ("1PB", 1024**5),
        ("1.5GB", 3 * 1024**3 // 2),
        ("0x10", 16),
        (" 42 ", 42),
    ],
)
def test_numeric_strings(text: str, expected: int) -> None:
    call = bind("New-VHD", [("Path", "d.vhdx"), ("SizeBytes", text)])
    assert call.params["SizeBytes"] == expected


@pytest.mark.parametrize(
    ("module_cmdlet", "type_name"),
    [
        ("Get-VM", "Microsoft.HyperV.PowerShell.Commands.GetVM"),
        ("Get-ClusterNode", "Microsoft.FailoverClusters.PowerShell.GetClusterNodeCommand"),
        ("Get-ChildItem", "Microsoft.PowerShell.Commands.GetChildItemCommand"),
        ("Get-Disk", "Get-Disk"),
        ("Get-CimInstance", "Microsoft.Management.Infrastructure.CimCmdlets.GetCimInstanceCommand"),
        (
            "Uninstall-WindowsFeature",
            "Microsoft.Windows.ServerManager.Commands.RemoveWindowsFeatureCommand",
        ),
    ],
)
def test_command_type_names(module_cmdlet: str, type_name: str) -> None:
    assert command_type_name(resolve_command(module_cmdlet)) == type_name


def test_missing_catalog_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    missing = tmp_path / "nowhere.json"
    monkeypatch.setenv(catalog_mod.ENV_VAR, str(missing))
    with pytest.raises(
        catalog_mod.CatalogError, match=r"cmdlet catalog not found at .*nowhere\.json"
    ):
        catalog_mod.catalog()


def test_catalog_override_by_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    # A one-cmdlet catalog: the binder then knows nothing else.
    small = tmp_path / "small.json"
    small.write_text(
        '{"_meta": {}, "common_parameters": {"ErrorAction": {"alias": "ea", "type": '
        '"ActionPreference"}}, "risk_mitigation_parameters": {}, "cmdlet_aliases": {}, '
        '"cmdlets": {"Get-Thing": {"module": "M", "docset": "d", "sets": '
        '["__AllParameterSets"], "params": {"Name": {"type": "String", "sets": '
        '{"*": [true, 0]}}}}}}'
    )
    monkeypatch.setenv(catalog_mod.ENV_VAR, str(small))
    assert bind("get-thing", [(None, "a")]).params == {"Name": "a"}
    with pytest.raises(PSError, match="not recognized"):
        bind("Get-VM", [])
    monkeypatch.delenv(catalog_mod.ENV_VAR)
    assert bind("Get-VM", []).name == "Get-VM"


def test_line_by_line_catalog_equals_whole_file_parse() -> None:
    # The fast loader cuts entries out by line; it must read what json.load reads.
    import json

    path = catalog_mod.default_path()
    whole = json.loads(path.read_text(encoding="utf-8"))
    fast = catalog_mod._parse(path.read_bytes())
    assert set(fast) == set(whole)
    assert {k: v for k, v in fast.items() if k != "cmdlets"} == {
        k: v for k, v in whole.items() if k != "cmdlets"
    }
    assert list(fast["cmdlets"]) == list(whole["cmdlets"])
    for name, text in fast["cmdlets"].items():
        assert json.loads(text) == whole["cmdlets"][name], name
    # Per-cmdlet aliases are found without decoding the entries (via cmdlet_aliases).
    cat = catalog_mod.catalog()
    for name, entry in whole["cmdlets"].items():
        for alias in entry.get("aliases", ()):
            assert cat.resolve_name(alias) == name, alias


SC = ("ErrorAction", "SilentlyContinue")
# Every call of docs/calls.md with values of the types hvlab sends. A real host
# accepts these; so must the binder, or hvsim refuses a lab that would work.
DOCUMENTED_CALLS: list[tuple[str, list[tuple[str | None, Any]]]] = [
    ("Get-VMHost", []),
    ("Get-CimInstance", [("ClassName", "Win32_OperatingSystem")]),
    ("Get-WindowsFeature", [("Name", "Hyper-V")]),
    ("Get-VMHostSupportedVersion", [("Default", None)]),
    ("Get-Volume", [("DriveLetter", "C")]),
    ("Get-VHD", [("Path", r"C:\base.vhdx"), SC]),
    ("Get-WindowsImage", [("ImagePath", r"C:\base.vhdx"), ("Index", 1)]),
    ("Get-VM", [("Name", "n1"), SC]),
    ("Get-VMSwitch", [("Name", "lab-mgmt"), SC]),
    ("New-VMSwitch", [("Name", "lab-mgmt"), ("SwitchType", "Internal"), ("Notes", "hvlab:lab")]),
    ("Get-NetIPAddress", [("InterfaceAlias", "vEthernet (lab-mgmt)"), SC]),
    (
        "New-NetIPAddress",
        [
            ("InterfaceAlias", "vEthernet (lab-mgmt)"),
            ("IPAddress", "10.0.0.1"),
            ("PrefixLength", 24),
        ],
    ),
    ("Get-NetNat", [SC]),
    ("New-NetNat", [("Name", "lab"), ("InternalIPInterfaceAddressPrefix", "10.0.0.0/24")]),
    ("Test-Path", [("Path", r"C:\Labs\lab")]),
    ("New-Item", [("ItemType", "Directory"), ("Path", r"C:\Labs\lab"), ("Force", None)]),
    ("Get-Content", [("Path", r"C:\Labs\.hvlab-lab"), SC]),
    ("Set-Content", [("Path", r"C:\Labs\.hvlab-lab"), ("Value", "lab")]),
    ("New-VHD", [("Path", "os.vhdx"), ("ParentPath", "base.vhdx"), ("Differencing", None)]),
    ("Mount-VHD", [("Path", "os.vhdx"), ("Passthru", None)]),
    ("Get-Partition", [("DiskNumber", 3)]),
    (
        "Add-PartitionAccessPath",
        [("DiskNumber", 3), ("PartitionNumber", 4), ("AssignDriveLetter", None)],
    ),
    (
        "Set-Content",
        [("Path", r"X:\Windows\Panther\unattend.xml"), ("Value", "<xml/>"), ("Encoding", "UTF8")],
    ),
    ("Dismount-VHD", [("Path", "os.vhdx")]),
    ("New-VHD", [("Path", "d1.vhdx"), ("SizeBytes", UInt64(256 * GIB)), ("Dynamic", None)]),
    (
        "New-VM",
        [
            ("Name", "n1"),
            ("Generation", 2),
            ("MemoryStartupBytes", Int64(8 * GIB)),
            ("Path", r"C:\Labs"),
            ("VHDPath", "os.vhdx"),
            ("SwitchName", "lab-mgmt"),
        ],
    ),
    (
        "Set-VM",
        [
            ("Name", "n1"),
            ("ProcessorCount", 4),
            ("StaticMemory", None),
            ("AutomaticCheckpointsEnabled", False),
            ("CheckpointType", "Disabled"),
            ("Notes", "hvlab:lab"),
        ],
    ),
    (
        "Set-VMMemory",
        [("VMName", "n1"), ("DynamicMemoryEnabled", False), ("StartupBytes", Int64(8 * GIB))],
    ),
    ("Set-VMProcessor", [("VMName", "n1"), ("Count", 4), ("ExposeVirtualizationExtensions", True)]),
    ("Get-VMProcessor", [("VMName", "n1")]),
    ("Get-VMNetworkAdapter", [("VMName", "n1")]),
    (
        "Rename-VMNetworkAdapter",
        [("VMName", "n1"), ("Name", "Network Adapter"), ("NewName", "Mgmt")],
    ),
    (
        "Add-VMNetworkAdapter",
        [
            ("VMName", "n1"),
            ("Name", "Storage1"),
            ("SwitchName", "lab-st"),
            ("StaticMacAddress", "00155D000101"),
        ],
    ),
    (
        "Set-VMNetworkAdapter",
        [
            ("VMName", "n1"),
            ("Name", "Mgmt"),
            ("StaticMacAddress", "00155D000101"),
            ("MacAddressSpoofing", "On"),
            ("AllowTeaming", "On"),
            ("DeviceNaming", "On"),
        ],
    ),
    (
        "Set-VMNetworkAdapterVlan",
        [("VMName", "n1"), ("VMNetworkAdapterName", "Storage1"), ("Access", None), ("VlanId", 711)],
    ),
    ("Get-VMHardDiskDrive", [("VMName", "n1")]),
    ("Add-VMHardDiskDrive", [("VMName", "n1"), ("ControllerType", "SCSI"), ("Path", "d1.vhdx")]),
    ("Get-VMFirmware", [("VMName", "n1")]),
    (
        "Set-VMFirmware",
        [("VMName", "n1"), ("EnableSecureBoot", "On"), ("SecureBootTemplate", "MicrosoftWindows")],
    ),
    ("Start-VM", [("Name", "n1")]),
    ("Get-VMIntegrationService", [("VMName", "n1"), ("Name", "Heartbeat")]),
    ("Restart-VM", [("Name", "n1"), ("Force", None)]),
    ("Stop-VM", [("Name", "n1"), ("TurnOff", None), ("Force", None)]),
    ("Remove-VM", [("Name", "n1"), ("Force", None)]),
    ("Remove-Item", [("Path", r"C:\Labs\lab"), ("Recurse", None), ("Force", None)]),
    ("Remove-VMSwitch", [("Name", "lab-mgmt"), ("Force", None)]),
    (
        "Remove-NetIPAddress",
        [("InterfaceAlias", "vEthernet (lab-mgmt)"), ("IPAddress", "10.0.0.1"), ("Confirm", False)],
    ),
    ("Remove-NetNat", [("Name", "lab"), ("Confirm", False)]),
    ("Get-CimInstance", [("ClassName", "Win32_ComputerSystem")]),
    ("Get-NetAdapterAdvancedProperty", [("RegistryKeyword", "HyperVNetworkAdapterName")]),
    ("Rename-NetAdapter", [("Name", "Ethernet"), ("NewName", "Mgmt")]),
    ("Get-NetIPAddress", [("AddressFamily", "IPv4")]),
    ("Remove-Item", [("Path", r"C:\Windows\Panther\unattend.xml"), ("Force", None)]),
    ("Install-WindowsFeature", [("Name", "AD-Domain-Services"), ("IncludeManagementTools", None)]),
    (
        "Install-ADDSForest",
        [
            ("DomainName", "lab.test"),
            ("DomainNetbiosName", "LAB"),
            ("SafeModeAdministratorPassword", PW),
            ("InstallDns", None),
            ("NoRebootOnCompletion", None),
            ("Force", None),
        ],
    ),
    ("Get-ADDomainController", []),
    ("Get-Service", [("Name", ["ADWS", "NTDS", "DNS"])]),
    ("Get-ADComputer", [("Identity", "n1"), SC]),
    ("Remove-ADComputer", [("Identity", "n1"), ("Confirm", False)]),
    (
        "New-SmbShare",
        [
            ("Name", "witness"),
            ("Path", r"C:\Witness\cl"),
            ("FullAccess", ["LAB\\cl$", "LAB\\Administrator"]),
        ],
    ),
    ("Set-SmbPathAcl", [("ShareName", "witness")]),
    ("Get-SmbShare", [("Name", "witness"), SC]),
    ("Add-Computer", [("DomainName", "lab.test"), ("Credential", CRED), ("Force", None)]),
    (
        "Install-WindowsFeature",
        [
            (
                "Name",
                [
                    "Hyper-V",
                    "Failover-Clustering",
                    "FS-FileServer",
                    "Hyper-V-PowerShell",
                    "RSAT-Clustering-PowerShell",
                ],
            ),
            ("IncludeManagementTools", None),
        ],
    ),
    (
        "Set-ItemProperty",
        [
            ("Path", r"HKLM:\SYSTEM\CurrentControlSet\Services\spaceport\Parameters"),
            ("Name", "HwTimeout"),
            ("Value", 30000),
            ("Type", "DWord"),
        ],
    ),
    (
        "Get-ItemProperty",
        [
            ("Path", r"HKLM:\SYSTEM\CurrentControlSet\Services\spaceport\Parameters"),
            ("Name", "HwTimeout"),
        ],
    ),
    ("Get-Service", [("Name", "vmms")]),
    ("Get-Cluster", [SC]),
    ("Get-ClusterNode", []),
    ("Get-Disk", []),
    ("Clear-Disk", [("Number", 1), ("RemoveData", None), ("RemoveOEM", None), ("Confirm", False)]),
    (
        "Test-Cluster",
        [
            ("Node", ["n1", "n2"]),
            ("Include", ["Storage Spaces Direct", "Inventory", "Network", "System Configuration"]),
            ("ReportName", "r"),
        ],
    ),
    (
        "New-Cluster",
        [
            ("Name", "cl"),
            ("Node", ["n1", "n2"]),
            ("StaticAddress", "10.0.0.50"),
            ("NoStorage", None),
        ],
    ),
    ("Set-ClusterQuorum", [("FileShareWitness", r"\\dc\witness")]),
    ("Get-ClusterQuorum", []),
    ("Get-ClusterNetwork", []),
    ("New-VMSwitch", [("Name", "ext"), ("NetAdapterName", "Mgmt"), ("AllowManagementOS", True)]),
    ("Enable-ClusterStorageSpacesDirect", [("CacheState", "Disabled"), ("Confirm", False)]),
    ("Get-StoragePool", [("IsPrimordial", False)]),
    ("Get-PhysicalDisk", []),
    ("Set-PhysicalDisk", [("UniqueId", "6002"), ("MediaType", "HDD")]),
    ("Get-VirtualDisk", [SC]),
    (
        "New-Volume",
        [
            ("StoragePoolFriendlyName", "S2D on cl"),
            ("FriendlyName", "v1"),
            ("FileSystem", "CSVFS_ReFS"),
            ("Size", UInt64(100 * GIB)),
            ("ResiliencySettingName", "Mirror"),
        ],
    ),
    ("Get-ClusterSharedVolume", []),
    (
        "Set-VMHost",
        [
            ("VirtualMachinePath", r"C:\ClusterStorage\v1"),
            ("VirtualHardDiskPath", r"C:\ClusterStorage\v1"),
        ],
    ),
    (
        "New-VM",
        [
            ("Name", "ha1"),
            ("Generation", 2),
            ("MemoryStartupBytes", Int64(2 * GIB)),
            ("Path", r"C:\ClusterStorage\v1"),
            ("NewVHDPath", r"C:\ClusterStorage\v1\ha1\ha1.vhdx"),
            ("NewVHDSizeBytes", UInt64(40 * GIB)),
            ("SwitchName", "ext"),
        ],
    ),
    ("Get-ClusterGroup", [("Name", "ha1"), SC]),
    ("Add-ClusterVirtualMachineRole", [("VMName", "ha1")]),
    ("Start-ClusterGroup", [("Name", "ha1")]),
    (
        "Move-ClusterVirtualMachineRole",
        [("Name", "ha1"), ("Node", "n2"), ("MigrationType", "Live")],
    ),
    (
        "Invoke-Command",
        [
            ("VMName", "n1"),
            ("Credential", CRED),
            ("ArgumentList", ["Get-Service", {}]),
            ("ScriptBlock", ScriptBlock("x")),
        ],
    ),
]


@pytest.mark.parametrize(
    ("cmdlet", "args"),
    DOCUMENTED_CALLS,
    ids=[f"{i:02d}-{c[0]}" for i, c in enumerate(DOCUMENTED_CALLS)],
)
def test_documented_calls_bind(cmdlet: str, args: list[tuple[str | None, Any]]) -> None:
    call = bind(cmdlet, args)
    cmd = resolve_command(cmdlet)
    assert call.parameter_set in cmd.sets
    assert len(call.params) == len(args)
    assert set(call.params) <= set(cmd.params)


@pytest.mark.parametrize(
    ("type_name", "value", "expected"),
    [
        ("Double", "-1.5", -1.5),
        ("Double", "2KB", 2048.0),
        ("System.Double", Int32(3), 3.0),
        ("Int32", True, 1),
        ("Int32", "2.5", 2),  # .NET rounds half to even
        ("Int32", 3.5, 4),
        ("UInt16", "0xFFFF", 65535),
        ("Byte", PSEnum("T", "Two", 2), 2),
        ("String", 42, "42"),
        ("String", True, "True"),
        ("String", PSEnum("Microsoft.HyperV.PowerShell.VMState", "Running", 2), "Running"),
        ("String[]", "a", ["a"]),
        ("Object[]", 1, [1]),
        ("Object", {"k": 1}, {"k": 1}),
        ("TimeSpan", "1.02:03:04", dt.timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("DateTime", "2026-01-02T03:04:05", dt.datetime(2026, 1, 2, 3, 4, 5)),
        (
            "Guid",
            "{6F1E4A52-7D0E-4D8E-9C2C-0D3F2B1E9A11}",
            uuid.UUID("6f1e4a52-7d0e-4d8e-9c2c-0d3f2b1e9a11"),
        ),
        ("Hashtable", {"a": 1}, {"a": 1}),
        ("SwitchParameter", 0, False),
    ],
)
def test_scalar_conversions(type_name: str, value: Any, expected: Any) -> None:
    from hvsim.bind import convert
    from hvsim.catalog import Parameter

    p = Parameter(name="X", type=type_name, aliases=(), sets={})
    assert convert(resolve_command("Get-VM"), p, value) == expected


@pytest.mark.parametrize(
    ("type_name", "value", "inner"),
    [
        (
            "Guid",
            "not-a-guid",
            'Cannot convert value "not-a-guid" to type "System.Guid". Error: '
            '"Guid should contain 32 digits with 4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)."',
        ),
        (
            "UInt32",
            -1,
            'Cannot convert value "-1" to type "System.UInt32". Error: "Value was '
            'either too large or too small for a UInt32."',
        ),
        (
            "Byte",
            256,
            'Cannot convert value "256" to type "System.Byte". Error: "Value was '
            'either too large or too small for an unsigned byte."',
        ),
        (
            "Hashtable",
            "a=1",
            'Cannot convert the "a=1" value of type "System.String" to type '
            '"System.Collections.Hashtable".',
        ),
    ],
)
def test_scalar_conversion_errors(type_name: str, value: Any, inner: str) -> None:
    from hvsim.bind import convert
    from hvsim.catalog import Parameter

    p = Parameter(name="X", type=type_name, aliases=(), sets={})
    with pytest.raises(PSError) as caught:
        convert(resolve_command("Get-VM"), p, value)
    assert caught.value.message == f"Cannot bind parameter 'X'. {inner}"
