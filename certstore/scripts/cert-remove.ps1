# wincert-op: cert-remove
# Removes a certificate from a LocalMachine store, and its private key when no other certificate uses that key.
# Contract: certstore/scripts/cert-remove.contract.json (argument and output names; the agent and winhost-sim rely on them).
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

try {
    try { Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue } catch { }  # PS 5.1: arrays as plain JSON arrays
    $a = $ArgsJson | ConvertFrom-Json

    $storeName = [string]$a.StoreName
    $thumbprint = ([string]$a.Thumbprint).ToUpperInvariant()
    $store = Open-LocalMachineStore $storeName 'ReadWrite'
    $found = $false
    $removed = $false
    $keyRemoved = $false
    try {
        $certificate = Find-InStore $store $thumbprint
        if ($null -ne $certificate) {
            $found = $true
            $identity = $null
            try { $identity = Get-KeyIdentity $certificate } catch { $identity = $null }
            $store.Remove($certificate)
            $removed = $true
            if ($null -ne $identity) {
                # Keep the key when any other LocalMachine certificate still points at the same container.
                $shared = $false
                foreach ($other in Get-ChildItem -Path 'Cert:\LocalMachine' -Recurse -ErrorAction SilentlyContinue | Where-Object { $_ -is [System.Security.Cryptography.X509Certificates.X509Certificate2] -and $_.HasPrivateKey -and $_.Thumbprint -ne $thumbprint }) {
                    try {
                        $otherIdentity = Get-KeyIdentity $other
                        if ($null -ne $otherIdentity -and $otherIdentity.UniqueName -eq $identity.UniqueName) { $shared = $true; break }
                    } catch {
                        continue
                    }
                }
                if (-not $shared) {
                    $key = $identity.Key
                    if ($key -is [System.Security.Cryptography.RSACng] -or $key -is [System.Security.Cryptography.ECDsaCng]) {
                        $key.Key.Delete()
                    } else {
                        $key.PersistKeyInCsp = $false
                        $key.Clear()
                    }
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

    Write-Output (ConvertTo-AsciiJson ($result | ConvertTo-Json -Compress -Depth 6))
    exit 0
} catch {
    $category = [string]$_.Exception.Data['WincertCategory']
    if (-not $category) { $category = [string]$_.CategoryInfo.Category }
    $failure = @{ error = @{ message = [string]$_.Exception.Message; category = $category } }
    Write-Output (ConvertTo-AsciiJson ($failure | ConvertTo-Json -Compress -Depth 6))
    exit 1
}
