# Names a cluster network and sets its role (R-59). Runs inside a cluster node.
# The network is found by its subnet address; Role: 0 None, 1 Cluster, 3 ClusterAndClient.
param(
    [Parameter(Mandatory = $true)] [string] $Address,
    [Parameter(Mandatory = $true)] [string] $Name,
    [Parameter(Mandatory = $true)] [int] $Role
)
$ErrorActionPreference = 'Stop'
$network = Get-ClusterNetwork | Where-Object { $_.Address -eq $Address }
if (-not $network) {
    throw "No cluster network has the address $Address."
}
if ($network.Name -ne $Name) {
    $network.Name = $Name
}
if ([int]$network.Role -ne $Role) {
    $network.Role = $Role
}
$result = Get-ClusterNetwork -Name $Name
[pscustomobject]@{ Name = $result.Name; Address = $result.Address; Role = [int]$result.Role }
