# wincert-op: iis-unbind
# Removes the https binding IP:Port:Host from an IIS site (absent site or binding is not an error).
# Contract: certstore/scripts/iis-unbind.contract.json (argument and output names; the agent and winhost-sim rely on them).
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

function Get-ServerManager {
    $assembly = Join-Path $env:windir 'System32\inetsrv\Microsoft.Web.Administration.dll'
    if (-not (Test-Path -LiteralPath $assembly)) {
        throw (New-OpError 'IisNotInstalled' 'IIS is not installed on this host (Microsoft.Web.Administration.dll is missing)')
    }
    Add-Type -Path $assembly
    return New-Object Microsoft.Web.Administration.ServerManager
}

try {
    try { Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue } catch { }  # PS 5.1: arrays as plain JSON arrays
    $a = $ArgsJson | ConvertFrom-Json

    $siteName = [string]$a.SiteName
    $bindingInformation = [string]$a.BindingInformation
    $manager = Get-ServerManager
    $site = $manager.Sites[$siteName]
    $removed = $false
    if ($null -ne $site) {
        foreach ($binding in @($site.Bindings)) {
            if ($binding.Protocol -eq 'https' -and $binding.BindingInformation -eq $bindingInformation) {
                $site.Bindings.Remove($binding)
                $removed = $true
            }
        }
        if ($removed) { $manager.CommitChanges() }
    }
    $result = [pscustomobject]@{
        SiteFound = ($null -ne $site)
        Removed = $removed
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
