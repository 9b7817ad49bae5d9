<#
.SYNOPSIS
Times the store-inventory op of certstore/ps/WincertOps.psm1 over an in-memory LocalMachine store of N
certificates (default 1,000 / 2,500 / 5,000 / 10,000) and prints the figures as a Markdown table.
.DESCRIPTION
Runs under PowerShell 7 (scripts/setup.sh puts it in build/tools/pwsh); no Pester needed. The store seams
(Test-CertStorePath, Open-LocalMachineStore) are replaced inside the module by an in-memory store
(tests/powershell/TestHelpers.psm1's New-FakeX509Store); everything else runs for real: the op, the key
helpers, ConvertTo-Json and the ASCII escaping. Certificates are distinct (serial numbers) and share one
ECDSA key and issuer, so 10,000 of them are made in seconds. They carry no private key (a CA or Root store);
Get-KeyProviderName is called for each one all the same.
    build/tools/pwsh/pwsh -NoProfile -File bench/powershell_inventory.ps1 [-Count 1000,10000] [-Repeat 3]
#>
param(
    [string[]]$Count = @('1000', '2500', '5000', '10000'),
    [int]$Repeat = 3
)
$ErrorActionPreference = 'Stop'
# pwsh -File passes "-Count 1000,10000" as one string.
$sizes = @($Count | ForEach-Object { $_ -split ',' } | Where-Object { $_ } | ForEach-Object { [int]$_ })
$repo = (Resolve-Path (Join-Path $PSScriptRoot '..')).ProviderPath
Import-Module (Join-Path $repo 'tests/powershell/TestHelpers.psm1') -Force
$module = Import-WincertModule

function New-ManyCertificates([int]$Total) {
    $curve = [System.Security.Cryptography.ECCurve+NamedCurves]::nistP256
    $issuerKey = [System.Security.Cryptography.ECDsa]::Create($curve)
    $issuer = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new('CN=Bench CA', $issuerKey, 'SHA256').CreateSelfSigned(
        [datetimeoffset]::UtcNow.AddDays(-1), [datetimeoffset]::UtcNow.AddYears(2))
    $leafKey = [System.Security.Cryptography.ECDsa]::Create($curve)
    $generator = [System.Security.Cryptography.X509Certificates.X509SignatureGenerator]::CreateForECDsa($issuerKey)
    $notBefore = [datetimeoffset]::UtcNow.AddDays(-1)
    $notAfter = [datetimeoffset]::UtcNow.AddYears(1)
    $list = [System.Collections.Generic.List[System.Security.Cryptography.X509Certificates.X509Certificate2]]::new($Total)
    for ($i = 1; $i -le $Total; $i++) {
        $request = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new("CN=host$i.example.com", $leafKey, 'SHA256')
        $serial = [BitConverter]::GetBytes([long]$i)
        [array]::Reverse($serial)
        $list.Add($request.Create($issuer.SubjectName, $generator, $notBefore, $notAfter, $serial))
    }
    return , $list.ToArray()
}

$largest = ($sizes | Measure-Object -Maximum).Maximum
$watch = [System.Diagnostics.Stopwatch]::StartNew()
$all = New-ManyCertificates $largest
$made = $watch.Elapsed.TotalSeconds

# Replace the Windows store seams inside the module (what Pester's Mock does in the tests).
& $module {
    function script:Test-CertStorePath([string]$StoreName) { return $true }
    function script:Open-LocalMachineStore([string]$StoreName, [string]$Mode) { return $script:BenchStore }
}
function Measure-Inventory([object[]]$Certificates) {
    $store = New-FakeX509Store -Name CA -Certificate $Certificates
    & $module { param($s) $script:BenchStore = $s } $store
    $process = [System.Diagnostics.Process]::GetCurrentProcess()
    $cpuBefore = $process.TotalProcessorTime
    $timer = [System.Diagnostics.Stopwatch]::StartNew()
    $json = Invoke-WincertStoreInventory -ArgsJson '{"StoreName":"CA"}'
    $timer.Stop()
    $process.Refresh()
    $cpu = ($process.TotalProcessorTime - $cpuBefore).TotalSeconds
    if (-not $json.StartsWith('{"StoreName":"CA","Certificates":[')) { throw "unexpected output: $($json.Substring(0, 80))" }
    return [pscustomobject]@{ Seconds = $timer.Elapsed.TotalSeconds; Cpu = $cpu; Bytes = $json.Length }
}

$null = Measure-Inventory $all   # warm-up: JIT tiers and the GC heap settle on the largest store first
Write-Output ("PowerShell {0} on {1}, {2} processors; {3:N0} certificates made in {4:N1} s; best of {5} runs (wall and CPU each)" -f
    $PSVersionTable.PSVersion, [System.Runtime.InteropServices.RuntimeInformation]::OSDescription,
    [Environment]::ProcessorCount, $largest, $made, $Repeat)
Write-Output ''
Write-Output '| certificates | wall s | wall us / cert | CPU s (process) | CPU us / cert | JSON bytes |'
Write-Output '|---:|---:|---:|---:|---:|---:|'
foreach ($n in ($sizes | Sort-Object)) {
    $subset = if ($n -eq $all.Count) { $all } else { $all[0..($n - 1)] }
    $runs = @(for ($r = 0; $r -lt $Repeat; $r++) { Measure-Inventory $subset })
    $best = ($runs | Sort-Object Seconds | Select-Object -First 1)
    $cpu = ($runs | Sort-Object Cpu | Select-Object -First 1).Cpu
    Write-Output ('| {0:N0} | {1:N2} | {2:N0} | {3:N2} | {4:N0} | {5:N0} |' -f $n, $best.Seconds, (1e6 * $best.Seconds / $n), $cpu, (1e6 * $cpu / $n), $best.Bytes)
}
