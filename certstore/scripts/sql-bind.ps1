# wincert-op: sql-bind
# Binds a certificate to SQL Server instances: writes and verifies SuperSocketNetLib\Certificate, grants the service account read on the key file (CNG and CAPI), optionally restarts.
# Contract: certstore/scripts/sql-bind.contract.json (argument and output names; the agent and winhost-sim rely on them).
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

function Open-LocalMachineStore([string]$StoreName, [string]$Mode) {
    if (-not $StoreName) { throw (New-OpError 'InvalidArgument' 'StoreName is empty') }
    if (-not (Test-Path -LiteralPath ('Cert:\LocalMachine\' + $StoreName))) {
        throw (New-OpError 'StoreNotFound' ("the certificate store LocalMachine\{0} does not exist" -f $StoreName))
    }
    $store = New-Object System.Security.Cryptography.X509Certificates.X509Store($StoreName, [System.Security.Cryptography.X509Certificates.StoreLocation]::LocalMachine)
    $store.Open([System.Security.Cryptography.X509Certificates.OpenFlags]($Mode + ', OpenExistingOnly'))
    return $store
}

function Find-InStore($Store, [string]$Thumbprint) {
    $found = $Store.Certificates.Find([System.Security.Cryptography.X509Certificates.X509FindType]::FindByThumbprint, $Thumbprint, $false)
    if ($found.Count -gt 0) { return $found[0] }
    return $null
}

# The key's unique container name and the file that holds it (CNG: Crypto\Keys, CAPI: Crypto\RSA\MachineKeys).
function Get-KeyIdentity($Certificate) {
    if (-not $Certificate.HasPrivateKey) { return $null }
    $key = [System.Security.Cryptography.X509Certificates.RSACertificateExtensions]::GetRSAPrivateKey($Certificate)
    if ($null -eq $key) { $key = [System.Security.Cryptography.X509Certificates.ECDsaCertificateExtensions]::GetECDsaPrivateKey($Certificate) }
    if ($null -eq $key) { return $null }
    $uniqueName = ''
    if ($key -is [System.Security.Cryptography.RSACng] -or $key -is [System.Security.Cryptography.ECDsaCng]) {
        $uniqueName = [string]$key.Key.UniqueName
    } elseif ($null -ne $key.CspKeyContainerInfo) {
        $uniqueName = [string]$key.CspKeyContainerInfo.UniqueKeyContainerName
    }
    if (-not $uniqueName) { return $null }
    $file = ''
    foreach ($folder in @('Microsoft\Crypto\Keys', 'Microsoft\Crypto\RSA\MachineKeys', 'Microsoft\Crypto\SystemKeys')) {
        $candidate = Join-Path (Join-Path $env:ProgramData $folder) $uniqueName
        if (Test-Path -LiteralPath $candidate) { $file = $candidate; break }
    }
    return @{ UniqueName = $uniqueName; File = $file; Key = $key }
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

# Writes the thumbprint for one instance, verifies it, and grants the service account read on the key file.
function Set-SqlCertificate([string]$InstanceName, [string]$Thumbprint, $Certificate, [bool]$Restart) {
    $instanceId = Get-SqlInstanceId $InstanceName
    $netLibKey = Get-SqlNetLibKey $instanceId
    if (-not (Test-Path -LiteralPath $netLibKey)) {
        throw (New-OpError 'InstanceNotFound' ("the SQL Server instance '{0}' has no SuperSocketNetLib registry key" -f $InstanceName))
    }
    Set-ItemProperty -LiteralPath $netLibKey -Name 'Certificate' -Value $Thumbprint.ToLowerInvariant()
    $written = [string](Get-Item -LiteralPath $netLibKey).GetValue('Certificate')
    $serviceName = Get-SqlServiceName $InstanceName
    $account = Get-SqlServiceAccount $serviceName
    $identity = Get-KeyIdentity $Certificate
    $keyFile = ''
    if ($null -ne $identity -and $identity.File) {
        $keyFile = $identity.File
        if ($account -and $account -ne 'LocalSystem' -and $account -ne 'NT AUTHORITY\SYSTEM') {
            $acl = Get-Acl -LiteralPath $keyFile
            $rule = New-Object System.Security.AccessControl.FileSystemAccessRule($account, 'Read', 'Allow')
            $acl.AddAccessRule($rule)
            Set-Acl -LiteralPath $keyFile -AclObject $acl
        }
    }
    $restarted = $false
    if ($Restart) {
        [void](Restart-SqlService $serviceName 90)
        $restarted = $true
    }
    return [pscustomobject]@{
        InstanceName = $InstanceName
        Verified = ($written -eq $Thumbprint)
        KeyFile = $keyFile
        Restarted = $restarted
    }
}

try {
    try { Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue } catch { }  # PS 5.1: arrays as plain JSON arrays
    $a = $ArgsJson | ConvertFrom-Json

    $thumbprint = ([string]$a.Thumbprint).ToUpperInvariant()
    $storeName = [string]$a.StoreName
    $store = Open-LocalMachineStore $storeName 'ReadOnly'
    try {
        $certificate = Find-InStore $store $thumbprint
    } finally {
        $store.Close()
    }
    if ($null -eq $certificate) {
        throw (New-OpError 'CertificateNotFound' ("certificate {0} is not in LocalMachine\{1}" -f $thumbprint, $storeName))
    }
    if (-not $certificate.HasPrivateKey) {
        throw (New-OpError 'InvalidArgument' ("certificate {0} has no private key, which SQL Server needs" -f $thumbprint))
    }
    $instances = @()
    foreach ($instanceName in @($a.InstanceNames)) {
        $instances += Set-SqlCertificate ([string]$instanceName) $thumbprint $certificate ([bool]$a.RestartService)
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
