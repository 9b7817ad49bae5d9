# The test helpers themselves (TestHelpers.psm1): contract assertion, certificates, fake store.
# Tagged NotModule: left out of the module coverage run.

Describe 'TestHelpers' -Tag 'NotModule' {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    }

    Context 'Assert-OpContract' {
        BeforeAll {
            $good = '{"StoreName":"My","Certificates":[{"Base64":"AA==","HasPrivateKey":false,"ProviderName":"","FriendlyName":""}]}'
        }
        It 'accepts output of the contract''s shape' {
            Assert-OpContract -Op store-inventory -Json $good
            Assert-OpContract -Op store-inventory -Json '{"StoreName":"My","Certificates":[]}'
        }
        It 'names a missing property, an extra one, a wrong kind and a wrong case' {
            $problems = Assert-OpContract -Op store-inventory -PassThru -Json `
                '{"StoreName":1,"Certificates":[{"Base64":"AA==","HasPrivateKey":"no","providerName":"","FriendlyName":"","Extra":0}]}'
            $problems | Should -Contain '$.StoreName: Number where the contract has a String'
            $problems | Should -Contain '$.Certificates[0].HasPrivateKey: String where the contract has a True'
            $problems | Should -Contain '$.Certificates[0].ProviderName: missing'
            $problems | Should -Contain '$.Certificates[0].providerName: not in the contract'
            $problems | Should -Contain '$.Certificates[0].Extra: not in the contract'
        }
        It 'refuses non-ASCII text and text that is not JSON' {
            (Assert-OpContract -Op echo -PassThru -Json '{"Message":"grüße","Number":1,"Nested":{"List":[1]}}') |
                Should -Contain 'the output has non-ASCII characters (ConvertTo-AsciiJson escapes them)'
            (Assert-OpContract -Op echo -PassThru -Json '{oops').Count | Should -Be 1
        }
        It 'throws with the op and the problems, for Pester' {
            { Assert-OpContract -Op store-inventory -Json '{"StoreName":"My"}' } | Should -Throw '*store-inventory*$.Certificates: missing*'
        }
        It 'checks error output and its category against certstore/remote/contract.hpp' {
            Assert-OpContract -Op store-inventory -Failure -Json '{"error":{"message":"m","category":"StoreNotFound"}}'
            (Assert-OpContract -Op store-inventory -Failure -PassThru -Json '{"error":{"message":"m","category":"Oops"}}') -join "`n" |
                Should -BeLike "*'Oops' is not a category the agent knows*"
        }
        It 'knows the agent''s error categories' {
            $categories = Get-WincertErrorCategory
            $categories | Should -Contain 'StoreNotFound'
            $categories | Should -Contain 'Timeout'
            $categories.Count | Should -BeGreaterOrEqual 11
        }
        It 'finds every op''s contract' {
            foreach ($op in (Get-WincertOpTable).Keys) { Get-OpContract $op | Should -Not -BeNullOrEmpty }
        }
    }

    Context 'New-TestCertificate' {
        It 'makes RSA and ECDSA certificates with real private keys' {
            $rsa = New-TestCertificate -KeySize 3072 -DnsName a.example.com, b.example.com
            $rsa.HasPrivateKey | Should -BeTrue
            [System.Security.Cryptography.X509Certificates.RSACertificateExtensions]::GetRSAPrivateKey($rsa).ExportParameters($false).Modulus.Length * 8 |
                Should -Be 3072
            $rsa.Extensions.Oid.Value | Should -Contain '2.5.29.17'
            $ec = New-TestCertificate -KeyAlgorithm ECDSA -Curve nistP384
            [System.Security.Cryptography.X509Certificates.ECDsaCertificateExtensions]::GetECDsaPrivateKey($ec).ExportParameters($false).Q.X.Length * 8 |
                Should -Be 384
        }
        It 'signs with an issuer, and the chain builds to it' {
            $root = New-TestCertificate -Subject 'CN=Test Root' -CA
            $leaf = New-TestCertificate -Subject 'CN=leaf.example.com' -Issuer $root
            $leaf.Issuer | Should -Be 'CN=Test Root'
            $leaf.HasPrivateKey | Should -BeTrue
            $chain = [System.Security.Cryptography.X509Certificates.X509Chain]::new()
            $chain.ChainPolicy.RevocationMode = 'NoCheck'
            $chain.ChainPolicy.TrustMode = 'CustomRootTrust'
            $null = $chain.ChainPolicy.CustomTrustStore.Add($root)
            $chain.Build($leaf) | Should -BeTrue
        }
        It 'drops the key with -NoPrivateKey and carries -FriendlyName on the object' {
            (New-TestCertificate -NoPrivateKey).HasPrivateKey | Should -BeFalse
            (New-TestCertificate -FriendlyName 'Prüfung').FriendlyName | Should -Be 'Prüfung'
        }
        It 'exports a PFX that loads back with its key' {
            $pfx = New-TestPfx -Certificate (New-TestCertificate) -Password 'pw'
            $loaded = [System.Security.Cryptography.X509Certificates.X509CertificateLoader]::LoadPkcs12($pfx.Bytes, 'pw')
            $loaded.HasPrivateKey | Should -BeTrue
            [Convert]::FromBase64String($pfx.Base64).Length | Should -Be $pfx.Bytes.Length
        }
    }

    Context 'New-FakeIisServerManager' {
        It 'finds sites by name, returns $null for a missing one, and records binding changes and commits' {
            $old = New-FakeIisBinding -BindingInformation '*:443:www.example.com' -SslFlags 1
            $iis = New-FakeIisServerManager -Site @{ 'Default Web Site' = @($old); 'Intranet' = @() }
            $iis.Sites['Nope'] | Should -BeNullOrEmpty
            @($iis.Sites).Count | Should -Be 2
            $site = $iis.Sites['default web site']
            $site.Name | Should -Be 'Default Web Site'
            $site.Bindings.Remove($old) | Should -BeTrue
            $new = $site.Bindings.Add('10.0.0.5:443:', [byte[]](1, 2, 3), 'My')
            $new.SetAttributeValue('sslFlags', 0)
            $iis.CommitChanges()
            @($site.Bindings).BindingInformation | Should -Be @('10.0.0.5:443:')
            $new.GetAttributeValue('sslFlags') | Should -Be 0
            $new.Protocol | Should -Be 'https'
            $iis.Log | Should -Be @('Bindings.Remove(*:443:www.example.com)', 'Bindings.Add(10.0.0.5:443:)', 'CommitChanges()')
            $iis.CommitCount | Should -Be 1
        }
        It 'fails the commit when asked to' {
            { (New-FakeIisServerManager -FailCommit).CommitChanges() } | Should -Throw '*refused*'
        }
    }

    Context 'New-FakeServiceController' {
        It 'stops running dependents with the service and starts only the service, as .NET does' {
            $log = [System.Collections.Generic.List[string]]::new()
            $agent = New-FakeServiceController -Name SQLSERVERAGENT -Log $log
            $sql = New-FakeServiceController -Name MSSQLSERVER -DependentServices $agent -Log $log
            $sql.Stop()
            $sql.WaitForStatus('Stopped', [TimeSpan]::FromSeconds(1))
            $sql.Start()
            $sql.Status | Should -Be 'Running'
            $agent.Status | Should -Be 'Stopped'
            $log | Should -Be @('Stop(SQLSERVERAGENT)', 'Stop(MSSQLSERVER)', 'Start(MSSQLSERVER)')
        }
        It 'times out in WaitForStatus when the service hangs, and fails Start when asked to' {
            $hung = New-FakeServiceController -Name A -StopHangs
            $hung.Stop()
            # As with the real ServiceController, PowerShell wraps it (MethodInvocationException ...): the
            # TimeoutException is in the InnerException chain, where the module looks.
            $thrown = { $hung.WaitForStatus('Stopped', [TimeSpan]::FromSeconds(1)) } | Should -Throw -PassThru
            $types = for ($e = $thrown.Exception; $null -ne $e; $e = $e.InnerException) { $e.GetType().FullName }
            $types | Should -Contain 'System.TimeoutException'
            { (New-FakeServiceController -Name B -Status Stopped -StartFails).Start() } | Should -Throw '*Cannot start*'
        }
    }

    Context 'New-FakeX509Store' {
        It 'behaves like an opened X509Store and records the calls' {
            $a = New-TestCertificate -Subject 'CN=a' -FriendlyName 'A'
            $b = New-TestCertificate -Subject 'CN=b'
            $store = New-FakeX509Store -Name My -Certificate $a
            $store.Open('ReadWrite')
            $store.Certificates.Find('FindByThumbprint', $a.Thumbprint, $false).Count | Should -Be 1
            @($store.Certificates)[0].FriendlyName | Should -Be 'A'
            $store.Add($b)
            $store.Add($b)
            $store.Certificates.Count | Should -Be 2
            $store.Remove($a)
            $store.Close()
            @($store.Certificates.Thumbprint) | Should -Be @($b.Thumbprint)
            $store.Calls | Should -Be @('Open(ReadWrite)', "Add($($b.Thumbprint))", "Add($($b.Thumbprint))", "Remove($($a.Thumbprint))", 'Close()')
            $store.IsOpen | Should -BeFalse
        }
    }
}
