# sql-restart: restarts instance services with bounded waits, and leaves the dependent services (SQL Server
# Agent, ...) as they were (fix 1): the running ones are stopped first and started again after, in reverse.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-WincertModule | Out-Null
    . (Join-Path $PSScriptRoot 'SqlFakes.ps1')
}

Describe 'sql-restart' {
    BeforeEach {
        Set-FakeSqlRegistryMocks (New-FakeSqlRegistry ([ordered]@{ MSSQLSERVER = 'MSSQL16.MSSQLSERVER'; SQLEXPRESS = 'MSSQL15.SQLEXPRESS' }))
        $log = [System.Collections.Generic.List[string]]::new()
        $services = @{}
        Mock -ModuleName WincertOps Get-ServiceController { $services[$ServiceName] }
    }

    It 'restarts a service without dependents' {
        $services['MSSQLSERVER'] = New-FakeServiceController -Name MSSQLSERVER -Log $log
        $run = Invoke-WincertOp sql-restart @{ InstanceNames = @('MSSQLSERVER'); TimeoutSeconds = 30 }
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op sql-restart -Json $run.Json
        $run.Output.Instances[0].InstanceName | Should -BeExactly 'MSSQLSERVER'
        $run.Output.Instances[0].ServiceName | Should -BeExactly 'MSSQLSERVER'
        $run.Output.Instances[0].Status | Should -BeExactly 'Running'
        $log | Should -Be @('Stop(MSSQLSERVER)', 'Start(MSSQLSERVER)')
    }

    It 'starts a stopped service without stopping it first' {
        $services['MSSQL$SQLEXPRESS'] = New-FakeServiceController -Name 'MSSQL$SQLEXPRESS' -Status Stopped -Log $log
        $run = Invoke-WincertOp sql-restart @{ InstanceNames = @('SQLEXPRESS') }
        $run.ExitCode | Should -Be 0
        $run.Output.Instances[0].ServiceName | Should -BeExactly 'MSSQL$SQLEXPRESS'
        $log | Should -Be @('Start(MSSQL$SQLEXPRESS)')
    }

    It 'stops a running SQL Server Agent first and starts it again after SQL Server' {
        $agent = New-FakeServiceController -Name SQLSERVERAGENT -Log $log
        $services['MSSQLSERVER'] = New-FakeServiceController -Name MSSQLSERVER -DependentServices $agent -Log $log
        $run = Invoke-WincertOp sql-restart @{ InstanceNames = @('MSSQLSERVER') }
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op sql-restart -Json $run.Json
        $log | Should -Be @('Stop(SQLSERVERAGENT)', 'Stop(MSSQLSERVER)', 'Start(MSSQLSERVER)', 'Start(SQLSERVERAGENT)')
        $agent.Status | Should -BeExactly 'Running'
    }

    It 'leaves a stopped SQL Server Agent stopped' {
        $agent = New-FakeServiceController -Name SQLSERVERAGENT -Status Stopped -Log $log
        $services['MSSQLSERVER'] = New-FakeServiceController -Name MSSQLSERVER -DependentServices $agent -Log $log
        $run = Invoke-WincertOp sql-restart @{ InstanceNames = @('MSSQLSERVER') }
        $run.ExitCode | Should -Be 0
        $log | Should -Be @('Stop(MSSQLSERVER)', 'Start(MSSQLSERVER)')
        $agent.Status | Should -BeExactly 'Stopped'
    }

    It 'handles dependents of dependents: deepest stopped first, started last, each once' {
        $leaf = New-FakeServiceController -Name LEAF -Log $log
        $agent = New-FakeServiceController -Name SQLSERVERAGENT -DependentServices $leaf -Log $log
        $other = New-FakeServiceController -Name OTHER -DependentServices $leaf -Log $log
        $idle = New-FakeServiceController -Name IDLE -Status Stopped -Log $log
        # Windows lists transitive dependents too: LEAF appears twice here and must be handled once.
        $services['MSSQLSERVER'] = New-FakeServiceController -Name MSSQLSERVER -DependentServices $agent, $other, $leaf, $idle -Log $log
        $run = Invoke-WincertOp sql-restart @{ InstanceNames = @('MSSQLSERVER') }
        $run.ExitCode | Should -Be 0
        $log | Should -Be @('Stop(LEAF)', 'Stop(SQLSERVERAGENT)', 'Stop(OTHER)', 'Stop(MSSQLSERVER)',
            'Start(MSSQLSERVER)', 'Start(OTHER)', 'Start(SQLSERVERAGENT)', 'Start(LEAF)')
        $idle.Status | Should -BeExactly 'Stopped'
    }

    It 'fails with CommandFailed naming a dependent that does not start again, after trying the others' {
        $agent = New-FakeServiceController -Name SQLSERVERAGENT -StartFails -Log $log
        $other = New-FakeServiceController -Name SSISTELEMETRY -Log $log
        $services['MSSQLSERVER'] = New-FakeServiceController -Name MSSQLSERVER -DependentServices $agent, $other -Log $log
        $run = Invoke-WincertOp sql-restart @{ InstanceNames = @('MSSQLSERVER') }
        $run.ExitCode | Should -Be 1
        $run.Category | Should -BeExactly 'CommandFailed'
        $run.Message | Should -Match 'SQLSERVERAGENT'
        $run.Message | Should -Match 'MSSQLSERVER restarted'
        $run.Message | Should -Not -Match 'SSISTELEMETRY'
        Assert-OpContract -Op sql-restart -Json $run.Json -Failure
        $log | Should -Contain 'Start(SSISTELEMETRY)'
        $services['MSSQLSERVER'].Status | Should -BeExactly 'Running'
    }

    It 'reports a dependent that does not come back in time as Timeout naming it' {
        $agent = New-FakeServiceController -Name SQLSERVERAGENT -StartHangs -Log $log
        $services['MSSQLSERVER'] = New-FakeServiceController -Name MSSQLSERVER -DependentServices $agent -Log $log
        $run = Invoke-WincertOp sql-restart @{ InstanceNames = @('MSSQLSERVER'); TimeoutSeconds = 5 }
        $run.Category | Should -BeExactly 'Timeout'
        $run.Message | Should -Match 'SQLSERVERAGENT \(not running within 5 seconds\)'
        Assert-OpContract -Op sql-restart -Json $run.Json -Failure
    }

    It 'reports a dependent that does not stop as Timeout, without touching SQL Server' {
        $agent = New-FakeServiceController -Name SQLSERVERAGENT -StopHangs -Log $log
        $services['MSSQLSERVER'] = New-FakeServiceController -Name MSSQLSERVER -DependentServices $agent -Log $log
        $run = Invoke-WincertOp sql-restart @{ InstanceNames = @('MSSQLSERVER'); TimeoutSeconds = 5 }
        $run.Category | Should -BeExactly 'Timeout'
        $run.Message | Should -Match 'SQLSERVERAGENT \(a dependent of MSSQLSERVER\) did not stop'
        $log | Should -Be @('Stop(SQLSERVERAGENT)')
    }

    It 'reports SQL Server not coming back in time as Timeout (<Case>)' -TestCases @(
        @{ Case = 'stop hangs'; Hang = @{ StopHangs = $true } }, @{ Case = 'start hangs'; Hang = @{ StartHangs = $true } }) {
        $services['MSSQLSERVER'] = New-FakeServiceController -Name MSSQLSERVER -Log $log @Hang
        $run = Invoke-WincertOp sql-restart @{ InstanceNames = @('MSSQLSERVER'); TimeoutSeconds = 7 }
        $run.ExitCode | Should -Be 1
        $run.Category | Should -BeExactly 'Timeout'
        $run.Message | Should -BeExactly 'the service MSSQLSERVER did not restart within 7 seconds'
        Assert-OpContract -Op sql-restart -Json $run.Json -Failure
    }

    It 'reports SQL Server refusing to start as CommandFailed naming it' {
        $services['MSSQLSERVER'] = New-FakeServiceController -Name MSSQLSERVER -StartFails -Log $log
        $run = Invoke-WincertOp sql-restart @{ InstanceNames = @('MSSQLSERVER') }
        $run.Category | Should -BeExactly 'CommandFailed'
        $run.Message | Should -Match 'MSSQLSERVER could not be restarted'
        Assert-OpContract -Op sql-restart -Json $run.Json -Failure
    }

    It 'fails with InstanceNotFound for an unknown instance before touching any service' {
        $run = Invoke-WincertOp sql-restart @{ InstanceNames = @('NOPE') }
        $run.Category | Should -BeExactly 'InstanceNotFound'
        $run.Message | Should -Match "'NOPE'"
        Assert-OpContract -Op sql-restart -Json $run.Json -Failure
        Should -Invoke -ModuleName WincertOps Get-ServiceController -Times 0 -Exactly
    }

    It 'fails with InstanceNotFound on a host without SQL Server' {
        Set-FakeSqlRegistryMocks (New-FakeSqlRegistry -NoSql)
        $run = Invoke-WincertOp sql-restart @{ InstanceNames = @('MSSQLSERVER') }
        $run.Category | Should -BeExactly 'InstanceNotFound'
        $run.Message | Should -Match 'not installed'
    }

    It 'restarts several instances in order, with the default timeout' {
        $services['MSSQLSERVER'] = New-FakeServiceController -Name MSSQLSERVER -Log $log
        $services['MSSQL$SQLEXPRESS'] = New-FakeServiceController -Name 'MSSQL$SQLEXPRESS' -Log $log
        $run = Invoke-WincertOp sql-restart @{ InstanceNames = @('MSSQLSERVER', 'SQLEXPRESS') }
        $run.ExitCode | Should -Be 0
        @($run.Output.Instances).Count | Should -Be 2
        $log | Should -Be @('Stop(MSSQLSERVER)', 'Start(MSSQLSERVER)', 'Stop(MSSQL$SQLEXPRESS)', 'Start(MSSQL$SQLEXPRESS)')
    }
}
