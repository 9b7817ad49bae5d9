# Smoke test of the host-side module (certstore/ps/WincertOps): it imports under PowerShell 7, exports exactly
# what its manifest lists, every op has its function and its contract, and two ops run end to end.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $opCases = foreach ($entry in (Get-WincertOpTable).GetEnumerator()) { @{ Op = $entry.Key; Function = $entry.Value } }
}

Describe 'WincertOps module' {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
        $module = Import-WincertModule
        $moduleDir = Join-Path (Get-WincertRepoRoot) 'certstore/ps'
        $manifest = Import-PowerShellDataFile (Join-Path $moduleDir 'WincertOps.psd1')
        $opTable = Get-WincertOpTable
    }

    It 'imports under PowerShell 7 from its manifest' {
        $module.Name | Should -Be 'WincertOps'
        $module.Version | Should -Be ([version]$manifest.ModuleVersion)
    }

    It 'declares Windows PowerShell 5.1 and both editions' {
        [version]$manifest.PowerShellVersion | Should -Be ([version]'5.1')
        $manifest.CompatiblePSEditions | Should -Contain 'Desktop'
        $manifest.CompatiblePSEditions | Should -Contain 'Core'
    }

    It 'exports exactly the functions its manifest lists' {
        @($module.ExportedFunctions.Keys | Sort-Object) | Should -Be @($manifest.FunctionsToExport | Sort-Object)
        $module.ExportedCmdlets.Count | Should -Be 0
        $module.ExportedVariables.Count | Should -Be 0
        $module.ExportedAliases.Count | Should -Be 0
    }

    It 'exports the op functions and nothing else (helpers and seams stay inside)' {
        @($manifest.FunctionsToExport | Sort-Object) | Should -Be @($opTable.Values | Sort-Object)
    }

    It 'has one op per contract file' {
        $contracts = @(Get-ChildItem -Path (Join-Path (Get-WincertRepoRoot) 'certstore/scripts'), (Join-Path $moduleDir 'contracts') `
                -Filter '*.contract.json' -ErrorAction Ignore | ForEach-Object { $_.Name -replace '\.contract\.json$', '' })
        $contracts.Count | Should -BeGreaterThan 0
        @($opTable.Keys | Sort-Object) | Should -Be @($contracts | Sort-Object -Unique)
    }

    It 'op <Op> is the exported function <Function>, taking -ArgsJson' -TestCases $opCases {
        $command = Get-Command -Module WincertOps -Name $Function -ErrorAction Stop
        $command.Parameters.Keys | Should -Contain 'ArgsJson'
        $Function | Should -BeLike 'Invoke-Wincert*'
    }

    It 'echo returns its argument object unchanged, as ASCII JSON' {
        $run = Invoke-WincertOp echo @{ Message = 'grüße – 証明書'; Number = 42; Nested = @{ List = @(1, 2, 3) } }
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op echo -Json $run.Json
        $run.Output.Message | Should -Be 'grüße – 証明書'
        $run.Output.Nested.List | Should -Be @(1, 2, 3)
    }

    It 'echo refuses text that is not JSON with InvalidArgument' {
        $run = Invoke-WincertOp echo -ArgsJson '{not json'
        $run.ExitCode | Should -Be 1
        $run.Category | Should -Be 'InvalidArgument'
        Assert-OpContract -Op echo -Json $run.Json -Failure
    }

    It 'store-inventory lists a (fake) LocalMachine store of real certificates by the contract' {
        $rsa = New-TestCertificate -Subject 'CN=www.example.com' -DnsName www.example.com -FriendlyName 'Zertifikat für Prüfung – 証明書'
        $ecdsa = New-TestCertificate -Subject 'CN=ec.example.com' -KeyAlgorithm ECDSA -Curve nistP384
        $public = New-TestCertificate -Subject 'CN=root.example.com' -CA -NoPrivateKey
        $store = New-FakeX509Store -Name My -Certificate $rsa, $ecdsa, $public
        Mock -ModuleName WincertOps Test-CertStorePath { $true }
        Mock -ModuleName WincertOps Open-LocalMachineStore { $store }
        Mock -ModuleName WincertOps Get-LegacyCspKeyInfo { $null }
        Mock -ModuleName WincertOps Get-CngKeyInfo { New-TestKeyInfo -Kind CNG -ProviderName 'Microsoft Software Key Storage Provider' }

        $run = Invoke-WincertOp store-inventory @{ StoreName = 'My' }

        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op store-inventory -Json $run.Json
        $run.Output.StoreName | Should -Be 'My'
        $listed = @($run.Output.Certificates)
        $listed.Count | Should -Be 3
        $thumbprints = $listed | ForEach-Object {
            [System.Security.Cryptography.X509Certificates.X509CertificateLoader]::LoadCertificate([Convert]::FromBase64String($_.Base64)).Thumbprint
        }
        $thumbprints | Should -Be @($rsa.Thumbprint, $ecdsa.Thumbprint, $public.Thumbprint)
        $listed.HasPrivateKey | Should -Be @($true, $true, $false)
        $listed.ProviderName | Should -Be @('Microsoft Software Key Storage Provider', 'Microsoft Software Key Storage Provider', '')
        $listed[0].FriendlyName | Should -Be 'Zertifikat für Prüfung – 証明書'
        $store.Calls | Should -Contain 'Close()'
        Should -Invoke -ModuleName WincertOps Open-LocalMachineStore -Times 1 -Exactly -ParameterFilter { $StoreName -eq 'My' }
    }

    It 'iis-list-bindings reads a (fake) IIS by the contract' {
        $iis = New-FakeIisServerManager -Site @{
            'Default Web Site' = @(
                (New-FakeIisBinding -Protocol http -BindingInformation '*:80:'),
                (New-FakeIisBinding -BindingInformation '*:443:www.example.com' -CertificateHash ([byte[]](0xAB, 0x01)) -CertificateStoreName My -SslFlags 1))
        }
        Mock -ModuleName WincertOps Get-IisServerManager { $iis }
        $run = Invoke-WincertOp iis-list-bindings @{}
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op iis-list-bindings -Json $run.Json
        $only = @($run.Output.Bindings)
        $only.Count | Should -Be 1
        $only[0].BindingInformation | Should -Be '*:443:www.example.com'
        $only[0].CertificateHash | Should -Be 'AB01'
        $only[0].SslFlags | Should -Be 1
    }

    It 'store-inventory reports a missing store as StoreNotFound' {
        Mock -ModuleName WincertOps Test-CertStorePath { $false }
        Mock -ModuleName WincertOps Open-LocalMachineStore { throw 'must not be opened' }
        $run = Invoke-WincertOp store-inventory @{ StoreName = 'Nope' }
        $run.ExitCode | Should -Be 1
        $run.Category | Should -Be 'StoreNotFound'
        $run.Message | Should -BeLike '*LocalMachine\Nope*'
        Assert-OpContract -Op store-inventory -Json $run.Json -Failure
    }
}
