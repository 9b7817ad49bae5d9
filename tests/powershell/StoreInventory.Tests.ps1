# store-inventory: every certificate of one LocalMachine store as raw facts; key provider read the way the
# extension does (legacy CSP first, fix 5); .NET 4.6 type guard (fix 7); linear in the store size.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-WincertModule | Out-Null
}

Describe 'store-inventory' {
    BeforeAll {
        $rsa = New-TestCertificate -Subject 'CN=rsa.example.com' -DnsName rsa.example.com
        $ecdsa = New-TestCertificate -Subject 'CN=ecdsa.example.com' -KeyAlgorithm ECDSA -Curve nistP384
        $capi = New-TestCertificate -Subject 'CN=capi.example.com'
        $public = New-TestCertificate -Subject 'CN=public.example.com' -NoPrivateKey -FriendlyName "Caf$([char]0x00E9) root"
    }
    BeforeEach {
        $store = New-FakeX509Store -Name My -Certificate $rsa, $ecdsa, $capi, $public
        Mock -ModuleName WincertOps Test-CertStorePath { $true }
        Mock -ModuleName WincertOps Open-LocalMachineStore { $store }
        # Windows: a CAPI key answers both views (.NET opens it through CNG too); CNG-only keys have no CSP view.
        $capiInfo = New-TestKeyInfo -Kind CAPI -ProviderName 'Microsoft Enhanced RSA and AES Cryptographic Provider'
        Mock -ModuleName WincertOps Get-LegacyCspKeyInfo { if ($Certificate.Thumbprint -eq $capi.Thumbprint) { $capiInfo } }
        Mock -ModuleName WincertOps Get-CngKeyInfo {
            $provider = if ($Certificate.Thumbprint -eq $ecdsa.Thumbprint) { 'Microsoft Platform Crypto Provider' } else { 'Microsoft Software Key Storage Provider' }
            New-TestKeyInfo -Kind CNG -ProviderName $provider
        }
    }

    It 'lists every certificate with DER, key flag, provider and friendly name' {
        $run = Invoke-WincertOp store-inventory @{ StoreName = 'My' }
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op store-inventory -Json $run.Json
        $run.Output.StoreName | Should -BeExactly 'My'
        $items = @($run.Output.Certificates)
        $items.Count | Should -Be 4
        $items[0].Base64 | Should -BeExactly ([Convert]::ToBase64String($rsa.RawData))
        $items[0].HasPrivateKey | Should -BeTrue
        $items[0].ProviderName | Should -BeExactly 'Microsoft Software Key Storage Provider'
        $items[1].ProviderName | Should -BeExactly 'Microsoft Platform Crypto Provider'
        $items[3].HasPrivateKey | Should -BeFalse
        $items[3].ProviderName | Should -BeExactly ''
        $items[3].FriendlyName | Should -BeExactly "Caf$([char]0x00E9) root"
        $run.Json | Should -Match 'Caf\\u00e9 root'
    }

    It 'reports a CAPI-held key with its CSP, not the KSP .NET opens it through (fix 5)' {
        $run = Invoke-WincertOp store-inventory @{ StoreName = 'My' }
        @($run.Output.Certificates)[2].ProviderName | Should -BeExactly 'Microsoft Enhanced RSA and AES Cryptographic Provider'
        Should -Invoke -ModuleName WincertOps Get-CngKeyInfo -Times 0 -Exactly -ParameterFilter { $Certificate.Thumbprint -eq $capi.Thumbprint }
        # The certificate without a key asks neither view.
        Should -Invoke -ModuleName WincertOps Get-LegacyCspKeyInfo -Times 0 -Exactly -ParameterFilter { $Certificate.Thumbprint -eq $public.Thumbprint }
    }

    It 'opens the store read-only and closes it' {
        $null = Invoke-WincertOp store-inventory @{ StoreName = 'My' }
        Should -Invoke -ModuleName WincertOps Open-LocalMachineStore -Times 1 -Exactly -ParameterFilter { $StoreName -eq 'My' -and $Mode -eq 'ReadOnly' }
        $store.Calls | Should -Contain 'Close()'
    }

    It 'returns an empty list for an empty store' {
        $store = New-FakeX509Store -Name Root
        $run = Invoke-WincertOp store-inventory @{ StoreName = 'Root' }
        $run.ExitCode | Should -Be 0
        Assert-OpContract -Op store-inventory -Json $run.Json
        @($run.Output.Certificates).Count | Should -Be 0
        $run.Json | Should -Match '"Certificates":\[\]'
    }

    It 'reports a missing store as StoreNotFound without opening anything' {
        Mock -ModuleName WincertOps Test-CertStorePath { $false }
        $run = Invoke-WincertOp store-inventory @{ StoreName = 'Nope' }
        $run.ExitCode | Should -Be 1
        $run.Category | Should -BeExactly 'StoreNotFound'
        $run.Message | Should -Match 'LocalMachine\\Nope'
        Assert-OpContract -Op store-inventory -Json $run.Json -Failure
        Should -Invoke -ModuleName WincertOps Open-LocalMachineStore -Times 0 -Exactly
    }

    It 'refuses an empty store name as InvalidArgument' {
        $run = Invoke-WincertOp store-inventory @{ StoreName = '' }
        $run.Category | Should -BeExactly 'InvalidArgument'
        Assert-OpContract -Op store-inventory -Json $run.Json -Failure
    }

    It 'closes the store when reading a certificate fails' {
        Mock -ModuleName WincertOps Get-CngKeyInfo { throw (& (Get-Module WincertOps) { New-OpError 'CommandFailed' 'key unreadable' }) }
        $run = Invoke-WincertOp store-inventory @{ StoreName = 'My' }
        $run.Category | Should -BeExactly 'CommandFailed'
        $store.Calls | Should -Contain 'Close()'
    }
}

Describe 'store-inventory on a host whose .NET Framework predates 4.6 (fix 7)' {
    It 'Get-DotNetType of a missing type fails with CommandFailed naming the type' {
        $failure = { & (Get-Module WincertOps) { Get-DotNetType 'System.Security.Cryptography.RSACngFromTheFuture' } } |
            Should -Throw -PassThru
        $failure.Exception.Data['WincertCategory'] | Should -BeExactly 'CommandFailed'
        $failure.Exception.Message | Should -BeExactly "this host's .NET Framework lacks System.Security.Cryptography.RSACngFromTheFuture (needs 4.6+)"
    }

    It 'Get-DotNetType returns a type the host has' {
        & (Get-Module WincertOps) { Get-DotNetType 'System.Security.Cryptography.X509Certificates.X509Certificate2' } |
            Should -Be ([System.Security.Cryptography.X509Certificates.X509Certificate2])
    }

    It 'inventory reports the missing type as CommandFailed, not "Unable to find type"' {
        $certificate = New-TestCertificate
        $store = New-FakeX509Store -Name My -Certificate $certificate
        Mock -ModuleName WincertOps Test-CertStorePath { $true }
        Mock -ModuleName WincertOps Open-LocalMachineStore { $store }
        Mock -ModuleName WincertOps Get-LegacyCspKeyInfo { $null }
        # As on .NET 4.5: the name does not resolve (the real Get-DotNetType, asked for a name that is absent here).
        Mock -ModuleName WincertOps Get-DotNetType -ParameterFilter { $TypeName -eq 'System.Security.Cryptography.RSACng' } {
            & (Get-Module WincertOps) { Get-DotNetType 'System.Security.Cryptography.RSACng.AbsentOnNet45' }
        }
        $run = Invoke-WincertOp store-inventory @{ StoreName = 'My' }
        $run.ExitCode | Should -Be 1
        $run.Category | Should -BeExactly 'CommandFailed'
        $run.Message | Should -Match 'lacks System\.Security\.Cryptography\.RSACng.* \(needs 4\.6\+\)'
        Assert-OpContract -Op store-inventory -Json $run.Json -Failure
    }

    It 'the real key seams run on this .NET: a non-CNG key reports no provider' {
        $certificate = New-TestCertificate
        $store = New-FakeX509Store -Name My -Certificate $certificate
        Mock -ModuleName WincertOps Test-CertStorePath { $true }
        Mock -ModuleName WincertOps Open-LocalMachineStore { $store }
        $run = Invoke-WincertOp store-inventory @{ StoreName = 'My' }
        $run.ExitCode | Should -Be 0
        @($run.Output.Certificates)[0].HasPrivateKey | Should -BeTrue
        @($run.Output.Certificates)[0].ProviderName | Should -BeExactly ''
    }
}

Describe 'store-inventory of 10,000 certificates' -Tag 'Slow' {
    BeforeAll {
        # Distinct certificates (serials), one shared ECDSA key and issuer: signing is fast, thumbprints differ.
        function New-ManyCertificates([int]$Count) {
            $issuerKey = [System.Security.Cryptography.ECDsa]::Create([System.Security.Cryptography.ECCurve+NamedCurves]::nistP256)
            $issuerRequest = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new('CN=Scale Test CA', $issuerKey, 'SHA256')
            $issuer = $issuerRequest.CreateSelfSigned([datetimeoffset]::UtcNow.AddDays(-1), [datetimeoffset]::UtcNow.AddYears(2))
            $leafKey = [System.Security.Cryptography.ECDsa]::Create([System.Security.Cryptography.ECCurve+NamedCurves]::nistP256)
            $generator = [System.Security.Cryptography.X509Certificates.X509SignatureGenerator]::CreateForECDsa($issuerKey)
            $notBefore = [datetimeoffset]::UtcNow.AddDays(-1)
            $notAfter = [datetimeoffset]::UtcNow.AddYears(1)
            $list = [System.Collections.Generic.List[System.Security.Cryptography.X509Certificates.X509Certificate2]]::new($Count)
            for ($i = 1; $i -le $Count; $i++) {
                $request = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new("CN=host$i.example.com", $leafKey, 'SHA256')
                $serial = [BitConverter]::GetBytes([long]$i)
                [array]::Reverse($serial)
                $list.Add($request.Create($issuer.SubjectName, $generator, $notBefore, $notAfter, $serial))
            }
            return , $list.ToArray()
        }
        function Measure-Inventory([object[]]$Certificates) {
            $script:scaleStore = New-FakeX509Store -Name CA -Certificate $Certificates
            $watch = [System.Diagnostics.Stopwatch]::StartNew()
            $run = Invoke-WincertOp store-inventory @{ StoreName = 'CA' }
            $watch.Stop()
            $run.ExitCode | Should -Be 0
            @($run.Output.Certificates).Count | Should -Be $Certificates.Count
            return $watch.Elapsed.TotalSeconds
        }
        $all = New-ManyCertificates 10000
        Mock -ModuleName WincertOps Test-CertStorePath { $true }
        Mock -ModuleName WincertOps Open-LocalMachineStore { $script:scaleStore }
    }

    It 'the 10,000 certificates have distinct thumbprints' {
        @($all | ForEach-Object Thumbprint | Sort-Object -Unique).Count | Should -Be 10000
    }

    It 'inventories 10,000 certificates in linear time (4x the certificates, < 6x the time)' {
        $null = Measure-Inventory $all[0..499]                    # warm-up (JIT, caches)
        # Best of two for each size: a loaded machine slows single runs, rarely both.
        $small = [math]::Min((Measure-Inventory $all[0..2499]), (Measure-Inventory $all[0..2499]))
        $large = [math]::Min((Measure-Inventory $all), (Measure-Inventory $all))
        Write-Host ("store-inventory: 2,500 certificates {0:N2} s, 10,000 certificates {1:N2} s, ratio {2:N2}" -f $small, $large, ($large / $small))
        ($large / $small) | Should -BeLessThan 6
    }
}
