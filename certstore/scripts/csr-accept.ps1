# wincert-op: csr-accept
# Installs the certificate issued for a csr-create request onto its generated key (certreq -accept), in the requested store.
# Contract: certstore/scripts/csr-accept.contract.json (argument and output names; the agent and winhost-sim rely on them).
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

try {
    try { Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue } catch { }  # PS 5.1: arrays as plain JSON arrays
    $a = $ArgsJson | ConvertFrom-Json

    $storeName = [string]$a.StoreName
    $bytes = [System.Convert]::FromBase64String([string]$a.CertificateBase64)
    $issued = New-Object System.Security.Cryptography.X509Certificates.X509Certificate2 (,$bytes)
    $thumbprint = $issued.Thumbprint.ToUpperInvariant()
    $null = Open-LocalMachineStore $storeName 'ReadOnly'
    $cerPath = [System.IO.Path]::GetTempFileName()
    try {
        [System.IO.File]::WriteAllBytes($cerPath, $bytes)
        $run = Invoke-Native (Join-Path $env:windir 'System32\certreq.exe') @('-accept', '-q', '-machine', $cerPath)
        if ($run.ExitCode -ne 0) {
            throw (New-OpError 'CommandFailed' ("certreq -accept failed (exit code {0}): {1}" -f $run.ExitCode, $run.Output))
        }
    } finally {
        Remove-Item -LiteralPath $cerPath -Force -ErrorAction SilentlyContinue
    }
    # certreq -accept installs into LocalMachine\My; move it when another store was asked for.
    $my = Open-LocalMachineStore 'My' 'ReadWrite'
    try {
        $installed = Find-InStore $my $thumbprint
        if ($null -eq $installed) {
            throw (New-OpError 'VerificationFailed' ("certificate {0} is not in LocalMachine\My after certreq -accept" -f $thumbprint))
        }
        if ($storeName -ne 'My') {
            $target = Open-LocalMachineStore $storeName 'ReadWrite'
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

    Write-Output (ConvertTo-AsciiJson ($result | ConvertTo-Json -Compress -Depth 6))
    exit 0
} catch {
    $category = [string]$_.Exception.Data['WincertCategory']
    if (-not $category) { $category = [string]$_.CategoryInfo.Category }
    $failure = @{ error = @{ message = [string]$_.Exception.Message; category = $category } }
    Write-Output (ConvertTo-AsciiJson ($failure | ConvertTo-Json -Compress -Depth 6))
    exit 1
}
