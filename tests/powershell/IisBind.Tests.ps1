# iis-bind: binds a certificate to the exact IP:Port:Host https binding of a site, replacing that binding,
# with every sslFlags bit; an SNI binding without a host name is refused before IIS is touched (fix 8).

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-WincertModule | Out-Null
}

Describe 'iis-bind' {
    BeforeAll {
        $cert = New-TestCertificate -Subject 'CN=www.example.com' -DnsName 'www.example.com'
        $old = New-TestCertificate -Subject 'CN=old.example.com'
        $public = New-TestCertificate -Subject 'CN=public.example.com' -NoPrivateKey
    }
    BeforeEach {
        $store = New-FakeX509Store -Name My -Certificate $cert, $public
        Mock -ModuleName WincertOps Test-CertStorePath { $true }
        Mock -ModuleName WincertOps Open-LocalMachineStore { $store }
        $iis = New-FakeIisServerManager -Site @{
            'Default Web Site' = @(
                (New-FakeIisBinding -Protocol http -BindingInformation '*:443:www.example.com'),
                (New-FakeIisBinding -BindingInformation '*:443:www.example.com' -CertificateHash ([System.Convert]::FromHexString($old.Thumbprint)) -CertificateStoreName 'My' -SslFlags 0),
                (New-FakeIisBinding -BindingInformation '*:8443:' -CertificateHash ([System.Convert]::FromHexString($old.Thumbprint)) -CertificateStoreName 'My'))
            'Intranet'         = @(New-FakeIisBinding -BindingInformation '*:443:www.example.com' -CertificateHash ([System.Convert]::FromHexString($old.Thumbprint)) -CertificateStoreName 'My')
        }
        Mock -ModuleName WincertOps Get-IisServerManager { $iis }
        $siteBindings = { param($name) @($iis.Sites[$name].Bindings) }
    }

    It 'adds a new binding with the hash bytes, store name and sslFlags, and commits once' {
        $run = Invoke-WincertOp iis-bind @{ SiteName = 'Default Web Site'; BindingInformation = '[2001:db8::10]:443:api.example.com'; SslFlags = 1; Thumbprint = $cert.Thumbprint.ToLowerInvariant(); StoreName = 'My' }
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op iis-bind -Json $run.Json
        $run.Output.ReplacedExisting | Should -BeFalse
        $run.Output.Binding.BindingInformation | Should -BeExactly '[2001:db8::10]:443:api.example.com'
        $run.Output.Binding.CertificateHash | Should -BeExactly $cert.Thumbprint
        $run.Output.Binding.SslFlags | Should -Be 1
        $added = @(& $siteBindings 'Default Web Site' | Where-Object BindingInformation -EQ '[2001:db8::10]:443:api.example.com')
        $added.Count | Should -Be 1
        $added[0].Protocol | Should -BeExactly 'https'
        [System.Convert]::ToHexString($added[0].CertificateHash) | Should -BeExactly $cert.Thumbprint
        $added[0].CertificateStoreName | Should -BeExactly 'My'
        $added[0].GetAttributeValue('sslFlags') | Should -Be 1
        $iis.CommitCount | Should -Be 1
        $iis.Log | Should -Be @('Bindings.Add([2001:db8::10]:443:api.example.com)', 'CommitChanges()')
    }

    It 'replaces exactly the https binding with the same IP:Port:Host and leaves the rest alone' {
        $run = Invoke-WincertOp iis-bind @{ SiteName = 'Default Web Site'; BindingInformation = '*:443:www.example.com'; SslFlags = 3; Thumbprint = $cert.Thumbprint; StoreName = 'My' }
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op iis-bind -Json $run.Json
        $run.Output.ReplacedExisting | Should -BeTrue
        $run.Output.Binding.SslFlags | Should -Be 3
        $iis.Log | Should -Be @('Bindings.Remove(*:443:www.example.com)', 'Bindings.Add(*:443:www.example.com)', 'CommitChanges()')
        $bindings = & $siteBindings 'Default Web Site'
        @($bindings | Where-Object { $_.Protocol -eq 'http' }).Count | Should -Be 1
        $https = @($bindings | Where-Object { $_.Protocol -eq 'https' -and $_.BindingInformation -eq '*:443:www.example.com' })
        $https.Count | Should -Be 1
        [System.Convert]::ToHexString($https[0].CertificateHash) | Should -BeExactly $cert.Thumbprint
        $other = @($bindings | Where-Object BindingInformation -EQ '*:8443:')
        [System.Convert]::ToHexString($other[0].CertificateHash) | Should -BeExactly $old.Thumbprint
        [System.Convert]::ToHexString(@(& $siteBindings 'Intranet')[0].CertificateHash) | Should -BeExactly $old.Thumbprint
    }

    It 'applies sslFlags bits above 3 (<Flags>)' -TestCases @(@{ Flags = 4 }, @{ Flags = 33 }, @{ Flags = 0 }) {
        $run = Invoke-WincertOp iis-bind @{ SiteName = 'Intranet'; BindingInformation = '10.0.0.5:443:intranet.example.com'; SslFlags = $Flags; Thumbprint = $cert.Thumbprint; StoreName = 'My' }
        $run.ExitCode | Should -Be 0
        $run.Output.Binding.SslFlags | Should -Be $Flags
        @(& $siteBindings 'Intranet' | Where-Object BindingInformation -EQ '10.0.0.5:443:intranet.example.com')[0].GetAttributeValue('sslFlags') | Should -Be $Flags
    }

    It 'refuses an SNI binding without a host name before IIS or the store is touched (<Info>)' -TestCases @(
        @{ Info = '*:443:' }, @{ Info = '[2001:db8::10]:443:' }, @{ Info = '10.0.0.5:443: ' }) {
        $run = Invoke-WincertOp iis-bind @{ SiteName = 'Default Web Site'; BindingInformation = $Info; SslFlags = 1; Thumbprint = $cert.Thumbprint; StoreName = 'My' }
        $run.ExitCode | Should -Be 1
        $run.Category | Should -BeExactly 'InvalidArgument'
        $run.Message | Should -Match 'SNI'
        $run.Message | Should -Match 'Default Web Site'
        Assert-OpContract -Op iis-bind -Json $run.Json -Failure
        Should -Invoke -ModuleName WincertOps Get-IisServerManager -Times 0 -Exactly
        Should -Invoke -ModuleName WincertOps Open-LocalMachineStore -Times 0 -Exactly
        $iis.Log.Count | Should -Be 0
    }

    It 'accepts a non-SNI binding without a host name' {
        $run = Invoke-WincertOp iis-bind @{ SiteName = 'Default Web Site'; BindingInformation = '*:443:'; SslFlags = 0; Thumbprint = $cert.Thumbprint; StoreName = 'My' }
        $run.ExitCode | Should -Be 0
        $run.Output.Binding.BindingInformation | Should -BeExactly '*:443:'
    }

    It 'fails with SiteNotFound for a missing site, without committing' {
        $run = Invoke-WincertOp iis-bind @{ SiteName = 'Nope'; BindingInformation = '*:443:x'; SslFlags = 0; Thumbprint = $cert.Thumbprint; StoreName = 'My' }
        $run.Category | Should -BeExactly 'SiteNotFound'
        $run.Message | Should -Match "'Nope'"
        Assert-OpContract -Op iis-bind -Json $run.Json -Failure
        $iis.Log.Count | Should -Be 0
    }

    It 'fails with IisNotInstalled when IIS is absent' {
        Mock -ModuleName WincertOps Test-IisInstalled { $false }
        Mock -ModuleName WincertOps Get-IisServerManager -ParameterFilter { $true } -MockWith {
            & (Get-Module WincertOps) { if (-not (Test-IisInstalled)) { throw (New-OpError 'IisNotInstalled' 'IIS is not installed on this host') } }
        }
        $run = Invoke-WincertOp iis-bind @{ SiteName = 'Default Web Site'; BindingInformation = '*:443:x'; SslFlags = 0; Thumbprint = $cert.Thumbprint; StoreName = 'My' }
        $run.Category | Should -BeExactly 'IisNotInstalled'
        Assert-OpContract -Op iis-bind -Json $run.Json -Failure
    }

    It 'fails with CertificateNotFound when the thumbprint is not in the store' {
        $run = Invoke-WincertOp iis-bind @{ SiteName = 'Default Web Site'; BindingInformation = '*:443:x'; SslFlags = 0; Thumbprint = $old.Thumbprint; StoreName = 'My' }
        $run.Category | Should -BeExactly 'CertificateNotFound'
        $run.Message | Should -Match $old.Thumbprint
        Assert-OpContract -Op iis-bind -Json $run.Json -Failure
        Should -Invoke -ModuleName WincertOps Get-IisServerManager -Times 0 -Exactly
    }

    It 'fails with StoreNotFound for a missing store' {
        Mock -ModuleName WincertOps Test-CertStorePath { $false }
        $run = Invoke-WincertOp iis-bind @{ SiteName = 'Default Web Site'; BindingInformation = '*:443:x'; SslFlags = 0; Thumbprint = $cert.Thumbprint; StoreName = 'Nope' }
        $run.Category | Should -BeExactly 'StoreNotFound'
        Assert-OpContract -Op iis-bind -Json $run.Json -Failure
    }

    It 'refuses a certificate without a private key as InvalidArgument' {
        $run = Invoke-WincertOp iis-bind @{ SiteName = 'Default Web Site'; BindingInformation = '*:443:x'; SslFlags = 0; Thumbprint = $public.Thumbprint; StoreName = 'My' }
        $run.Category | Should -BeExactly 'InvalidArgument'
        $run.Message | Should -Match 'private key'
        Assert-OpContract -Op iis-bind -Json $run.Json -Failure
        Should -Invoke -ModuleName WincertOps Get-IisServerManager -Times 0 -Exactly
    }

    It 'reports a commit IIS refuses as CommandFailed naming the binding' {
        $iis.FailCommit = $true
        $run = Invoke-WincertOp iis-bind @{ SiteName = 'Default Web Site'; BindingInformation = '*:443:www.example.com'; SslFlags = 0; Thumbprint = $cert.Thumbprint; StoreName = 'My' }
        $run.Category | Should -BeExactly 'CommandFailed'
        $run.Message | Should -Match ([regex]::Escape('*:443:www.example.com'))
        $run.Message | Should -Match 'refused'
        Assert-OpContract -Op iis-bind -Json $run.Json -Failure
    }

    It 'fails with VerificationFailed when a fresh read does not show the binding' {
        $fresh = New-FakeIisServerManager -Site @{ 'Default Web Site' = @() }
        $script:calls = 0
        Mock -ModuleName WincertOps Get-IisServerManager { $script:calls++; if ($script:calls -eq 1) { $iis } else { $fresh } }
        $run = Invoke-WincertOp iis-bind @{ SiteName = 'Default Web Site'; BindingInformation = '*:443:new.example.com'; SslFlags = 0; Thumbprint = $cert.Thumbprint; StoreName = 'My' }
        $run.Category | Should -BeExactly 'VerificationFailed'
        $run.Message | Should -Match 'missing after it was written'
        Assert-OpContract -Op iis-bind -Json $run.Json -Failure
        Should -Invoke -ModuleName WincertOps Get-IisServerManager -Times 2 -Exactly
    }
}
