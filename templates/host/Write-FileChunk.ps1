# Writes one chunk of an upload into a file on the host (R-122). The chunk is written
# only when the file holds exactly Offset bytes, so a chunk sent twice (a retry after a
# lost reply) is never written twice. The file's length is returned either way, and
# the sender goes on from there.
param(
    [Parameter(Mandatory = $true)] [string] $Path,
    [Parameter(Mandatory = $true)] [long] $Offset,
    [Parameter(Mandatory = $true)] [string] $Data
)
$ErrorActionPreference = 'Stop'
$bytes = [System.Convert]::FromBase64String($Data)
$mode = [System.IO.FileMode]::OpenOrCreate
$access = [System.IO.FileAccess]::ReadWrite
$share = [System.IO.FileShare]::None
$stream = [System.IO.File]::Open($Path, $mode, $access, $share)
try {
    if ($stream.Length -eq $Offset) {
        $null = $stream.Seek($Offset, [System.IO.SeekOrigin]::Begin)
        $stream.Write($bytes, 0, $bytes.Length)
        $stream.Flush()
    }
    [long] $stream.Length
}
finally {
    $stream.Dispose()
}
