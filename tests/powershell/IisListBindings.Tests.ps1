# iis-list-bindings: every https binding of every IIS site, as raw tuples (hash as uppercase hex, sslFlags).

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-WincertModule | Out-Null
}

Describe 'iis-list-bindings' {
    BeforeAll {
        $cert = New-TestCertificate -Subject 'CN=www.example.com'
        $hash = [System.Convert]::FromHexString($cert.Thumbprint)
    }

    It 'lists the https bindings of every site and nothing else' {
        $iis = New-FakeIisServerManager -Site @{
            'Default Web Site' = @(
                (New-FakeIisBinding -Protocol http -BindingInformation '*:80:'),
                (New-FakeIisBinding -BindingInformation '*:443:www.example.com' -CertificateHash $hash -CertificateStoreName 'My' -SslFlags 1))
            'Intranet'         = @(New-FakeIisBinding -BindingInformation '[2001:db8::10]:8443:' -CertificateHash $hash -CertificateStoreName 'WebHosting' -SslFlags 0)
        }
        Mock -ModuleName WincertOps Get-IisServerManager { $iis }
        $run = Invoke-WincertOp iis-list-bindings @{}
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op iis-list-bindings -Json $run.Json
        $bindings = @($run.Output.Bindings | Sort-Object SiteName)
        $bindings.Count | Should -Be 2
        $bindings[0].SiteName | Should -BeExactly 'Default Web Site'
        $bindings[0].BindingInformation | Should -BeExactly '*:443:www.example.com'
        $bindings[0].CertificateHash | Should -BeExactly $cert.Thumbprint
        $bindings[0].CertificateStoreName | Should -BeExactly 'My'
        $bindings[0].SslFlags | Should -Be 1
        $bindings[1].SiteName | Should -BeExactly 'Intranet'
        $bindings[1].BindingInformation | Should -BeExactly '[2001:db8::10]:8443:'
        $bindings[1].CertificateStoreName | Should -BeExactly 'WebHosting'
        $iis.Log | Should -Not -Contain 'CommitChanges()'
    }

    It 'reports an empty list for sites without https bindings' {
        $iis = New-FakeIisServerManager -Site @{ 'Default Web Site' = @(New-FakeIisBinding -Protocol http -BindingInformation '*:80:') }
        Mock -ModuleName WincertOps Get-IisServerManager { $iis }
        $run = Invoke-WincertOp iis-list-bindings @{}
        $run.ExitCode | Should -Be 0
        $run.Json | Should -BeExactly '{"Bindings":[]}'
    }

    It 'reports a binding without a certificate with an empty hash and sslFlags 0' {
        $iis = New-FakeIisServerManager -Site @{ 'A' = @(New-FakeIisBinding -BindingInformation '*:443:') }
        Mock -ModuleName WincertOps Get-IisServerManager { $iis }
        $run = Invoke-WincertOp iis-list-bindings @{}
        Assert-OpContract -Op iis-list-bindings -Json $run.Json
        @($run.Output.Bindings)[0].CertificateHash | Should -BeExactly ''
        @($run.Output.Bindings)[0].SslFlags | Should -Be 0
    }

    It 'fails with IisNotInstalled when IIS is absent' {
        Mock -ModuleName WincertOps Test-IisInstalled { $false }
        $run = Invoke-WincertOp iis-list-bindings @{}
        $run.ExitCode | Should -Be 1
        $run.Category | Should -BeExactly 'IisNotInstalled'
        $run.Message | Should -Match 'IIS is not installed'
        Assert-OpContract -Op iis-list-bindings -Json $run.Json -Failure
    }
}
