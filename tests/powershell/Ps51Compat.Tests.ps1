# The Windows PowerShell 5.1 check (tools/ps51-check): every construct it lists is caught, with its
# position, and code that runs on 5.1 passes. Tagged NotModule: left out of the module coverage run.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot '../../tools/ps51-check/Ps51Compat.psm1') -Force
    $tables = Get-Ps51RuleTable

    # One snippet per syntax construct; Rule is what the check must report for it.
    $syntaxCases = @(
        @{ Rule = 'Ternary'; Code = '$x = $a ? 1 : 2' }
        @{ Rule = 'NullCoalescing'; Code = '$x = $a ?? ''default''' }
        @{ Rule = 'NullCoalescingAssignment'; Code = '$x ??= 5' }
        @{ Rule = 'NullConditionalAccess'; Code = '${a}?.Name' }
        @{ Rule = 'NullConditionalAccess'; Code = '${a}?.ToString()' }
        @{ Rule = 'NullConditionalAccess'; Code = '${a}?[0]' }
        @{ Rule = 'QuestionMarkVariable'; Code = '$a?.Name' }
        @{ Rule = 'PipelineChain'; Code = 'Get-Item x && Get-Item y' }
        @{ Rule = 'PipelineChain'; Code = 'Get-Item x || Write-Output missing' }
        @{ Rule = 'CleanBlock'; Code = 'function F { process { $_ } clean { Remove-Item t } }' }
        @{ Rule = 'BackgroundOperator'; Code = 'Get-Process &' }
        @{ Rule = 'GenericMethodCall'; Code = '[Linq.Enumerable]::Empty[int]()' }
        @{ Rule = 'UnicodeEscape'; Code = '"snow `u{2603}"' }
        @{ Rule = 'UnicodeEscape'; Code = "@`"`nline ``u{1F600}`n`"@" }
        @{ Rule = 'NumericLiteral'; Code = '$n = 0b1010' }
        @{ Rule = 'NumericLiteral'; Code = '$n = 5u' }
        @{ Rule = 'NumericLiteral'; Code = '$n = 5ul' }
        @{ Rule = 'NumericLiteral'; Code = '$n = 5y' }
        @{ Rule = 'NumericLiteral'; Code = '$n = 5uy' }
        @{ Rule = 'NumericLiteral'; Code = '$n = 5s' }
        @{ Rule = 'NumericLiteral'; Code = '$n = 5us' }
        @{ Rule = 'NumericLiteral'; Code = '$n = 5n' }
        @{ Rule = 'ReplaceScriptBlock'; Code = '''abc'' -replace ''b'', { $_.Value.ToUpper() }' }
        @{ Rule = 'RequiresVersion'; Code = "#requires -Version 7.0`nWrite-Output x" }
        @{ Rule = 'RequiresVersion'; Code = "#requires -PSEdition Core`nWrite-Output x" }
        @{ Rule = 'ParseError'; Code = 'function Broken { if ($x) { }' }
        @{ Rule = 'Parameter7'; Code = '1..3 | ForEach-Object -Parallel { $_ }' }
        @{ Rule = 'Encoding7'; Code = 'Set-Content -Path f -Value x -Encoding utf8NoBOM' }
        @{ Rule = 'Encoding7'; Code = 'Out-File -FilePath f -Encoding utf8BOM' }
        @{ Rule = 'Encoding7'; Code = 'Add-Content f x -Encoding ansi' }
        @{ Rule = 'Encoding7'; Code = 'Set-Content f x -Encoding 65001' }
        @{ Rule = 'Encoding7'; Code = 'Out-File f -Encoding ([System.Text.Encoding]::UTF8)' }
        @{ Rule = 'DotNetCoreApi'; Code = '$v = [semver]''1.2.3''' }
        @{ Rule = 'DotNetCoreApi'; Code = '[System.Security.Cryptography.X509Certificates.X509CertificateLoader]::LoadCertificate($b)' }
        @{ Rule = 'DotNetCoreApi'; Code = '[System.Text.Json.JsonSerializer]::Serialize($o)' }
        @{ Rule = 'DotNetCoreApi'; Code = 'New-Object System.Text.Json.JsonSerializerOptions' }
        @{ Rule = 'DotNetCoreApi'; Code = 'param([System.Management.Automation.SemanticVersion]$V)' }
    )

    # How the issue names them, written the ways PowerShell accepts: full, abbreviated, aliased, positional,
    # colon-bound, module-qualified and splatted.
    $parameterCases = @(
        @{ Expect = 'ConvertFrom-Json -AsHashtable'; Code = '$j | ConvertFrom-Json -AsHashtable' }
        @{ Expect = 'ConvertFrom-Json -AsHashtable'; Code = '$j | ConvertFrom-Json -AsH' }
        @{ Expect = 'ConvertFrom-Json -AsHashtable'; Code = 'ConvertFrom-Json -InputObject $j -AsHashtable:$true' }
        @{ Expect = 'ConvertFrom-Json -AsHashtable'; Code = 'Microsoft.PowerShell.Utility\ConvertFrom-Json $j -AsHashtable' }
        @{ Expect = 'ConvertFrom-Json -AsHashtable'; Code = "`$p = @{ AsHashtable = `$true }`n`$j | ConvertFrom-Json @p" }
        @{ Expect = 'ConvertFrom-Json -AsHashtable'; Code = "`$p = @{}`n`$p.AsHashtable = `$true`n`$j | ConvertFrom-Json @p" }
        @{ Expect = 'ConvertFrom-Json -AsHashtable'; Code = "`$p = @{}`n`$p['AsHash'] = `$true`n`$j | ConvertFrom-Json @p" }
        @{ Expect = 'ConvertFrom-Json -Depth'; Code = '$j | ConvertFrom-Json -Depth 10' }
        @{ Expect = 'ConvertFrom-Json -NoEnumerate'; Code = '$j | ConvertFrom-Json -NoEnumerate' }
        @{ Expect = 'Get-Content -AsByteStream'; Code = 'Get-Content -Path f -AsByteStream' }
        @{ Expect = 'Get-Content -AsByteStream'; Code = 'gc f -AsByteStream' }
        @{ Expect = 'Get-Content -AsByteStream'; Code = 'cat f -AsB' }
        @{ Expect = 'Set-Content -AsByteStream'; Code = 'Set-Content f $bytes -AsByteStream' }
        @{ Expect = 'Add-Content -AsByteStream'; Code = 'Add-Content f $bytes -AsByteStream' }
        @{ Expect = 'Join-Path -AdditionalChildPath'; Code = 'Join-Path -Path a -ChildPath b -AdditionalChildPath c' }
        @{ Expect = 'Join-Path -AdditionalChildPath'; Code = 'Join-Path $root certstore ps' }
        @{ Expect = 'ConvertTo-Json -AsArray'; Code = '$x | ConvertTo-Json -AsArray' }
        @{ Expect = 'ConvertTo-Json -EscapeHandling'; Code = '$x | ConvertTo-Json -EscapeHandling EscapeNonAscii' }
        @{ Expect = 'ForEach-Object -Parallel'; Code = '1..3 | % -Parallel { $_ }' }
        @{ Expect = 'ForEach-Object -ThrottleLimit'; Code = '1..3 | ForEach-Object -Parallel { $_ } -ThrottleLimit 4' }
        @{ Expect = 'Invoke-RestMethod -SkipCertificateCheck'; Code = 'Invoke-RestMethod -Uri $u -SkipCertificateCheck' }
        @{ Expect = 'Invoke-WebRequest -SkipHttpErrorCheck'; Code = 'iwr $u -SkipHttpErrorCheck' }
        @{ Expect = 'Start-Process -Environment'; Code = 'Start-Process certreq.exe -Environment @{ A = 1 }' }
        @{ Expect = 'Select-String -Raw'; Code = 'Select-String -Pattern x -Path f -Raw' }
        @{ Expect = 'Select-String -NoEmphasis'; Code = 'Select-String -Pattern x -Path f -NoEmphasis' }
    )
    # Every entry of the tables, in its plain form.
    $tableParameterCases = foreach ($command in $tables.Parameters.Keys) {
        foreach ($parameter in $tables.Parameters[$command].Keys) {
            @{ Expect = "$command -$parameter"; Code = "$command -$parameter" }
        }
    }
    $commandCases = foreach ($command in $tables.Commands.Keys) { @{ Command = $command; Code = "$command" } }
    $variableCases = foreach ($variable in $tables.Variables.Keys) { @{ Variable = $variable; Code = "if (`$$variable) { 1 }" } }
    $methodCases = foreach ($method in $tables.Methods.Keys) { @{ Method = $method; Code = "`$x.$method()" } }

    # Written so they run on Windows PowerShell 5.1: nothing may be reported.
    $cleanCases = @(
        '$j | ConvertFrom-Json'
        'ConvertTo-Json -InputObject $x -Depth 6 -Compress'
        'ConvertTo-Json -Dep 3 $x'
        'Join-Path $a $b'
        'Join-Path -Path (Join-Path $root certstore) -ChildPath ps'
        'Get-Content -Path f -Raw -Encoding UTF8'
        'Get-Content f -Encoding Byte -ReadCount 0'
        'Set-Content -Path f -Value x -Encoding Ascii'
        'Out-File -FilePath f -Encoding utf8 -NoNewline'
        'Export-Csv -Path f -NoTypeInformation -Encoding UTF8'
        '1..3 | ForEach-Object { $_ * 2 }'
        '1..3 | % { $_ }'
        'Invoke-RestMethod -Uri $u -Method Post -Body $b -UseBasicParsing -TimeoutSec 30'
        'Start-Process -FilePath certreq.exe -ArgumentList $a -Wait -NoNewWindow -PassThru'
        'Select-String -Pattern x -Path f -SimpleMatch -Quiet'
        'Sort-Object -Property Name -Descending | Select-Object -First 3'
        'Get-Date -Format o'
        'Remove-Item -Path f -Stream Zone.Identifier'
        '${a}.Name'
        '$a.Name'
        '$x = if ($a) { 1 } else { 2 }'
        '$n = 1kb + 0x1F + 1.5e3 + 5l + 2d'
        '''abc'' -replace ''b'', ''c'''
        '[regex]::Replace($s, ''[^\x00-\x7E]'', { param($m) ''\u{0:x4}'' -f [int][char]$m.Value })'
        '"literal backtick ``u{41}"'
        '''single-quoted `u{41} is text'''
        'using namespace System.Security.Cryptography.X509Certificates'
        'class Binding { [string]$Host; [int]$Port; Binding() { } }'
        'enum Mode { ReadOnly; ReadWrite }'
        '$c = New-Object System.Security.Cryptography.X509Certificates.X509Certificate2 (,$bytes)'
        '$rsa = [System.Security.Cryptography.X509Certificates.RSACertificateExtensions]::GetRSAPrivateKey($c)'
        '$r = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new(''CN=x'', $rsa, ''SHA256'', [System.Security.Cryptography.RSASignaturePadding]::Pkcs1)'
        '$script:IsWindows = $true'
        '#requires -Version 5.1'
        'if ($PSVersionTable.PSVersion.Major -ge 6) { $edition = $PSVersionTable.PSEdition }'
        '& $scriptBlock -AsHashtable'
        '$list = New-Object System.Collections.Generic.List[object]; $list.Add(1)'
        'try { throw (New-OpError ''InvalidArgument'' ''bad'') } catch { $_.Exception.Data[''WincertCategory''] } finally { }'
    )
}

Describe 'ps51-check' -Tag 'NotModule' {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot '../../tools/ps51-check/Ps51Compat.psm1') -Force
        $checker = Join-Path $PSScriptRoot '../../tools/ps51-check/Test-Ps51Compat.ps1'
        $tables = Get-Ps51RuleTable
        function Find-In([string]$Code) { @(Find-Ps51Incompatibility -ScriptText $Code -Name 'snippet.ps1') }
    }

    Context 'syntax PowerShell 5.1 lacks' {
        It '<Rule>: <Code>' -TestCases $syntaxCases {
            $findings = Find-In $Code
            $findings.Rule | Should -Contain $Rule
        }
    }

    Context '7-only parameters, written every way PowerShell binds them' {
        It '<Expect>: <Code>' -TestCases $parameterCases {
            $findings = @(Find-In $Code | Where-Object Rule -EQ 'Parameter7')
            $findings.Count | Should -BeGreaterThan 0
            ($findings.Message -join "`n") | Should -BeLike "*$Expect *"
        }
    }

    Context 'every entry of the 7-only parameter table' {
        It '<Expect>' -TestCases $tableParameterCases {
            ((Find-In $Code | Where-Object Rule -EQ 'Parameter7').Message -join "`n") | Should -BeLike "*$Expect *"
        }
    }

    Context 'commands, variables and .NET members PowerShell 5.1 lacks' {
        It 'command <Command>' -TestCases $commandCases {
            (Find-In $Code).Rule | Should -Contain 'Command7'
        }
        It 'variable $<Variable>' -TestCases $variableCases {
            (Find-In $Code).Rule | Should -Contain 'Variable7'
        }
        It 'method .<Method>()' -TestCases $methodCases {
            (Find-In $Code).Rule | Should -Contain 'DotNetCoreApi'
        }
    }

    Context 'code that runs on Windows PowerShell 5.1' {
        It 'passes: <_>' -TestCases $cleanCases {
            $findings = Find-In $_
            ($findings | ForEach-Object { "$($_.Rule): $($_.Message)" }) -join "`n" | Should -BeNullOrEmpty
        }

        It 'passes a realistic 5.1 script as a whole' {
            $script = @'
param([string]$ArgsJson)
Set-StrictMode -Version 2.0
function ConvertTo-AsciiJson([string]$Json) {
    return [regex]::Replace($Json, '[^\x00-\x7E]', { param($match) '\u{0:x4}' -f [int][char]$match.Value })
}
try {
    $a = $ArgsJson | ConvertFrom-Json
    $store = New-Object System.Security.Cryptography.X509Certificates.X509Store($a.StoreName, 'LocalMachine')
    $store.Open('ReadOnly, OpenExistingOnly')
    $list = New-Object System.Collections.Generic.List[object]
    foreach ($certificate in $store.Certificates) {
        $list.Add([pscustomobject]@{
            Base64 = [Convert]::ToBase64String($certificate.RawData)
            HasPrivateKey = $certificate.HasPrivateKey
        })
    }
    $path = Join-Path (Join-Path $env:ProgramData 'Microsoft') 'Crypto'
    $result = [pscustomobject]@{ StoreName = $a.StoreName; Certificates = $list.ToArray(); Path = $path }
    Write-Output (ConvertTo-AsciiJson ($result | ConvertTo-Json -Compress -Depth 6))
    exit 0
} catch {
    $failure = @{ error = @{ message = [string]$_.Exception.Message; category = 'CommandFailed' } }
    Write-Output (ConvertTo-AsciiJson ($failure | ConvertTo-Json -Compress -Depth 6))
    exit 1
}
'@
            Find-In $script | Should -BeNullOrEmpty
        }
    }

    Context 'positions and allowances' {
        It 'reports line and column of the construct' {
            $findings = Find-In "Write-Output 1`n`$x = `$a ?? 2`n`$j | ConvertFrom-Json -AsHashtable"
            $coalesce = $findings | Where-Object Rule -EQ 'NullCoalescing'
            $coalesce.Line | Should -Be 2
            $coalesce.Column | Should -Be 9
            $parameter = $findings | Where-Object Rule -EQ 'Parameter7'
            $parameter.Line | Should -Be 3
            $parameter.Column | Should -Be 23
        }

        It 'allows a finding with "# ps51-allow: Rule reason" on its line or the line before' {
            Find-In 'if ($IsLinux) { } # ps51-allow: Variable7 only read when PSEdition is Core' | Should -BeNullOrEmpty
            Find-In "# ps51-allow: Variable7 only read on Core`nif (`$IsLinux) { }" | Should -BeNullOrEmpty
        }

        It 'does not allow it without a reason, or for another rule' {
            (Find-In 'if ($IsLinux) { } # ps51-allow: Variable7').Rule | Should -Contain 'Variable7'
            (Find-In '$x = $a ?? 1 # ps51-allow: Variable7 wrong rule').Rule | Should -Contain 'NullCoalescing'
        }
    }

    Context 'the command line' {
        BeforeAll {
            function Invoke-Checker([string[]]$Paths) {
                $output = & $checker @Paths 6>&1 | ForEach-Object { "$_" }
                [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = ($output -join "`n") }
            }
        }

        It 'exits 1 and prints file:line:column: Rule for each finding' {
            Set-Content -Path TestDrive:/bad.ps1 -Value "Write-Output 1`n`$x = `$a ? 1 : 2`nGet-Content f -AsByteStream"
            $run = Invoke-Checker @((Join-Path $TestDrive 'bad.ps1'))
            $run.ExitCode | Should -Be 1
            $run.Output | Should -Match 'bad\.ps1:2:6: Ternary: '
            $run.Output | Should -Match 'bad\.ps1:3:15: Parameter7: Get-Content -AsByteStream'
            $run.Output | Should -Match '2 finding\(s\) in 1 file\(s\)'
        }

        It 'exits 0 for a directory of compatible scripts, reading .ps1 .psm1 and .psd1' {
            $dir = Join-Path $TestDrive 'good'
            $null = New-Item -ItemType Directory -Path $dir
            Set-Content -Path (Join-Path $dir 'a.ps1') -Value 'Write-Output 1'
            Set-Content -Path (Join-Path $dir 'b.psm1') -Value 'function F { 1 }'
            Set-Content -Path (Join-Path $dir 'c.psd1') -Value '@{ ModuleVersion = ''1.0'' }'
            $run = Invoke-Checker @($dir)
            $run.ExitCode | Should -Be 0
            $run.Output | Should -Match '3 file\(s\) compatible'
        }

        It 'reports a broken script''s parse errors with file:line:column and exits 1' {
            $run = Invoke-Checker @((Join-Path $PSScriptRoot 'data/broken.ps1'))
            $run.ExitCode | Should -Be 1
            $run.Output | Should -Match 'broken\.ps1:6:\d+: ParseError: does not parse: '
        }

        It 'exits 2 for a missing path' {
            (Invoke-Checker @((Join-Path $TestDrive 'nope.ps1'))).ExitCode | Should -Be 2
        }
    }

    Context 'the tables' {
        It 'names only parameters that exist in this PowerShell 7 (a typo would never match): <_>' -TestCases @($tables.Parameters.Keys) {
            $command = Get-Command -Name $_ -ErrorAction Ignore
            if (-not $command) { Set-ItResult -Skipped -Because "$_ is not available on this platform" ; return }
            foreach ($parameter in $tables.Parameters[$_].Keys) {
                $command.Parameters.Keys | Should -Contain $parameter -Because "$_ -$parameter"
            }
        }
    }
}
