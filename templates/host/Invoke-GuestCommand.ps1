# Runs one cmdlet inside a VM through PowerShell Direct (R-34, R-47).
# Constant text: hvlab sends it unchanged with its data as parameters, and hvsim
# recognises it by content. The guest command is a cmdlet name and a hashtable
# of its parameters, splatted inside the guest; nothing is pasted into code.
param(
    [Parameter(Mandatory = $true)] [string] $VMName,
    [Parameter(Mandatory = $true)] [pscredential] $Credential,
    [Parameter(Mandatory = $true)] [string] $Command,
    [hashtable] $Parameters = @{}
)
$ErrorActionPreference = 'Stop'
Invoke-Command -VMName $VMName -Credential $Credential -ArgumentList $Command, $Parameters -ScriptBlock {
    param($Command, $Parameters)
    $ErrorActionPreference = 'Stop'
    & $Command @Parameters
}
