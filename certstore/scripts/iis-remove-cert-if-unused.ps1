# wincert-op: iis-remove-cert-if-unused
# Removes a certificate from a LocalMachine store only when no IIS https binding uses it.
# Contract: certstore/scripts/iis-remove-cert-if-unused.contract.json (argument and output names; the agent and winhost-sim rely on them).
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

function Get-ServerManager {
    $assembly = Join-Path $env:windir 'System32\inetsrv\Microsoft.Web.Administration.dll'
    if (-not (Test-Path -LiteralPath $assembly)) {
        throw (New-OpError 'IisNotInstalled' 'IIS is not installed on this host (Microsoft.Web.Administration.dll is missing)')
    }
    Add-Type -Path $assembly
    return New-Object Microsoft.Web.Administration.ServerManager
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

try {
    try { Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue } catch { }  # PS 5.1: arrays as plain JSON arrays
    $a = $ArgsJson | ConvertFrom-Json

    $storeName = [string]$a.StoreName
    $thumbprint = ([string]$a.Thumbprint).ToUpperInvariant()
    $boundSites = @(Get-IisBindingsUsing $thumbprint)
    $removed = $false
    if ($boundSites.Count -eq 0) {
        $store = Open-LocalMachineStore $storeName 'ReadWrite'
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

    Write-Output (ConvertTo-AsciiJson ($result | ConvertTo-Json -Compress -Depth 6))
    exit 0
} catch {
    $category = [string]$_.Exception.Data['WincertCategory']
    if (-not $category) { $category = [string]$_.CategoryInfo.Category }
    $failure = @{ error = @{ message = [string]$_.Exception.Message; category = $category } }
    Write-Output (ConvertTo-AsciiJson ($failure | ConvertTo-Json -Compress -Depth 6))
    exit 1
}
