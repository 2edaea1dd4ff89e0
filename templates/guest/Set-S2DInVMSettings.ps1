# Sets the two settings Storage Spaces Direct in VMs needs (R-62), then reads them
# back. Runs inside a cluster node. AutoReplace 'False': the Health Service does not
# replace a virtual disk it thinks failed (Microsoft's in-VM guidance); BlockCacheSize
# 0: no CSV in-memory read cache in a virtual node (MSLab).
param(
    [Parameter(Mandatory = $true)] [string] $AutoReplace,
    [Parameter(Mandatory = $true)] [int] $BlockCacheSize
)
$ErrorActionPreference = 'Stop'
$name = 'System.Storage.PhysicalDisk.AutoReplace.Enabled'
$subsystem = Get-StorageSubSystem -FriendlyName 'Clustered*'
$subsystem | Set-StorageHealthSetting -Name $name -Value $AutoReplace
$cluster = Get-Cluster
if ($cluster.BlockCacheSize -ne $BlockCacheSize) {
    $cluster.BlockCacheSize = $BlockCacheSize
}
$setting = $subsystem | Get-StorageHealthSetting -Name $name
[pscustomobject]@{
    AutoReplace    = [string]$setting.Value
    BlockCacheSize = [int](Get-Cluster).BlockCacheSize
}
