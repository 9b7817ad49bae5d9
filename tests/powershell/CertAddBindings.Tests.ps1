# cert-add's one-call add: import, then the IIS binding (IisBinding) or the SQL Server binding (SqlBinding),
# then the clean-up of the replaced certificate when nothing uses it any more.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-WincertModule | Out-Null
    . (Join-Path $PSScriptRoot 'SqlFakes.ps1')
    $leaf = New-TestCertificate -Subject 'CN=www.example.com' -DnsName www.example.com
    $pfx = New-TestPfx -Certificate $leaf
    $old = New-TestCertificate -Subject 'CN=www.example.com (expiring)'
    $defaultNetLib = Get-FakeSqlNetLibPath 'MSSQL16.MSSQLSERVER'
}

Describe 'cert-add with IisBinding / SqlBinding' {
    BeforeEach {
        $store = New-FakeX509Store -Name My -Certificate $old
        Mock -ModuleName WincertOps Test-CertStorePath { $true }
        Mock -ModuleName WincertOps Open-LocalMachineStore { $store }
        Mock -ModuleName WincertOps Get-LegacyCspKeyInfo { $null }
        $script:keyInfo = New-TestKeyInfo -Kind CNG -UniqueName 'leaf-key'
        Mock -ModuleName WincertOps Get-CngKeyInfo { $script:keyInfo }
        Mock -ModuleName WincertOps Get-KeyFilePath { if ($UniqueName -eq 'leaf-key') { 'C:\ProgramData\Microsoft\Crypto\Keys\leaf-key' } else { '' } }
        Mock -ModuleName WincertOps Invoke-Native { throw "unexpected native call: $FilePath" }
        Mock -ModuleName WincertOps Test-IisInstalled { $true }
        $iis = New-FakeIisServerManager -Site @{
            'Default Web Site' = @(New-FakeIisBinding -BindingInformation '*:443:www.example.com' -CertificateHash ([System.Convert]::FromHexString($old.Thumbprint)) -CertificateStoreName 'My' -SslFlags 1)
            'Intranet'         = @()
        }
        Mock -ModuleName WincertOps Get-IisServerManager { $iis }
        $registry = New-FakeSqlRegistry ([ordered]@{ MSSQLSERVER = 'MSSQL16.MSSQLSERVER'; SQLEXPRESS = 'MSSQL15.SQLEXPRESS' })
        Set-FakeSqlRegistryMocks $registry
        Mock -ModuleName WincertOps Get-ServiceStartName { 'NT Service\' + $ServiceName }
        $script:acl = [System.Collections.Generic.HashSet[string]]::new()
        Mock -ModuleName WincertOps Test-KeyFileReadAccess { $script:acl.Contains("$KeyFile|$Account") }
        Mock -ModuleName WincertOps Grant-KeyFileRead { [void]$script:acl.Add("$KeyFile|$Account") }
        $log = [System.Collections.Generic.List[string]]::new()
        $services = @{
            'MSSQLSERVER'      = (New-FakeServiceController -Name MSSQLSERVER -Log $log -DependentServices (New-FakeServiceController -Name SQLSERVERAGENT -Log $log))
            'MSSQL$SQLEXPRESS' = (New-FakeServiceController -Name 'MSSQL$SQLEXPRESS' -Log $log)
        }
        Mock -ModuleName WincertOps Get-ServiceController { $services[$ServiceName] }
        $arguments = @{
            StoreName = 'My'; ContentsBase64 = $pfx.Base64; PfxPassword = $pfx.Password; Thumbprint = $leaf.Thumbprint
            Overwrite = $false; ProviderName = ''; AddChainToCaStore = $false; IisBinding = $null; SqlBinding = $null
            ReplacedThumbprint = ''
        }
    }

    Context 'IisBinding' {
        It 'imports, replaces the binding with the new certificate, and removes the old certificate once unused' {
            $arguments.IisBinding = @{ SiteName = 'Default Web Site'; BindingInformation = '*:443:www.example.com'; SslFlags = 1 }
            $arguments.ReplacedThumbprint = $old.Thumbprint
            $run = Invoke-WincertOp cert-add $arguments
            $run.ExitCode | Should -Be 0
            Assert-OpContract -Op cert-add -Json $run.Json
            $run.Output.Status | Should -BeExactly 'Added'
            $run.Output.Binding.SiteName | Should -BeExactly 'Default Web Site'
            $run.Output.Binding.CertificateHash | Should -BeExactly $leaf.Thumbprint
            $run.Output.Binding.CertificateStoreName | Should -BeExactly 'My'
            $run.Output.Binding.SslFlags | Should -Be 1
            $binding = @($iis.Sites['Default Web Site'].Bindings)
            $binding.Count | Should -Be 1
            [System.Convert]::ToHexString($binding[0].CertificateHash) | Should -BeExactly $leaf.Thumbprint
            $binding[0].GetAttributeValue('sslFlags') | Should -Be 1
            $iis.CommitCount | Should -Be 1
            $run.Output.Replaced.Thumbprint | Should -BeExactly $old.Thumbprint
            $run.Output.Replaced.Removed | Should -BeTrue
            @($run.Output.Replaced.BoundSites).Count | Should -Be 0
            $store.Calls | Should -Contain "Add($($leaf.Thumbprint))"
            $store.Calls | Should -Contain "Remove($($old.Thumbprint))"
        }

        It 'keeps the replaced certificate while another binding still uses it' {
            $arguments.IisBinding = @{ SiteName = 'Intranet'; BindingInformation = '*:8443:'; SslFlags = 0 }
            $arguments.ReplacedThumbprint = $old.Thumbprint
            $run = Invoke-WincertOp cert-add $arguments
            $run.ExitCode | Should -Be 0
            Assert-OpContract -Op cert-add -Json $run.Json
            $run.Output.Replaced.Removed | Should -BeFalse
            @($run.Output.Replaced.BoundSites) | Should -Be @('Default Web Site (*:443:www.example.com)')
            $store.Calls | Should -Not -Contain "Remove($($old.Thumbprint))"
        }

        It 'refuses an SNI binding without a host name before anything is imported or IIS is touched' {
            $arguments.IisBinding = @{ SiteName = 'Default Web Site'; BindingInformation = '*:443:'; SslFlags = 3 }
            $run = Invoke-WincertOp cert-add $arguments
            $run.Category | Should -BeExactly 'InvalidArgument'
            $run.Message | Should -Match 'SNI'
            Assert-OpContract -Op cert-add -Json $run.Json -Failure
            Should -Invoke -ModuleName WincertOps Get-IisServerManager -Times 0 -Exactly
            Should -Invoke -ModuleName WincertOps Open-LocalMachineStore -Times 0 -Exactly
            $store.Calls.Count | Should -Be 0
        }

        It 'fails with SiteNotFound for a missing site, committing nothing' {
            $arguments.IisBinding = @{ SiteName = 'Nope'; BindingInformation = '*:443:x'; SslFlags = 0 }
            $run = Invoke-WincertOp cert-add $arguments
            $run.Category | Should -BeExactly 'SiteNotFound'
            Assert-OpContract -Op cert-add -Json $run.Json -Failure
            $iis.CommitCount | Should -Be 0
        }

        It 'fails with IisNotInstalled on a host without IIS' {
            Mock -ModuleName WincertOps Get-IisServerManager { throw (& (Get-Module WincertOps) { New-OpError 'IisNotInstalled' 'IIS is not installed on this host' }) }
            $arguments.IisBinding = @{ SiteName = 'Default Web Site'; BindingInformation = '*:443:x'; SslFlags = 0 }
            $run = Invoke-WincertOp cert-add $arguments
            $run.Category | Should -BeExactly 'IisNotInstalled'
            Assert-OpContract -Op cert-add -Json $run.Json -Failure
        }

        It 'reports a commit IIS refuses as CommandFailed' {
            $iis.FailCommit = $true
            $arguments.IisBinding = @{ SiteName = 'Default Web Site'; BindingInformation = '*:443:www.example.com'; SslFlags = 1 }
            $run = Invoke-WincertOp cert-add $arguments
            $run.Category | Should -BeExactly 'CommandFailed'
            Assert-OpContract -Op cert-add -Json $run.Json -Failure
        }
    }

    Context 'SqlBinding' {
        It 'binds every instance (key access, registry, restart with SQL Server Agent)' {
            $arguments.SqlBinding = @{ InstanceNames = @('MSSQLSERVER', 'SQLEXPRESS'); RestartService = $true }
            $run = Invoke-WincertOp cert-add $arguments
            $run.ExitCode | Should -Be 0
            Assert-OpContract -Op cert-add -Json $run.Json
            $bindings = @($run.Output.SqlBindings)
            @($bindings | ForEach-Object InstanceName) | Should -Be @('MSSQLSERVER', 'SQLEXPRESS')
            @($bindings | ForEach-Object Verified) | Should -Be @($true, $true)
            @($bindings | ForEach-Object Restarted) | Should -Be @($true, $true)
            $bindings[0].KeyFile | Should -BeExactly 'C:\ProgramData\Microsoft\Crypto\Keys\leaf-key'
            $registry[$defaultNetLib]['Certificate'] | Should -BeExactly $leaf.Thumbprint.ToLowerInvariant()
            Should -Invoke -ModuleName WincertOps Grant-KeyFileRead -Times 1 -Exactly -ParameterFilter { $Account -eq 'NT Service\MSSQLSERVER' }
            Should -Invoke -ModuleName WincertOps Grant-KeyFileRead -Times 1 -Exactly -ParameterFilter { $Account -eq 'NT Service\MSSQL$SQLEXPRESS' }
            $log | Should -Be @('Stop(SQLSERVERAGENT)', 'Stop(MSSQLSERVER)', 'Start(MSSQLSERVER)', 'Start(SQLSERVERAGENT)',
                'Stop(MSSQL$SQLEXPRESS)', 'Start(MSSQL$SQLEXPRESS)')
        }

        It 'keeps the replaced certificate while another SQL Server instance uses it' {
            $registry[(Get-FakeSqlNetLibPath 'MSSQL15.SQLEXPRESS')]['Certificate'] = $old.Thumbprint
            Mock -ModuleName WincertOps Test-IisInstalled { $false }
            $arguments.SqlBinding = @{ InstanceNames = @('MSSQLSERVER'); RestartService = $false }
            $arguments.ReplacedThumbprint = $old.Thumbprint
            $run = Invoke-WincertOp cert-add $arguments
            $run.ExitCode | Should -Be 0
            $run.Output.Replaced.Removed | Should -BeFalse
            @($run.Output.Replaced.BoundSites) | Should -Be @('SQL Server instance SQLEXPRESS')
        }

        It 'fails with CommandFailed naming the provider when the key has no file, leaving SQL Server untouched' {
            $script:keyInfo = New-TestKeyInfo -Kind CNG -ProviderName 'Luna Key Storage Provider' -UniqueName 'hsm-key'
            $arguments.SqlBinding = @{ InstanceNames = @('MSSQLSERVER'); RestartService = $true }
            $run = Invoke-WincertOp cert-add $arguments
            $run.Category | Should -BeExactly 'CommandFailed'
            $run.Message | Should -Match "'Luna Key Storage Provider'"
            Assert-OpContract -Op cert-add -Json $run.Json -Failure
            Should -Invoke -ModuleName WincertOps Set-RegistryValue -Times 0 -Exactly
            $log.Count | Should -Be 0
        }

        It 'fails with InstanceNotFound for an unknown instance' {
            $arguments.SqlBinding = @{ InstanceNames = @('NOPE'); RestartService = $false }
            $run = Invoke-WincertOp cert-add $arguments
            $run.Category | Should -BeExactly 'InstanceNotFound'
            Assert-OpContract -Op cert-add -Json $run.Json -Failure
        }
    }
}
