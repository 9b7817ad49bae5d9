# cert-remove: removes a certificate from a LocalMachine store; the private key stays by default (fix 3) and is
# deleted with DeleteKey only when no other LocalMachine certificate uses it.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-WincertModule | Out-Null
}

Describe 'cert-remove' {
    BeforeAll {
        $target = New-TestCertificate -Subject 'CN=old.example.com'
        $other = New-TestCertificate -Subject 'CN=other.example.com'
        $renewed = New-TestCertificate -Subject 'CN=old.example.com (renewed on the same key)'
    }
    BeforeEach {
        $store = New-FakeX509Store -Name My -Certificate $target, $other
        Mock -ModuleName WincertOps Test-CertStorePath { $true }
        Mock -ModuleName WincertOps Open-LocalMachineStore { $store }
        $keys = @{
            $target.Thumbprint = (New-TestKeyInfo -Kind CNG -UniqueName 'key-target')
            $other.Thumbprint = (New-TestKeyInfo -Kind CNG -UniqueName 'key-other')
            $renewed.Thumbprint = (New-TestKeyInfo -Kind CNG -UniqueName 'key-target')
        }
        Mock -ModuleName WincertOps Get-LegacyCspKeyInfo { $null }
        Mock -ModuleName WincertOps Get-CngKeyInfo { $keys[$Certificate.Thumbprint] }
        Mock -ModuleName WincertOps Get-LocalMachineCertificates { @($other) + @($store.Certificates) }
        Mock -ModuleName WincertOps Remove-CertificateKey { }
    }

    It 'removes the certificate and keeps its key by default' {
        $run = Invoke-WincertOp cert-remove @{ StoreName = 'My'; Thumbprint = $target.Thumbprint.ToLowerInvariant() }
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op cert-remove -Json $run.Json
        $run.Output.Thumbprint | Should -BeExactly $target.Thumbprint
        $run.Output.Found | Should -BeTrue
        $run.Output.Removed | Should -BeTrue
        $run.Output.KeyRemoved | Should -BeFalse
        $store.Calls | Should -Contain "Remove($($target.Thumbprint))"
        @($store.Certificates | ForEach-Object Thumbprint) | Should -Be @($other.Thumbprint)
        Should -Invoke -ModuleName WincertOps Remove-CertificateKey -Times 0 -Exactly
        Should -Invoke -ModuleName WincertOps Open-LocalMachineStore -ParameterFilter { $Mode -eq 'ReadWrite' }
        $store.Calls[-1] | Should -Be 'Close()'
    }

    It 'keeps the key with DeleteKey false' {
        $run = Invoke-WincertOp cert-remove @{ StoreName = 'My'; Thumbprint = $target.Thumbprint; DeleteKey = $false }
        $run.Output.KeyRemoved | Should -BeFalse
        Should -Invoke -ModuleName WincertOps Remove-CertificateKey -Times 0 -Exactly
    }

    It 'deletes the key with DeleteKey when no other certificate uses it' {
        $run = Invoke-WincertOp cert-remove @{ StoreName = 'My'; Thumbprint = $target.Thumbprint; DeleteKey = $true }
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op cert-remove -Json $run.Json
        $run.Output.KeyRemoved | Should -BeTrue
        Should -Invoke -ModuleName WincertOps Remove-CertificateKey -Times 1 -Exactly -ParameterFilter { $KeyInfo.UniqueName -eq 'key-target' }
    }

    It 'keeps the key even with DeleteKey when another LocalMachine certificate uses it' {
        Mock -ModuleName WincertOps Get-LocalMachineCertificates { @($other, $renewed) }
        $run = Invoke-WincertOp cert-remove @{ StoreName = 'My'; Thumbprint = $target.Thumbprint; DeleteKey = $true }
        $run.ExitCode | Should -Be 0
        $run.Output.Removed | Should -BeTrue
        $run.Output.KeyRemoved | Should -BeFalse
        Should -Invoke -ModuleName WincertOps Remove-CertificateKey -Times 0 -Exactly
    }

    It 'deletes a CAPI key found through the legacy CSP view first' {
        $capiInfo = New-TestKeyInfo -Kind CAPI -ProviderName 'Microsoft Enhanced RSA and AES Cryptographic Provider' -UniqueName 'capi-container'
        Mock -ModuleName WincertOps Get-LegacyCspKeyInfo { if ($Certificate.Thumbprint -eq $target.Thumbprint) { $capiInfo } }
        $run = Invoke-WincertOp cert-remove @{ StoreName = 'My'; Thumbprint = $target.Thumbprint; DeleteKey = $true }
        $run.Output.KeyRemoved | Should -BeTrue
        Should -Invoke -ModuleName WincertOps Remove-CertificateKey -Times 1 -Exactly -ParameterFilter { $KeyInfo.Kind -eq 'CAPI' -and $KeyInfo.UniqueName -eq 'capi-container' }
    }

    It 'reports a certificate that is not there as not found (success, nothing removed)' {
        $absent = New-TestCertificate -Subject 'CN=absent.example.com' -NoPrivateKey
        $run = Invoke-WincertOp cert-remove @{ StoreName = 'My'; Thumbprint = $absent.Thumbprint; DeleteKey = $true }
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op cert-remove -Json $run.Json
        $run.Output.Found | Should -BeFalse
        $run.Output.Removed | Should -BeFalse
        $run.Output.KeyRemoved | Should -BeFalse
        @($store.Certificates).Count | Should -Be 2
        Should -Invoke -ModuleName WincertOps Remove-CertificateKey -Times 0 -Exactly
    }

    It 'reports a missing store as StoreNotFound' {
        Mock -ModuleName WincertOps Test-CertStorePath { $false }
        $run = Invoke-WincertOp cert-remove @{ StoreName = 'Nope'; Thumbprint = $target.Thumbprint }
        $run.Category | Should -BeExactly 'StoreNotFound'
        Assert-OpContract -Op cert-remove -Json $run.Json -Failure
    }

    It 'refuses an empty store name as InvalidArgument' {
        $run = Invoke-WincertOp cert-remove @{ StoreName = ''; Thumbprint = $target.Thumbprint }
        $run.Category | Should -BeExactly 'InvalidArgument'
        Assert-OpContract -Op cert-remove -Json $run.Json -Failure
    }
}
