# csr-create: on-device key generation with certreq -new and an INF; providers validated from the registry
# (fix 6: no certutil text), certreq arguments and INF content asserted, failures categorised.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-WincertModule | Out-Null
    $cspKey = 'HKLM:\SOFTWARE\Microsoft\Cryptography\Defaults\Provider'
    $cngKey = 'HKLM:\SYSTEM\CurrentControlSet\Control\Cryptography\Providers'
    # A real PKCS#10 request, as certreq would write it (PEM).
    $requestKey = [System.Security.Cryptography.RSA]::Create(2048)
    $request = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new('CN=www.example.com, O=Example', $requestKey,
        [System.Security.Cryptography.HashAlgorithmName]::SHA256, [System.Security.Cryptography.RSASignaturePadding]::Pkcs1)
    $csrDer = $request.CreateSigningRequest()
    $csrPem = "-----BEGIN NEW CERTIFICATE REQUEST-----`r`n" +
        ([Convert]::ToBase64String($csrDer, [Base64FormattingOptions]::InsertLineBreaks)) + "`r`n-----END NEW CERTIFICATE REQUEST-----`r`n"
}

Describe 'csr-create' {
    BeforeEach {
        Mock -ModuleName WincertOps Get-RegistrySubKeyNames -ParameterFilter { $Path -eq $cspKey } {
            'Microsoft Enhanced RSA and AES Cryptographic Provider'; 'Microsoft Strong Cryptographic Provider' }
        Mock -ModuleName WincertOps Get-RegistrySubKeyNames -ParameterFilter { $Path -eq $cngKey } {
            'Microsoft Software Key Storage Provider'; 'Microsoft Platform Crypto Provider'; 'Microsoft Primitive Provider' }
        # certreq -new: records the INF it was given and writes the request where asked.
        $script:inf = $null
        Mock -ModuleName WincertOps Invoke-Native -ParameterFilter { $Arguments -contains '-new' } {
            $script:inf = [System.IO.File]::ReadAllText($Arguments[3], [System.Text.Encoding]::Unicode)
            [System.IO.File]::WriteAllText($Arguments[4], $csrPem)
            New-NativeResult -ExitCode 0 -Output 'CertReq: Request Created'
        }
        Mock -ModuleName WincertOps Invoke-Native { throw "unexpected native call: $FilePath $($Arguments -join ' ')" }
        $arguments = @{
            Subject = 'CN=www.example.com, O=""Example, Inc""'
            ProviderName = 'Microsoft Software Key Storage Provider'
            KeyAlgorithm = 'RSA'
            KeyLength = 2048
            Sans = @('dns=www.example.com', 'dns=example.com', 'ipaddress=192.0.2.10')
        }
    }

    It 'runs certreq -new -q -machine INF CSR and returns the request as base64 DER' {
        $run = Invoke-WincertOp csr-create $arguments
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op csr-create -Json $run.Json
        $run.Output.Csr | Should -BeExactly ([Convert]::ToBase64String($csrDer))
        $run.Output.ProviderName | Should -BeExactly 'Microsoft Software Key Storage Provider'
        Should -Invoke -ModuleName WincertOps Invoke-Native -Times 1 -Exactly -ParameterFilter {
            $FilePath -like '*certreq.exe' -and $Arguments.Count -eq 5 -and $Arguments[0] -eq '-new' -and
            $Arguments[1] -eq '-q' -and $Arguments[2] -eq '-machine' }
    }

    It 'writes an INF with the subject, a machine key in the provider, the algorithm and the SANs' {
        $null = Invoke-WincertOp csr-create $arguments
        $lines = $script:inf -split "`r?`n"
        $lines | Should -Contain '[NewRequest]'
        $lines | Should -Contain 'Subject="CN=www.example.com, O=""Example, Inc"""'
        $lines | Should -Contain 'ProviderName="Microsoft Software Key Storage Provider"'
        $lines | Should -Contain 'MachineKeySet=True'
        $lines | Should -Contain 'Exportable=False'
        $lines | Should -Contain 'KeyAlgorithm=RSA'
        $lines | Should -Contain 'KeyLength=2048'
        $lines | Should -Contain 'KeySpec=0'
        $lines | Should -Contain '2.5.29.17 = "{text}"'
        $lines | Should -Contain '_continue_ = "dns=www.example.com&"'
        $lines | Should -Contain '_continue_ = "ipaddress=192.0.2.10&"'
    }

    It 'gives a legacy CSP the AT_KEYEXCHANGE key spec' {
        $arguments.ProviderName = 'Microsoft Enhanced RSA and AES Cryptographic Provider'
        $run = Invoke-WincertOp csr-create $arguments
        $run.ExitCode | Should -Be 0
        ($script:inf -split "`r?`n") | Should -Contain 'KeySpec=1'
    }

    It 'writes no [Extensions] section without SANs, and accepts ECDSA_P384' {
        $arguments.Sans = @()
        $arguments.KeyAlgorithm = 'ECDSA_P384'
        $arguments.KeyLength = 384
        $run = Invoke-WincertOp csr-create $arguments
        $run.ExitCode | Should -Be 0
        $script:inf | Should -Not -Match 'Extensions'
        ($script:inf -split "`r?`n") | Should -Contain 'KeyAlgorithm=ECDSA_P384'
    }

    It 'validates the provider from the registry, never from certutil text (fix 6)' {
        $null = Invoke-WincertOp csr-create $arguments
        Should -Invoke -ModuleName WincertOps Get-RegistrySubKeyNames -ParameterFilter { $Path -eq $cspKey }
        Should -Invoke -ModuleName WincertOps Get-RegistrySubKeyNames -ParameterFilter { $Path -eq $cngKey }
        Should -Invoke -ModuleName WincertOps Invoke-Native -Times 0 -Exactly -ParameterFilter { $FilePath -like '*certutil*' }
    }

    It 'reports a provider the host does not have as ProviderNotFound, before certreq runs' {
        $arguments.ProviderName = 'SafeNet Key Storage Provider'
        $run = Invoke-WincertOp csr-create $arguments
        $run.ExitCode | Should -Be 1
        $run.Category | Should -BeExactly 'ProviderNotFound'
        $run.Message | Should -Match "SafeNet Key Storage Provider"
        Assert-OpContract -Op csr-create -Json $run.Json -Failure
        Should -Invoke -ModuleName WincertOps Invoke-Native -Times 0 -Exactly
    }

    It 'refuses an empty provider as InvalidArgument' {
        $arguments.ProviderName = ''
        $run = Invoke-WincertOp csr-create $arguments
        $run.Category | Should -BeExactly 'InvalidArgument'
        Assert-OpContract -Op csr-create -Json $run.Json -Failure
    }

    It 'refuses a key algorithm certreq does not know as InvalidArgument' {
        $arguments.KeyAlgorithm = 'ECC'
        $run = Invoke-WincertOp csr-create $arguments
        $run.Category | Should -BeExactly 'InvalidArgument'
        $run.Message | Should -Match "KeyAlgorithm 'ECC'"
        Should -Invoke -ModuleName WincertOps Invoke-Native -Times 0 -Exactly
    }

    It 'reports a certreq failure as CommandFailed with its output, and leaves no temporary files' {
        Mock -ModuleName WincertOps Invoke-Native -ParameterFilter { $Arguments -contains '-new' } {
            $script:paths = @($Arguments[3], $Arguments[4])
            New-NativeResult -ExitCode -2146893802 -Output 'Keyset does not exist 0x80090016 (-2146893802 NTE_BAD_KEYSET)'
        }
        $run = Invoke-WincertOp csr-create $arguments
        $run.ExitCode | Should -Be 1
        $run.Category | Should -BeExactly 'CommandFailed'
        $run.Message | Should -Match 'certreq -new failed \(exit code -2146893802\).*0x80090016'
        Assert-OpContract -Op csr-create -Json $run.Json -Failure
        foreach ($path in $script:paths) { Test-Path -LiteralPath $path | Should -BeFalse }
    }

    It 'reports certreq exiting 0 without writing the request as CommandFailed' {
        Mock -ModuleName WincertOps Invoke-Native -ParameterFilter { $Arguments -contains '-new' } { New-NativeResult -ExitCode 0 }
        $run = Invoke-WincertOp csr-create $arguments
        $run.Category | Should -BeExactly 'CommandFailed'
    }

    It 'passes a certreq timeout (a provider prompting for a PIN) on as Timeout' {
        Mock -ModuleName WincertOps Invoke-Native -ParameterFilter { $Arguments -contains '-new' } {
            throw (& (Get-Module WincertOps) { New-OpError 'Timeout' 'certreq.exe did not finish within 120 seconds and was stopped' })
        }
        $run = Invoke-WincertOp csr-create $arguments
        $run.Category | Should -BeExactly 'Timeout'
        Assert-OpContract -Op csr-create -Json $run.Json -Failure
    }
}
