# sql-unbind: blanks SuperSocketNetLib\Certificate only on the instances bound to the given thumbprint, and
# restarts those when asked (with their dependents, fix 1).

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-WincertModule | Out-Null
    . (Join-Path $PSScriptRoot 'SqlFakes.ps1')
}

Describe 'sql-unbind' {
    BeforeAll {
        $bound = (New-TestCertificate -Subject 'CN=sql.example.com').Thumbprint
        $other = (New-TestCertificate -Subject 'CN=other.example.com').Thumbprint
        $defaultNetLib = Get-FakeSqlNetLibPath 'MSSQL16.MSSQLSERVER'
        $expressNetLib = Get-FakeSqlNetLibPath 'MSSQL15.SQLEXPRESS'
    }
    BeforeEach {
        $registry = New-FakeSqlRegistry ([ordered]@{ MSSQLSERVER = 'MSSQL16.MSSQLSERVER'; SQLEXPRESS = 'MSSQL15.SQLEXPRESS'; BARE = 'MSSQL14.BARE' }) `
            -Certificate @{ MSSQLSERVER = $bound.ToLowerInvariant(); SQLEXPRESS = $other.ToLowerInvariant() } -NoNetLib BARE
        Set-FakeSqlRegistryMocks $registry
        $log = [System.Collections.Generic.List[string]]::new()
        $agent = New-FakeServiceController -Name SQLSERVERAGENT -Log $log
        $services = @{ 'MSSQLSERVER' = (New-FakeServiceController -Name MSSQLSERVER -DependentServices $agent -Log $log) }
        Mock -ModuleName WincertOps Get-ServiceController { $services[$ServiceName] }
    }

    It 'blanks the value (not deletes it) only where it is the thumbprint, any case' {
        $run = Invoke-WincertOp sql-unbind @{ InstanceNames = @('MSSQLSERVER', 'SQLEXPRESS', 'BARE'); Thumbprint = $bound; RestartService = $false }
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op sql-unbind -Json $run.Json
        $instances = @($run.Output.Instances)
        $instances[0].Unbound | Should -BeTrue
        $instances[0].PreviousCertificate | Should -BeExactly $bound.ToLowerInvariant()
        $instances[0].Restarted | Should -BeFalse
        $instances[1].Unbound | Should -BeFalse
        $instances[1].PreviousCertificate | Should -BeExactly $other.ToLowerInvariant()
        $instances[2].Unbound | Should -BeFalse
        $instances[2].PreviousCertificate | Should -BeExactly ''
        Should -Invoke -ModuleName WincertOps Set-RegistryValue -Times 1 -Exactly -ParameterFilter { $Path -eq $defaultNetLib -and $Name -eq 'Certificate' -and $Value -eq '' }
        $registry[$defaultNetLib].ContainsKey('Certificate') | Should -BeTrue
        $registry[$expressNetLib]['Certificate'] | Should -BeExactly $other.ToLowerInvariant()
        $log.Count | Should -Be 0
    }

    It 'restarts only the instances it unbound, SQL Server Agent included' {
        $run = Invoke-WincertOp sql-unbind @{ InstanceNames = @('MSSQLSERVER', 'SQLEXPRESS'); Thumbprint = $bound.ToLowerInvariant(); RestartService = $true }
        $run.ExitCode | Should -Be 0
        @($run.Output.Instances | ForEach-Object Restarted) | Should -Be @($true, $false)
        $log | Should -Be @('Stop(SQLSERVERAGENT)', 'Stop(MSSQLSERVER)', 'Start(MSSQLSERVER)', 'Start(SQLSERVERAGENT)')
        Should -Invoke -ModuleName WincertOps Get-ServiceController -Times 1 -Exactly -ParameterFilter { $ServiceName -eq 'MSSQLSERVER' }
    }

    It 'fails with InstanceNotFound for an unknown instance' {
        $run = Invoke-WincertOp sql-unbind @{ InstanceNames = @('NOPE'); Thumbprint = $bound }
        $run.Category | Should -BeExactly 'InstanceNotFound'
        Assert-OpContract -Op sql-unbind -Json $run.Json -Failure
        Should -Invoke -ModuleName WincertOps Set-RegistryValue -Times 0 -Exactly
    }

    It 'reports a restart that times out as Timeout, after the value was blanked' {
        $services['MSSQLSERVER'] = New-FakeServiceController -Name MSSQLSERVER -StartHangs -Log $log
        $run = Invoke-WincertOp sql-unbind @{ InstanceNames = @('MSSQLSERVER'); Thumbprint = $bound; RestartService = $true }
        $run.Category | Should -BeExactly 'Timeout'
        $run.Message | Should -Match 'MSSQLSERVER did not restart'
        Assert-OpContract -Op sql-unbind -Json $run.Json -Failure
        $registry[$defaultNetLib]['Certificate'] | Should -BeExactly ''
    }
}
