# Reads the two settings Storage Spaces Direct in VMs needs (R-62): the Health
# Service's automatic drive replacement and the CSV in-memory read cache. Runs
# inside a cluster node; changes nothing.
$ErrorActionPreference = 'Stop'
$name = 'System.Storage.PhysicalDisk.AutoReplace.Enabled'
$subsystem = Get-StorageSubSystem -FriendlyName 'Clustered*'
$setting = $subsystem | Get-StorageHealthSetting -Name $name
[pscustomobject]@{
    AutoReplace    = if ($setting) { [string]$setting.Value } else { 'True' }
    BlockCacheSize = [int](Get-Cluster).BlockCacheSize
}
