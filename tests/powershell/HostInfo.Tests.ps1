# host-info: host name (Get-HostFqdn seam), OS build and version from the registry seams, PowerShell version.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-WincertModule | Out-Null
    $currentVersion = 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion'
}

Describe 'host-info' {
    BeforeEach {
        Mock -ModuleName WincertOps Get-HostFqdn { 'web01.corp.example.com' }
    }

    It 'reports the FQDN, the build and the version from the registry' {
        $values = @{ CurrentBuildNumber = '20348'; CurrentMajorVersionNumber = 10; CurrentMinorVersionNumber = 0 }
        Mock -ModuleName WincertOps Get-RegistryValue { $values[$Name] }
        $run = Invoke-WincertOp host-info @{}
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op host-info -Json $run.Json
        $run.Output.Hostname | Should -BeExactly 'web01.corp.example.com'
        $run.Output.OsBuild | Should -Be 20348
        $run.Output.OsVersion | Should -BeExactly '10.0.20348'
        $run.Output.PsVersion | Should -BeExactly $PSVersionTable.PSVersion.ToString()
        Should -Invoke -ModuleName WincertOps Get-RegistryValue -ParameterFilter {
            $Path -eq $currentVersion -and $Name -eq 'CurrentBuildNumber' }
    }

    It 'falls back to Environment.OSVersion on hosts without CurrentMajorVersionNumber (Windows Server 2012 R2)' {
        $values = @{ CurrentBuildNumber = '9600' }
        Mock -ModuleName WincertOps Get-RegistryValue { $values[$Name] }
        $run = Invoke-WincertOp host-info @{}
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op host-info -Json $run.Json
        $run.Output.OsBuild | Should -Be 9600
        $expected = '{0}.{1}.9600' -f [Environment]::OSVersion.Version.Major, [Environment]::OSVersion.Version.Minor
        $run.Output.OsVersion | Should -BeExactly $expected
    }

    It 'reports a failing seam as an error document, not a half result' {
        Mock -ModuleName WincertOps Get-RegistryValue { throw (& (Get-Module WincertOps) { New-OpError 'CommandFailed' 'registry unreadable' }) }
        $run = Invoke-WincertOp host-info @{}
        $run.ExitCode | Should -Be 1
        $run.Category | Should -BeExactly 'CommandFailed'
        Assert-OpContract -Op host-info -Json $run.Json -Failure
    }
}
