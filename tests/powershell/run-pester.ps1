<#
.SYNOPSIS
Runs Pester test files and exits non-zero on any failure (the ctest label "powershell" calls it through
run.cmake, which finds pwsh and Pester first).
.DESCRIPTION
Prints Pester's detailed output, then one summary line (passed/failed/skipped/not run) and the names of
failed tests. Writes a JUnit XML result file when -ResultFile is given.
With -CoveragePath, measures which commands of those files the tests executed (Pester code coverage),
writes JaCoCo XML to -CoverageFile and a per-function summary beside it (.txt), and prints the summary.
Exit code: 0 = all passed, 1 = a failure (a test, a block, a file that did not load, or no tests at all).
#>
param(
    [Parameter(Mandatory)][string]$PesterPath,
    [Parameter(Mandatory)][string[]]$TestPath,
    [string]$Name = 'pester',
    [string]$ResultFile,
    [string[]]$ExcludeTag = @(),
    [string[]]$CoveragePath = @(),
    [string]$CoverageFile
)
$ErrorActionPreference = 'Stop'
# pwsh -File hands each argument over as one string: lists arrive comma-separated.
$TestPath = @($TestPath | ForEach-Object { $_ -split ',' } | Where-Object { $_ })
$ExcludeTag = @($ExcludeTag | ForEach-Object { $_ -split ',' } | Where-Object { $_ })
$CoveragePath = @($CoveragePath | ForEach-Object { $_ -split ',' } | Where-Object { $_ })
Import-Module (Resolve-Path -LiteralPath $PesterPath).ProviderPath -Force
$pester = Get-Module Pester
Write-Host ("run-pester: PowerShell {0}, Pester {1}, {2}" -f $PSVersionTable.PSVersion, $pester.Version, ($TestPath -join ', '))

$config = New-PesterConfiguration
$config.Run.Path = $TestPath
$config.Run.PassThru = $true
$config.Run.Exit = $false
$config.Output.Verbosity = 'Detailed'
$config.Output.RenderMode = 'Plaintext'
if ($ExcludeTag.Count -gt 0) { $config.Filter.ExcludeTag = $ExcludeTag }
if ($ResultFile) {
    $null = New-Item -ItemType Directory -Force -Path (Split-Path -Parent $ResultFile)
    $config.TestResult.Enabled = $true
    $config.TestResult.OutputFormat = 'JUnitXml'
    $config.TestResult.OutputPath = $ResultFile
}
if ($CoveragePath.Count -gt 0) {
    if (-not $CoverageFile) { throw 'run-pester: -CoveragePath needs -CoverageFile' }
    $null = New-Item -ItemType Directory -Force -Path (Split-Path -Parent $CoverageFile)
    $config.CodeCoverage.Enabled = $true
    $config.CodeCoverage.Path = $CoveragePath
    $config.CodeCoverage.OutputFormat = 'JaCoCo'
    $config.CodeCoverage.OutputPath = $CoverageFile
    $config.CodeCoverage.UseBreakpoints = $false  # the profiler-based tracer: much faster than breakpoints
}

$result = Invoke-Pester -Configuration $config

# --- summary ---
$failedContainers = @($result.Containers | Where-Object { $_.Result -eq 'Failed' -and $_.ErrorRecord.Count -gt 0 })
Write-Host ''
Write-Host ("pester summary [{0}]: {1} passed, {2} failed, {3} skipped, {4} not run (of {5}) in {6:N1} s" -f
    $Name, $result.PassedCount, $result.FailedCount, $result.SkippedCount, $result.NotRunCount, $result.TotalCount,
    $result.Duration.TotalSeconds)
foreach ($test in $result.Failed) { Write-Host "  FAILED: $($test.ExpandedPath)" }
foreach ($block in $result.FailedBlocks) { Write-Host "  FAILED BLOCK (setup/teardown): $($block.ExpandedPath)" }
foreach ($container in $failedContainers) {
    Write-Host "  FAILED TO RUN: $($container.Item) - $($container.ErrorRecord[0].Exception.Message)"
}

if ($CoveragePath.Count -gt 0 -and $result.CodeCoverage) {
    $coverage = $result.CodeCoverage
    $byFunction = @{}
    foreach ($command in $coverage.CommandsExecuted) {
        $key = if ($command.Function) { $command.Function } else { '(script level)' }
        if (-not $byFunction.ContainsKey($key)) { $byFunction[$key] = @(0, 0) }
        $byFunction[$key][0]++; $byFunction[$key][1]++
    }
    foreach ($command in $coverage.CommandsMissed) {
        $key = if ($command.Function) { $command.Function } else { '(script level)' }
        if (-not $byFunction.ContainsKey($key)) { $byFunction[$key] = @(0, 0) }
        $byFunction[$key][1]++
    }
    # The module marks each function's kind ("#region helper|seam|op NAME"): seams are the Windows-only
    # code the tests mock, so they are counted apart.
    $kinds = @{}
    foreach ($file in $CoveragePath) {
        $pending = $null
        foreach ($line in [System.IO.File]::ReadAllLines((Resolve-Path -LiteralPath $file).ProviderPath)) {
            if ($line -match '^#region (helper|seam|op) ') { $pending = $Matches[1] }
            elseif ($pending -and $line -match '^function ([A-Za-z0-9-]+)') { $kinds[$Matches[1]] = $pending; $pending = $null }
        }
    }
    $functions = @($byFunction.Keys | Sort-Object)
    $covered = @($functions | Where-Object { $byFunction[$_][0] -gt 0 })
    $lines = [System.Collections.Generic.List[string]]::new()
    $lines.Add(("coverage: {0} of {1} commands executed ({2:N1}%) in {3}" -f $coverage.CommandsExecutedCount,
            $coverage.CommandsAnalyzedCount, $coverage.CoveragePercent, (($CoveragePath | ForEach-Object { Split-Path -Leaf $_ }) -join ', ')))
    $lines.Add(("coverage: {0} of {1} functions reached" -f $covered.Count, $functions.Count))
    if ($kinds.Count -gt 0) {
        $notSeams = @($functions | Where-Object { $kinds[$_] -ne 'seam' })
        $hitNotSeam = ($notSeams | ForEach-Object { $byFunction[$_][0] } | Measure-Object -Sum).Sum
        $totalNotSeam = ($notSeams | ForEach-Object { $byFunction[$_][1] } | Measure-Object -Sum).Sum
        $ops = @($functions | Where-Object { $kinds[$_] -eq 'op' })
        $lines.Add(("coverage: without the seams (mocked Windows-only code): {0} of {1} commands ({2:N1}%); ops reached: {3} of {4}" -f
                $hitNotSeam, $totalNotSeam, (100.0 * $hitNotSeam / [Math]::Max($totalNotSeam, 1)),
                @($ops | Where-Object { $byFunction[$_][0] -gt 0 }).Count, $ops.Count))
    }
    foreach ($function in $functions) {
        $hit, $total = $byFunction[$function]
        $kind = if ($kinds.ContainsKey($function)) { $kinds[$function] } else { '' }
        $lines.Add(("  {0,-40} {1,-6} {2,4}/{3,-4} {4,5:N1}%{5}" -f $function, $kind, $hit, $total, (100.0 * $hit / [Math]::Max($total, 1)),
                $(if ($hit -eq 0) { '  NOT REACHED' } else { '' })))
    }
    $summaryFile = [System.IO.Path]::ChangeExtension($CoverageFile, '.txt')
    [System.IO.File]::WriteAllLines($summaryFile, $lines)
    Write-Host ''
    foreach ($line in $lines) { Write-Host $line }
    Write-Host "coverage: JaCoCo XML $CoverageFile, summary $summaryFile"
}

if ($result.TotalCount -eq 0 -and $failedContainers.Count -eq 0) {
    Write-Host "run-pester: no tests found in $($TestPath -join ', ')"
    exit 1
}
if ($result.FailedCount -gt 0 -or $result.FailedBlocksCount -gt 0 -or $result.FailedContainersCount -gt 0 -or
    $result.Result -ne 'Passed') {
    exit 1
}
exit 0
