# sql-bind: grants the service account read on the certificate's key file (fix 2), writes and verifies
# SuperSocketNetLib\Certificate per instance, and restarts the service when asked (fix 1 applies).

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-WincertModule | Out-Null
    . (Join-Path $PSScriptRoot 'SqlFakes.ps1')
    $defaultNetLib = Get-FakeSqlNetLibPath 'MSSQL16.MSSQLSERVER'
}

Describe 'sql-bind' {
    BeforeAll {
        $rsa = New-TestCertificate -Subject 'CN=sql.example.com'
        $ecdsa = New-TestCertificate -Subject 'CN=sql-ec.example.com' -KeyAlgorithm ECDSA -Curve nistP384
        $public = New-TestCertificate -Subject 'CN=public.example.com' -NoPrivateKey
        $absent = New-TestCertificate -Subject 'CN=absent.example.com'
    }
    BeforeEach {
        $store = New-FakeX509Store -Name My -Certificate $rsa, $ecdsa, $public
        Mock -ModuleName WincertOps Test-CertStorePath { $true }
        Mock -ModuleName WincertOps Open-LocalMachineStore { $store }
        $registry = New-FakeSqlRegistry ([ordered]@{ MSSQLSERVER = 'MSSQL16.MSSQLSERVER'; SQLEXPRESS = 'MSSQL15.SQLEXPRESS'; BROKEN = 'MSSQL14.BROKEN' }) -NoNetLib BROKEN
        Set-FakeSqlRegistryMocks $registry
        # Key seams: CNG keys by default (RSA and ECDSA), the file found under Crypto\Keys.
        $script:capi = @{}
        $script:cng = @{
            $rsa.Thumbprint   = (New-TestKeyInfo -Kind CNG -UniqueName 'rsa-cng-key')
            $ecdsa.Thumbprint = (New-TestKeyInfo -Kind CNG -UniqueName 'ecdsa-cng-key')
        }
        Mock -ModuleName WincertOps Get-LegacyCspKeyInfo { $script:capi[$Certificate.Thumbprint] }
        Mock -ModuleName WincertOps Get-CngKeyInfo { $script:cng[$Certificate.Thumbprint] }
        $script:files = @{
            'rsa-cng-key'    = 'C:\ProgramData\Microsoft\Crypto\Keys\rsa-cng-key'
            'ecdsa-cng-key'  = 'C:\ProgramData\Microsoft\Crypto\Keys\ecdsa-cng-key'
            'rsa-capi-key'   = 'C:\ProgramData\Microsoft\Crypto\RSA\MachineKeys\rsa-capi-key'
        }
        Mock -ModuleName WincertOps Get-KeyFilePath { [string]$script:files[$UniqueName] }
        $script:accounts = @{ 'MSSQLSERVER' = 'NT Service\MSSQLSERVER'; 'MSSQL$SQLEXPRESS' = '.\sqlsvc' }
        Mock -ModuleName WincertOps Get-ServiceStartName { [string]$script:accounts[$ServiceName] }
        Mock -ModuleName WincertOps Get-ComputerName { 'SQLHOST' }
        # The ACL: who can read which file; Grant-KeyFileRead adds to it (unless a test says otherwise).
        $script:acl = [System.Collections.Generic.HashSet[string]]::new([System.StringComparer]::OrdinalIgnoreCase)
        Mock -ModuleName WincertOps Test-KeyFileReadAccess { $script:acl.Contains("$KeyFile|$Account") }
        Mock -ModuleName WincertOps Grant-KeyFileRead { [void]$script:acl.Add("$KeyFile|$Account") }
        Mock -ModuleName WincertOps Invoke-Native { throw 'Invoke-Native was not expected' }
        $log = [System.Collections.Generic.List[string]]::new()
        $services = @{
            'MSSQLSERVER'      = (New-FakeServiceController -Name MSSQLSERVER -Log $log -DependentServices (New-FakeServiceController -Name SQLSERVERAGENT -Log $log))
            'MSSQL$SQLEXPRESS' = (New-FakeServiceController -Name 'MSSQL$SQLEXPRESS' -Log $log)
        }
        Mock -ModuleName WincertOps Get-ServiceController { $services[$ServiceName] }
    }

    It 'writes the thumbprint, verifies it and grants the service account read on the CNG key file' {
        $run = Invoke-WincertOp sql-bind @{ InstanceNames = @('MSSQLSERVER'); Thumbprint = $rsa.Thumbprint.ToLowerInvariant(); StoreName = 'My'; RestartService = $false }
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op sql-bind -Json $run.Json
        $instance = @($run.Output.Instances)[0]
        $instance.InstanceName | Should -BeExactly 'MSSQLSERVER'
        $instance.Verified | Should -BeTrue
        $instance.KeyFile | Should -BeExactly 'C:\ProgramData\Microsoft\Crypto\Keys\rsa-cng-key'
        $instance.Restarted | Should -BeFalse
        $lower = $rsa.Thumbprint.ToLowerInvariant()
        Should -Invoke -ModuleName WincertOps Set-RegistryValue -Times 1 -Exactly -ParameterFilter {
            $Path -eq $defaultNetLib -and $Name -eq 'Certificate' -and $Value -ceq $lower }
        $registry[$defaultNetLib]['Certificate'] | Should -BeExactly $lower
        Should -Invoke -ModuleName WincertOps Grant-KeyFileRead -Times 1 -Exactly -ParameterFilter {
            $KeyFile -eq 'C:\ProgramData\Microsoft\Crypto\Keys\rsa-cng-key' -and $Account -ceq 'NT Service\MSSQLSERVER' }
        # Read back before (not yet granted) and after the grant.
        Should -Invoke -ModuleName WincertOps Test-KeyFileReadAccess -Times 2 -Exactly
        $log.Count | Should -Be 0
    }

    It 'finds the key file of a <Kind> <Algorithm> key' -TestCases @(
        @{ Kind = 'CNG'; Algorithm = 'RSA'; File = 'C:\ProgramData\Microsoft\Crypto\Keys\rsa-cng-key' },
        @{ Kind = 'CNG'; Algorithm = 'ECDSA'; File = 'C:\ProgramData\Microsoft\Crypto\Keys\ecdsa-cng-key' },
        @{ Kind = 'CAPI'; Algorithm = 'RSA'; File = 'C:\ProgramData\Microsoft\Crypto\RSA\MachineKeys\rsa-capi-key' }) {
        $certificate = if ($Algorithm -eq 'RSA') { $rsa } else { $ecdsa }
        if ($Kind -eq 'CAPI') {
            $script:capi[$rsa.Thumbprint] = New-TestKeyInfo -Kind CAPI -ProviderName 'Microsoft Enhanced RSA and AES Cryptographic Provider' -UniqueName 'rsa-capi-key'
        }
        $run = Invoke-WincertOp sql-bind @{ InstanceNames = @('MSSQLSERVER'); Thumbprint = $certificate.Thumbprint; StoreName = 'My' }
        $run.ExitCode | Should -Be 0
        @($run.Output.Instances)[0].KeyFile | Should -BeExactly $File
        Should -Invoke -ModuleName WincertOps Grant-KeyFileRead -Times 1 -Exactly -ParameterFilter { $KeyFile -eq $File }
    }

    It 'binds several instances, normalising .\user to COMPUTER\user, and restarts each with its dependents' {
        $run = Invoke-WincertOp sql-bind @{ InstanceNames = @('MSSQLSERVER', 'SQLEXPRESS'); Thumbprint = $rsa.Thumbprint; StoreName = 'My'; RestartService = $true }
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op sql-bind -Json $run.Json
        @($run.Output.Instances | ForEach-Object InstanceName) | Should -Be @('MSSQLSERVER', 'SQLEXPRESS')
        @($run.Output.Instances | ForEach-Object Restarted) | Should -Be @($true, $true)
        Should -Invoke -ModuleName WincertOps Grant-KeyFileRead -Times 1 -Exactly -ParameterFilter { $Account -ceq 'SQLHOST\sqlsvc' }
        $registry[(Get-FakeSqlNetLibPath 'MSSQL15.SQLEXPRESS')]['Certificate'] | Should -BeExactly $rsa.Thumbprint.ToLowerInvariant()
        $log | Should -Be @('Stop(SQLSERVERAGENT)', 'Stop(MSSQLSERVER)', 'Start(MSSQLSERVER)', 'Start(SQLSERVERAGENT)',
            'Stop(MSSQL$SQLEXPRESS)', 'Start(MSSQL$SQLEXPRESS)')
    }

    It 'grants nothing to <Account> (SYSTEM reads every machine key)' -TestCases @(@{ Account = 'LocalSystem' }, @{ Account = 'NT AUTHORITY\SYSTEM' }, @{ Account = '.\LocalSystem' }) {
        $script:accounts['MSSQLSERVER'] = $Account
        $run = Invoke-WincertOp sql-bind @{ InstanceNames = @('MSSQLSERVER'); Thumbprint = $rsa.Thumbprint; StoreName = 'My' }
        $run.ExitCode | Should -Be 0
        @($run.Output.Instances)[0].KeyFile | Should -Not -BeNullOrEmpty
        Should -Invoke -ModuleName WincertOps Grant-KeyFileRead -Times 0 -Exactly
    }

    It 'grants <Expected> for the service account <Account>' -TestCases @(
        @{ Account = 'NetworkService'; Expected = 'NT AUTHORITY\NETWORK SERVICE' },
        @{ Account = 'NT AUTHORITY\NetworkService'; Expected = 'NT AUTHORITY\NETWORK SERVICE' },
        @{ Account = 'LocalService'; Expected = 'NT AUTHORITY\LOCAL SERVICE' },
        @{ Account = 'CORP\svc-sql$'; Expected = 'CORP\svc-sql$' }) {
        $script:accounts['MSSQLSERVER'] = $Account
        $run = Invoke-WincertOp sql-bind @{ InstanceNames = @('MSSQLSERVER'); Thumbprint = $rsa.Thumbprint; StoreName = 'My' }
        $run.ExitCode | Should -Be 0
        Should -Invoke -ModuleName WincertOps Grant-KeyFileRead -Times 1 -Exactly -ParameterFilter { $Account -ceq $Expected }
    }

    It 'grants nothing again when the account can already read the key file' {
        [void]$script:acl.Add('C:\ProgramData\Microsoft\Crypto\Keys\rsa-cng-key|NT Service\MSSQLSERVER')
        $run = Invoke-WincertOp sql-bind @{ InstanceNames = @('MSSQLSERVER'); Thumbprint = $rsa.Thumbprint; StoreName = 'My' }
        $run.ExitCode | Should -Be 0
        Should -Invoke -ModuleName WincertOps Grant-KeyFileRead -Times 0 -Exactly
    }

    It 'falls back to icacls when writing the ACL <Case>, and verifies again' -TestCases @(
        @{ Case = 'throws'; Throws = $true }, @{ Case = 'does not show'; Throws = $false }) {
        if ($Throws) { Mock -ModuleName WincertOps Grant-KeyFileRead { throw [System.UnauthorizedAccessException]::new('Attempted to perform an unauthorized operation.') } }
        else { Mock -ModuleName WincertOps Grant-KeyFileRead { } }
        Mock -ModuleName WincertOps Invoke-Native { [void]$script:acl.Add("$($Arguments[0])|NT Service\MSSQLSERVER"); New-NativeResult -ExitCode 0 -Output 'processed file: ...' }
        $run = Invoke-WincertOp sql-bind @{ InstanceNames = @('MSSQLSERVER'); Thumbprint = $rsa.Thumbprint; StoreName = 'My' }
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op sql-bind -Json $run.Json
        Should -Invoke -ModuleName WincertOps Invoke-Native -Times 1 -Exactly -ParameterFilter {
            $FilePath -like '*icacls.exe' -and ($Arguments -join '|') -ceq 'C:\ProgramData\Microsoft\Crypto\Keys\rsa-cng-key|/grant|NT Service\MSSQLSERVER:R' }
        # Read back: before; after the ACL write (unless it threw); after icacls.
        $reads = if ($Throws) { 2 } else { 3 }
        Should -Invoke -ModuleName WincertOps Test-KeyFileReadAccess -Times $reads -Exactly
    }

    It 'fails with CommandFailed when icacls fails too, naming both failures, before the registry is written' {
        Mock -ModuleName WincertOps Grant-KeyFileRead { throw [System.UnauthorizedAccessException]::new('Attempted to perform an unauthorized operation.') }
        Mock -ModuleName WincertOps Invoke-Native { New-NativeResult -ExitCode 5 -Output 'C:\ProgramData\...: Access is denied.' }
        $run = Invoke-WincertOp sql-bind @{ InstanceNames = @('MSSQLSERVER'); Thumbprint = $rsa.Thumbprint; StoreName = 'My' }
        $run.Category | Should -BeExactly 'CommandFailed'
        $run.Message | Should -Match 'icacls exited 5'
        $run.Message | Should -Match 'Access is denied'
        $run.Message | Should -Match 'unauthorized operation'
        Assert-OpContract -Op sql-bind -Json $run.Json -Failure
        Should -Invoke -ModuleName WincertOps Set-RegistryValue -Times 0 -Exactly
    }

    It 'fails with VerificationFailed when the account still cannot read the file after icacls' {
        Mock -ModuleName WincertOps Grant-KeyFileRead { }
        Mock -ModuleName WincertOps Invoke-Native { New-NativeResult -ExitCode 0 -Output 'Successfully processed 1 files' }
        $run = Invoke-WincertOp sql-bind @{ InstanceNames = @('MSSQLSERVER'); Thumbprint = $rsa.Thumbprint; StoreName = 'My' }
        $run.Category | Should -BeExactly 'VerificationFailed'
        $run.Message | Should -Match ([regex]::Escape('NT Service\MSSQLSERVER still has no read access'))
        Assert-OpContract -Op sql-bind -Json $run.Json -Failure
        Should -Invoke -ModuleName WincertOps Set-RegistryValue -Times 0 -Exactly
    }

    It 'fails with CommandFailed naming the provider when the key has no file (HSM), before the registry is written' {
        $script:cng[$rsa.Thumbprint] = New-TestKeyInfo -Kind CNG -ProviderName 'SafeNet Key Storage Provider' -UniqueName 'hsm-key-17'
        $run = Invoke-WincertOp sql-bind @{ InstanceNames = @('MSSQLSERVER'); Thumbprint = $rsa.Thumbprint; StoreName = 'My' }
        $run.ExitCode | Should -Be 1
        $run.Category | Should -BeExactly 'CommandFailed'
        $run.Message | Should -Match "provider 'SafeNet Key Storage Provider'"
        $run.Message | Should -Match 'hsm-key-17'
        $run.Message | Should -Match $rsa.Thumbprint
        Assert-OpContract -Op sql-bind -Json $run.Json -Failure
        Should -Invoke -ModuleName WincertOps Set-RegistryValue -Times 0 -Exactly
        Should -Invoke -ModuleName WincertOps Grant-KeyFileRead -Times 0 -Exactly
        $registry[$defaultNetLib]['Certificate'] | Should -BeExactly ''
    }

    It 'fails with CommandFailed when the private key cannot be read at all' {
        $script:cng.Remove($rsa.Thumbprint)
        $run = Invoke-WincertOp sql-bind @{ InstanceNames = @('MSSQLSERVER'); Thumbprint = $rsa.Thumbprint; StoreName = 'My' }
        $run.Category | Should -BeExactly 'CommandFailed'
        $run.Message | Should -Match 'cannot be read'
        Should -Invoke -ModuleName WincertOps Set-RegistryValue -Times 0 -Exactly
    }

    It 'reports Verified false when the value read back differs' {
        Mock -ModuleName WincertOps Set-RegistryValue { }
        $run = Invoke-WincertOp sql-bind @{ InstanceNames = @('MSSQLSERVER'); Thumbprint = $rsa.Thumbprint; StoreName = 'My' }
        $run.ExitCode | Should -Be 0
        @($run.Output.Instances)[0].Verified | Should -BeFalse
    }

    It 'fails with InstanceNotFound for <Case>' -TestCases @(
        @{ Case = 'an unknown instance'; Instance = 'NOPE'; Pattern = "'NOPE' does not exist" },
        @{ Case = 'an instance without SuperSocketNetLib'; Instance = 'BROKEN'; Pattern = 'no SuperSocketNetLib' }) {
        $run = Invoke-WincertOp sql-bind @{ InstanceNames = @($Instance); Thumbprint = $rsa.Thumbprint; StoreName = 'My' }
        $run.Category | Should -BeExactly 'InstanceNotFound'
        $run.Message | Should -Match $Pattern
        Assert-OpContract -Op sql-bind -Json $run.Json -Failure
        Should -Invoke -ModuleName WincertOps Grant-KeyFileRead -Times 0 -Exactly
    }

    It 'fails with CertificateNotFound, InvalidArgument (no private key) and StoreNotFound' {
        $run = Invoke-WincertOp sql-bind @{ InstanceNames = @('MSSQLSERVER'); Thumbprint = $absent.Thumbprint; StoreName = 'My' }
        $run.Category | Should -BeExactly 'CertificateNotFound'
        Assert-OpContract -Op sql-bind -Json $run.Json -Failure
        $run = Invoke-WincertOp sql-bind @{ InstanceNames = @('MSSQLSERVER'); Thumbprint = $public.Thumbprint; StoreName = 'My' }
        $run.Category | Should -BeExactly 'InvalidArgument'
        $run.Message | Should -Match 'private key'
        Mock -ModuleName WincertOps Test-CertStorePath { $false }
        $run = Invoke-WincertOp sql-bind @{ InstanceNames = @('MSSQLSERVER'); Thumbprint = $rsa.Thumbprint; StoreName = 'Nope' }
        $run.Category | Should -BeExactly 'StoreNotFound'
        Should -Invoke -ModuleName WincertOps Set-RegistryValue -Times 0 -Exactly
    }
}

Describe 'SQL service account names (ConvertTo-NtAccountName)' {
    It '<Account> -> <Expected>' -TestCases @(
        @{ Account = '.\sqlsvc'; Expected = 'SQLHOST\sqlsvc' },
        @{ Account = 'NT Service\MSSQLSERVER'; Expected = 'NT Service\MSSQLSERVER' },
        @{ Account = 'NT SERVICE\MSSQL$SQLEXPRESS'; Expected = 'NT SERVICE\MSSQL$SQLEXPRESS' },
        @{ Account = 'LocalSystem'; Expected = 'NT AUTHORITY\SYSTEM' },
        @{ Account = '.\LocalSystem'; Expected = 'NT AUTHORITY\SYSTEM' },
        @{ Account = 'NT AUTHORITY\SYSTEM'; Expected = 'NT AUTHORITY\SYSTEM' },
        @{ Account = 'NT AUTHORITY\NetworkService'; Expected = 'NT AUTHORITY\NETWORK SERVICE' },
        @{ Account = 'NetworkService'; Expected = 'NT AUTHORITY\NETWORK SERVICE' },
        @{ Account = 'NT AUTHORITY\NETWORK SERVICE'; Expected = 'NT AUTHORITY\NETWORK SERVICE' },
        @{ Account = 'LocalService'; Expected = 'NT AUTHORITY\LOCAL SERVICE' },
        @{ Account = 'NT AUTHORITY\LocalService'; Expected = 'NT AUTHORITY\LOCAL SERVICE' },
        @{ Account = 'CORP\svc-sql$'; Expected = 'CORP\svc-sql$' },
        @{ Account = 'svc-sql@corp.example.com'; Expected = 'svc-sql@corp.example.com' },
        @{ Account = ' .\sqlsvc '; Expected = 'SQLHOST\sqlsvc' },
        @{ Account = ''; Expected = '' }) {
        Mock -ModuleName WincertOps Get-ComputerName { 'SQLHOST' }
        InModuleScope WincertOps -Parameters @{ Account = $Account } { ConvertTo-NtAccountName $Account } | Should -BeExactly $Expected
    }
}

Describe 'Get-KeyFilePath (the seam itself, on a temporary ProgramData)' {
    BeforeAll {
        $savedProgramData = $env:ProgramData
        $root = Join-Path ([System.IO.Path]::GetTempPath()) ("wincert-keys-" + [guid]::NewGuid())
        foreach ($file in @('Microsoft/Crypto/Keys/cng-key', 'Microsoft/Crypto/RSA/MachineKeys/capi-key', 'Microsoft/Crypto/SystemKeys/system-key')) {
            $path = Join-Path $root $file
            [void][System.IO.Directory]::CreateDirectory((Split-Path -Parent $path))
            [System.IO.File]::WriteAllText($path, 'key')
        }
        $env:ProgramData = $root
    }
    AfterAll {
        $env:ProgramData = $savedProgramData
        Remove-Item -LiteralPath $root -Recurse -Force -ErrorAction SilentlyContinue
    }

    It 'finds <Name> under <Folder>' -TestCases @(
        @{ Name = 'cng-key'; Folder = 'Keys' }, @{ Name = 'capi-key'; Folder = 'MachineKeys' }, @{ Name = 'system-key'; Folder = 'SystemKeys' }) {
        $found = InModuleScope WincertOps -Parameters @{ Name = $Name } { Get-KeyFilePath $Name }
        $found | Should -Not -BeNullOrEmpty
        $found | Should -Match ([regex]::Escape($Folder))
        $found | Should -Match "$Name`$"
    }

    It 'returns an empty path for a key without a file, or without a name' {
        InModuleScope WincertOps { Get-KeyFilePath 'hsm-key' } | Should -BeExactly ''
        InModuleScope WincertOps { Get-KeyFilePath '' } | Should -BeExactly ''
    }
}
