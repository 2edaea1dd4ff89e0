# Reads the facts of the cluster a node is in, in one PowerShell Direct call (R-34,
# R-47). First the cluster (Get-Cluster; nothing when the node is in none); then,
# only when there is one, each fact asked for: an object naming the fact (type
# hvlab.GuestFact), then what its read returned, typed as the cmdlet returns it.
# Reads only.
param(
    [switch] $Node,
    [switch] $Quorum,
    [switch] $Network,
    [switch] $SharedVolume,
    [string[]] $Group,
    [switch] $StoragePool,
    [switch] $InVMSettings,
    [switch] $PhysicalDisk,
    [string[]] $VirtualDisk
)
$ErrorActionPreference = 'Stop'
$cluster = Get-Cluster -ErrorAction SilentlyContinue
[pscustomobject]@{ PSTypeName = 'hvlab.GuestFact'; Fact = 'Cluster' }
$cluster
if ($cluster) {
    if ($Node) {
        [pscustomobject]@{ PSTypeName = 'hvlab.GuestFact'; Fact = 'Node' }
        Get-ClusterNode
    }
    if ($Quorum) {
        [pscustomobject]@{ PSTypeName = 'hvlab.GuestFact'; Fact = 'Quorum' }
        Get-ClusterQuorum
    }
    if ($Network) {
        [pscustomobject]@{ PSTypeName = 'hvlab.GuestFact'; Fact = 'Network' }
        Get-ClusterNetwork
    }
    if ($SharedVolume) {
        [pscustomobject]@{ PSTypeName = 'hvlab.GuestFact'; Fact = 'SharedVolume' }
        Get-ClusterSharedVolume
    }
    if ($Group) {
        [pscustomobject]@{ PSTypeName = 'hvlab.GuestFact'; Fact = 'Group' }
        Get-ClusterGroup -Name $Group -ErrorAction SilentlyContinue
    }
    if ($StoragePool -or $InVMSettings) {
        $pool = Get-StoragePool -IsPrimordial $false -ErrorAction SilentlyContinue
        if ($StoragePool) {
            [pscustomobject]@{ PSTypeName = 'hvlab.GuestFact'; Fact = 'StoragePool' }
            $pool
        }
        if ($InVMSettings -and $pool) {
            # The two settings S2D in VMs needs, read as Get-S2DInVMSettings.ps1 reads
            # them (R-62); the Health Service exists once the pool does.
            [pscustomobject]@{ PSTypeName = 'hvlab.GuestFact'; Fact = 'InVMSettings' }
            $name = 'System.Storage.PhysicalDisk.AutoReplace.Enabled'
            $subsystem = Get-StorageSubSystem -FriendlyName 'Clustered*'
            $setting = $subsystem | Get-StorageHealthSetting -Name $name
            [pscustomobject]@{
                AutoReplace    = if ($setting) { [string]$setting.Value } else { 'True' }
                BlockCacheSize = [int]$cluster.BlockCacheSize
            }
        }
    }
    if ($PhysicalDisk) {
        [pscustomobject]@{ PSTypeName = 'hvlab.GuestFact'; Fact = 'PhysicalDisk' }
        Get-PhysicalDisk
    }
    if ($VirtualDisk) {
        [pscustomobject]@{ PSTypeName = 'hvlab.GuestFact'; Fact = 'VirtualDisk' }
        Get-VirtualDisk -FriendlyName $VirtualDisk -ErrorAction SilentlyContinue
    }
}
