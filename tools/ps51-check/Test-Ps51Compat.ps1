<#
.SYNOPSIS
Fails when PowerShell scripts use what Windows PowerShell 5.1 lacks (run it with PowerShell 7).
.DESCRIPTION
Parses each file with PowerShell's own parser and walks the syntax tree (rules: Ps51Compat.psm1,
README.md). Prints one "path:line:column: Rule: message" line per finding and a summary.
Exit code: 0 = compatible, 1 = findings, 2 = usage problem (no such file, no scripts found).
.EXAMPLE
pwsh -NoProfile -File tools/ps51-check/Test-Ps51Compat.ps1 certstore/ps
#>
param(
    [Parameter(Mandatory, Position = 0, ValueFromRemainingArguments)][string[]]$Path
)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot 'Ps51Compat.psm1') -Force

$files = 0
try {
    foreach ($target in $Path) {
        if (Test-Path -LiteralPath $target -PathType Container) {
            $files += @(Get-ChildItem -LiteralPath $target -File | Where-Object { $_.Extension -in '.ps1', '.psm1', '.psd1' }).Count
        } elseif (Test-Path -LiteralPath $target -PathType Leaf) {
            $files += 1
        } else {
            Write-Host "ps51-check: no such file or directory: $target"
            exit 2
        }
    }
    if ($files -eq 0) {
        Write-Host "ps51-check: no .ps1/.psm1/.psd1 files in $($Path -join ', ')"
        exit 2
    }
    $findings = @(Find-Ps51Incompatibility -Path $Path)
} catch {
    Write-Host "ps51-check: $($_.Exception.Message)"
    exit 2
}
foreach ($finding in $findings) {
    Write-Host ("{0}:{1}:{2}: {3}: {4}  [{5}]" -f $finding.File, $finding.Line, $finding.Column, $finding.Rule, $finding.Message, $finding.Text)
}
if ($findings.Count -gt 0) {
    Write-Host "ps51-check: $($findings.Count) finding(s) in $files file(s): what Windows PowerShell 5.1 lacks or cannot parse"
    exit 1
}
Write-Host "ps51-check: $files file(s) compatible with Windows PowerShell 5.1"
exit 0
