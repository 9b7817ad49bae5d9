# Helpers for the Pester tests of the host-side module (certstore/ps/WincertOps.psm1). PowerShell 7 only
# (tests run under 7.6; only the module itself must stay Windows PowerShell 5.1 compatible).
#
#   Import-WincertModule         the module under test, by path
#   Invoke-WincertOp             run one op as the per-op script does: JSON out, exit code 0/1, error category
#   Get-WincertOpFunctionName    op name -> function ('store-inventory' -> Invoke-WincertStoreInventory)
#   Get-OpContract               the op's golden NAME.contract.json
#   Assert-OpContract            an op's JSON output has the contract's shape (and is ASCII)
#   Get-WincertErrorCategory     the error categories the agent knows (certstore/remote/contract.hpp)
#   New-TestCertificate          real X509Certificate2 with a real RSA/ECDSA key (.NET CertificateRequest)
#   New-TestPfx                  PFX bytes (and base64) of such a certificate
#   New-FakeX509Store            an in-memory stand-in for an opened X509Store, recording every call
#   New-TestKeyInfo              what the key seams (Get-LegacyCspKeyInfo / Get-CngKeyInfo) return on Windows
#   New-FakeIisServerManager     in-memory IIS (Sites[name].Bindings Add/Remove, CommitChanges), New-FakeIisBinding
#   New-FakeServiceController    in-memory service with dependents, recording Stop/Start order across services
#   New-NativeResult             what Invoke-Native returns (@{ ExitCode; Output })
# Conventions and examples: tests/powershell/README.md.

Set-StrictMode -Version 3.0

# --- Fakes of IIS's Microsoft.Web.Administration object model (what Get-IisServerManager returns) ---------
# Sites: indexable by name ($null for a missing site, like ServerManager.Sites[name]) and enumerable.
class FakeIisSiteCollection : System.Collections.ObjectModel.KeyedCollection[string, object] {
    FakeIisSiteCollection() : base([System.StringComparer]::OrdinalIgnoreCase) { }
    [string] GetKeyForItem([object]$item) { return $item.Name }
}

# A site's Bindings: Add(bindingInformation, certificateHash, storeName) for https bindings, Remove(binding).
class FakeIisBindingCollection : System.Collections.ObjectModel.Collection[object] {
    [System.Collections.Generic.List[string]]$Log
    [object] Add([string]$BindingInformation, [byte[]]$CertificateHash, [string]$CertificateStoreName) {
        $binding = New-FakeIisBinding -BindingInformation $BindingInformation -CertificateHash $CertificateHash `
            -CertificateStoreName $CertificateStoreName
        $this.Insert($this.Count, $binding)
        if ($null -ne $this.Log) { $this.Log.Add("Bindings.Add($BindingInformation)") }
        return $binding
    }
    [bool] Remove([object]$Binding) {
        if ($null -ne $this.Log) { $this.Log.Add("Bindings.Remove($($Binding.BindingInformation))") }
        $index = $this.IndexOf($Binding)
        if ($index -lt 0) { return $false }
        $this.RemoveAt($index)
        return $true
    }
}

$script:RepoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).ProviderPath
$script:ModuleDir = Join-Path $script:RepoRoot 'certstore/ps'

function Get-WincertRepoRoot { $script:RepoRoot }

function Import-WincertModule {
    <# Imports certstore/ps/WincertOps (the manifest when present) fresh, and returns the module. Mock its
       seams with: Mock -ModuleName WincertOps SeamName { ... } #>
    $manifest = Join-Path $script:ModuleDir 'WincertOps.psd1'
    $path = if (Test-Path -LiteralPath $manifest) { $manifest } else { Join-Path $script:ModuleDir 'WincertOps.psm1' }
    Get-Module WincertOps | Remove-Module -Force
    # -Global: visible to the test file too (an import from inside this module would otherwise stay in it).
    Import-Module $path -Force -PassThru -Global -ErrorAction Stop
}

function Get-WincertOpTable {
    <# op name -> function name, read from the module's "#region op NAME" markers. #>
    $table = [ordered]@{}
    $pending = $null
    foreach ($line in [System.IO.File]::ReadAllLines((Join-Path $script:ModuleDir 'WincertOps.psm1'))) {
        if ($line -match '^#region op ([a-z0-9-]+)\s*$') { $pending = $Matches[1]; continue }
        if ($pending -and $line -match '^function ([A-Za-z0-9-]+)') { $table[$pending] = $Matches[1]; $pending = $null }
    }
    return $table
}

function Get-WincertOpFunctionName([Parameter(Mandatory)][string]$Op) {
    $table = Get-WincertOpTable
    if (-not $table.Contains($Op)) { throw "no '#region op $Op' in certstore/ps/WincertOps.psm1 (ops: $($table.Keys -join ', '))" }
    return $table[$Op]
}

function Invoke-WincertOp {
    <#
    .SYNOPSIS
    Runs one op the way its per-op script does (try { op; exit 0 } catch { error JSON; exit 1 }) and returns
    @{ Json; ExitCode; Output (parsed, PSCustomObject); Category ('' on success); Message }.
    .PARAMETER Arguments
    A hashtable/object serialised to the op's argument JSON, or use -ArgsJson for the exact text.
    #>
    [CmdletBinding(DefaultParameterSetName = 'Object')]
    param(
        [Parameter(Mandatory, Position = 0)][string]$Op,
        [Parameter(ParameterSetName = 'Object', Position = 1)]$Arguments = @{},
        [Parameter(Mandatory, ParameterSetName = 'Json')][AllowEmptyString()][string]$ArgsJson
    )
    if ($PSCmdlet.ParameterSetName -eq 'Object') { $ArgsJson = $Arguments | ConvertTo-Json -Depth 10 -Compress }
    $function = Get-WincertOpFunctionName $Op
    $module = Get-Module WincertOps
    if (-not $module) { throw 'Import-WincertModule first (in BeforeAll)' }
    try {
        $json = & $function -ArgsJson $ArgsJson
        $exitCode = 0
    } catch {
        $record = $_
        $json = & $module { param($r) ConvertTo-OpErrorJson $r } $record
        $exitCode = 1
    }
    if (@($json).Count -ne 1) { throw "$function wrote $(@($json).Count) objects; an op writes exactly one JSON string" }
    $output = [string]$json | ConvertFrom-Json
    $category = ''
    $message = ''
    if ($exitCode -ne 0) {
        $category = [string]$output.error.category
        $message = [string]$output.error.message
    }
    [pscustomobject]@{ Json = [string]$json; ExitCode = $exitCode; Output = $output; Category = $category; Message = $message }
}

function Get-OpContractPath([Parameter(Mandatory)][string]$Op) {
    foreach ($dir in (Join-Path $script:ModuleDir 'contracts'), (Join-Path $script:RepoRoot 'certstore/scripts')) {
        $candidate = Join-Path $dir "$Op.contract.json"
        if (Test-Path -LiteralPath $candidate) { return $candidate }
    }
    throw "no $Op.contract.json in certstore/ps/contracts or certstore/scripts"
}

function Get-OpContract([Parameter(Mandatory)][string]$Op) {
    Get-Content -LiteralPath (Get-OpContractPath $Op) -Raw | ConvertFrom-Json -AsHashtable
}

function Get-WincertErrorCategory {
    <# The categories of certstore/remote/contract.hpp's `namespace category` (what the agent maps). #>
    $header = Get-Content -LiteralPath (Join-Path $script:RepoRoot 'certstore/remote/contract.hpp') -Raw
    if ($header -notmatch '(?s)namespace category \{(.*?)\}') { throw 'certstore/remote/contract.hpp has no namespace category' }
    [regex]::Matches($Matches[1], '=\s*"([A-Za-z]+)"') | ForEach-Object { $_.Groups[1].Value }
}

# Differences between a JSON value and the contract's example value, as "path: problem" strings.
# Objects: the same property names, exactly (case-sensitive). Arrays: each element like the example's first
# element. Scalars: the same JSON kind (string, number, true/false). null in the example matches anything
# (a field that may be absent); null in the output matches an example object or array (a record not wanted,
# such as cert-add's IisBinding) but not a scalar.
function Compare-JsonShape([System.Text.Json.JsonElement]$Expected, [System.Text.Json.JsonElement]$Actual, [string]$Path,
    [System.Collections.Generic.List[string]]$Problems) {
    $kind = [System.Text.Json.JsonValueKind]
    $expectedKind = $Expected.ValueKind
    $actualKind = $Actual.ValueKind
    if ($expectedKind -eq $kind::Null) { return }
    if ($actualKind -eq $kind::Null) {
        if ($expectedKind -notin $kind::Object, $kind::Array) { $Problems.Add("${Path}: null where the contract has a $expectedKind") }
        return
    }
    $isBool = { param($k) $k -eq $kind::True -or $k -eq $kind::False }
    if ((& $isBool $expectedKind) -and (& $isBool $actualKind)) { return }
    if ($expectedKind -ne $actualKind) { $Problems.Add("${Path}: $actualKind where the contract has a $expectedKind"); return }
    if ($expectedKind -eq $kind::Object) {
        $expectedNames = @($Expected.EnumerateObject() | ForEach-Object Name)
        $actualNames = @($Actual.EnumerateObject() | ForEach-Object Name)
        foreach ($name in $expectedNames) {
            if ($actualNames -cnotcontains $name) { $Problems.Add("${Path}.${name}: missing") }
        }
        foreach ($name in $actualNames) {
            if ($expectedNames -cnotcontains $name) { $Problems.Add("${Path}.${name}: not in the contract") }
        }
        foreach ($name in $expectedNames) {
            if ($actualNames -ccontains $name) {
                Compare-JsonShape $Expected.GetProperty($name) $Actual.GetProperty($name) "$Path.$name" $Problems
            }
        }
    } elseif ($expectedKind -eq $kind::Array -and $Expected.GetArrayLength() -gt 0) {
        $index = 0
        foreach ($element in $Actual.EnumerateArray()) {
            Compare-JsonShape $Expected[0] $element "$Path[$index]" $Problems
            $index++
        }
    }
}

# A property of a JSON object element, or $null (not an object, or no such property).
function Get-JsonProperty($Element, [string]$Name) {
    if ($null -eq $Element -or $Element.ValueKind -ne [System.Text.Json.JsonValueKind]::Object) { return $null }
    foreach ($property in $Element.EnumerateObject()) { if ($property.Name -ceq $Name) { return $property.Value } }
    return $null
}

function Assert-OpContract {
    <#
    .SYNOPSIS
    Throws (failing the test) unless -Json has the shape of the op's contract: its "output" example, or with
    -Failure its "error.output" ({"error":{"message","category"}}, the category one the agent knows). Also
    checks that the text is ASCII (the ops escape everything else as \uXXXX). -PassThru returns the list
    of problems instead of throwing.
    #>
    param(
        [Parameter(Mandatory)][string]$Op,
        [Parameter(Mandatory)][AllowEmptyString()][string]$Json,
        [switch]$Failure,
        [switch]$PassThru
    )
    $problems = [System.Collections.Generic.List[string]]::new()
    $contract = [System.Text.Json.JsonDocument]::Parse([System.IO.File]::ReadAllText((Get-OpContractPath $Op)))
    $document = $null
    try {
        $document = [System.Text.Json.JsonDocument]::Parse($Json)
    } catch {
        $problems.Add("the output is not one JSON document: $($_.Exception.Message)")
    }
    if ($Json -match '[^\x00-\x7E]') { $problems.Add('the output has non-ASCII characters (ConvertTo-AsciiJson escapes them)') }
    if ($document) {
        $root = $contract.RootElement
        if ($Failure) {
            $example = Get-JsonProperty $root 'error'
            $example = if ($null -ne $example) { Get-JsonProperty $example 'output' }
            if ($null -eq $example) {
                $example = [System.Text.Json.JsonDocument]::Parse('{"error":{"message":"","category":""}}').RootElement
            }
            Compare-JsonShape $example $document.RootElement '$' $problems
            $category = Get-JsonProperty (Get-JsonProperty $document.RootElement 'error') 'category'
            if ($null -ne $category -and $category.ValueKind -eq 'String' -and
                (Get-WincertErrorCategory) -cnotcontains $category.GetString()) {
                $problems.Add("`$.error.category: '$($category.GetString())' is not a category the agent knows ($((Get-WincertErrorCategory) -join ', '))")
            }
        } else {
            Compare-JsonShape $root.GetProperty('output') $document.RootElement '$' $problems
        }
    }
    if ($PassThru) { return , $problems }
    if ($problems.Count -gt 0) {
        throw "$Op output does not match $(Split-Path -Leaf (Get-OpContractPath $Op)):`n  $($problems -join "`n  ")`n  output: $Json"
    }
}

function New-TestCertificate {
    <#
    .SYNOPSIS
    A real X509Certificate2 with a real private key, made by .NET's CertificateRequest (works on Linux).
    .DESCRIPTION
    Self-signed, or signed by -Issuer (a certificate with its private key, e.g. one made with -CA).
    -FriendlyName is attached as a note property on the object (Linux .NET cannot set FriendlyName); it
    travels with this object reference (a fake store enumerating it), not through copies such as
    X509Certificate2Collection.Find results.
    -NoPrivateKey returns the public certificate only.
    #>
    param(
        [string]$Subject = 'CN=www.example.com',
        [ValidateSet('RSA', 'ECDSA')][string]$KeyAlgorithm = 'RSA',
        [int]$KeySize = 2048,
        [ValidateSet('nistP256', 'nistP384', 'nistP521')][string]$Curve = 'nistP256',
        [string[]]$DnsName = @(),
        [System.Security.Cryptography.X509Certificates.X509Certificate2]$Issuer,
        [switch]$CA,
        [string[]]$EnhancedKeyUsage = @('1.3.6.1.5.5.7.3.1'),
        [datetime]$NotBefore = (Get-Date).ToUniversalTime().AddDays(-1),
        [datetime]$NotAfter = (Get-Date).ToUniversalTime().AddDays(365),
        [string]$FriendlyName,
        [switch]$NoPrivateKey
    )

    if ($KeyAlgorithm -eq 'RSA') {
        $key = [System.Security.Cryptography.RSA]::Create($KeySize)
        $request = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new($Subject, $key,
            [System.Security.Cryptography.HashAlgorithmName]::SHA256, [System.Security.Cryptography.RSASignaturePadding]::Pkcs1)
    } else {
        $key = [System.Security.Cryptography.ECDsa]::Create([System.Security.Cryptography.ECCurve]::CreateFromFriendlyName($Curve))
        $request = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new($Subject, $key,
            [System.Security.Cryptography.HashAlgorithmName]::SHA256)
    }
    $extensions = $request.CertificateExtensions
    $extensions.Add([System.Security.Cryptography.X509Certificates.X509BasicConstraintsExtension]::new([bool]$CA, $false, 0, $true))
    $usage = if ($CA) { 'KeyCertSign, CrlSign, DigitalSignature' } else { 'DigitalSignature, KeyEncipherment' }
    $extensions.Add([System.Security.Cryptography.X509Certificates.X509KeyUsageExtension]::new($usage, $true))
    if (-not $CA -and $EnhancedKeyUsage.Count -gt 0) {
        $oids = [System.Security.Cryptography.OidCollection]::new()
        foreach ($oid in $EnhancedKeyUsage) { $null = $oids.Add([System.Security.Cryptography.Oid]::new($oid)) }
        $extensions.Add([System.Security.Cryptography.X509Certificates.X509EnhancedKeyUsageExtension]::new($oids, $false))
    }
    if ($DnsName.Count -gt 0) {
        $san = [System.Security.Cryptography.X509Certificates.SubjectAlternativeNameBuilder]::new()
        foreach ($name in $DnsName) { $san.AddDnsName($name) }
        $extensions.Add($san.Build($false))
    }
    $extensions.Add([System.Security.Cryptography.X509Certificates.X509SubjectKeyIdentifierExtension]::new($request.PublicKey, $false))

    if ($Issuer) {
        if ($NotAfter -gt $Issuer.NotAfter.ToUniversalTime()) { $NotAfter = $Issuer.NotAfter.ToUniversalTime().AddMinutes(-1) }
        if ($NotBefore -lt $Issuer.NotBefore.ToUniversalTime()) { $NotBefore = $Issuer.NotBefore.ToUniversalTime() }
        $serial = [byte[]]::new(12)
        [System.Security.Cryptography.RandomNumberGenerator]::Fill($serial)
        $serial[0] = $serial[0] -band 0x7F
        $signed = $request.Create($Issuer, [datetimeoffset]$NotBefore, [datetimeoffset]$NotAfter, $serial)
        $certificate = if ($KeyAlgorithm -eq 'RSA') {
            [System.Security.Cryptography.X509Certificates.RSACertificateExtensions]::CopyWithPrivateKey($signed, $key)
        } else {
            [System.Security.Cryptography.X509Certificates.ECDsaCertificateExtensions]::CopyWithPrivateKey($signed, $key)
        }
        $signed.Dispose()
    } else {
        $certificate = $request.CreateSelfSigned([datetimeoffset]$NotBefore, [datetimeoffset]$NotAfter)
    }
    if ($NoPrivateKey) {
        $certificate = [System.Security.Cryptography.X509Certificates.X509CertificateLoader]::LoadCertificate($certificate.RawData)
    }
    if ($PSBoundParameters.ContainsKey('FriendlyName')) {
        $certificate | Add-Member -NotePropertyName FriendlyName -NotePropertyValue $FriendlyName -Force
    }
    return $certificate
}

function New-TestPfx {
    <# PFX (PKCS#12) of a certificate with its key: @{ Bytes; Base64; Password }. #>
    param(
        [Parameter(Mandatory)][System.Security.Cryptography.X509Certificates.X509Certificate2]$Certificate,
        [string]$Password = 'test-pfx-password'
    )
    $bytes = $Certificate.Export([System.Security.Cryptography.X509Certificates.X509ContentType]::Pfx, $Password)
    [pscustomobject]@{ Bytes = $bytes; Base64 = [System.Convert]::ToBase64String($bytes); Password = $Password }
}

function New-FakeX509Store {
    <#
    .SYNOPSIS
    An in-memory stand-in for an opened System.Security.Cryptography.X509Certificates.X509Store, for
    mocking the Open-LocalMachineStore seam:
        $store = New-FakeX509Store -Name My -Certificate $a, $b
        Mock -ModuleName WincertOps Open-LocalMachineStore { $store }
    .DESCRIPTION
    Members: Name, Location ('LocalMachine'), Certificates (a real X509Certificate2Collection holding the
    given objects, so .Find() and enumeration behave as on Windows), Open(flags), Close(), Dispose(),
    Add(cert) (replaces a certificate with the same thumbprint, like X509Store), Remove(cert),
    AddRange(collection), RemoveRange(collection), IsOpen, and Calls: every call in order as text
    ('Open(ReadWrite)', 'Add(THUMBPRINT)', 'Remove(THUMBPRINT)', 'Close()').
    #>
    param(
        [string]$Name = 'My',
        [System.Security.Cryptography.X509Certificates.X509Certificate2[]]$Certificate = @()
    )
    $collection = [System.Security.Cryptography.X509Certificates.X509Certificate2Collection]::new()
    foreach ($item in $Certificate) { $null = $collection.Add($item) }
    $store = [pscustomobject]@{
        Name         = $Name
        Location     = 'LocalMachine'
        Certificates = $collection
        IsOpen       = $true
        Calls        = [System.Collections.Generic.List[string]]::new()
    }
    $store | Add-Member -MemberType ScriptMethod -Name Open -Value {
        param($Flags) $this.Calls.Add("Open($Flags)"); $this.IsOpen = $true }
    $store | Add-Member -MemberType ScriptMethod -Name Close -Value { $this.Calls.Add('Close()'); $this.IsOpen = $false }
    $store | Add-Member -MemberType ScriptMethod -Name Dispose -Value { $this.Calls.Add('Dispose()'); $this.IsOpen = $false }
    $store | Add-Member -MemberType ScriptMethod -Name Add -Value {
        param($Cert)
        $this.Calls.Add("Add($($Cert.Thumbprint))")
        foreach ($existing in @($this.Certificates | Where-Object Thumbprint -EQ $Cert.Thumbprint)) { $this.Certificates.Remove($existing) }
        $null = $this.Certificates.Add($Cert)
    }
    $store | Add-Member -MemberType ScriptMethod -Name Remove -Value {
        param($Cert)
        $this.Calls.Add("Remove($($Cert.Thumbprint))")
        foreach ($existing in @($this.Certificates | Where-Object Thumbprint -EQ $Cert.Thumbprint)) { $this.Certificates.Remove($existing) }
    }
    $store | Add-Member -MemberType ScriptMethod -Name AddRange -Value { param($Certs) foreach ($c in $Certs) { $this.Add($c) } }
    $store | Add-Member -MemberType ScriptMethod -Name RemoveRange -Value { param($Certs) foreach ($c in @($Certs)) { $this.Remove($c) } }
    return $store
}

function New-FakeIisBinding {
    <# One IIS binding: Protocol, BindingInformation ('IP:Port:Host'), CertificateHash (bytes),
       CertificateStoreName, and sslFlags through GetAttributeValue/SetAttributeValue as in IIS. #>
    param(
        [string]$Protocol = 'https',
        [Parameter(Mandatory)][string]$BindingInformation,
        [byte[]]$CertificateHash = $null,
        [string]$CertificateStoreName = '',
        [int]$SslFlags = 0
    )
    $binding = [pscustomobject]@{
        Protocol             = $Protocol
        BindingInformation   = $BindingInformation
        CertificateHash      = $CertificateHash
        CertificateStoreName = $CertificateStoreName
        Attributes           = @{ sslFlags = $SslFlags }
    }
    $binding | Add-Member -MemberType ScriptMethod -Name GetAttributeValue -Value { param($Name) $this.Attributes[$Name] }
    $binding | Add-Member -MemberType ScriptMethod -Name SetAttributeValue -Value { param($Name, $Value) $this.Attributes[$Name] = $Value }
    return $binding
}

function New-FakeIisServerManager {
    <#
    .SYNOPSIS
    An in-memory IIS (Microsoft.Web.Administration.ServerManager) for mocking Get-IisServerManager:
        $iis = New-FakeIisServerManager -Site @{ 'Default Web Site' = @(New-FakeIisBinding -BindingInformation '*:443:') }
        Mock -ModuleName WincertOps Get-IisServerManager { $iis }
    .DESCRIPTION
    .Sites[name] / foreach over .Sites; each site has Name and Bindings (Add/Remove as IIS's collection).
    CommitChanges() records the commit; -FailCommit makes it throw as IIS does for a configuration it
    refuses. Log lists 'Bindings.Add(info)', 'Bindings.Remove(info)' and 'CommitChanges()' in order. The same
    object serves every Get-IisServerManager call, so a re-read sees what was committed (and what was not).
    #>
    param(
        [hashtable]$Site = @{ 'Default Web Site' = @() },
        [switch]$FailCommit
    )
    $log = [System.Collections.Generic.List[string]]::new()
    $sites = [FakeIisSiteCollection]::new()
    foreach ($name in $Site.Keys) {
        $bindings = [FakeIisBindingCollection]::new()
        $bindings.Log = $log
        foreach ($binding in @($Site[$name])) { $bindings.Insert($bindings.Count, $binding) }
        $sites.Add([pscustomobject]@{ Name = $name; Bindings = $bindings })
    }
    $manager = [pscustomobject]@{ Sites = $sites; Log = $log; CommitCount = 0; FailCommit = [bool]$FailCommit }
    $manager | Add-Member -MemberType ScriptMethod -Name CommitChanges -Value {
        $this.Log.Add('CommitChanges()')
        if ($this.FailCommit) { throw [System.Runtime.InteropServices.COMException]::new('IIS refused the configuration (fake)') }
        $this.CommitCount++
    }
    return $manager
}

function New-FakeServiceController {
    <#
    .SYNOPSIS
    An in-memory System.ServiceProcess.ServiceController for mocking Get-ServiceController.
    .DESCRIPTION
    Name/ServiceName, Status ('Running', 'Stopped'), DependentServices (other fakes), Stop(), Start(),
    WaitForStatus(status, timeout), Refresh(). Stop() stops the running dependents first and Start() starts
    only this service, as .NET's ServiceController does on Windows. -Log (a List[string] shared between
    fakes) records 'Stop(NAME)' / 'Start(NAME)' in order across services. -StopHangs / -StartHangs leave the
    status unchanged so WaitForStatus throws System.TimeoutException; -StartFails makes Start() throw.
    #>
    param(
        [Parameter(Mandatory)][string]$Name,
        [ValidateSet('Running', 'Stopped')][string]$Status = 'Running',
        [object[]]$DependentServices = @(),
        [System.Collections.Generic.List[string]]$Log = [System.Collections.Generic.List[string]]::new(),
        [switch]$StopHangs,
        [switch]$StartHangs,
        [switch]$StartFails
    )
    $service = [pscustomobject]@{
        Name              = $Name
        ServiceName       = $Name
        Status            = $Status
        DependentServices = $DependentServices
        Log               = $Log
        StopHangs         = [bool]$StopHangs
        StartHangs        = [bool]$StartHangs
        StartFails        = [bool]$StartFails
    }
    $service | Add-Member -MemberType ScriptMethod -Name Stop -Value {
        foreach ($dependent in $this.DependentServices) { if ($dependent.Status -ne 'Stopped') { $dependent.Stop() } }
        $this.Log.Add("Stop($($this.Name))")
        if (-not $this.StopHangs) { $this.Status = 'Stopped' }
    }
    $service | Add-Member -MemberType ScriptMethod -Name Start -Value {
        $this.Log.Add("Start($($this.Name))")
        if ($this.StartFails) { throw [System.InvalidOperationException]::new("Cannot start service $($this.Name) (fake)") }
        if (-not $this.StartHangs) { $this.Status = 'Running' }
    }
    $service | Add-Member -MemberType ScriptMethod -Name WaitForStatus -Value {
        param($Wanted, $Timeout)
        if ([string]$this.Status -ne [string]$Wanted) {
            throw [System.TimeoutException]::new("Time out has expired and the operation has not been completed ($($this.Name) is $($this.Status), wanted $Wanted)")
        }
    }
    $service | Add-Member -MemberType ScriptMethod -Name Refresh -Value { }
    return $service
}

function New-NativeResult {
    <# What the Invoke-Native seam returns: @{ ExitCode; Output }. For Mock Invoke-Native { New-NativeResult ... }. #>
    param([int]$ExitCode = 0, [string]$Output = '')
    @{ ExitCode = $ExitCode; Output = $Output }
}

function New-TestKeyInfo {
    <# What the key seams return on Windows: Get-LegacyCspKeyInfo (Kind CAPI) / Get-CngKeyInfo (Kind CNG):
       @{ Kind; ProviderName; UniqueName; Key }. #>
    param(
        [ValidateSet('CAPI', 'CNG')][string]$Kind = 'CNG',
        [string]$ProviderName = 'Microsoft Software Key Storage Provider',
        [string]$UniqueName = ([guid]::NewGuid().ToString()),
        $Key = $null
    )
    @{ Kind = $Kind; ProviderName = $ProviderName; UniqueName = $UniqueName; Key = $Key }
}

Export-ModuleMember -Function Get-WincertRepoRoot, Import-WincertModule, Get-WincertOpTable, Get-WincertOpFunctionName,
    Invoke-WincertOp, Get-OpContractPath, Get-OpContract, Get-WincertErrorCategory, Assert-OpContract, New-TestCertificate,
    New-TestPfx, New-FakeX509Store, New-TestKeyInfo, New-FakeIisBinding, New-FakeIisServerManager, New-FakeServiceController,
    New-NativeResult
