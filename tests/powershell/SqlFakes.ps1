# Shared fakes for the SQL Server op tests (dot-source in BeforeAll; not a test file itself):
#   $reg = New-FakeSqlRegistry @{ MSSQLSERVER = 'MSSQL16.MSSQLSERVER' } -Certificate @{ MSSQLSERVER = 'abc...' }
#   Set-FakeSqlRegistryMocks $reg      (in BeforeEach / It: Test-RegistryKey, Get-RegistryValue(Names), Set-RegistryValue)

function Get-FakeSqlNetLibPath([string]$InstanceId) {
    'HKLM:\SOFTWARE\Microsoft\Microsoft SQL Server\' + $InstanceId + '\MSSQLServer\SuperSocketNetLib'
}

function New-FakeSqlRegistry {
    <# An in-memory HKLM: key path -> @{ value name -> value }. -Instance: instance name -> instance id;
       -Certificate: instance name -> SuperSocketNetLib\Certificate; -NoNetLib: instances without that key;
       -NoSql: no Instance Names\SQL key at all. #>
    param([System.Collections.Specialized.OrderedDictionary]$Instance = [ordered]@{}, [hashtable]$Certificate = @{},
        [string[]]$NoNetLib = @(), [switch]$NoSql)
    $registry = @{}
    if ($NoSql) { return $registry }
    $names = [ordered]@{}
    foreach ($name in $Instance.Keys) {
        $names[$name] = $Instance[$name]
        if ($NoNetLib -notcontains $name) {
            $value = ''
            if ($Certificate.ContainsKey($name)) { $value = $Certificate[$name] }
            $registry[(Get-FakeSqlNetLibPath $Instance[$name])] = @{ Certificate = $value }
        }
    }
    $registry['HKLM:\SOFTWARE\Microsoft\Microsoft SQL Server\Instance Names\SQL'] = $names
    return $registry
}

function Set-FakeSqlRegistryMocks($Registry) {
    $script:FakeRegistry = $Registry
    Mock -ModuleName WincertOps Test-RegistryKey { $script:FakeRegistry.ContainsKey($Path) }
    Mock -ModuleName WincertOps Get-RegistryValue { if ($script:FakeRegistry.ContainsKey($Path)) { $script:FakeRegistry[$Path][$Name] } }
    Mock -ModuleName WincertOps Get-RegistryValueNames { if ($script:FakeRegistry.ContainsKey($Path)) { @($script:FakeRegistry[$Path].Keys) } }
    Mock -ModuleName WincertOps Set-RegistryValue { $script:FakeRegistry[$Path][$Name] = $Value }
}
