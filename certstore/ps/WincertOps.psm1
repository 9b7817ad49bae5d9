# WincertOps: the host-side PowerShell of wincert-agent, one module. Windows PowerShell 5.1 compatible.
#
# Each remote operation is one exported function (Invoke-Wincert*) taking [string]$ArgsJson and returning
# exactly one JSON string; a failure is a terminating error whose exception carries the category in
# Data['WincertCategory'] (New-OpError). certstore/ps/assemble.py builds, at build time, the one-op
# scripts that travel over WinRS from the regions below; the PSRP path loads this whole module.
#
# Layout (read by assemble.py, keep it): every function sits alone in a region
#   #region helper NAME   - plain code, runs anywhere
#   #region seam NAME     - the only places that touch Windows-only APIs; Pester mocks these
#   #region op OP-NAME    - one operation; OP-NAME is the `# wincert-op:` name the agent sends
# followed by '#endregion'. A script gets the op function plus every helper/seam it references,
# directly or through other helpers (found by scanning for function names). Full-line comments are
# dropped from assembled scripts, so put explanations on their own lines.
# Contracts: certstore/scripts/NAME.contract.json. Seam list and op table: certstore/ps/README.md.

#region helper New-OpError
# A terminating error that carries the category the agent maps to a job failure reason.
function New-OpError([string]$Category, [string]$Message) {
    $exception = New-Object System.InvalidOperationException $Message
    $exception.Data['WincertCategory'] = $Category
    return $exception
}
#endregion

#region helper ConvertTo-AsciiJson
# Non-ASCII characters as \uXXXX escapes: the JSON then survives any console code page (Windows
# PowerShell writes redirected stdout in the OEM code page, which would mangle unicode friendly names).
function ConvertTo-AsciiJson([string]$Json) {
    return [regex]::Replace($Json, '[^\x00-\x7E]', { param($match) '\u{0:x4}' -f [int][char]$match.Value })
}
#endregion

#region helper ConvertFrom-OpArguments
# The argument object of an op ($a.Name, $a.Parent.Child). Also drops PS 5.1's extra Array type data, so
# arrays in the result serialise as plain JSON arrays.
function ConvertFrom-OpArguments([string]$ArgsJson) {
    try { Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue } catch { }
    if (-not $ArgsJson) { $ArgsJson = '{}' }
    return ($ArgsJson | ConvertFrom-Json)
}
#endregion

#region helper ConvertTo-OpJson
# The one JSON document an op writes.
function ConvertTo-OpJson($Result) {
    return (ConvertTo-AsciiJson ($Result | ConvertTo-Json -Compress -Depth 6))
}
#endregion

#region helper ConvertTo-OpErrorJson
# The failure document: {"error":{"message":"...","category":"..."}} from a caught error record.
function ConvertTo-OpErrorJson($ErrorRecord) {
    $category = [string]$ErrorRecord.Exception.Data['WincertCategory']
    if (-not $category) { $category = [string]$ErrorRecord.CategoryInfo.Category }
    $failure = @{ error = @{ message = [string]$ErrorRecord.Exception.Message; category = $category } }
    return (ConvertTo-AsciiJson ($failure | ConvertTo-Json -Compress -Depth 6))
}
#endregion

#region helper Get-DotNetType
# A .NET type by name, or a clear error on hosts whose .NET Framework predates it (RSACng, ECDsaCng and
# the certificate extension classes need 4.6+), instead of PowerShell's "Unable to find type".
function Get-DotNetType([string]$TypeName) {
    $type = $TypeName -as [type]
    if ($null -eq $type) {
        throw (New-OpError 'CommandFailed' ("this host's .NET Framework lacks {0} (needs 4.6+)" -f $TypeName))
    }
    return $type
}
#endregion

#region helper ConvertTo-HexString
function ConvertTo-HexString($Bytes) {
    if ($null -eq $Bytes -or $Bytes.Length -eq 0) { return '' }
    return ([System.BitConverter]::ToString($Bytes)).Replace('-', '')
}
#endregion

#region helper ConvertTo-ByteArray
function ConvertTo-ByteArray([string]$Hex) {
    $bytes = New-Object byte[] ($Hex.Length / 2)
    for ($i = 0; $i -lt $bytes.Length; $i++) {
        $bytes[$i] = [System.Convert]::ToByte($Hex.Substring(2 * $i, 2), 16)
    }
    return ,$bytes
}
#endregion

#region helper Get-System32Path
# %windir%\System32\NAME (certutil.exe, certreq.exe).
function Get-System32Path([string]$Name) {
    return [System.IO.Path]::Combine([string]$env:windir, 'System32', $Name)
}
#endregion

#region seam Test-CertStorePath
# Windows: whether Cert:\LocalMachine\<StoreName> exists.
function Test-CertStorePath([string]$StoreName) {
    return [bool](Test-Path -LiteralPath ('Cert:\LocalMachine\' + $StoreName))
}
#endregion

#region seam Open-LocalMachineStore
# Windows: the opened X509Store LocalMachine\<StoreName> ($Mode 'ReadOnly' or 'ReadWrite'). Callers use
# .Certificates, .Add(), .Remove() and .Close().
function Open-LocalMachineStore([string]$StoreName, [string]$Mode) {
    $store = New-Object System.Security.Cryptography.X509Certificates.X509Store($StoreName, [System.Security.Cryptography.X509Certificates.StoreLocation]::LocalMachine)
    $store.Open([System.Security.Cryptography.X509Certificates.OpenFlags]($Mode + ', OpenExistingOnly'))
    return $store
}
#endregion

#region helper Open-CertStore
# An existing LocalMachine store, opened; InvalidArgument for an empty name, StoreNotFound for a missing one.
function Open-CertStore([string]$StoreName, [string]$Mode) {
    if (-not $StoreName) { throw (New-OpError 'InvalidArgument' 'StoreName is empty') }
    if (-not (Test-CertStorePath $StoreName)) {
        throw (New-OpError 'StoreNotFound' ("the certificate store LocalMachine\{0} does not exist" -f $StoreName))
    }
    return (Open-LocalMachineStore $StoreName $Mode)
}
#endregion

#region seam Get-LocalMachineCertificates
# Windows: every certificate of every LocalMachine store (X509Certificate2 objects).
function Get-LocalMachineCertificates {
    return @(Get-ChildItem -Path 'Cert:\LocalMachine' -Recurse -ErrorAction SilentlyContinue |
        Where-Object { $_ -is [System.Security.Cryptography.X509Certificates.X509Certificate2] })
}
#endregion

#region helper Find-InStore
function Find-InStore($Store, [string]$Thumbprint) {
    $found = $Store.Certificates.Find([System.Security.Cryptography.X509Certificates.X509FindType]::FindByThumbprint, $Thumbprint, $false)
    if ($found.Count -gt 0) { return $found[0] }
    return $null
}
#endregion

#region seam Get-LegacyCspKeyInfo
# Windows: the CryptoAPI (legacy CSP) view of the certificate's key, or $null when the key is not a CAPI
# key (CNG and ECDSA keys make .PrivateKey throw) or cannot be read.
# @{ Kind = 'CAPI'; ProviderName; UniqueName (container file name); Key (the CSP object) }
function Get-LegacyCspKeyInfo($Certificate) {
    try {
        $key = $Certificate.PrivateKey
        if ($null -eq $key -or $null -eq $key.CspKeyContainerInfo) { return $null }
        return @{
            Kind = 'CAPI'
            ProviderName = [string]$key.CspKeyContainerInfo.ProviderName
            UniqueName = [string]$key.CspKeyContainerInfo.UniqueKeyContainerName
            Key = $key
        }
    } catch {
        return $null
    }
}
#endregion

#region seam Get-CngKeyInfo
# Windows: the CNG view of the certificate's RSA or ECDSA key, or $null when it is not a CNG key.
# @{ Kind = 'CNG'; ProviderName (the KSP); UniqueName; Key (RSACng/ECDsaCng) }. .NET 4.6+ types are
# resolved through Get-DotNetType, so an older host fails with a clear message.
function Get-CngKeyInfo($Certificate) {
    $rsaExtensions = Get-DotNetType 'System.Security.Cryptography.X509Certificates.RSACertificateExtensions'
    $ecdsaExtensions = Get-DotNetType 'System.Security.Cryptography.X509Certificates.ECDsaCertificateExtensions'
    $rsaCng = Get-DotNetType 'System.Security.Cryptography.RSACng'
    $ecdsaCng = Get-DotNetType 'System.Security.Cryptography.ECDsaCng'
    try {
        $key = $rsaExtensions::GetRSAPrivateKey($Certificate)
        if ($null -eq $key) { $key = $ecdsaExtensions::GetECDsaPrivateKey($Certificate) }
        if ($key -is $rsaCng -or $key -is $ecdsaCng) {
            return @{
                Kind = 'CNG'
                ProviderName = [string]$key.Key.Provider.Provider
                UniqueName = [string]$key.Key.UniqueName
                Key = $key
            }
        }
    } catch {
        # No read access to the key.
        return $null
    }
    return $null
}
#endregion

#region helper Get-CertificateKeyInfo
# The certificate's private key as the extension reads it: the legacy CSP information first (so a CAPI key
# is reported with its CSP and a re-push keeps it there), then CNG. $null without a (readable) key.
function Get-CertificateKeyInfo($Certificate) {
    if (-not $Certificate.HasPrivateKey) { return $null }
    $info = Get-LegacyCspKeyInfo $Certificate
    if ($null -ne $info -and $info.ProviderName) { return $info }
    return (Get-CngKeyInfo $Certificate)
}
#endregion

#region helper Get-KeyProviderName
# The CryptoAPI CSP or CNG key storage provider that holds the certificate's key ('' without a key).
function Get-KeyProviderName($Certificate) {
    $info = Get-CertificateKeyInfo $Certificate
    if ($null -eq $info) { return '' }
    return [string]$info.ProviderName
}
#endregion

#region seam Get-KeyFilePath
# Windows: the file that holds a machine key container (CNG: Crypto\Keys, CAPI: Crypto\RSA\MachineKeys,
# system keys), or '' when there is none (HSM or another provider that keeps no file).
function Get-KeyFilePath([string]$UniqueName) {
    if (-not $UniqueName) { return '' }
    foreach ($folder in @('Microsoft\Crypto\Keys', 'Microsoft\Crypto\RSA\MachineKeys', 'Microsoft\Crypto\SystemKeys')) {
        $candidate = [System.IO.Path]::Combine([string]$env:ProgramData, $folder, $UniqueName)
        if (Test-Path -LiteralPath $candidate) { return $candidate }
    }
    return ''
}
#endregion

#region seam Remove-CertificateKey
# Windows: deletes the key container a key info (Get-CertificateKeyInfo) describes.
function Remove-CertificateKey($KeyInfo) {
    if ($KeyInfo.Kind -eq 'CNG') {
        $KeyInfo.Key.Key.Delete()
    } else {
        $KeyInfo.Key.PersistKeyInCsp = $false
        $KeyInfo.Key.Clear()
    }
}
#endregion

#region helper ConvertTo-NativeArgument
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
#endregion

#region seam Invoke-Native
# Runs a tool with exact argument quoting and returns @{ ExitCode; Output (stdout then stderr, trimmed) }.
# stdout and stderr are read asynchronously (a full stderr pipe cannot block the child) and stdin is closed
# at once (a prompt, e.g. for a smart-card PIN, reads end-of-file). A child still running after
# $TimeoutSeconds is killed: New-OpError 'Timeout'.
function Invoke-Native([string]$FilePath, [string[]]$Arguments, [int]$TimeoutSeconds = 120) {
    $quoted = @(foreach ($argument in $Arguments) { ConvertTo-NativeArgument $argument })
    $startInfo = New-Object System.Diagnostics.ProcessStartInfo
    $startInfo.FileName = $FilePath
    $startInfo.Arguments = $quoted -join ' '
    $startInfo.UseShellExecute = $false
    $startInfo.RedirectStandardInput = $true
    $startInfo.RedirectStandardOutput = $true
    $startInfo.RedirectStandardError = $true
    $startInfo.CreateNoWindow = $true
    try {
        $process = [System.Diagnostics.Process]::Start($startInfo)
    } catch {
        throw (New-OpError 'CommandFailed' ("cannot start {0}: {1}" -f $FilePath, $_.Exception.Message))
    }
    try {
        $process.StandardInput.Close()
        $stdoutTask = $process.StandardOutput.ReadToEndAsync()
        $stderrTask = $process.StandardError.ReadToEndAsync()
        if (-not $process.WaitForExit($TimeoutSeconds * 1000)) {
            try { $process.Kill() } catch { }
            [void]$process.WaitForExit(5000)
            throw (New-OpError 'Timeout' ("{0} did not finish within {1} seconds and was stopped" -f [System.IO.Path]::GetFileName($FilePath), $TimeoutSeconds))
        }
        # The pipes close when the child (and any grandchild holding them) exits; bounded anyway.
        [void][System.Threading.Tasks.Task]::WaitAll(@($stdoutTask, $stderrTask), 10000)
        $stdout = ''
        $stderr = ''
        if ($stdoutTask.IsCompleted) { $stdout = [string]$stdoutTask.Result }
        if ($stderrTask.IsCompleted) { $stderr = [string]$stderrTask.Result }
        return @{ ExitCode = $process.ExitCode; Output = ($stdout + $stderr).Trim() }
    } finally {
        $process.Dispose()
    }
}
#endregion

#region seam Test-RegistryKey
# Windows: whether the registry key (a PowerShell path such as 'HKLM:\SOFTWARE\...') exists.
function Test-RegistryKey([string]$Path) {
    return [bool](Test-Path -LiteralPath $Path)
}
#endregion

#region seam Get-RegistryValue
# Windows: one value of a registry key, or $null when the key or the value is missing.
function Get-RegistryValue([string]$Path, [string]$Name) {
    if (-not (Test-Path -LiteralPath $Path)) { return $null }
    return (Get-Item -LiteralPath $Path).GetValue($Name)
}
#endregion

#region seam Get-RegistryValueNames
# Windows: the value names of a registry key (none when the key is missing), one per pipeline item.
function Get-RegistryValueNames([string]$Path) {
    if (-not (Test-Path -LiteralPath $Path)) { return }
    return (Get-Item -LiteralPath $Path).GetValueNames()
}
#endregion

#region seam Get-RegistrySubKeyNames
# Windows: the subkey names of a registry key (none when the key is missing), one per pipeline item.
function Get-RegistrySubKeyNames([string]$Path) {
    if (-not (Test-Path -LiteralPath $Path)) { return }
    return (Get-Item -LiteralPath $Path).GetSubKeyNames()
}
#endregion

#region seam Set-RegistryValue
# Windows: writes one string value of an existing registry key.
function Set-RegistryValue([string]$Path, [string]$Name, [string]$Value) {
    Set-ItemProperty -LiteralPath $Path -Name $Name -Value $Value
}
#endregion

#region helper Get-CryptoProviderNames
# Every installed provider, from the registry rather than certutil's localised text: CryptoAPI CSPs are the
# subkeys of HKLM\SOFTWARE\Microsoft\Cryptography\Defaults\Provider, CNG providers (key storage providers
# included) the subkeys of HKLM\SYSTEM\CurrentControlSet\Control\Cryptography\Providers.
function Get-CryptoProviderNames {
    Get-RegistrySubKeyNames 'HKLM:\SOFTWARE\Microsoft\Cryptography\Defaults\Provider'
    Get-RegistrySubKeyNames 'HKLM:\SYSTEM\CurrentControlSet\Control\Cryptography\Providers'
}
#endregion

#region helper Assert-CryptoProvider
function Assert-CryptoProvider([string]$ProviderName) {
    $names = @(Get-CryptoProviderNames)
    if ($names -notcontains $ProviderName) {
        throw (New-OpError 'ProviderNotFound' ("the crypto provider '{0}' is not installed on this host (neither a CryptoAPI CSP nor a CNG provider of that name is registered)" -f $ProviderName))
    }
}
#endregion

#region seam Test-IisInstalled
# Windows: whether IIS's management assembly (Microsoft.Web.Administration.dll) is present.
function Test-IisInstalled {
    return [bool](Test-Path -LiteralPath ([System.IO.Path]::Combine([string]$env:windir, 'System32', 'inetsrv', 'Microsoft.Web.Administration.dll')))
}
#endregion

#region seam Get-IisServerManager
# Windows: a fresh Microsoft.Web.Administration.ServerManager (.Sites[name].Bindings, .CommitChanges()).
# IisNotInstalled when Test-IisInstalled says no.
function Get-IisServerManager {
    if (-not (Test-IisInstalled)) {
        throw (New-OpError 'IisNotInstalled' 'IIS is not installed on this host (Microsoft.Web.Administration.dll is missing)')
    }
    Add-Type -Path ([System.IO.Path]::Combine([string]$env:windir, 'System32', 'inetsrv', 'Microsoft.Web.Administration.dll'))
    return New-Object Microsoft.Web.Administration.ServerManager
}
#endregion

#region helper ConvertTo-BindingResult
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
#endregion

#region helper Assert-IisBindingArguments
# Refuses, before IIS is touched, what IIS would only reject at commit: an SNI binding (sslFlags bit 1)
# needs a host name ('IP:Port:Host', the host after the last colon; IPv6 addresses are bracketed).
function Assert-IisBindingArguments([string]$SiteName, [string]$BindingInformation, [int]$SslFlags) {
    $hostName = ''
    $lastColon = $BindingInformation.LastIndexOf(':')
    if ($lastColon -ge 0) { $hostName = $BindingInformation.Substring($lastColon + 1) }
    if (($SslFlags -band 1) -and -not $hostName.Trim()) {
        throw (New-OpError 'InvalidArgument' ("the https binding '{0}' on site '{1}' requires SNI (SslFlags {2} includes flag 1) but has no host name; an SNI binding needs IP:Port:HostName" -f $BindingInformation, $SiteName, $SslFlags))
    }
}
#endregion

#region helper Set-IisBinding
# Replaces the site's https binding with exactly this IP:Port:Host (other sites are left alone) and
# applies every sslFlags bit (values above 3 included).
function Set-IisBinding([string]$SiteName, [string]$BindingInformation, [string]$Thumbprint, [string]$StoreName, [int]$SslFlags) {
    Assert-IisBindingArguments $SiteName $BindingInformation $SslFlags
    $manager = Get-IisServerManager
    $site = $manager.Sites[$SiteName]
    if ($null -eq $site) { throw (New-OpError 'SiteNotFound' ("the IIS site '{0}' does not exist" -f $SiteName)) }
    $replacedExisting = $false
    foreach ($existing in @($site.Bindings)) {
        if ($existing.Protocol -eq 'https' -and $existing.BindingInformation -eq $BindingInformation) {
            [void]$site.Bindings.Remove($existing)
            $replacedExisting = $true
        }
    }
    $binding = $site.Bindings.Add($BindingInformation, (ConvertTo-ByteArray $Thumbprint), $StoreName)
    $binding.SetAttributeValue('sslFlags', $SslFlags)
    try {
        $manager.CommitChanges()
    } catch {
        throw (New-OpError 'CommandFailed' ("IIS refused the https binding {0} on site '{1}' (sslFlags {2}): {3}" -f $BindingInformation, $SiteName, $SslFlags, $_.Exception.Message))
    }

    # Read back what IIS now holds, from a fresh configuration.
    $check = Get-IisServerManager
    foreach ($candidate in $check.Sites[$SiteName].Bindings) {
        if ($candidate.Protocol -eq 'https' -and $candidate.BindingInformation -eq $BindingInformation) {
            return @{ Binding = (ConvertTo-BindingResult $check.Sites[$SiteName] $candidate); ReplacedExisting = $replacedExisting }
        }
    }
    throw (New-OpError 'VerificationFailed' ("the https binding {0} on site '{1}' is missing after it was written" -f $BindingInformation, $SiteName))
}
#endregion

#region helper Get-IisBindingsUsing
# "Site (IP:Port:Host)" for every https binding that uses the thumbprint, one per pipeline item (callers
# collect with @(...)); none when IIS is absent.
function Get-IisBindingsUsing([string]$Thumbprint) {
    if (-not (Test-IisInstalled)) { return }
    $manager = Get-IisServerManager
    foreach ($site in $manager.Sites) {
        foreach ($binding in $site.Bindings) {
            if ($binding.Protocol -eq 'https' -and (ConvertTo-HexString $binding.CertificateHash) -eq $Thumbprint) {
                '{0} ({1})' -f $site.Name, $binding.BindingInformation
            }
        }
    }
}
#endregion

#region helper Get-SqlInstancesKey
function Get-SqlInstancesKey {
    return 'HKLM:\SOFTWARE\Microsoft\Microsoft SQL Server\Instance Names\SQL'
}
#endregion

#region helper Get-SqlInstanceId
function Get-SqlInstanceId([string]$InstanceName) {
    $instancesKey = Get-SqlInstancesKey
    if (-not (Test-RegistryKey $instancesKey)) {
        throw (New-OpError 'InstanceNotFound' 'SQL Server is not installed on this host (no Instance Names\SQL registry key)')
    }
    $id = Get-RegistryValue $instancesKey $InstanceName
    if (-not $id) { throw (New-OpError 'InstanceNotFound' ("the SQL Server instance '{0}' does not exist on this host" -f $InstanceName)) }
    return [string]$id
}
#endregion

#region helper Get-SqlNetLibKey
function Get-SqlNetLibKey([string]$InstanceId) {
    return 'HKLM:\SOFTWARE\Microsoft\Microsoft SQL Server\' + $InstanceId + '\MSSQLServer\SuperSocketNetLib'
}
#endregion

#region helper Get-SqlServiceName
function Get-SqlServiceName([string]$InstanceName) {
    if ($InstanceName -eq 'MSSQLSERVER') { return 'MSSQLSERVER' }
    return 'MSSQL$' + $InstanceName
}
#endregion

#region helper Get-SqlBoundInstances
# 'SQL Server instance NAME' for every instance whose SuperSocketNetLib\Certificate is the thumbprint, one
# per pipeline item (callers collect with @(...)).
function Get-SqlBoundInstances([string]$Thumbprint) {
    $instancesKey = Get-SqlInstancesKey
    if (-not (Test-RegistryKey $instancesKey)) { return }
    foreach ($name in @(Get-RegistryValueNames $instancesKey)) {
        $netLibKey = Get-SqlNetLibKey ([string](Get-RegistryValue $instancesKey $name))
        if ((Test-RegistryKey $netLibKey) -and ([string](Get-RegistryValue $netLibKey 'Certificate')) -eq $Thumbprint) {
            'SQL Server instance {0}' -f $name
        }
    }
}
#endregion

#region seam Get-ServiceStartName
# Windows: the account a service runs as (Win32_Service.StartName), '' when the service does not exist.
function Get-ServiceStartName([string]$ServiceName) {
    $service = Get-CimInstance -ClassName Win32_Service -Filter ("Name='{0}'" -f $ServiceName.Replace("'", "''"))
    if ($null -eq $service) { return '' }
    return [string]$service.StartName
}
#endregion

#region seam Get-ServiceController
# Windows: the System.ServiceProcess.ServiceController of a service (.Status, .Stop(), .Start(),
# .WaitForStatus(status, timespan), .Refresh(), .DependentServices).
function Get-ServiceController([string]$ServiceName) {
    return (Get-Service -Name $ServiceName)
}
#endregion

#region helper Get-DependentServicesDeepestFirst
# Every service that depends on this one, recursively and each once, deepest first (post-order): the order
# to stop them in; the reverse is the order to start them in.
function Get-DependentServicesDeepestFirst($Service, $Seen) {
    if ($null -eq $Seen) { $Seen = New-Object 'System.Collections.Generic.HashSet[string]' ([System.StringComparer]::OrdinalIgnoreCase) }
    foreach ($dependent in @($Service.DependentServices)) {
        if ($null -ne $dependent -and $Seen.Add([string]$dependent.ServiceName)) {
            Get-DependentServicesDeepestFirst $dependent $Seen
            $dependent
        }
    }
}
#endregion

#region helper Test-ServiceTimeoutError
# Whether an error is a service wait that ran out (System.ServiceProcess.TimeoutException is matched by
# name: the type is Windows-only).
function Test-ServiceTimeoutError($ErrorRecord) {
    for ($exception = $ErrorRecord.Exception; $null -ne $exception; $exception = $exception.InnerException) {
        if ($exception.GetType().FullName -in @('System.ServiceProcess.TimeoutException', 'System.TimeoutException')) { return $true }
    }
    return $false
}
#endregion

#region helper Restart-SqlService
# Stop then start with bounded waits, so a hung service fails the job instead of hanging it. The dependents
# that were running (SQL Server Agent, ...) are stopped first and started again after, in reverse order:
# ServiceController.Stop() would stop them too, but Start() brings none of them back. Dependents that were
# stopped stay stopped. A dependent that does not come back fails the op (CommandFailed, or Timeout when
# its wait ran out) naming it, after every other dependent was tried: SQL Server itself is running then.
function Restart-SqlService([string]$ServiceName, [int]$TimeoutSeconds) {
    $service = Get-ServiceController $ServiceName
    $timeout = [TimeSpan]::FromSeconds($TimeoutSeconds)
    $running = @(Get-DependentServicesDeepestFirst $service $null | Where-Object { [string]$_.Status -eq 'Running' })
    $current = $ServiceName
    try {
        foreach ($dependent in $running) {
            $current = [string]$dependent.ServiceName
            $dependent.Stop()
            $dependent.WaitForStatus('Stopped', $timeout)
        }
        $current = $ServiceName
        if ([string]$service.Status -ne 'Stopped') {
            $service.Stop()
            $service.WaitForStatus('Stopped', $timeout)
        }
        $service.Start()
        $service.WaitForStatus('Running', $timeout)
    } catch {
        if (Test-ServiceTimeoutError $_) {
            if ($current -eq $ServiceName) {
                throw (New-OpError 'Timeout' ("the service {0} did not restart within {1} seconds" -f $ServiceName, $TimeoutSeconds))
            }
            throw (New-OpError 'Timeout' ("the service {0} (a dependent of {1}) did not stop within {2} seconds; {1} was not restarted" -f $current, $ServiceName, $TimeoutSeconds))
        }
        throw (New-OpError 'CommandFailed' ("the service {0} could not be restarted (while handling {1}): {2}" -f $ServiceName, $current, $_.Exception.Message))
    }
    $failed = New-Object 'System.Collections.Generic.List[string]'
    $timedOut = $false
    for ($index = $running.Count - 1; $index -ge 0; $index--) {
        $dependent = $running[$index]
        try {
            $dependent.Start()
            $dependent.WaitForStatus('Running', $timeout)
        } catch {
            if (Test-ServiceTimeoutError $_) {
                $timedOut = $true
                $failed.Add(("{0} (not running within {1} seconds)" -f $dependent.ServiceName, $TimeoutSeconds))
            } else {
                $failed.Add(("{0} ({1})" -f $dependent.ServiceName, $_.Exception.Message))
            }
        }
    }
    if ($failed.Count -gt 0) {
        $category = 'CommandFailed'
        if ($timedOut -and $failed.Count -eq 1) { $category = 'Timeout' }
        throw (New-OpError $category ("the service {0} restarted, but the dependent services that were running before could not be started again: {1}; start them by hand" -f $ServiceName, ($failed -join '; ')))
    }
    $service.Refresh()
    return [string]$service.Status
}
#endregion

#region seam Grant-KeyFileRead
# Windows: adds an Allow Read rule for the account to the key file's ACL.
function Grant-KeyFileRead([string]$KeyFile, [string]$Account) {
    $acl = Get-Acl -LiteralPath $KeyFile
    $rule = New-Object System.Security.AccessControl.FileSystemAccessRule($Account, 'Read', 'Allow')
    $acl.AddAccessRule($rule)
    Set-Acl -LiteralPath $KeyFile -AclObject $acl
}
#endregion

#region seam Test-KeyFileReadAccess
# Windows: whether the key file's ACL (explicit and inherited rules) allows the account Read, read back
# after a grant to verify it took effect.
function Test-KeyFileReadAccess([string]$KeyFile, [string]$Account) {
    $sid = (New-Object System.Security.Principal.NTAccount($Account)).Translate([System.Security.Principal.SecurityIdentifier])
    $read = [System.Security.AccessControl.FileSystemRights]::Read
    $acl = Get-Acl -LiteralPath $KeyFile
    foreach ($rule in $acl.GetAccessRules($true, $true, [System.Security.Principal.SecurityIdentifier])) {
        if ($rule.IdentityReference -eq $sid -and [string]$rule.AccessControlType -eq 'Allow' -and ($rule.FileSystemRights -band $read) -eq $read) { return $true }
    }
    return $false
}
#endregion

#region seam Get-ComputerName
# Windows: this computer's NetBIOS name (what '.\user' means in a service's StartName).
function Get-ComputerName {
    return [string]$env:COMPUTERNAME
}
#endregion

#region helper ConvertTo-NtAccountName
# A service's StartName as an ACL takes it: '.\user' -> 'COMPUTER\user'; LocalSystem, NetworkService and
# LocalService (bare or NT AUTHORITY\ spellings) -> 'NT AUTHORITY\SYSTEM' / 'NETWORK SERVICE' / 'LOCAL
# SERVICE'; 'NT Service\NAME', 'DOMAIN\user' and 'user@domain' unchanged.
function ConvertTo-NtAccountName([string]$Account) {
    $name = $Account.Trim()
    $wellKnown = @{
        'LocalSystem' = 'NT AUTHORITY\SYSTEM'; 'SYSTEM' = 'NT AUTHORITY\SYSTEM'; 'NT AUTHORITY\SYSTEM' = 'NT AUTHORITY\SYSTEM'
        'NT AUTHORITY\LocalSystem' = 'NT AUTHORITY\SYSTEM'
        'NetworkService' = 'NT AUTHORITY\NETWORK SERVICE'; 'NETWORK SERVICE' = 'NT AUTHORITY\NETWORK SERVICE'
        'NT AUTHORITY\NetworkService' = 'NT AUTHORITY\NETWORK SERVICE'; 'NT AUTHORITY\NETWORK SERVICE' = 'NT AUTHORITY\NETWORK SERVICE'
        'LocalService' = 'NT AUTHORITY\LOCAL SERVICE'; 'LOCAL SERVICE' = 'NT AUTHORITY\LOCAL SERVICE'
        'NT AUTHORITY\LocalService' = 'NT AUTHORITY\LOCAL SERVICE'; 'NT AUTHORITY\LOCAL SERVICE' = 'NT AUTHORITY\LOCAL SERVICE'
    }
    if ($name.StartsWith('.\')) {
        $bare = $name.Substring(2)
        if ($wellKnown.ContainsKey($bare)) { return $wellKnown[$bare] }
        return ((Get-ComputerName) + '\' + $bare)
    }
    if ($wellKnown.ContainsKey($name)) { return $wellKnown[$name] }
    return $name
}
#endregion

#region helper Grant-SqlKeyAccess
# Gives the SQL Server service account read access to the certificate's key file (CNG or CAPI, RSA or ECDSA)
# and returns the file. The grant is read back from the ACL; when writing the ACL fails or does not show, icacls
# grants it and the ACL is read back again. A key without a file (an HSM or another key storage provider)
# fails: SQL Server could not use it and nothing here can grant access to it.
function Grant-SqlKeyAccess($Certificate, [string]$ServiceName) {
    $thumbprint = [string]$Certificate.Thumbprint
    $keyInfo = Get-CertificateKeyInfo $Certificate
    if ($null -eq $keyInfo) {
        throw (New-OpError 'CommandFailed' ("the private key of certificate {0} cannot be read (no CryptoAPI or CNG key information), so {1}'s service account cannot be given access to it" -f $thumbprint, $ServiceName))
    }
    $keyFile = Get-KeyFilePath ([string]$keyInfo.UniqueName)
    if (-not $keyFile) {
        throw (New-OpError 'CommandFailed' ("the private key of certificate {0} is held by the provider '{1}' (container '{2}'), which keeps no key file on this host (an HSM or another key storage provider); {3}'s service account cannot be granted read access to it here: grant it with that provider's tools, or use a key in Microsoft Software Key Storage Provider" -f $thumbprint, $keyInfo.ProviderName, $keyInfo.UniqueName, $ServiceName))
    }
    $account = ConvertTo-NtAccountName (Get-ServiceStartName $ServiceName)
    # SYSTEM reads every machine key already; an unknown account (service missing) has nothing to grant.
    if (-not $account -or $account -eq 'NT AUTHORITY\SYSTEM') { return $keyFile }
    if (Test-KeyFileReadAccess $keyFile $account) { return $keyFile }
    $aclError = 'the ACL was written but does not show the grant'
    try {
        Grant-KeyFileRead $keyFile $account
        if (Test-KeyFileReadAccess $keyFile $account) { return $keyFile }
    } catch {
        $aclError = 'writing the ACL failed: ' + $_.Exception.Message
    }
    $run = Invoke-Native (Get-System32Path 'icacls.exe') @($keyFile, '/grant', ('{0}:R' -f $account))
    if ($run.ExitCode -ne 0) {
        throw (New-OpError 'CommandFailed' ("granting {0} read on the key file {1} failed ({2}); icacls exited {3}: {4}" -f $account, $keyFile, $aclError, $run.ExitCode, ([string]$run.Output).Trim()))
    }
    if (-not (Test-KeyFileReadAccess $keyFile $account)) {
        throw (New-OpError 'VerificationFailed' ("{0} still has no read access to the key file {1} after the ACL write and icacls ({2}); check the file's permissions with icacls" -f $account, $keyFile, $aclError))
    }
    return $keyFile
}
#endregion

#region helper Set-SqlCertificate
# Grants the service account read on the key file, then writes the thumbprint for one instance and verifies it.
function Set-SqlCertificate([string]$InstanceName, [string]$Thumbprint, $Certificate, [bool]$Restart) {
    $instanceId = Get-SqlInstanceId $InstanceName
    $netLibKey = Get-SqlNetLibKey $instanceId
    if (-not (Test-RegistryKey $netLibKey)) {
        throw (New-OpError 'InstanceNotFound' ("the SQL Server instance '{0}' has no SuperSocketNetLib registry key" -f $InstanceName))
    }
    # Key access first: a key SQL Server cannot read (no key file, grant refused) fails before the instance
    # is pointed at it.
    $serviceName = Get-SqlServiceName $InstanceName
    $keyFile = Grant-SqlKeyAccess $Certificate $serviceName
    Set-RegistryValue $netLibKey 'Certificate' $Thumbprint.ToLowerInvariant()
    $written = [string](Get-RegistryValue $netLibKey 'Certificate')
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
#endregion

#region seam Get-HostFqdn
# Windows: the host's DNS name (the computer name when DNS does not know it).
function Get-HostFqdn {
    $hostname = [string]$env:COMPUTERNAME
    try { $hostname = [string][System.Net.Dns]::GetHostEntry($hostname).HostName } catch { $hostname = [string]$env:COMPUTERNAME }
    return $hostname
}
#endregion

#region op echo
# Prints its JSON argument object unchanged (transport and bootstrap checks).
function Invoke-WincertEcho([string]$ArgsJson) {
    $ErrorActionPreference = 'Stop'
    try {
        $null = $ArgsJson | ConvertFrom-Json
    } catch {
        throw (New-OpError 'InvalidArgument' ('the argument is not JSON: ' + [string]$_.Exception.Message))
    }
    return (ConvertTo-AsciiJson $ArgsJson)
}
#endregion

#region op host-info
# Host facts the agent decides on: host name, OS build (SSL-flag rules), OS and PowerShell versions.
function Invoke-WincertHostInfo([string]$ArgsJson) {
    $ErrorActionPreference = 'Stop'
    $a = ConvertFrom-OpArguments $ArgsJson
    $null = $a
    $currentVersion = 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion'
    $build = [int](Get-RegistryValue $currentVersion 'CurrentBuildNumber')
    $major = Get-RegistryValue $currentVersion 'CurrentMajorVersionNumber'
    $minor = Get-RegistryValue $currentVersion 'CurrentMinorVersionNumber'
    if ($null -eq $major) {
        $major = [Environment]::OSVersion.Version.Major
        $minor = [Environment]::OSVersion.Version.Minor
    }
    $result = [pscustomobject]@{
        Hostname = (Get-HostFqdn)
        OsBuild = $build
        OsVersion = ('{0}.{1}.{2}' -f $major, $minor, $build)
        PsVersion = $PSVersionTable.PSVersion.ToString()
    }
    return (ConvertTo-OpJson $result)
}
#endregion

#region op store-inventory
# Every certificate of one LocalMachine store as raw facts: DER, HasPrivateKey, key provider, friendly name.
function Invoke-WincertStoreInventory([string]$ArgsJson) {
    $ErrorActionPreference = 'Stop'
    $a = ConvertFrom-OpArguments $ArgsJson
    $storeName = [string]$a.StoreName
    $store = Open-CertStore $storeName 'ReadOnly'
    # A List, not `$array +=`: a store of 10,000 certificates stays linear.
    $certificates = New-Object System.Collections.Generic.List[object]
    try {
        foreach ($certificate in $store.Certificates) {
            $certificates.Add([pscustomobject]@{
                Base64 = [System.Convert]::ToBase64String($certificate.RawData)
                HasPrivateKey = [bool]$certificate.HasPrivateKey
                ProviderName = (Get-KeyProviderName $certificate)
                FriendlyName = [string]$certificate.FriendlyName
            })
        }
    } finally {
        $store.Close()
    }
    $result = [pscustomobject]@{
        StoreName = $storeName
        Certificates = $certificates.ToArray()
    }
    return (ConvertTo-OpJson $result)
}
#endregion

#region op cert-add
# Imports a PFX (or DER) into a LocalMachine store with a persisted machine key, honouring Overwrite;
# optionally binds it in IIS or SQL Server and removes the certificate it replaced when nothing uses it
# any more - one job, one invocation.
function Invoke-WincertCertAdd([string]$ArgsJson) {
    $ErrorActionPreference = 'Stop'
    $a = ConvertFrom-OpArguments $ArgsJson
    $storeName = [string]$a.StoreName
    $thumbprint = ([string]$a.Thumbprint).ToUpperInvariant()
    $password = [string]$a.PfxPassword
    $providerName = [string]$a.ProviderName
    if (-not $thumbprint) { throw (New-OpError 'InvalidArgument' 'Thumbprint is empty') }
    if ($a.IisBinding) {
        # Refuse a binding IIS would reject before anything is imported.
        Assert-IisBindingArguments ([string]$a.IisBinding.SiteName) ([string]$a.IisBinding.BindingInformation) ([int]$a.IisBinding.SslFlags)
    }
    try {
        $bytes = [System.Convert]::FromBase64String([string]$a.ContentsBase64)
        $contentType = [System.Security.Cryptography.X509Certificates.X509Certificate2]::GetCertContentType($bytes)
    } catch {
        throw (New-OpError 'PfxInvalid' ('ContentsBase64 is neither a PFX nor a DER certificate: ' + $_.Exception.Message))
    }

    $store = Open-CertStore $storeName 'ReadWrite'
    $status = 'Added'
    $chainAdded = New-Object System.Collections.Generic.List[string]
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
                    $certutil = Get-System32Path 'certutil.exe'
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
                $caStore = Open-CertStore 'CA' 'ReadWrite'
                try {
                    foreach ($candidate in $collection) {
                        # Intermediates only: a self-signed root is a trust decision, not ours to make.
                        if ($candidate.Thumbprint -ne $thumbprint -and $candidate.Subject -ne $candidate.Issuer) {
                            if ($null -eq (Find-InStore $caStore $candidate.Thumbprint)) {
                                $caStore.Add($candidate)
                                $chainAdded.Add($candidate.Thumbprint)
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

    $check = Open-CertStore $storeName 'ReadOnly'
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
        $sqlBindings = @(foreach ($instanceName in @($a.SqlBinding.InstanceNames)) {
            Set-SqlCertificate ([string]$instanceName) $thumbprint $installed ([bool]$a.SqlBinding.RestartService)
        })
    }

    $replaced = $null
    $replacedThumbprint = ([string]$a.ReplacedThumbprint).ToUpperInvariant()
    if ($replacedThumbprint -and $replacedThumbprint -ne $thumbprint) {
        $boundSites = @(@(Get-IisBindingsUsing $replacedThumbprint) + @(Get-SqlBoundInstances $replacedThumbprint))
        $removed = $false
        if ($boundSites.Count -eq 0) {
            $cleanup = Open-CertStore $storeName 'ReadWrite'
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
        ChainAdded = $chainAdded.ToArray()
        Binding = $binding
        SqlBindings = $sqlBindings
        Replaced = $replaced
    }
    return (ConvertTo-OpJson $result)
}
#endregion

#region op cert-remove
# Removes a certificate from a LocalMachine store. Its private key stays unless DeleteKey is true (an
# HSM-backed key may be shared with other servers), and even then only when no other LocalMachine
# certificate uses that key.
function Invoke-WincertCertRemove([string]$ArgsJson) {
    $ErrorActionPreference = 'Stop'
    $a = ConvertFrom-OpArguments $ArgsJson
    $storeName = [string]$a.StoreName
    $thumbprint = ([string]$a.Thumbprint).ToUpperInvariant()
    $deleteKey = ($a.DeleteKey -eq $true)
    $store = Open-CertStore $storeName 'ReadWrite'
    $found = $false
    $removed = $false
    $keyRemoved = $false
    try {
        $certificate = Find-InStore $store $thumbprint
        if ($null -ne $certificate) {
            $found = $true
            $keyInfo = $null
            if ($deleteKey) {
                try { $keyInfo = Get-CertificateKeyInfo $certificate } catch { $keyInfo = $null }
            }
            $store.Remove($certificate)
            $removed = $true
            if ($null -ne $keyInfo -and $keyInfo.UniqueName) {
                # Keep the key when any other LocalMachine certificate still points at the same container.
                $shared = $false
                foreach ($other in (Get-LocalMachineCertificates)) {
                    if (-not $other.HasPrivateKey -or $other.Thumbprint -eq $thumbprint) { continue }
                    try {
                        $otherInfo = Get-CertificateKeyInfo $other
                        if ($null -ne $otherInfo -and $otherInfo.UniqueName -eq $keyInfo.UniqueName) { $shared = $true; break }
                    } catch {
                        continue
                    }
                }
                if (-not $shared) {
                    Remove-CertificateKey $keyInfo
                    $keyRemoved = $true
                }
            }
        }
    } finally {
        $store.Close()
    }
    $result = [pscustomobject]@{
        Thumbprint = $thumbprint
        Found = $found
        Removed = $removed
        KeyRemoved = $keyRemoved
    }
    return (ConvertTo-OpJson $result)
}
#endregion

#region op iis-list-bindings
# Every https binding of every IIS site, as raw tuples.
function Invoke-WincertIisListBindings([string]$ArgsJson) {
    $ErrorActionPreference = 'Stop'
    $a = ConvertFrom-OpArguments $ArgsJson
    $null = $a
    $manager = Get-IisServerManager
    $bindings = @(foreach ($site in $manager.Sites) {
        foreach ($binding in $site.Bindings) {
            if ($binding.Protocol -eq 'https') { ConvertTo-BindingResult $site $binding }
        }
    })
    $result = [pscustomobject]@{
        Bindings = $bindings
    }
    return (ConvertTo-OpJson $result)
}
#endregion

#region op iis-bind
# Binds a certificate to the exact IP:Port:Host https binding of an IIS site, replacing that binding, with
# all sslFlags bits. An SNI binding without a host name is refused before IIS is touched.
function Invoke-WincertIisBind([string]$ArgsJson) {
    $ErrorActionPreference = 'Stop'
    $a = ConvertFrom-OpArguments $ArgsJson
    $thumbprint = ([string]$a.Thumbprint).ToUpperInvariant()
    $storeName = [string]$a.StoreName
    $siteName = [string]$a.SiteName
    $bindingInformation = [string]$a.BindingInformation
    $sslFlags = [int]$a.SslFlags
    Assert-IisBindingArguments $siteName $bindingInformation $sslFlags
    $store = Open-CertStore $storeName 'ReadOnly'
    try {
        $certificate = Find-InStore $store $thumbprint
    } finally {
        $store.Close()
    }
    if ($null -eq $certificate) {
        throw (New-OpError 'CertificateNotFound' ("certificate {0} is not in LocalMachine\{1}" -f $thumbprint, $storeName))
    }
    if (-not $certificate.HasPrivateKey) {
        throw (New-OpError 'InvalidArgument' ("certificate {0} has no private key, which an https binding needs" -f $thumbprint))
    }
    $bound = Set-IisBinding $siteName $bindingInformation $thumbprint $storeName $sslFlags
    $result = [pscustomobject]@{
        Binding = $bound.Binding
        ReplacedExisting = $bound.ReplacedExisting
    }
    return (ConvertTo-OpJson $result)
}
#endregion

#region op iis-unbind
# Removes the exact IP:Port:Host https binding from an IIS site (nothing else).
function Invoke-WincertIisUnbind([string]$ArgsJson) {
    $ErrorActionPreference = 'Stop'
    $a = ConvertFrom-OpArguments $ArgsJson
    $siteName = [string]$a.SiteName
    $bindingInformation = [string]$a.BindingInformation
    $manager = Get-IisServerManager
    $site = $manager.Sites[$siteName]
    $removed = $false
    if ($null -ne $site) {
        foreach ($binding in @($site.Bindings)) {
            if ($binding.Protocol -eq 'https' -and $binding.BindingInformation -eq $bindingInformation) {
                [void]$site.Bindings.Remove($binding)
                $removed = $true
            }
        }
        if ($removed) {
            try {
                $manager.CommitChanges()
            } catch {
                throw (New-OpError 'CommandFailed' ("IIS refused removing the https binding {0} from site '{1}': {2}" -f $bindingInformation, $siteName, $_.Exception.Message))
            }
        }
    }
    $result = [pscustomobject]@{
        SiteFound = ($null -ne $site)
        Removed = $removed
    }
    return (ConvertTo-OpJson $result)
}
#endregion

#region op iis-remove-cert-if-unused
# Removes a certificate from its store only when no IIS https binding uses it; lists the users otherwise.
function Invoke-WincertIisRemoveCertIfUnused([string]$ArgsJson) {
    $ErrorActionPreference = 'Stop'
    $a = ConvertFrom-OpArguments $ArgsJson
    $storeName = [string]$a.StoreName
    $thumbprint = ([string]$a.Thumbprint).ToUpperInvariant()
    $boundSites = @(Get-IisBindingsUsing $thumbprint)
    $removed = $false
    if ($boundSites.Count -eq 0) {
        $store = Open-CertStore $storeName 'ReadWrite'
        try {
            $certificate = Find-InStore $store $thumbprint
            if ($null -ne $certificate) {
                $store.Remove($certificate)
                $removed = $true
            }
        } finally {
            $store.Close()
        }
    }
    $result = [pscustomobject]@{
        Thumbprint = $thumbprint
        Removed = $removed
        BoundSites = $boundSites
    }
    return (ConvertTo-OpJson $result)
}
#endregion

#region op sql-list-instances
# SQL Server instances: name, instance id, the SuperSocketNetLib Certificate value, service name and account.
function Invoke-WincertSqlListInstances([string]$ArgsJson) {
    $ErrorActionPreference = 'Stop'
    $a = ConvertFrom-OpArguments $ArgsJson
    $null = $a
    $instancesKey = Get-SqlInstancesKey
    $instances = @()
    if (Test-RegistryKey $instancesKey) {
        $instances = @(foreach ($name in @(Get-RegistryValueNames $instancesKey)) {
            $instanceId = [string](Get-RegistryValue $instancesKey $name)
            $netLibKey = Get-SqlNetLibKey $instanceId
            $certificate = ''
            if (Test-RegistryKey $netLibKey) { $certificate = [string](Get-RegistryValue $netLibKey 'Certificate') }
            $serviceName = Get-SqlServiceName $name
            [pscustomobject]@{
                InstanceName = [string]$name
                InstanceId = $instanceId
                Certificate = $certificate
                ServiceName = $serviceName
                ServiceAccount = (Get-ServiceStartName $serviceName)
            }
        })
    }
    $result = [pscustomobject]@{
        Instances = $instances
    }
    return (ConvertTo-OpJson $result)
}
#endregion

#region op sql-bind
# Sets SuperSocketNetLib\Certificate on each instance, verifies it, grants the service account read on the
# key file, and restarts the service when asked.
function Invoke-WincertSqlBind([string]$ArgsJson) {
    $ErrorActionPreference = 'Stop'
    $a = ConvertFrom-OpArguments $ArgsJson
    $thumbprint = ([string]$a.Thumbprint).ToUpperInvariant()
    $storeName = [string]$a.StoreName
    $store = Open-CertStore $storeName 'ReadOnly'
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
    $instances = @(foreach ($instanceName in @($a.InstanceNames)) {
        Set-SqlCertificate ([string]$instanceName) $thumbprint $certificate ([bool]$a.RestartService)
    })
    $result = [pscustomobject]@{
        Instances = $instances
    }
    return (ConvertTo-OpJson $result)
}
#endregion

#region op sql-unbind
# Clears SuperSocketNetLib\Certificate only on the instances bound to the given thumbprint; others are left alone.
function Invoke-WincertSqlUnbind([string]$ArgsJson) {
    $ErrorActionPreference = 'Stop'
    $a = ConvertFrom-OpArguments $ArgsJson
    $thumbprint = ([string]$a.Thumbprint).ToUpperInvariant()
    $instances = @(foreach ($instanceName in @($a.InstanceNames)) {
        $instanceId = Get-SqlInstanceId ([string]$instanceName)
        $netLibKey = Get-SqlNetLibKey $instanceId
        $previous = ''
        if (Test-RegistryKey $netLibKey) { $previous = [string](Get-RegistryValue $netLibKey 'Certificate') }
        $unbound = $false
        $restarted = $false
        if ($previous -and $previous.Trim() -eq $thumbprint) {
            # Blank rather than delete the value: SQL Server expects it to exist.
            Set-RegistryValue $netLibKey 'Certificate' ''
            $unbound = $true
            if ($a.RestartService) {
                [void](Restart-SqlService (Get-SqlServiceName ([string]$instanceName)) 90)
                $restarted = $true
            }
        }
        [pscustomobject]@{
            InstanceName = [string]$instanceName
            Unbound = $unbound
            PreviousCertificate = $previous
            Restarted = $restarted
        }
    })
    $result = [pscustomobject]@{
        Instances = $instances
    }
    return (ConvertTo-OpJson $result)
}
#endregion

#region op sql-restart
# Restarts SQL Server instance services with a bounded wait for each stop and start.
function Invoke-WincertSqlRestart([string]$ArgsJson) {
    $ErrorActionPreference = 'Stop'
    $a = ConvertFrom-OpArguments $ArgsJson
    $timeoutSeconds = [int]$a.TimeoutSeconds
    if ($timeoutSeconds -le 0) { $timeoutSeconds = 90 }
    $instances = @(foreach ($instanceName in @($a.InstanceNames)) {
        $null = Get-SqlInstanceId ([string]$instanceName)
        $serviceName = Get-SqlServiceName ([string]$instanceName)
        $status = Restart-SqlService $serviceName $timeoutSeconds
        [pscustomobject]@{
            InstanceName = [string]$instanceName
            ServiceName = $serviceName
            Status = $status
        }
    })
    $result = [pscustomobject]@{
        Instances = $instances
    }
    return (ConvertTo-OpJson $result)
}
#endregion

#region op csr-create
# On-device key generation: certreq -new with an INF (machine key in the given provider, RSA or
# ECDSA_P256/P384/P521, SANs); returns the CSR as base64 DER.
function Invoke-WincertCsrCreate([string]$ArgsJson) {
    $ErrorActionPreference = 'Stop'
    $a = ConvertFrom-OpArguments $ArgsJson
    $providerName = [string]$a.ProviderName
    $keyAlgorithm = [string]$a.KeyAlgorithm
    $keyLength = [int]$a.KeyLength
    if (-not $providerName) { throw (New-OpError 'InvalidArgument' 'ProviderName is empty') }
    if ($keyAlgorithm -notmatch '^(RSA|ECDSA_P256|ECDSA_P384|ECDSA_P521)$') {
        throw (New-OpError 'InvalidArgument' ("KeyAlgorithm '{0}' is not one certreq accepts" -f $keyAlgorithm))
    }
    Assert-CryptoProvider $providerName
    # Legacy CSPs need an explicit key spec (AT_KEYEXCHANGE); key storage providers take none.
    $keySpec = 0
    if ($providerName -like '*Cryptographic Provider*') { $keySpec = 1 }
    $lines = New-Object System.Collections.Generic.List[string]
    $lines.AddRange([string[]]@(
        '[Version]',
        'Signature="$Windows NT$"',
        '',
        '[NewRequest]',
        ('Subject="{0}"' -f [string]$a.Subject),
        ('ProviderName="{0}"' -f $providerName),
        'MachineKeySet=True',
        'Exportable=False',
        'RequestType=PKCS10',
        'HashAlgorithm=SHA256',
        ('KeyAlgorithm={0}' -f $keyAlgorithm),
        ('KeyLength={0}' -f $keyLength),
        ('KeySpec={0}' -f $keySpec)
    ))
    $sans = @($a.Sans)
    if ($sans.Count -gt 0) {
        $lines.Add('')
        $lines.Add('[Extensions]')
        $lines.Add('2.5.29.17 = "{text}"')
        foreach ($san in $sans) { $lines.Add(('_continue_ = "{0}&"' -f [string]$san)) }
    }
    $infPath = [System.IO.Path]::GetTempFileName()
    $csrPath = [System.IO.Path]::GetTempFileName()
    try {
        [System.IO.File]::WriteAllLines($infPath, $lines.ToArray(), [System.Text.Encoding]::Unicode)
        Remove-Item -LiteralPath $csrPath -Force
        $run = Invoke-Native (Get-System32Path 'certreq.exe') @('-new', '-q', '-machine', $infPath, $csrPath)
        if ($run.ExitCode -ne 0 -or -not (Test-Path -LiteralPath $csrPath)) {
            throw (New-OpError 'CommandFailed' ("certreq -new failed (exit code {0}): {1}" -f $run.ExitCode, $run.Output))
        }
        $pem = [System.IO.File]::ReadAllText($csrPath)
    } finally {
        Remove-Item -LiteralPath $infPath -Force -ErrorAction SilentlyContinue
        Remove-Item -LiteralPath $csrPath -Force -ErrorAction SilentlyContinue
    }
    $base64 = (($pem -split "`r?`n") | Where-Object { $_ -and $_ -notmatch '^-----' }) -join ''
    $result = [pscustomobject]@{
        Csr = $base64
        ProviderName = $providerName
    }
    return (ConvertTo-OpJson $result)
}
#endregion

#region helper Install-IssuedCertificate
# Installs an issued certificate onto the key csr-create generated, in LocalMachine\My. certreq -accept
# first; it refuses a certificate whose chain the host does not trust yet (CERT_E_UNTRUSTEDROOT 0x800B0109,
# CERT_E_CHAINING 0x800B010A: recognised by the HRESULT number, as exit code or hex in its output, never by
# its localised text). Then the certificate is added to My as it is (X509Store.Add builds no chain, as the
# extension's Import-Certificate) and `certutil -repairstore My SERIAL` links it to the pending request's
# key, which must then be present. Returns 'Accepted' or 'Repaired'.
function Install-IssuedCertificate([byte[]]$Bytes) {
    $cerPath = [System.IO.Path]::GetTempFileName()
    try {
        [System.IO.File]::WriteAllBytes($cerPath, $Bytes)
        $run = Invoke-Native (Get-System32Path 'certreq.exe') @('-accept', '-q', '-machine', $cerPath)
    } finally {
        Remove-Item -LiteralPath $cerPath -Force -ErrorAction SilentlyContinue
    }
    if ($run.ExitCode -eq 0) { return 'Accepted' }
    $untrusted = @(-2146762487, -2146762486) -contains [int]$run.ExitCode
    if (-not $untrusted) { $untrusted = ([string]$run.Output) -match '0x800B010[9A]\b' }
    if (-not $untrusted) {
        throw (New-OpError 'CommandFailed' ("certreq -accept failed (exit code {0}): {1}" -f $run.ExitCode, $run.Output))
    }
    $issued = New-Object System.Security.Cryptography.X509Certificates.X509Certificate2 (,$Bytes)
    $my = Open-CertStore 'My' 'ReadWrite'
    try {
        $my.Add($issued)
    } finally {
        $my.Close()
    }
    $repair = Invoke-Native (Get-System32Path 'certutil.exe') @('-silent', '-repairstore', 'My', $issued.SerialNumber)
    if ($repair.ExitCode -ne 0) {
        throw (New-OpError 'CommandFailed' ("certreq -accept refused the untrusted chain (exit code {0}) and certutil -repairstore could not link the certificate to its key (exit code {1}): {2}" -f $run.ExitCode, $repair.ExitCode, $repair.Output))
    }
    $check = Open-CertStore 'My' 'ReadOnly'
    try {
        $linked = Find-InStore $check $issued.Thumbprint
    } finally {
        $check.Close()
    }
    if ($null -eq $linked -or -not $linked.HasPrivateKey) {
        throw (New-OpError 'VerificationFailed' ("certificate {0} was added to LocalMachine\My after certreq -accept refused its untrusted chain, but no private key is linked to it (was the request made on this host by csr-create?)" -f $issued.Thumbprint))
    }
    # certreq -accept also drops the pending request (LocalMachine\REQUEST, same public key); so does this path.
    # Best effort: the certificate is installed and linked, a leftover placeholder must not fail the job.
    try {
        if (Test-CertStorePath 'REQUEST') {
            $publicKey = ConvertTo-HexString $issued.PublicKey.EncodedKeyValue.RawData
            $requests = Open-LocalMachineStore 'REQUEST' 'ReadWrite'
            try {
                foreach ($pending in @($requests.Certificates)) {
                    if ((ConvertTo-HexString $pending.PublicKey.EncodedKeyValue.RawData) -eq $publicKey) { $requests.Remove($pending) }
                }
            } finally {
                $requests.Close()
            }
        }
    } catch {
        $null = $_
    }
    return 'Repaired'
}
#endregion

#region op csr-accept
# Installs the certificate issued for a csr-create request onto its generated key, in the requested store.
function Invoke-WincertCsrAccept([string]$ArgsJson) {
    $ErrorActionPreference = 'Stop'
    $a = ConvertFrom-OpArguments $ArgsJson
    $storeName = [string]$a.StoreName
    try {
        $bytes = [System.Convert]::FromBase64String([string]$a.CertificateBase64)
        $issued = New-Object System.Security.Cryptography.X509Certificates.X509Certificate2 (,$bytes)
    } catch {
        throw (New-OpError 'InvalidArgument' ('CertificateBase64 is not a base64 DER certificate: ' + $_.Exception.Message))
    }
    $thumbprint = $issued.Thumbprint.ToUpperInvariant()
    $probe = Open-CertStore $storeName 'ReadOnly'
    $probe.Close()
    $null = Install-IssuedCertificate $bytes
    # certreq -accept installs into LocalMachine\My; move it when another store was asked for.
    $my = Open-CertStore 'My' 'ReadWrite'
    try {
        $installed = Find-InStore $my $thumbprint
        if ($null -eq $installed) {
            throw (New-OpError 'VerificationFailed' ("certificate {0} is not in LocalMachine\My after certreq -accept" -f $thumbprint))
        }
        if ($storeName -ne 'My') {
            $target = Open-CertStore $storeName 'ReadWrite'
            try {
                $target.Add($installed)
            } finally {
                $target.Close()
            }
            $my.Remove($installed)
        }
    } finally {
        $my.Close()
    }
    $result = [pscustomobject]@{
        Thumbprint = $thumbprint
        HasPrivateKey = [bool]$installed.HasPrivateKey
        StoreName = $storeName
    }
    return (ConvertTo-OpJson $result)
}
#endregion

Export-ModuleMember -Function @(
    'Invoke-WincertEcho',
    'Invoke-WincertHostInfo',
    'Invoke-WincertStoreInventory',
    'Invoke-WincertCertAdd',
    'Invoke-WincertCertRemove',
    'Invoke-WincertIisListBindings',
    'Invoke-WincertIisBind',
    'Invoke-WincertIisUnbind',
    'Invoke-WincertIisRemoveCertIfUnused',
    'Invoke-WincertSqlListInstances',
    'Invoke-WincertSqlBind',
    'Invoke-WincertSqlUnbind',
    'Invoke-WincertSqlRestart',
    'Invoke-WincertCsrCreate',
    'Invoke-WincertCsrAccept'
)
