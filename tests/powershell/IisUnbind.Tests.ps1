# iis-unbind: removes the exact IP:Port:Host https binding from a site and nothing else.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-WincertModule | Out-Null
}

Describe 'iis-unbind' {
    BeforeAll {
        $hash = [System.Convert]::FromHexString((New-TestCertificate).Thumbprint)
    }
    BeforeEach {
        $iis = New-FakeIisServerManager -Site @{
            'Default Web Site' = @(
                (New-FakeIisBinding -Protocol http -BindingInformation '*:443:www.example.com'),
                (New-FakeIisBinding -BindingInformation '*:443:www.example.com' -CertificateHash $hash -CertificateStoreName 'My' -SslFlags 1),
                (New-FakeIisBinding -BindingInformation '*:443:' -CertificateHash $hash -CertificateStoreName 'My'))
            'Intranet'         = @(New-FakeIisBinding -BindingInformation '*:443:www.example.com' -CertificateHash $hash -CertificateStoreName 'My')
        }
        Mock -ModuleName WincertOps Get-IisServerManager { $iis }
    }

    It 'removes only the https binding with exactly that IP:Port:Host, and commits' {
        $run = Invoke-WincertOp iis-unbind @{ SiteName = 'Default Web Site'; BindingInformation = '*:443:www.example.com' }
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op iis-unbind -Json $run.Json
        $run.Output.SiteFound | Should -BeTrue
        $run.Output.Removed | Should -BeTrue
        $iis.Log | Should -Be @('Bindings.Remove(*:443:www.example.com)', 'CommitChanges()')
        $left = @($iis.Sites['Default Web Site'].Bindings)
        $left.Count | Should -Be 2
        @($left | Where-Object Protocol -EQ 'http').Count | Should -Be 1
        @($left | Where-Object BindingInformation -EQ '*:443:').Count | Should -Be 1
        @($iis.Sites['Intranet'].Bindings).Count | Should -Be 1
    }

    It 'reports Removed false and commits nothing when no such binding exists' {
        $run = Invoke-WincertOp iis-unbind @{ SiteName = 'Default Web Site'; BindingInformation = '*:8443:' }
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op iis-unbind -Json $run.Json
        $run.Output.SiteFound | Should -BeTrue
        $run.Output.Removed | Should -BeFalse
        $iis.Log.Count | Should -Be 0
    }

    It 'reports SiteFound false for a missing site (nothing to unbind is not a failure)' {
        $run = Invoke-WincertOp iis-unbind @{ SiteName = 'Nope'; BindingInformation = '*:443:' }
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op iis-unbind -Json $run.Json
        $run.Output.SiteFound | Should -BeFalse
        $run.Output.Removed | Should -BeFalse
        $iis.Log.Count | Should -Be 0
    }

    It 'fails with IisNotInstalled when IIS is absent' {
        Mock -ModuleName WincertOps Get-IisServerManager { throw (& (Get-Module WincertOps) { New-OpError 'IisNotInstalled' 'IIS is not installed on this host' }) }
        $run = Invoke-WincertOp iis-unbind @{ SiteName = 'Default Web Site'; BindingInformation = '*:443:' }
        $run.Category | Should -BeExactly 'IisNotInstalled'
        Assert-OpContract -Op iis-unbind -Json $run.Json -Failure
    }

    It 'reports a commit IIS refuses as CommandFailed' {
        $iis.FailCommit = $true
        $run = Invoke-WincertOp iis-unbind @{ SiteName = 'Default Web Site'; BindingInformation = '*:443:' }
        $run.Category | Should -BeExactly 'CommandFailed'
        $run.Message | Should -Match 'Default Web Site'
        Assert-OpContract -Op iis-unbind -Json $run.Json -Failure
    }
}
