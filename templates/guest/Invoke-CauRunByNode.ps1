# Runs one Cluster-Aware Updating run from this computer, which must not be a node of
# the cluster it updates (R-112), and writes one flat record per node. PowerShell
# Direct hands nested objects back as text, so the report's node results are unrolled
# here; the names of their properties are the simulated host's (see R-112).
param(
    [Parameter(Mandatory = $true)] [hashtable] $Run
)
$ErrorActionPreference = 'Stop'
$report = Invoke-CauRun @Run
foreach ($node in $report.NodeResults) {
    $updates = @($node.UpdateResults | ForEach-Object { '{0}={1}' -f $_.HotFixID, $_.Result })
    [pscustomobject]@{
        Cluster   = [string]$report.ClusterName
        RunStatus = [string]$report.Status
        Node      = [string]$node.Node
        Status    = [string]$node.Status
        Updates   = $updates -join ';'
        Started   = $node.StartTime
        Drained   = $node.DrainedTime
        Installed = $node.InstalledTime
        Restarted = $node.RestartedTime
        Resumed   = $node.ResumedTime
        Repaired  = $node.RepairedTime
    }
}
