# wincert-op: store-inventory
# Every certificate of one LocalMachine store as raw facts: DER, HasPrivateKey, key provider, friendly name.
# Contract: certstore/scripts/store-inventory.contract.json (argument and output names; the agent and winhost-sim rely on them).
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

try {
    try { Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue } catch { }  # PS 5.1: arrays as plain JSON arrays
    $a = $ArgsJson | ConvertFrom-Json

    $storeName = [string]$a.StoreName
    $store = Open-LocalMachineStore $storeName 'ReadOnly'
    $certificates = @()
    try {
        foreach ($certificate in $store.Certificates) {
            $certificates += [pscustomobject]@{
                Base64 = [System.Convert]::ToBase64String($certificate.RawData)
                HasPrivateKey = [bool]$certificate.HasPrivateKey
                ProviderName = (Get-KeyProviderName $certificate)
                FriendlyName = [string]$certificate.FriendlyName
            }
        }
    } finally {
        $store.Close()
    }
    $result = [pscustomobject]@{
        StoreName = $storeName
        Certificates = $certificates
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
