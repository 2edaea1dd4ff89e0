# The console of one VM as a small picture, taken on the host: for a guest that does
# not answer over PowerShell Direct. Msvm_VirtualSystemManagementService's
# GetVirtualSystemThumbnailImage returns raw RGB 565 pixels, row by row.
# Constant text: hvlab sends it unchanged with its data as parameters, and hvsim
# recognises it by content. The VM is found by its Id (names need not be unique).
param(
    [Parameter(Mandatory = $true)] [guid] $VMId,
    [Parameter(Mandatory = $true)] [ValidateRange(16, 1024)] [int] $WidthPixels,
    [Parameter(Mandatory = $true)] [ValidateRange(16, 768)] [int] $HeightPixels
)
$ErrorActionPreference = 'Stop'
$namespace = 'root\virtualization\v2'
$system = @(Get-CimInstance -Namespace $namespace -ClassName Msvm_ComputerSystem |
    Where-Object { $_.Name -eq $VMId.ToString() })
if ($system.Count -ne 1) {
    throw "No virtual machine has the Id $VMId."
}
$settings = @(Get-CimAssociatedInstance -InputObject $system[0] -ResultClassName Msvm_VirtualSystemSettingData |
    Where-Object { $_.VirtualSystemType -eq 'Microsoft:Hyper-V:System:Realized' })
$service = Get-CimInstance -Namespace $namespace -ClassName Msvm_VirtualSystemManagementService
$result = Invoke-CimMethod -InputObject $service -MethodName GetVirtualSystemThumbnailImage -Arguments @{
    TargetSystem = $settings[0]
    WidthPixels  = [uint16] $WidthPixels
    HeightPixels = [uint16] $HeightPixels
}
$data = $null
if ($result.ReturnValue -eq 0) {
    $data = [Convert]::ToBase64String([byte[]] $result.ImageData)
}
[pscustomobject]@{
    VMId        = $VMId
    Width       = $WidthPixels
    Height      = $HeightPixels
    Format      = 'RGB565'
    ReturnValue = [int] $result.ReturnValue
    ImageData   = $data
}
