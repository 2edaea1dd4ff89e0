# Makes a Windows image applied to a new disk bootable on a Generation 2 (UEFI) VM:
# bcdboot copies the boot manager from the image's Windows folder to the EFI system
# partition and creates its BCD store (R-118). The paths come as parameters.
param(
    [Parameter(Mandatory = $true)] [string] $WindowsPath,
    [Parameter(Mandatory = $true)] [string] $SystemDrive
)
$ErrorActionPreference = 'Stop'
$bcdboot = Join-Path -Path $env:SystemRoot -ChildPath 'System32\bcdboot.exe'
$output = & $bcdboot $WindowsPath /s $SystemDrive /f UEFI 2>&1
if ($LASTEXITCODE -ne 0) {
    throw "bcdboot failed with exit code ${LASTEXITCODE}: $output"
}
"$output".Trim()
