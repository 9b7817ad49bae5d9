# wincert-op: iis-bind
# Binds a certificate to the exact IP:Port:Host https binding of an IIS site, replacing that binding, with all sslFlags bits.
# Contract: certstore/scripts/iis-bind.contract.json (argument and output names; the agent and winhost-sim rely on them).
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
        throw (New-OpError 'InvalidArgument' ("certificate {0} has no private key, which an https binding needs" -f $thumbprint))
    }
    $bound = Set-IisBinding ([string]$a.SiteName) ([string]$a.BindingInformation) $thumbprint $storeName ([int]$a.SslFlags)
    $result = [pscustomobject]@{
        Binding = $bound.Binding
        ReplacedExisting = $bound.ReplacedExisting
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
