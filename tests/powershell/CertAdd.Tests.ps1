# cert-add without its IIS/SQL binding parts (IisBinding/SqlBinding are covered with those ops' tests): PFX
# import by .NET or by certutil into a named provider, Overwrite, the chain into CA, clean-up of the replaced
# certificate, verification and failure categories.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-WincertModule | Out-Null
    $cspKey = 'HKLM:\SOFTWARE\Microsoft\Cryptography\Defaults\Provider'
    $cngKey = 'HKLM:\SYSTEM\CurrentControlSet\Control\Cryptography\Providers'
    $root = New-TestCertificate -Subject 'CN=Example Root CA' -CA
    $intermediate = New-TestCertificate -Subject 'CN=Example Issuing CA 1' -CA -Issuer $root
    $leaf = New-TestCertificate -Subject 'CN=www.example.com' -Issuer $intermediate -DnsName www.example.com
    $pfx = New-TestPfx -Certificate $leaf -Password 'pfx "pass" word'
    # leaf + intermediate + root in one PFX, as Command sends with the chain.
    $chain = [System.Security.Cryptography.X509Certificates.X509Certificate2Collection]::new()
    $null = $chain.Add($leaf); $null = $chain.Add($intermediate); $null = $chain.Add($root)
    $chainPfx = [Convert]::ToBase64String($chain.Export([System.Security.Cryptography.X509Certificates.X509ContentType]::Pfx, 'chain-pass'))
    $old = New-TestCertificate -Subject 'CN=www.example.com (expiring)'
}

Describe 'cert-add' {
    BeforeEach {
        $stores = @{ My = (New-FakeX509Store -Name My); CA = (New-FakeX509Store -Name CA -Certificate $root) }
        Mock -ModuleName WincertOps Test-CertStorePath { $stores.ContainsKey($StoreName) }
        Mock -ModuleName WincertOps Open-LocalMachineStore { $stores[$StoreName] }
        Mock -ModuleName WincertOps Get-LegacyCspKeyInfo { $null }
        Mock -ModuleName WincertOps Get-CngKeyInfo { New-TestKeyInfo -Kind CNG -ProviderName 'Microsoft Software Key Storage Provider' }
        Mock -ModuleName WincertOps Get-RegistrySubKeyNames -ParameterFilter { $Path -eq $cspKey } { 'Microsoft Enhanced RSA and AES Cryptographic Provider' }
        Mock -ModuleName WincertOps Get-RegistrySubKeyNames -ParameterFilter { $Path -eq $cngKey } { 'Microsoft Software Key Storage Provider'; 'SafeNet Key Storage Provider' }
        Mock -ModuleName WincertOps Invoke-Native { throw "unexpected native call: $FilePath $($Arguments -join ' ')" }
        # No IIS, no SQL Server on this host (what the clean-up of a replaced certificate looks at).
        Mock -ModuleName WincertOps Test-IisInstalled { $false }
        Mock -ModuleName WincertOps Test-RegistryKey { $false }
        $arguments = @{
            StoreName = 'My'; ContentsBase64 = $pfx.Base64; PfxPassword = $pfx.Password; Thumbprint = $leaf.Thumbprint
            Overwrite = $false; ProviderName = ''; AddChainToCaStore = $false; IisBinding = $null; SqlBinding = $null
            ReplacedThumbprint = ''
        }
    }

    Context '.NET import (no provider named)' {
        It 'imports the PFX with its key into the store' {
            $run = Invoke-WincertOp cert-add $arguments
            $run.ExitCode | Should -Be 0
            Assert-OpContract -Op cert-add -Json $run.Json
            $run.Output.Thumbprint | Should -BeExactly $leaf.Thumbprint
            $run.Output.Status | Should -BeExactly 'Added'
            $run.Output.HasPrivateKey | Should -BeTrue
            $run.Output.ProviderName | Should -BeExactly 'Microsoft Software Key Storage Provider'
            @($run.Output.ChainAdded).Count | Should -Be 0
            $run.Output.Binding | Should -BeNullOrEmpty
            @($run.Output.SqlBindings).Count | Should -Be 0
            $run.Output.Replaced | Should -BeNullOrEmpty
            $stores.My.Calls | Should -Contain "Add($($leaf.Thumbprint))"
            @($stores.My.Certificates)[0].HasPrivateKey | Should -BeTrue
            Should -Invoke -ModuleName WincertOps Invoke-Native -Times 0 -Exactly
        }

        It 'uppercases a lowercase thumbprint' {
            $arguments.Thumbprint = $leaf.Thumbprint.ToLowerInvariant()
            $run = Invoke-WincertOp cert-add $arguments
            $run.Output.Thumbprint | Should -BeExactly $leaf.Thumbprint
            $run.Output.Status | Should -BeExactly 'Added'
        }

        It 'leaves a present certificate alone without Overwrite (AlreadyPresent)' {
            $stores.My = New-FakeX509Store -Name My -Certificate $leaf
            $run = Invoke-WincertOp cert-add $arguments
            $run.ExitCode | Should -Be 0
            Assert-OpContract -Op cert-add -Json $run.Json
            $run.Output.Status | Should -BeExactly 'AlreadyPresent'
            $stores.My.Calls | Should -Not -Contain "Add($($leaf.Thumbprint))"
        }

        It 'replaces a present certificate with Overwrite (Replaced)' {
            $stores.My = New-FakeX509Store -Name My -Certificate $leaf
            $arguments.Overwrite = $true
            $run = Invoke-WincertOp cert-add $arguments
            $run.Output.Status | Should -BeExactly 'Replaced'
            $stores.My.Calls | Should -Contain "Add($($leaf.Thumbprint))"
            @($stores.My.Certificates).Count | Should -Be 1
        }

        It 'adds the intermediate to CA but not the self-signed root' {
            $stores.CA = New-FakeX509Store -Name CA
            $arguments.ContentsBase64 = $chainPfx
            $arguments.PfxPassword = 'chain-pass'
            $arguments.AddChainToCaStore = $true
            $run = Invoke-WincertOp cert-add $arguments
            $run.ExitCode | Should -Be 0
            Assert-OpContract -Op cert-add -Json $run.Json
            @($run.Output.ChainAdded) | Should -Be @($intermediate.Thumbprint)
            @($stores.CA.Certificates | ForEach-Object Thumbprint) | Should -Be @($intermediate.Thumbprint)
            @($stores.My.Certificates | ForEach-Object Thumbprint) | Should -Be @($leaf.Thumbprint)
        }

        It 'does not add an intermediate CA already has' {
            $stores.CA = New-FakeX509Store -Name CA -Certificate $intermediate
            $arguments.ContentsBase64 = $chainPfx
            $arguments.PfxPassword = 'chain-pass'
            $arguments.AddChainToCaStore = $true
            $run = Invoke-WincertOp cert-add $arguments
            @($run.Output.ChainAdded).Count | Should -Be 0
            $stores.CA.Calls | Should -Not -Contain "Add($($intermediate.Thumbprint))"
        }
    }

    Context 'certutil import into a named provider' {
        BeforeEach {
            $script:importedFile = $null
            Mock -ModuleName WincertOps Invoke-Native -ParameterFilter { $Arguments -contains '-importpfx' } {
                $script:importedFile = [System.IO.File]::ReadAllBytes($Arguments[-1])
                $stores[$Arguments[-2]].Add($leaf)
                New-NativeResult -ExitCode 0 -Output 'CertUtil: -importPFX command completed successfully.'
            }
            $arguments.ProviderName = 'SafeNet Key Storage Provider'
        }

        It 'runs certutil -f -p PASSWORD -csp PROVIDER -importpfx STORE FILE' {
            $run = Invoke-WincertOp cert-add $arguments
            $run.ExitCode | Should -Be 0
            Assert-OpContract -Op cert-add -Json $run.Json
            $run.Output.Status | Should -BeExactly 'Added'
            Should -Invoke -ModuleName WincertOps Invoke-Native -Times 1 -Exactly -ParameterFilter {
                $FilePath -like '*certutil.exe' -and $Arguments.Count -eq 8 -and
                ($Arguments[0..6] -join '|') -ceq "-f|-p|$($pfx.Password)|-csp|SafeNet Key Storage Provider|-importpfx|My" }
            $script:importedFile | Should -Be $pfx.Bytes
        }

        It 'always passes -p, empty for a password-less PFX (certutil never prompts)' {
            $arguments.ContentsBase64 = (New-TestPfx -Certificate $leaf -Password '').Base64
            $arguments.PfxPassword = ''
            $run = Invoke-WincertOp cert-add $arguments
            $run.ExitCode | Should -Be 0
            Should -Invoke -ModuleName WincertOps Invoke-Native -Times 1 -Exactly -ParameterFilter { $Arguments[1] -eq '-p' -and $Arguments[2] -eq '' }
        }

        It 'adds a DER certificate with certutil -f -addstore' {
            $public = [System.Security.Cryptography.X509Certificates.X509CertificateLoader]::LoadCertificate($intermediate.RawData)
            Mock -ModuleName WincertOps Invoke-Native -ParameterFilter { $Arguments -contains '-addstore' } {
                $stores[$Arguments[2]].Add($public)
                New-NativeResult -ExitCode 0
            }
            $arguments.ContentsBase64 = [Convert]::ToBase64String($intermediate.RawData)
            $arguments.PfxPassword = ''
            $arguments.Thumbprint = $intermediate.Thumbprint
            $run = Invoke-WincertOp cert-add $arguments
            $run.ExitCode | Should -Be 0
            $run.Output.HasPrivateKey | Should -BeFalse
            $run.Output.ProviderName | Should -BeExactly ''
            Should -Invoke -ModuleName WincertOps Invoke-Native -Times 1 -Exactly -ParameterFilter { ($Arguments[0..2] -join '|') -ceq '-f|-addstore|My' }
        }

        It 'checks the provider in the registry and reports a missing one as ProviderNotFound before certutil runs' {
            $arguments.ProviderName = 'Contoso HSM KSP'
            $run = Invoke-WincertOp cert-add $arguments
            $run.ExitCode | Should -Be 1
            $run.Category | Should -BeExactly 'ProviderNotFound'
            $run.Message | Should -Match 'Contoso HSM KSP'
            Assert-OpContract -Op cert-add -Json $run.Json -Failure
            Should -Invoke -ModuleName WincertOps Invoke-Native -Times 0 -Exactly
            Should -Invoke -ModuleName WincertOps Get-RegistrySubKeyNames -ParameterFilter { $Path -eq $cngKey }
        }

        It 'reports a certutil failure as CommandFailed with the password masked' {
            Mock -ModuleName WincertOps Invoke-Native -ParameterFilter { $Arguments -contains '-importpfx' } {
                New-NativeResult -ExitCode -2147086895 -Output "CertUtil: -importPFX command FAILED: 0x800b0109 with $($Arguments[2])"
            }
            $run = Invoke-WincertOp cert-add $arguments
            $run.Category | Should -BeExactly 'CommandFailed'
            $run.Message | Should -Match "provider 'SafeNet Key Storage Provider' \(exit code -2147086895\)"
            $run.Message | Should -Not -Match ([regex]::Escape($pfx.Password))
            $run.Message | Should -Match '\*\*\*'
            Assert-OpContract -Op cert-add -Json $run.Json -Failure
        }

        It 'passes a certutil timeout on as Timeout' {
            Mock -ModuleName WincertOps Invoke-Native -ParameterFilter { $Arguments -contains '-importpfx' } {
                throw (& (Get-Module WincertOps) { New-OpError 'Timeout' 'certutil.exe did not finish within 120 seconds and was stopped' })
            }
            $run = Invoke-WincertOp cert-add $arguments
            $run.Category | Should -BeExactly 'Timeout'
        }
    }

    Context 'replaced certificate' {
        It 'removes the replaced certificate when nothing uses it' {
            $stores.My = New-FakeX509Store -Name My -Certificate $old
            $arguments.ReplacedThumbprint = $old.Thumbprint.ToLowerInvariant()
            $run = Invoke-WincertOp cert-add $arguments
            $run.ExitCode | Should -Be 0
            Assert-OpContract -Op cert-add -Json $run.Json
            $run.Output.Replaced.Thumbprint | Should -BeExactly $old.Thumbprint
            $run.Output.Replaced.Removed | Should -BeTrue
            @($run.Output.Replaced.BoundSites).Count | Should -Be 0
            @($stores.My.Certificates | ForEach-Object Thumbprint) | Should -Be @($leaf.Thumbprint)
        }

        It 'keeps the replaced certificate while an IIS binding uses it' {
            $stores.My = New-FakeX509Store -Name My -Certificate $old
            $hash = [Convert]::FromHexString($old.Thumbprint)
            $iis = New-FakeIisServerManager -Site @{ Intranet = @(New-FakeIisBinding -BindingInformation '*:8443:' -CertificateHash $hash -CertificateStoreName My) }
            Mock -ModuleName WincertOps Test-IisInstalled { $true }
            Mock -ModuleName WincertOps Get-IisServerManager { $iis }
            $arguments.ReplacedThumbprint = $old.Thumbprint
            $run = Invoke-WincertOp cert-add $arguments
            $run.ExitCode | Should -Be 0
            $run.Output.Replaced.Removed | Should -BeFalse
            @($run.Output.Replaced.BoundSites) | Should -Be @('Intranet (*:8443:)')
            $stores.My.Calls | Should -Not -Contain "Remove($($old.Thumbprint))"
        }
    }

    Context 'failures' {
        It 'refuses an empty thumbprint as InvalidArgument' {
            $arguments.Thumbprint = ''
            $run = Invoke-WincertOp cert-add $arguments
            $run.Category | Should -BeExactly 'InvalidArgument'
            Assert-OpContract -Op cert-add -Json $run.Json -Failure
        }

        It 'reports a missing store as StoreNotFound' {
            $arguments.StoreName = 'Nope'
            $run = Invoke-WincertOp cert-add $arguments
            $run.Category | Should -BeExactly 'StoreNotFound'
            Assert-OpContract -Op cert-add -Json $run.Json -Failure
        }

        It 'reports a wrong PFX password as PfxInvalid' {
            $arguments.PfxPassword = 'wrong'
            $run = Invoke-WincertOp cert-add $arguments
            $run.Category | Should -BeExactly 'PfxInvalid'
            $run.Message | Should -Match 'could not open the PFX'
            Assert-OpContract -Op cert-add -Json $run.Json -Failure
            $stores.My.Calls | Should -Not -Contain "Add($($leaf.Thumbprint))"
        }

        It 'reports bytes that are no PFX as PfxInvalid' {
            $arguments.ContentsBase64 = [Convert]::ToBase64String([System.Text.Encoding]::ASCII.GetBytes('definitely not a PFX'))
            $run = Invoke-WincertOp cert-add $arguments
            $run.Category | Should -BeExactly 'PfxInvalid'
        }

        It 'reports text that is not base64 as PfxInvalid' {
            $arguments.ContentsBase64 = 'not base64!'
            $run = Invoke-WincertOp cert-add $arguments
            $run.Category | Should -BeExactly 'PfxInvalid'
            Assert-OpContract -Op cert-add -Json $run.Json -Failure
            Should -Invoke -ModuleName WincertOps Open-LocalMachineStore -Times 0 -Exactly
        }

        It 'reports a PFX without the named certificate as PfxInvalid' {
            $arguments.Thumbprint = $old.Thumbprint
            $run = Invoke-WincertOp cert-add $arguments
            $run.Category | Should -BeExactly 'PfxInvalid'
            $run.Message | Should -Match $old.Thumbprint
        }

        It 'reports a certificate missing from the store after the import as VerificationFailed' {
            # A store that accepts Add without keeping the certificate (what a failing provider looks like).
            $stores.My | Add-Member -MemberType ScriptMethod -Name Add -Value { param($Cert) $this.Calls.Add("Add($($Cert.Thumbprint))") } -Force
            $run = Invoke-WincertOp cert-add $arguments
            $run.ExitCode | Should -Be 1
            $run.Category | Should -BeExactly 'VerificationFailed'
            $run.Message | Should -Match "not in LocalMachine\\My after the import"
            Assert-OpContract -Op cert-add -Json $run.Json -Failure
        }
    }
}
