# wincert-op: iis-list-bindings
# Every https binding of every IIS site: site, IP:Port:Host, certificate hash and store, sslFlags.
# Contract: certstore/scripts/iis-list-bindings.contract.json (argument and output names; the agent and winhost-sim rely on them).
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

try {
    try { Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue } catch { }  # PS 5.1: arrays as plain JSON arrays
    $a = $ArgsJson | ConvertFrom-Json

    $null = $a
    $manager = Get-ServerManager
    $bindings = @()
    foreach ($site in $manager.Sites) {
        foreach ($binding in $site.Bindings) {
            if ($binding.Protocol -eq 'https') { $bindings += ConvertTo-BindingResult $site $binding }
        }
    }
    $result = [pscustomobject]@{
        Bindings = $bindings
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
