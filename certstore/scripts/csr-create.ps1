# wincert-op: csr-create
# On-device key generation: certreq -new with an INF (machine key in the given provider, RSA or ECDSA_P256/P384/P521, SANs); returns the CSR as base64 DER.
# Contract: certstore/scripts/csr-create.contract.json (argument and output names; the agent and winhost-sim rely on them).
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
    $lines = @(
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
    )
    $sans = @($a.Sans)
    if ($sans.Count -gt 0) {
        $lines += ''
        $lines += '[Extensions]'
        $lines += '2.5.29.17 = "{text}"'
        foreach ($san in $sans) { $lines += ('_continue_ = "{0}&"' -f [string]$san) }
    }
    $infPath = [System.IO.Path]::GetTempFileName()
    $csrPath = [System.IO.Path]::GetTempFileName()
    try {
        [System.IO.File]::WriteAllLines($infPath, [string[]]$lines, [System.Text.Encoding]::Unicode)
        Remove-Item -LiteralPath $csrPath -Force
        $run = Invoke-Native (Join-Path $env:windir 'System32\certreq.exe') @('-new', '-q', '-machine', $infPath, $csrPath)
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

    Write-Output (ConvertTo-AsciiJson ($result | ConvertTo-Json -Compress -Depth 6))
    exit 0
} catch {
    $category = [string]$_.Exception.Data['WincertCategory']
    if (-not $category) { $category = [string]$_.CategoryInfo.Category }
    $failure = @{ error = @{ message = [string]$_.Exception.Message; category = $category } }
    Write-Output (ConvertTo-AsciiJson ($failure | ConvertTo-Json -Compress -Depth 6))
    exit 1
}
