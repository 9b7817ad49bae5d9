# iis-remove-cert-if-unused: removes a certificate from its store only when no IIS https binding uses it.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-WincertModule | Out-Null
}

Describe 'iis-remove-cert-if-unused' {
    BeforeAll {
        $used = New-TestCertificate -Subject 'CN=used.example.com'
        $unused = New-TestCertificate -Subject 'CN=unused.example.com'
        $absent = New-TestCertificate -Subject 'CN=absent.example.com'
    }
    BeforeEach {
        $store = New-FakeX509Store -Name WebHosting -Certificate $used, $unused
        Mock -ModuleName WincertOps Test-CertStorePath { $true }
        Mock -ModuleName WincertOps Open-LocalMachineStore { $store }
        Mock -ModuleName WincertOps Test-IisInstalled { $true }
        $iis = New-FakeIisServerManager -Site @{
            'Intranet'         = @(New-FakeIisBinding -BindingInformation '*:8443:' -CertificateHash ([System.Convert]::FromHexString($used.Thumbprint)) -CertificateStoreName 'WebHosting')
            'Default Web Site' = @(
                (New-FakeIisBinding -BindingInformation '*:443:www.example.com' -CertificateHash ([System.Convert]::FromHexString($used.Thumbprint)) -CertificateStoreName 'WebHosting'),
                (New-FakeIisBinding -Protocol http -BindingInformation '*:80:' -CertificateHash ([System.Convert]::FromHexString($unused.Thumbprint))))
        }
        Mock -ModuleName WincertOps Get-IisServerManager { $iis }
    }

    It 'removes a certificate no https binding uses' {
        $run = Invoke-WincertOp iis-remove-cert-if-unused @{ StoreName = 'WebHosting'; Thumbprint = $unused.Thumbprint.ToLowerInvariant() }
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op iis-remove-cert-if-unused -Json $run.Json
        $run.Output.Thumbprint | Should -BeExactly $unused.Thumbprint
        $run.Output.Removed | Should -BeTrue
        @($run.Output.BoundSites).Count | Should -Be 0
        $store.Calls | Should -Contain "Remove($($unused.Thumbprint))"
        @($store.Certificates | ForEach-Object Thumbprint) | Should -Be @($used.Thumbprint)
    }

    It 'keeps a certificate an https binding uses and names every site and binding' {
        $run = Invoke-WincertOp iis-remove-cert-if-unused @{ StoreName = 'WebHosting'; Thumbprint = $used.Thumbprint }
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op iis-remove-cert-if-unused -Json $run.Json
        $run.Output.Removed | Should -BeFalse
        @($run.Output.BoundSites | Sort-Object) | Should -Be @('Default Web Site (*:443:www.example.com)', 'Intranet (*:8443:)')
        Should -Invoke -ModuleName WincertOps Open-LocalMachineStore -Times 0 -Exactly
        $store.Certificates.Count | Should -Be 2
    }

    It 'removes the certificate when IIS is not installed (nothing can use it)' {
        Mock -ModuleName WincertOps Test-IisInstalled { $false }
        $run = Invoke-WincertOp iis-remove-cert-if-unused @{ StoreName = 'WebHosting'; Thumbprint = $used.Thumbprint }
        $run.ExitCode | Should -Be 0
        $run.Output.Removed | Should -BeTrue
        Should -Invoke -ModuleName WincertOps Get-IisServerManager -Times 0 -Exactly
    }

    It 'reports Removed false for a certificate that is not in the store' {
        $run = Invoke-WincertOp iis-remove-cert-if-unused @{ StoreName = 'WebHosting'; Thumbprint = $absent.Thumbprint }
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op iis-remove-cert-if-unused -Json $run.Json
        $run.Output.Removed | Should -BeFalse
        $store.Calls | Should -Not -Contain "Remove($($absent.Thumbprint))"
        $store.Calls | Should -Contain 'Close()'
    }

    It 'fails with StoreNotFound for a missing store' {
        Mock -ModuleName WincertOps Test-CertStorePath { $false }
        $run = Invoke-WincertOp iis-remove-cert-if-unused @{ StoreName = 'Nope'; Thumbprint = $unused.Thumbprint }
        $run.Category | Should -BeExactly 'StoreNotFound'
        Assert-OpContract -Op iis-remove-cert-if-unused -Json $run.Json -Failure
    }

    It 'fails with InvalidArgument for an empty store name' {
        $run = Invoke-WincertOp iis-remove-cert-if-unused @{ StoreName = ''; Thumbprint = $unused.Thumbprint }
        $run.Category | Should -BeExactly 'InvalidArgument'
        Assert-OpContract -Op iis-remove-cert-if-unused -Json $run.Json -Failure
    }
}
