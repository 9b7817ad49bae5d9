# csr-accept: installs the certificate issued for a csr-create request onto its generated key. certreq -accept
# first; when it refuses an untrusted chain (CERT_E_UNTRUSTEDROOT / CERT_E_CHAINING, recognised by the HRESULT
# number, whatever the host's language), the certificate is added to My and `certutil -repairstore` links it
# to the pending request's key (fix 4).

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-WincertModule | Out-Null
    $root = New-TestCertificate -Subject 'CN=Example Root CA' -CA
    # What csr-create left on the host: the generated key. The CA returns the certificate without it.
    $withKey = New-TestCertificate -Subject 'CN=www.example.com' -Issuer $root -DnsName www.example.com
    $issued = [System.Security.Cryptography.X509Certificates.X509CertificateLoader]::LoadCertificate($withKey.RawData)
    $issuedBase64 = [Convert]::ToBase64String($issued.RawData)
    # certreq -new's placeholder in LocalMachine\REQUEST: self-signed, on the generated key.
    $placeholderRequest = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new('CN=www.example.com',
        [System.Security.Cryptography.X509Certificates.RSACertificateExtensions]::GetRSAPrivateKey($withKey), 'SHA256', [System.Security.Cryptography.RSASignaturePadding]::Pkcs1)
    $placeholder = $placeholderRequest.CreateSelfSigned([datetimeoffset]::UtcNow.AddDays(-1), [datetimeoffset]::UtcNow.AddYears(1))
    $otherPending = New-TestCertificate -Subject 'CN=another pending request'
    $untrustedText = "Zertifikatanforderungsprozessor: Eine Zertifikatkette wurde zwar verarbeitet, endete jedoch mit einem Stammzertifikat, das beim Vertrauensanbieter nicht als vertrauensw$([char]0x00FC)rdig gilt. 0x800b0109 (-2146762487 CERT_E_UNTRUSTEDROOT)"
}

Describe 'csr-accept' {
    BeforeEach {
        $stores = @{
            My = (New-FakeX509Store -Name My); WebHosting = (New-FakeX509Store -Name WebHosting)
            REQUEST = (New-FakeX509Store -Name REQUEST -Certificate $placeholder, $otherPending)
        }
        Mock -ModuleName WincertOps Test-CertStorePath { $stores.ContainsKey($StoreName) }
        Mock -ModuleName WincertOps Open-LocalMachineStore { $stores[$StoreName] }
        # certreq -accept on a trusted chain: the certificate lands in My, linked to its key.
        Mock -ModuleName WincertOps Invoke-Native -ParameterFilter { $Arguments -contains '-accept' } {
            $stores.My.Add($withKey)
            New-NativeResult -ExitCode 0 -Output 'Installed Certificate:'
        }
        Mock -ModuleName WincertOps Invoke-Native -ParameterFilter { $Arguments -contains '-repairstore' } {
            throw 'certutil -repairstore must not run when certreq -accept succeeded'
        }
    }

    Context 'the host trusts the issuing root' {
        It 'installs with certreq -accept -machine into My' {
            $run = Invoke-WincertOp csr-accept @{ CertificateBase64 = $issuedBase64; StoreName = 'My' }
            $run.ExitCode | Should -Be 0
            Assert-OpContract -Op csr-accept -Json $run.Json
            $run.Output.Thumbprint | Should -BeExactly $issued.Thumbprint
            $run.Output.HasPrivateKey | Should -BeTrue
            $run.Output.StoreName | Should -BeExactly 'My'
            Should -Invoke -ModuleName WincertOps Invoke-Native -Times 1 -Exactly -ParameterFilter {
                $FilePath -like '*certreq.exe' -and $Arguments[0] -eq '-accept' -and $Arguments -contains '-q' -and
                $Arguments -contains '-machine' -and $Arguments.Count -eq 4 }
            Should -Invoke -ModuleName WincertOps Invoke-Native -Times 0 -Exactly -ParameterFilter { $Arguments -contains '-repairstore' }
            $stores.My.Calls | Should -Not -Contain "Remove($($issued.Thumbprint))"
            # certreq -accept removes its placeholder itself.
            $stores.REQUEST.Calls.Count | Should -Be 0
        }

        It 'moves the certificate to the requested store' {
            $run = Invoke-WincertOp csr-accept @{ CertificateBase64 = $issuedBase64; StoreName = 'WebHosting' }
            $run.ExitCode | Should -Be 0
            Assert-OpContract -Op csr-accept -Json $run.Json
            $run.Output.StoreName | Should -BeExactly 'WebHosting'
            $stores.WebHosting.Calls | Should -Contain "Add($($issued.Thumbprint))"
            $stores.My.Calls | Should -Contain "Remove($($issued.Thumbprint))"
            @($stores.My.Certificates).Count | Should -Be 0
            @($stores.WebHosting.Certificates)[0].HasPrivateKey | Should -BeTrue
        }

        It 'hands certreq the issued certificate in a file it deletes afterwards' {
            $script:seen = $null
            Mock -ModuleName WincertOps Invoke-Native -ParameterFilter { $Arguments -contains '-accept' } {
                $path = $Arguments[-1]
                $script:seen = @{ Path = $path; Bytes = [System.IO.File]::ReadAllBytes($path) }
                $stores.My.Add($withKey)
                New-NativeResult -ExitCode 0
            }
            $null = Invoke-WincertOp csr-accept @{ CertificateBase64 = $issuedBase64; StoreName = 'My' }
            $script:seen.Bytes | Should -Be $issued.RawData
            Test-Path -LiteralPath $script:seen.Path | Should -BeFalse
        }
    }

    Context 'the host does not trust the issuing root yet (fix 4)' {
        BeforeEach {
            # certreq -accept refuses the chain, in German; certutil -repairstore links the certificate to its key.
            Mock -ModuleName WincertOps Invoke-Native -ParameterFilter { $Arguments -contains '-accept' } {
                New-NativeResult -ExitCode -2146762487 -Output $untrustedText
            }
            Mock -ModuleName WincertOps Invoke-Native -ParameterFilter { $Arguments -contains '-repairstore' } {
                $stores.My.Add($withKey)
                New-NativeResult -ExitCode 0 -Output 'CertUtil: -repairstore command completed successfully.'
            }
        }

        It 'adds the certificate to My and links it to the generated key with certutil -repairstore' {
            $run = Invoke-WincertOp csr-accept @{ CertificateBase64 = $issuedBase64; StoreName = 'My' }
            $run.ExitCode | Should -Be 0
            Assert-OpContract -Op csr-accept -Json $run.Json
            $run.Output.Thumbprint | Should -BeExactly $issued.Thumbprint
            $run.Output.HasPrivateKey | Should -BeTrue
            $stores.My.Calls | Should -Contain "Add($($issued.Thumbprint))"
            Should -Invoke -ModuleName WincertOps Invoke-Native -Times 1 -Exactly -ParameterFilter {
                $FilePath -like '*certutil.exe' -and ($Arguments -join ' ') -ceq "-silent -repairstore My $($issued.SerialNumber)" }
            @($stores.My.Certificates | Where-Object Thumbprint -EQ $issued.Thumbprint)[0].HasPrivateKey | Should -BeTrue
        }

        It 'removes the pending request placeholder (same public key) as certreq -accept would, and only that one' {
            $run = Invoke-WincertOp csr-accept @{ CertificateBase64 = $issuedBase64; StoreName = 'My' }
            $run.ExitCode | Should -Be 0
            $stores.REQUEST.Calls | Should -Contain "Remove($($placeholder.Thumbprint))"
            @($stores.REQUEST.Certificates | ForEach-Object Thumbprint) | Should -Be @($otherPending.Thumbprint)
            $stores.REQUEST.Calls[-1] | Should -Be 'Close()'
        }

        It 'still succeeds when the placeholder cannot be removed' {
            $stores.REQUEST | Add-Member -MemberType ScriptMethod -Name Remove -Value { param($Cert) throw 'Access is denied (fake)' } -Force
            $run = Invoke-WincertOp csr-accept @{ CertificateBase64 = $issuedBase64; StoreName = 'My' }
            $run.ExitCode | Should -Be 0
            $run.Output.HasPrivateKey | Should -BeTrue
        }

        It 'then moves it to the requested store with its key' {
            $run = Invoke-WincertOp csr-accept @{ CertificateBase64 = $issuedBase64; StoreName = 'WebHosting' }
            $run.ExitCode | Should -Be 0
            $run.Output.HasPrivateKey | Should -BeTrue
            @($stores.WebHosting.Certificates)[0].HasPrivateKey | Should -BeTrue
            @($stores.My.Certificates).Count | Should -Be 0
        }

        It 'recognises CERT_E_CHAINING (0x800B010A) in the output whatever the exit code and language' {
            Mock -ModuleName WincertOps Invoke-Native -ParameterFilter { $Arguments -contains '-accept' } {
                New-NativeResult -ExitCode 1 -Output "Processeur de demandes de certificats: 0x800B010A (-2146762486 CERT_E_CHAINING)"
            }
            $run = Invoke-WincertOp csr-accept @{ CertificateBase64 = $issuedBase64; StoreName = 'My' }
            $run.ExitCode | Should -Be 0
            Should -Invoke -ModuleName WincertOps Invoke-Native -Times 1 -Exactly -ParameterFilter { $Arguments -contains '-repairstore' }
        }

        It 'recognises CERT_E_CHAINING by exit code alone (no text)' {
            Mock -ModuleName WincertOps Invoke-Native -ParameterFilter { $Arguments -contains '-accept' } {
                New-NativeResult -ExitCode -2146762486 -Output ''
            }
            $run = Invoke-WincertOp csr-accept @{ CertificateBase64 = $issuedBase64; StoreName = 'My' }
            $run.ExitCode | Should -Be 0
        }

        It 'fails with VerificationFailed when no key could be linked (request not made on this host)' {
            Mock -ModuleName WincertOps Invoke-Native -ParameterFilter { $Arguments -contains '-repairstore' } {
                New-NativeResult -ExitCode 0
            }
            $run = Invoke-WincertOp csr-accept @{ CertificateBase64 = $issuedBase64; StoreName = 'My' }
            $run.ExitCode | Should -Be 1
            $run.Category | Should -BeExactly 'VerificationFailed'
            $run.Message | Should -Match 'no private key is linked'
            Assert-OpContract -Op csr-accept -Json $run.Json -Failure
        }

        It 'fails with CommandFailed when certutil -repairstore fails' {
            Mock -ModuleName WincertOps Invoke-Native -ParameterFilter { $Arguments -contains '-repairstore' } {
                New-NativeResult -ExitCode -2146885628 -Output 'CertUtil: -repairstore command FAILED: 0x80092004'
            }
            $run = Invoke-WincertOp csr-accept @{ CertificateBase64 = $issuedBase64; StoreName = 'My' }
            $run.Category | Should -BeExactly 'CommandFailed'
            $run.Message | Should -Match 'repairstore'
            Assert-OpContract -Op csr-accept -Json $run.Json -Failure
        }
    }

    Context 'failures' {
        It 'reports another certreq failure as CommandFailed without the fallback' {
            Mock -ModuleName WincertOps Invoke-Native -ParameterFilter { $Arguments -contains '-accept' } {
                New-NativeResult -ExitCode -2146885628 -Output 'Cannot find object or property. 0x80092004 (-2146885628 CRYPT_E_NOT_FOUND)'
            }
            $run = Invoke-WincertOp csr-accept @{ CertificateBase64 = $issuedBase64; StoreName = 'My' }
            $run.ExitCode | Should -Be 1
            $run.Category | Should -BeExactly 'CommandFailed'
            $run.Message | Should -Match 'certreq -accept failed \(exit code -2146885628\)'
            Assert-OpContract -Op csr-accept -Json $run.Json -Failure
            Should -Invoke -ModuleName WincertOps Invoke-Native -Times 0 -Exactly -ParameterFilter { $Arguments -contains '-repairstore' }
            $stores.My.Calls | Should -Not -Contain "Add($($issued.Thumbprint))"
        }

        It 'fails with VerificationFailed when certreq succeeded but the certificate is not in My' {
            Mock -ModuleName WincertOps Invoke-Native -ParameterFilter { $Arguments -contains '-accept' } { New-NativeResult -ExitCode 0 }
            $run = Invoke-WincertOp csr-accept @{ CertificateBase64 = $issuedBase64; StoreName = 'My' }
            $run.Category | Should -BeExactly 'VerificationFailed'
            Assert-OpContract -Op csr-accept -Json $run.Json -Failure
        }

        It 'reports a missing target store as StoreNotFound before running certreq' {
            $run = Invoke-WincertOp csr-accept @{ CertificateBase64 = $issuedBase64; StoreName = 'Nope' }
            $run.Category | Should -BeExactly 'StoreNotFound'
            Assert-OpContract -Op csr-accept -Json $run.Json -Failure
            Should -Invoke -ModuleName WincertOps Invoke-Native -Times 0 -Exactly
        }

        It 'passes a certreq timeout on as Timeout (retried by the agent)' {
            Mock -ModuleName WincertOps Invoke-Native -ParameterFilter { $Arguments -contains '-accept' } {
                throw (& (Get-Module WincertOps) { New-OpError 'Timeout' 'certreq.exe did not finish within 120 seconds and was stopped' })
            }
            $run = Invoke-WincertOp csr-accept @{ CertificateBase64 = $issuedBase64; StoreName = 'My' }
            $run.Category | Should -BeExactly 'Timeout'
            Assert-OpContract -Op csr-accept -Json $run.Json -Failure
        }

        It 'refuses a certificate that is not base64 DER as InvalidArgument' {
            $run = Invoke-WincertOp csr-accept @{ CertificateBase64 = 'not base64!'; StoreName = 'My' }
            $run.Category | Should -BeExactly 'InvalidArgument'
            Assert-OpContract -Op csr-accept -Json $run.Json -Failure
            Should -Invoke -ModuleName WincertOps Invoke-Native -Times 0 -Exactly
        }
    }
}
