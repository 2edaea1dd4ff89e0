# Runs one of hvlab's constant guest scripts (templates/guest/*.ps1) inside a VM
# through PowerShell Direct (R-34, R-47). The script text is sent unchanged and
# its data only as parameters, splatted inside the guest.
param(
    [Parameter(Mandatory = $true)] [string] $VMName,
    [Parameter(Mandatory = $true)] [pscredential] $Credential,
    [Parameter(Mandatory = $true)] [string] $Script,
    [hashtable] $Parameters = @{}
)
$ErrorActionPreference = 'Stop'
Invoke-Command -VMName $VMName -Credential $Credential -ArgumentList $Script, $Parameters -ScriptBlock {
    param($Script, $Parameters)
    $ErrorActionPreference = 'Stop'
    & ([scriptblock]::Create($Script)) @Parameters
}
