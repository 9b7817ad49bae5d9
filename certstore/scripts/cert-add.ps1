# wincert-op: cert-add
# Imports a PFX (or DER) into a LocalMachine store with a persisted machine key, honouring Overwrite; optionally binds it in IIS or SQL Server and removes the certificate it replaced when nothing uses it any more - one job, one invocation.
# Contract: certstore/scripts/cert-add.contract.json (argument and output names; the agent and winhost-sim rely on them).
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

function ConvertTo-HexString($Bytes) {
    if ($null -eq $Bytes -or $Bytes.Length -eq 0) { return '' }
    return ([System.BitConverter]::ToString($Bytes)).Replace('-', '')
}

function ConvertTo-ByteArray([string]$Hex) {
    $bytes = New-Object byte[] ($Hex.Length / 2)
    for ($i = 0; $i -lt $bytes.Length; $i++) {
        $bytes[$i] = [System.Convert]::ToByte($Hex.Substring(2 * $i, 2), 16)
    }
    return ,$bytes
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

# The CNG key storage provider or CryptoAPI CSP that holds the certificate's key ('' without a key).
function Get-KeyProviderName($Certificate) {
    if (-not $Certificate.HasPrivateKey) { return '' }
    try {
        $key = [System.Security.Cryptography.X509Certificates.RSACertificateExtensions]::GetRSAPrivateKey($Certificate)
        if ($null -eq $key) { $key = [System.Security.Cryptography.X509Certificates.ECDsaCertificateExtensions]::GetECDsaPrivateKey($Certificate) }
        if ($key -is [System.Security.Cryptography.RSACng] -or $key -is [System.Security.Cryptography.ECDsaCng]) { return [string]$key.Key.Provider.Provider }
        if ($null -ne $key -and $null -ne $key.CspKeyContainerInfo) { return [string]$key.CspKeyContainerInfo.ProviderName }
    } catch {
        # No read access to the key: fall back to the provider recorded on the certificate.
    }
    try {
        if ($null -ne $Certificate.PrivateKey) { return [string]$Certificate.PrivateKey.CspKeyContainerInfo.ProviderName }
    } catch {
        return ''
    }
    return ''
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

# Quotes one argument the way CommandLineToArgvW reads it back (passwords may hold spaces and quotes).
function ConvertTo-NativeArgument([string]$Value) {
    if ($Value.Length -gt 0 -and $Value -notmatch '[\s"]') { return $Value }
    $builder = New-Object System.Text.StringBuilder
    [void]$builder.Append('"')
    $backslashes = 0
    foreach ($ch in $Value.ToCharArray()) {
        if ($ch -eq [char]'\') { $backslashes++; continue }
        if ($ch -eq [char]'"') {
            [void]$builder.Append([char]'\', 2 * $backslashes + 1)
        } elseif ($backslashes -gt 0) {
            [void]$builder.Append([char]'\', $backslashes)
        }
        [void]$builder.Append($ch)
        $backslashes = 0
    }
    if ($backslashes -gt 0) { [void]$builder.Append([char]'\', 2 * $backslashes) }
    [void]$builder.Append('"')
    return $builder.ToString()
}

# Runs a tool with exact argument quoting and a bounded wait; returns its exit code and output text.
function Invoke-Native([string]$FilePath, [string[]]$Arguments, [int]$TimeoutSeconds = 120) {
    $quoted = @()
    foreach ($argument in $Arguments) { $quoted += ConvertTo-NativeArgument $argument }
    $startInfo = New-Object System.Diagnostics.ProcessStartInfo
    $startInfo.FileName = $FilePath
    $startInfo.Arguments = $quoted -join ' '
    $startInfo.UseShellExecute = $false
    $startInfo.RedirectStandardOutput = $true
    $startInfo.RedirectStandardError = $true
    $startInfo.CreateNoWindow = $true
    $process = [System.Diagnostics.Process]::Start($startInfo)
    $stdoutTask = $process.StandardOutput.ReadToEndAsync()
    $stderrText = $process.StandardError.ReadToEnd()
    if (-not $process.WaitForExit($TimeoutSeconds * 1000)) {
        $process.Kill()
        throw (New-OpError 'Timeout' ("{0} did not finish within {1} seconds" -f (Split-Path -Leaf $FilePath), $TimeoutSeconds))
    }
    return @{ ExitCode = $process.ExitCode; Output = ($stdoutTask.Result + $stderrText).Trim() }
}

function Get-CryptoProviderNames {
    $run = Invoke-Native (Join-Path $env:windir 'System32\certutil.exe') @('-csplist')
    $names = @()
    foreach ($line in ($run.Output -split "`r?`n")) {
        if ($line -match '^\s*Provider Name:\s*(.+?)\s*$') { $names += $Matches[1] }
    }
    return ,$names
}

function Assert-CryptoProvider([string]$ProviderName) {
    $names = Get-CryptoProviderNames
    if ($names -notcontains $ProviderName) {
        throw (New-OpError 'ProviderNotFound' ("the crypto provider '{0}' is not installed on this host (certutil -csplist does not list it)" -f $ProviderName))
    }
}

function Get-ServerManager {
    $assembly = Join-Path $env:windir 'System32\inetsrv\Microsoft.Web.Administration.dll'
    if (-not (Test-Path -LiteralPath $assembly)) {
        throw (New-OpError 'IisNotInstalled' 'IIS is not installed on this host (Microsoft.Web.Administration.dll is missing)')
    }
    Add-Type -Path $assembly
    return New-Object Microsoft.Web.Administration.ServerManager
}

function ConvertTo-BindingResult($Site, $Binding) {
    $flags = 0
    try { $flags = [int]$Binding.GetAttributeValue('sslFlags') } catch { $flags = 0 }
    return [pscustomobject]@{
        SiteName = [string]$Site.Name
        Protocol = [string]$Binding.Protocol
        BindingInformation = [string]$Binding.BindingInformation
        CertificateHash = (ConvertTo-HexString $Binding.CertificateHash)
        CertificateStoreName = [string]$Binding.CertificateStoreName
        SslFlags = $flags
    }
}

# Replaces the site's https binding with exactly this IP:Port:Host (other sites are left alone) and
# applies every sslFlags bit (values above 3 included).
function Set-IisBinding([string]$SiteName, [string]$BindingInformation, [string]$Thumbprint, [string]$StoreName, [int]$SslFlags) {
    $manager = Get-ServerManager
    $site = $manager.Sites[$SiteName]
    if ($null -eq $site) { throw (New-OpError 'SiteNotFound' ("the IIS site '{0}' does not exist" -f $SiteName)) }
    $replacedExisting = $false
    foreach ($existing in @($site.Bindings)) {
        if ($existing.Protocol -eq 'https' -and $existing.BindingInformation -eq $BindingInformation) {
            $site.Bindings.Remove($existing)
            $replacedExisting = $true
        }
    }
    $binding = $site.Bindings.Add($BindingInformation, (ConvertTo-ByteArray $Thumbprint), $StoreName)
    $binding.SetAttributeValue('sslFlags', $SslFlags)
    $manager.CommitChanges()

    # Read back what IIS now holds, from a fresh configuration.
    $check = Get-ServerManager
    foreach ($candidate in $check.Sites[$SiteName].Bindings) {
        if ($candidate.Protocol -eq 'https' -and $candidate.BindingInformation -eq $BindingInformation) {
            return @{ Binding = (ConvertTo-BindingResult $check.Sites[$SiteName] $candidate); ReplacedExisting = $replacedExisting }
        }
    }
    throw (New-OpError 'VerificationFailed' ("the https binding {0} on site '{1}' is missing after it was written" -f $BindingInformation, $SiteName))
}

# "Site (IP:Port:Host)" for every https binding that uses the thumbprint; empty when IIS is absent.
function Get-IisBindingsUsing([string]$Thumbprint) {
    $users = @()
    $assembly = Join-Path $env:windir 'System32\inetsrv\Microsoft.Web.Administration.dll'
    if (-not (Test-Path -LiteralPath $assembly)) { return ,$users }
    $manager = Get-ServerManager
    foreach ($site in $manager.Sites) {
        foreach ($binding in $site.Bindings) {
            if ($binding.Protocol -eq 'https' -and (ConvertTo-HexString $binding.CertificateHash) -eq $Thumbprint) {
                $users += ('{0} ({1})' -f $site.Name, $binding.BindingInformation)
            }
        }
    }
    return ,$users
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

    $storeName = [string]$a.StoreName
    $thumbprint = ([string]$a.Thumbprint).ToUpperInvariant()
    $password = [string]$a.PfxPassword
    $providerName = [string]$a.ProviderName
    if (-not $thumbprint) { throw (New-OpError 'InvalidArgument' 'Thumbprint is empty') }
    $bytes = [System.Convert]::FromBase64String([string]$a.ContentsBase64)
    $contentType = [System.Security.Cryptography.X509Certificates.X509Certificate2]::GetCertContentType($bytes)

    $store = Open-LocalMachineStore $storeName 'ReadWrite'
    $status = 'Added'
    $chainAdded = @()
    try {
        $existing = Find-InStore $store $thumbprint
        if ($null -ne $existing -and -not $a.Overwrite) {
            $status = 'AlreadyPresent'
        } else {
            # X509Store.Add and certutil -f replace an existing copy in place (new key link, same thumbprint), so
            # the old one stays until the new one is in.
            if ($null -ne $existing) { $status = 'Replaced' }
            $collection = New-Object System.Security.Cryptography.X509Certificates.X509Certificate2Collection
            if ($providerName) {
                Assert-CryptoProvider $providerName
                $temporary = [System.IO.Path]::GetTempFileName()
                try {
                    [System.IO.File]::WriteAllBytes($temporary, $bytes)
                    $certutil = Join-Path $env:windir 'System32\certutil.exe'
                    if ($contentType -eq [System.Security.Cryptography.X509Certificates.X509ContentType]::Pfx) {
                        # -p is always given (an empty one for password-less PFX files) so certutil never prompts.
                        $run = Invoke-Native $certutil @('-f', '-p', $password, '-csp', $providerName, '-importpfx', $storeName, $temporary)
                    } else {
                        $run = Invoke-Native $certutil @('-f', '-addstore', $storeName, $temporary)
                    }
                    if ($run.ExitCode -ne 0) {
                        $output = [string]$run.Output
                        if ($password) { $output = $output.Replace($password, '***') }
                        throw (New-OpError 'CommandFailed' ("certutil could not import the certificate with provider '{0}' (exit code {1}): {2}" -f $providerName, $run.ExitCode, $output))
                    }
                } finally {
                    Remove-Item -LiteralPath $temporary -Force -ErrorAction SilentlyContinue
                }
                if ($a.AddChainToCaStore -and $contentType -eq [System.Security.Cryptography.X509Certificates.X509ContentType]::Pfx) {
                    # Only to find the chain certificates; certutil already imported the key.
                    $collection.Import($bytes, $password, [System.Security.Cryptography.X509Certificates.X509KeyStorageFlags]::DefaultKeySet)
                }
            } else {
                $flags = [System.Security.Cryptography.X509Certificates.X509KeyStorageFlags]'MachineKeySet, PersistKeySet'
                try {
                    $collection.Import($bytes, $password, $flags)
                } catch {
                    throw (New-OpError 'PfxInvalid' ('Windows could not open the PFX: ' + $_.Exception.Message))
                }
                $leaf = $null
                foreach ($candidate in $collection) { if ($candidate.Thumbprint -eq $thumbprint) { $leaf = $candidate } }
                if ($null -eq $leaf) { throw (New-OpError 'PfxInvalid' ("the PFX does not contain the certificate {0}" -f $thumbprint)) }
                $store.Add($leaf)
            }
            if ($a.AddChainToCaStore) {
                $caStore = Open-LocalMachineStore 'CA' 'ReadWrite'
                try {
                    foreach ($candidate in $collection) {
                        # Intermediates only: a self-signed root is a trust decision, not ours to make.
                        if ($candidate.Thumbprint -ne $thumbprint -and $candidate.Subject -ne $candidate.Issuer) {
                            if ($null -eq (Find-InStore $caStore $candidate.Thumbprint)) {
                                $caStore.Add($candidate)
                                $chainAdded += $candidate.Thumbprint
                            }
                        }
                    }
                } finally {
                    $caStore.Close()
                }
            }
        }
    } finally {
        $store.Close()
    }

    $check = Open-LocalMachineStore $storeName 'ReadOnly'
    try {
        $installed = Find-InStore $check $thumbprint
    } finally {
        $check.Close()
    }
    if ($null -eq $installed) {
        throw (New-OpError 'VerificationFailed' ("certificate {0} is not in LocalMachine\{1} after the import" -f $thumbprint, $storeName))
    }

    $binding = $null
    if ($a.IisBinding) {
        $bound = Set-IisBinding ([string]$a.IisBinding.SiteName) ([string]$a.IisBinding.BindingInformation) $thumbprint $storeName ([int]$a.IisBinding.SslFlags)
        $binding = $bound.Binding
    }
    $sqlBindings = @()
    if ($a.SqlBinding) {
        foreach ($instanceName in @($a.SqlBinding.InstanceNames)) {
            $sqlBindings += Set-SqlCertificate ([string]$instanceName) $thumbprint $installed ([bool]$a.SqlBinding.RestartService)
        }
    }

    $replaced = $null
    $replacedThumbprint = ([string]$a.ReplacedThumbprint).ToUpperInvariant()
    if ($replacedThumbprint -and $replacedThumbprint -ne $thumbprint) {
        $boundSites = @(Get-IisBindingsUsing $replacedThumbprint)
        if (Test-Path -LiteralPath $SqlInstancesKey) {
            $instanceKey = Get-Item -LiteralPath $SqlInstancesKey
            foreach ($name in $instanceKey.GetValueNames()) {
                $netLibKey = Get-SqlNetLibKey ([string]$instanceKey.GetValue($name))
                if ((Test-Path -LiteralPath $netLibKey) -and ([string](Get-Item -LiteralPath $netLibKey).GetValue('Certificate')) -eq $replacedThumbprint) {
                    $boundSites += ('SQL Server instance {0}' -f $name)
                }
            }
        }
        $removed = $false
        if ($boundSites.Count -eq 0) {
            $cleanup = Open-LocalMachineStore $storeName 'ReadWrite'
            try {
                $old = Find-InStore $cleanup $replacedThumbprint
                if ($null -ne $old) {
                    $cleanup.Remove($old)
                    $removed = $true
                }
            } finally {
                $cleanup.Close()
            }
        }
        $replaced = [pscustomobject]@{
            Thumbprint = $replacedThumbprint
            Removed = $removed
            BoundSites = $boundSites
        }
    }

    $result = [pscustomobject]@{
        Thumbprint = $thumbprint
        Status = $status
        HasPrivateKey = [bool]$installed.HasPrivateKey
        ProviderName = (Get-KeyProviderName $installed)
        ChainAdded = $chainAdded
        Binding = $binding
        SqlBindings = $sqlBindings
        Replaced = $replaced
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
