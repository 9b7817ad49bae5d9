# wincert-op: sql-unbind
# Clears SuperSocketNetLib\Certificate only on the instances bound to the given thumbprint; others are left alone.
# Contract: certstore/scripts/sql-unbind.contract.json (argument and output names; the agent and winhost-sim rely on them).
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

$SqlInstancesKey = 'HKLM:\SOFTWARE\Microsoft\Microsoft SQL Server\Instance Names\SQL'

function Get-SqlInstanceId([string]$InstanceName) {
    if (-not (Test-Path -LiteralPath $SqlInstancesKey)) {
        throw (New-OpError 'InstanceNotFound' 'SQL Server is not installed on this host (no Instance Names\SQL registry key)')
    }
    $id = (Get-Item -LiteralPath $SqlInstancesKey).GetValue($InstanceName)
    if (-not $id) { throw (New-OpError 'InstanceNotFound' ("the SQL Server instance '{0}' does not exist on this host" -f $InstanceName)) }
    return [string]$id
}

function Get-SqlNetLibKey([string]$InstanceId) {
    return 'HKLM:\SOFTWARE\Microsoft\Microsoft SQL Server\' + $InstanceId + '\MSSQLServer\SuperSocketNetLib'
}

function Get-SqlServiceName([string]$InstanceName) {
    if ($InstanceName -eq 'MSSQLSERVER') { return 'MSSQLSERVER' }
    return 'MSSQL$' + $InstanceName
}

function Get-SqlServiceAccount([string]$ServiceName) {
    $service = Get-CimInstance -ClassName Win32_Service -Filter ("Name='{0}'" -f $ServiceName.Replace("'", "''"))
    if ($null -eq $service) { return '' }
    return [string]$service.StartName
}

# Stop then start with bounded waits, so a hung service fails the job instead of hanging it.
function Restart-SqlService([string]$ServiceName, [int]$TimeoutSeconds) {
    $service = Get-Service -Name $ServiceName
    try {
        if ($service.Status -ne 'Stopped') {
            $service.Stop()
            $service.WaitForStatus('Stopped', [TimeSpan]::FromSeconds($TimeoutSeconds))
        }
        $service.Start()
        $service.WaitForStatus('Running', [TimeSpan]::FromSeconds($TimeoutSeconds))
    } catch [System.ServiceProcess.TimeoutException] {
        throw (New-OpError 'Timeout' ("the service {0} did not restart within {1} seconds" -f $ServiceName, $TimeoutSeconds))
    }
    $service.Refresh()
    return [string]$service.Status
}

try {
    try { Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue } catch { }  # PS 5.1: arrays as plain JSON arrays
    $a = $ArgsJson | ConvertFrom-Json

    $thumbprint = ([string]$a.Thumbprint).ToUpperInvariant()
    $instances = @()
    foreach ($instanceName in @($a.InstanceNames)) {
        $instanceId = Get-SqlInstanceId ([string]$instanceName)
        $netLibKey = Get-SqlNetLibKey $instanceId
        $previous = ''
        if (Test-Path -LiteralPath $netLibKey) { $previous = [string](Get-Item -LiteralPath $netLibKey).GetValue('Certificate') }
        $unbound = $false
        $restarted = $false
        if ($previous -and $previous.Trim() -eq $thumbprint) {
            # Blank rather than delete the value: SQL Server expects it to exist.
            Set-ItemProperty -LiteralPath $netLibKey -Name 'Certificate' -Value ''
            $unbound = $true
            if ($a.RestartService) {
                [void](Restart-SqlService (Get-SqlServiceName ([string]$instanceName)) 90)
                $restarted = $true
            }
        }
        $instances += [pscustomobject]@{
            InstanceName = [string]$instanceName
            Unbound = $unbound
            PreviousCertificate = $previous
            Restarted = $restarted
        }
    }
    $result = [pscustomobject]@{
        Instances = $instances
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
