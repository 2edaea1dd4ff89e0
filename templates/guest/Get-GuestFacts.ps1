# Reads several facts inside a guest in one PowerShell Direct call (R-34). For each
# fact asked for it writes an object naming the fact (type hvlab.GuestFact), then
# what the fact's read returned, typed as the cmdlet returns it. Reads only: which
# facts to read, and for what, come as parameters.
param(
    [switch] $OperatingSystem,
    [switch] $ComputerSystem,
    [switch] $AdapterNames,
    [switch] $NetAdapter,
    [string[]] $Path,
    [string[]] $Feature,
    [string[]] $DnsClient,
    [string] $RegistryPath,
    [string] $RegistryValue,
    [string[]] $Service,
    [string] $VMSwitch,
    [switch] $VMHost,
    [switch] $DomainController
)
$ErrorActionPreference = 'Stop'
if ($OperatingSystem) {
    [pscustomobject]@{ PSTypeName = 'hvlab.GuestFact'; Fact = 'OperatingSystem' }
    Get-CimInstance -ClassName Win32_OperatingSystem
}
if ($ComputerSystem) {
    [pscustomobject]@{ PSTypeName = 'hvlab.GuestFact'; Fact = 'ComputerSystem' }
    Get-CimInstance -ClassName Win32_ComputerSystem
}
if ($AdapterNames) {
    # The host's names of the adapters, as device naming shows them in the guest (R-75).
    [pscustomobject]@{ PSTypeName = 'hvlab.GuestFact'; Fact = 'AdapterNames' }
    Get-NetAdapterAdvancedProperty -RegistryKeyword 'HyperVNetworkAdapterName'
}
if ($NetAdapter) {
    # Every adapter with its MAC: one added while the VM runs has no host-side name
    # until the guest's next boot (R-75, R-140).
    [pscustomobject]@{ PSTypeName = 'hvlab.GuestFact'; Fact = 'NetAdapter' }
    Get-NetAdapter
}
if ($Path) {
    # One Boolean per path, in the order given.
    [pscustomobject]@{ PSTypeName = 'hvlab.GuestFact'; Fact = 'Path' }
    Test-Path -Path $Path
}
if ($Feature) {
    [pscustomobject]@{ PSTypeName = 'hvlab.GuestFact'; Fact = 'Feature' }
    Get-WindowsFeature -Name $Feature
}
if ($DnsClient) {
    [pscustomobject]@{ PSTypeName = 'hvlab.GuestFact'; Fact = 'DnsClient' }
    Get-DnsClient -InterfaceAlias $DnsClient
}
if ($RegistryPath) {
    [pscustomobject]@{ PSTypeName = 'hvlab.GuestFact'; Fact = 'Registry' }
    Get-ItemProperty -Path $RegistryPath -Name $RegistryValue -ErrorAction SilentlyContinue
}
if ($Service) {
    [pscustomobject]@{ PSTypeName = 'hvlab.GuestFact'; Fact = 'Service' }
    Get-Service -Name $Service -ErrorAction SilentlyContinue
}
if ($VMSwitch) {
    # Only where Hyper-V runs: before its role is installed and has booted there is
    # no Get-VMSwitch (R-46). Without Hyper-V the fact is not written at all.
    $vmms = Get-Service -Name 'vmms' -ErrorAction SilentlyContinue
    if ($vmms -and [string]$vmms.Status -eq 'Running') {
        [pscustomobject]@{ PSTypeName = 'hvlab.GuestFact'; Fact = 'VMSwitch' }
        Get-VMSwitch -Name $VMSwitch -ErrorAction SilentlyContinue
    }
}
if ($VMHost) {
    [pscustomobject]@{ PSTypeName = 'hvlab.GuestFact'; Fact = 'VMHost' }
    Get-VMHost
}
if ($DomainController) {
    # Until Active Directory answers this read fails; the fact then holds nothing (R-40).
    [pscustomobject]@{ PSTypeName = 'hvlab.GuestFact'; Fact = 'DomainController' }
    try {
        Get-ADDomainController
    }
    catch {
    }
}
