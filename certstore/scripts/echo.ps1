# wincert-op: echo
# Prints its JSON argument object unchanged (transport and bootstrap checks).
# Contract: certstore/scripts/echo.contract.json (argument and output names; the agent and winhost-sim rely on them).
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

try {
    $null = $ArgsJson | ConvertFrom-Json
    Write-Output (ConvertTo-AsciiJson $ArgsJson)
    exit 0
} catch {
    $failure = @{ error = @{ message = ('the argument is not JSON: ' + [string]$_.Exception.Message); category = 'InvalidArgument' } }
    Write-Output (ConvertTo-AsciiJson ($failure | ConvertTo-Json -Compress -Depth 6))
    exit 1
}
