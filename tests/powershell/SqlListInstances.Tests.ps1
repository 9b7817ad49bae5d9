# sql-list-instances: instances from the registry with the raw SuperSocketNetLib Certificate value, service
# name and account.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-WincertModule | Out-Null
    . (Join-Path $PSScriptRoot 'SqlFakes.ps1')
}

Describe 'sql-list-instances' {
    BeforeEach {
        Mock -ModuleName WincertOps Get-ServiceStartName { @{ 'MSSQLSERVER' = 'NT Service\MSSQLSERVER'; 'MSSQL$SQLEXPRESS' = 'CORP\svc-sql$' }[$ServiceName] }
    }

    It 'lists every instance with its id, certificate value, service name and account' {
        Set-FakeSqlRegistryMocks (New-FakeSqlRegistry ([ordered]@{ MSSQLSERVER = 'MSSQL16.MSSQLSERVER'; SQLEXPRESS = 'MSSQL15.SQLEXPRESS' }) `
                -Certificate @{ MSSQLSERVER = '426e9669376072d8d1461082a6e31ab4023e1857' })
        $run = Invoke-WincertOp sql-list-instances @{}
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op sql-list-instances -Json $run.Json
        $instances = @($run.Output.Instances)
        $instances.Count | Should -Be 2
        $instances[0].InstanceName | Should -BeExactly 'MSSQLSERVER'
        $instances[0].InstanceId | Should -BeExactly 'MSSQL16.MSSQLSERVER'
        $instances[0].Certificate | Should -BeExactly '426e9669376072d8d1461082a6e31ab4023e1857'
        $instances[0].ServiceName | Should -BeExactly 'MSSQLSERVER'
        $instances[0].ServiceAccount | Should -BeExactly 'NT Service\MSSQLSERVER'
        $instances[1].ServiceName | Should -BeExactly 'MSSQL$SQLEXPRESS'
        $instances[1].Certificate | Should -BeExactly ''
        $instances[1].ServiceAccount | Should -BeExactly 'CORP\svc-sql$'
    }

    It 'reports an empty certificate for an instance without a SuperSocketNetLib key' {
        Set-FakeSqlRegistryMocks (New-FakeSqlRegistry ([ordered]@{ SQLEXPRESS = 'MSSQL15.SQLEXPRESS' }) -NoNetLib SQLEXPRESS)
        $run = Invoke-WincertOp sql-list-instances @{}
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op sql-list-instances -Json $run.Json
        @($run.Output.Instances)[0].Certificate | Should -BeExactly ''
    }

    It 'reports no instances on a host without SQL Server (not a failure)' {
        Set-FakeSqlRegistryMocks (New-FakeSqlRegistry -NoSql)
        $run = Invoke-WincertOp sql-list-instances @{}
        $run.ExitCode | Should -Be 0
        $run.Json | Should -BeExactly '{"Instances":[]}'
        Should -Invoke -ModuleName WincertOps Get-ServiceStartName -Times 0 -Exactly
    }
}
