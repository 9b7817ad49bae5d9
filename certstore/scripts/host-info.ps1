# wincert-op: host-info
# Host facts the agent decides on: host name, OS build (SSL-flag rules), OS and PowerShell versions.
# Contract: certstore/scripts/host-info.contract.json (argument and output names; the agent and winhost-sim rely on them).
# Windows PowerShell 5.1 compatible. The bootstrap sets $ErrorActionPreference='Stop' and passes one JSON string.
param([string]$ArgsJson)

# A terminating error that carries the category the agent maps to a job failure reason.
function New-OpError([string]$Category, [string]$Message) {
    $exception = New-Object System.InvalidOperationException $Message
    $exception.Data['WincertCategory'] = $Category
    return $exception
}

# Non-ASCII characters as \uXXXX escapes: the JSON then survives any console code page (Windows
# PowerShell writes redirected stdout in the OEM code page, which would mangle unicode friendly names).
function ConvertTo-AsciiJson([string]$Json) {
    return [regex]::Replace($Json, '[^\x00-\x7E]', { param($match) '\u{0:x4}' -f [int][char]$match.Value })
}

try {
    try { Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue } catch { }  # PS 5.1: arrays as plain JSON arrays
    $a = $ArgsJson | ConvertFrom-Json

    $null = $a
    $hostname = [string]$env:COMPUTERNAME
    try { $hostname = [string][System.Net.Dns]::GetHostEntry($hostname).HostName } catch { $hostname = [string]$env:COMPUTERNAME }
    $current = Get-ItemProperty -LiteralPath 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion'
    $build = [int]$current.CurrentBuildNumber
    $major = $current.CurrentMajorVersionNumber
    $minor = $current.CurrentMinorVersionNumber
    if ($null -eq $major) {
        $major = [Environment]::OSVersion.Version.Major
        $minor = [Environment]::OSVersion.Version.Minor
    }
    $result = [pscustomobject]@{
        Hostname = $hostname
        OsBuild = $build
        OsVersion = ('{0}.{1}.{2}' -f $major, $minor, $build)
        PsVersion = $PSVersionTable.PSVersion.ToString()
    }

    Write-Output (ConvertTo-AsciiJson ($result | ConvertTo-Json -Compress -Depth 6))
    exit 0
} catch {
    $category = [string]$_.Exception.Data['WincertCategory']
    if (-not $category) { $category = [string]$_.CategoryInfo.Category }
    $failure = @{ error = @{ message = [string]$_.Exception.Message; category = $category } }
    Write-Output (ConvertTo-AsciiJson ($failure | ConvertTo-Json -Compress -Depth 6))
    exit 1
}
