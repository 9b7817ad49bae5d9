# Windows PowerShell 5.1 compatibility check, run by PowerShell 7.
#
# The agent's host-side PowerShell runs on Windows PowerShell 5.1 (.NET Framework 4.x), while the tests run
# it under PowerShell 7. This module parses each script with PowerShell's own parser and walks the syntax
# tree for what 5.1 lacks: 7-only syntax, 7-only cmdlets and parameters of built-in cmdlets, 7-only
# automatic variables and .NET (Core) APIs that .NET Framework lacks. Parameters are resolved the way
# PowerShell binds them (StaticParameterBinder: unique prefixes, aliases, positions), so abbreviations
# and positional arguments are caught too.
#
# A finding can be allowed, with a reason, by a comment on its line or the line before:
#   # ps51-allow: RuleId why this is fine on 5.1
#
# Entry point: Find-Ps51Incompatibility (-Path files/directories, or -ScriptText for a snippet).
# Every table below has one entry per construct, with the version that brought it; only entries that
# are certain are listed (a missed construct still fails on a real 5.1 host; a wrong one blocks good code).

Set-StrictMode -Version 3.0

# --- Tables -----------------------------------------------------------------------------------------------

# Parameters of built-in cmdlets that Windows PowerShell 5.1 lacks. Command -> parameter -> note.
$script:SevenOnlyParameters = @{
    'ConvertFrom-Json'  = @{
        AsHashtable = '6.0; on 5.1 walk the PSCustomObject''s .PSObject.Properties'
        Depth       = '6.2; 5.1 has a fixed maximum depth of 1024'
        NoEnumerate = '7.0'
        DateKind    = '7.5'
    }
    'ConvertTo-Json'    = @{
        AsArray        = '6.2; wrap the value in @( ) with -InputObject instead'
        EscapeHandling = '6.2'
    }
    'Get-Content'       = @{ AsByteStream = '6.0; 5.1 uses -Encoding Byte (or [IO.File]::ReadAllBytes, which both have)' }
    'Set-Content'       = @{ AsByteStream = '6.0; use [IO.File]::WriteAllBytes, which both have' }
    'Add-Content'       = @{ AsByteStream = '6.0' }
    'Join-Path'         = @{ AdditionalChildPath = '6.0 (also given by a third positional path); 5.1 joins one -ChildPath: nest Join-Path calls' }
    'ForEach-Object'    = @{
        Parallel       = '7.0; 5.1 has no parallel ForEach-Object'
        ThrottleLimit  = '7.0 (with -Parallel)'
        TimeoutSeconds = '7.0 (with -Parallel)'
        AsJob          = '7.0 (with -Parallel)'
        UseNewRunspace = '7.1 (with -Parallel)'
    }
    'Invoke-RestMethod' = @{
        Authentication                  = '6.0'
        Token                           = '6.0'
        AllowUnencryptedAuthentication  = '6.0'
        SkipCertificateCheck            = '6.0; 5.1 needs a ServicePointManager callback'
        SslProtocol                     = '6.0; 5.1 uses [Net.ServicePointManager]::SecurityProtocol'
        SkipHeaderValidation            = '6.0'
        MaximumRetryCount               = '6.1'
        RetryIntervalSec                = '6.1'
        Form                            = '6.1'
        NoProxy                         = '6.0'
        Resume                          = '6.1'
        SkipHttpErrorCheck              = '7.0'
        PreserveAuthorizationOnRedirect = '6.0'
        HttpVersion                     = '7.3'
        CustomMethod                    = '6.0'
        ConnectionTimeoutSeconds        = '7.4'
        OperationTimeoutSeconds         = '7.4'
        AllowInsecureRedirect           = '7.4'
        PreserveHttpMethodOnRedirect    = '7.4'
        UnixSocket                      = '7.4'
        FollowRelLink                   = '6.0'
        MaximumFollowRelLink            = '6.0'
        ResponseHeadersVariable         = '6.0'
        StatusCodeVariable              = '7.0'
    }
    'Start-Process'     = @{ Environment = '7.4; on 5.1 set $env: variables around the call' }
    'Select-String'     = @{
        Raw        = '7.0'
        NoEmphasis = '7.0'
        Culture    = '7.0'
    }
    'Sort-Object'       = @{
        Top    = '6.1; use Select-Object -First after sorting'
        Bottom = '6.1; use Select-Object -Last after sorting'
        Stable = '7.0'
    }
    'Select-Object'     = @{ SkipIndex = '6.2' }
    'Split-Path'        = @{
        LeafBase  = '6.0; use [IO.Path]::GetFileNameWithoutExtension'
        Extension = '6.0; use [IO.Path]::GetExtension'
    }
    'Get-Date'          = @{
        AsUTC           = '7.1; use (Get-Date).ToUniversalTime()'
        UnixTimeSeconds = '7.0'
    }
    'Test-Connection'   = @{
        Ping               = '7.0'
        TcpPort            = '7.0; 5.1 has Test-NetConnection -Port (Windows only)'
        Traceroute         = '7.0'
        MtuSize            = '7.0'
        Repeat             = '7.0'
        IPv4               = '7.0'
        IPv6               = '7.0'
        ResolveDestination = '7.0'
        TimeoutSeconds     = '7.0'
        Detailed           = '7.0'
    }
    'ConvertTo-Csv'     = @{
        UseQuotes              = '7.0'
        QuoteFields            = '7.0'
        IncludeTypeInformation = '6.0; 5.1 writes the type line unless -NoTypeInformation'
        NoHeader               = '7.4'
    }
    'Export-Csv'        = @{
        UseQuotes              = '7.0'
        QuoteFields            = '7.0'
        IncludeTypeInformation = '6.0; 5.1 writes the type line unless -NoTypeInformation'
        NoHeader               = '7.4'
    }
    'Invoke-Command'    = @{
        HostName      = '6.0 (SSH remoting)'
        SSHTransport  = '6.0 (SSH remoting)'
        KeyFilePath   = '6.0 (SSH remoting)'
        UserName      = '6.0 (SSH remoting)'
        SSHConnection = '6.0 (SSH remoting)'
        Subsystem     = '6.0 (SSH remoting)'
    }
    'New-PSSession'     = @{
        HostName      = '6.0 (SSH remoting)'
        SSHTransport  = '6.0 (SSH remoting)'
        KeyFilePath   = '6.0 (SSH remoting)'
        UserName      = '6.0 (SSH remoting)'
        SSHConnection = '6.0 (SSH remoting)'
        Subsystem     = '6.0 (SSH remoting)'
    }
    'Start-Job'         = @{ WorkingDirectory = '7.0' }
    'Resolve-Path'      = @{ RelativeBasePath = '7.4' }
    'Get-Random'        = @{ Shuffle = '7.1' }
    'Tee-Object'        = @{ Encoding = '7.2; 5.1 writes Unicode (UTF-16)' }
    'Import-Module'     = @{ UseWindowsPowerShell = '7.0 (the compatibility session of PowerShell 7)' }
    # Not listed: Remove-Item -Stream (the 5.1 FileSystem provider has it), Get-Content -Raw (3.0).
}

# Built-in commands Windows PowerShell 5.1 does not have at all.
$script:SevenOnlyCommands = @{
    'Test-Json'                   = '6.1'
    'Get-Error'                   = '7.0; read $Error[0] / $_.Exception on 5.1'
    'Join-String'                 = '6.2; use -join'
    'Get-Uptime'                  = '6.0'
    'Remove-Alias'                = '6.0; use Remove-Item Alias:NAME'
    'Remove-Service'              = '6.0; use sc.exe delete'
    'ConvertFrom-Markdown'        = '6.1'
    'Show-Markdown'               = '6.1'
    'Get-MarkdownOption'          = '6.1'
    'Set-MarkdownOption'          = '6.1'
    'Get-SecureRandom'            = '7.4; use [Security.Cryptography.RandomNumberGenerator]'
    'ConvertTo-CliXml'            = '7.5; use [Management.Automation.PSSerializer]::Serialize'
    'ConvertFrom-CliXml'          = '7.5; use [Management.Automation.PSSerializer]::Deserialize'
    'Start-ThreadJob'             = 'ThreadJob ships with 6.1+; not installed on 5.1'
    'Get-ExperimentalFeature'     = '6.2'
    'Enable-ExperimentalFeature'  = '6.2'
    'Disable-ExperimentalFeature' = '6.2'
    'Get-PSSubsystem'             = '7.3'
}

# Windows aliases that PowerShell 7 on Linux does not define (there they are native programs or gone),
# so the binder cannot resolve them here. Only aliases of commands in the tables above matter.
$script:WindowsAliases = @{
    'cat'  = 'Get-Content'
    'gc'   = 'Get-Content'
    'type' = 'Get-Content'
    'sc'   = 'Set-Content'
    'ac'   = 'Add-Content'
    'sort' = 'Sort-Object'
    'tee'  = 'Tee-Object'
    'ipmo' = 'Import-Module'
    'icm'  = 'Invoke-Command'
    'irm'  = 'Invoke-RestMethod'
    'iwr'  = 'Invoke-WebRequest'
    'curl' = 'Invoke-WebRequest'
    'wget' = 'Invoke-WebRequest'
}
# Invoke-WebRequest has the same 7-only web parameters, less the Invoke-RestMethod-only ones.
$script:SevenOnlyParameters['Invoke-WebRequest'] = @{}
foreach ($entry in $script:SevenOnlyParameters['Invoke-RestMethod'].GetEnumerator()) {
    if ($entry.Key -notin 'FollowRelLink', 'MaximumFollowRelLink', 'ResponseHeadersVariable', 'StatusCodeVariable') {
        $script:SevenOnlyParameters['Invoke-WebRequest'][$entry.Key] = $entry.Value
    }
}

# -Encoding values. 5.1 takes the FileSystemCmdletProviderEncoding names (or a subset of them); 7 also
# takes utf8BOM, utf8NoBOM, ansi, code page numbers and names, and Encoding objects.
$script:EncodingCommands = @('Add-Content', 'Set-Content', 'Get-Content', 'Out-File', 'Export-Csv', 'Import-Csv',
    'Export-Clixml', 'Select-String', 'Send-MailMessage')
$script:Encodings51 = @('Unknown', 'String', 'Unicode', 'Byte', 'BigEndianUnicode', 'UTF8', 'UTF7', 'UTF32', 'Ascii',
    'Default', 'Oem', 'BigEndianUTF32')

# Automatic and preference variables that exist only in PowerShell 6+ (on 5.1 they read as $null).
$script:SevenOnlyVariables = @{
    'IsWindows'                               = '6.0; on 5.1 this is $null - test $PSVersionTable.PSEdition or [Environment]::OSVersion'
    'IsLinux'                                 = '6.0'
    'IsMacOS'                                 = '6.0'
    'IsCoreCLR'                               = '6.0'
    'PSStyle'                                 = '7.2'
    'EnabledExperimentalFeatures'             = '6.2'
    'PSNativeCommandArgumentPassing'          = '7.3; 5.1 ignores it'
    'PSNativeCommandUseErrorActionPreference' = '7.3; 5.1 ignores it'
}

# .NET methods that .NET Framework 4.x (the runtime of Windows PowerShell 5.1) lacks, matched by member name.
$script:DotNetCoreMethods = @{
    'ExportPkcs8PrivateKey'          = '.NET Core 3.0'
    'ImportPkcs8PrivateKey'          = '.NET Core 3.0'
    'ExportEncryptedPkcs8PrivateKey' = '.NET Core 3.0'
    'ImportEncryptedPkcs8PrivateKey' = '.NET Core 3.0'
    'ExportSubjectPublicKeyInfo'     = '.NET Core 3.0'
    'ImportSubjectPublicKeyInfo'     = '.NET Core 3.0'
    'ExportRSAPrivateKey'            = '.NET Core 3.0'
    'ImportRSAPrivateKey'            = '.NET Core 3.0'
    'ExportRSAPublicKey'             = '.NET Core 3.0'
    'ImportRSAPublicKey'             = '.NET Core 3.0'
    'ExportECPrivateKey'             = '.NET Core 3.0'
    'ImportECPrivateKey'             = '.NET Core 3.0'
    'ImportFromPem'                  = '.NET 5'
    'ImportFromEncryptedPem'         = '.NET 5'
    'ExportCertificatePem'           = '.NET 7'
    'CreateFromPem'                  = '.NET 5'
    'CreateFromPemFile'              = '.NET 5'
    'CreateFromEncryptedPem'         = '.NET 5'
    'CreateFromEncryptedPemFile'     = '.NET 5'
    'ToHexString'                    = '.NET 5; use [BitConverter]::ToString($b) -replace ''-'''
    'FromHexString'                  = '.NET 5'
    'HashData'                       = '.NET 5; create the algorithm and call ComputeHash'
    'GetRelativePath'                = '.NET Core 2.0'
}

# Types .NET Framework 4.x lacks (full name, or a namespace ending in '.').
$script:DotNetCoreTypes = @{
    'System.Security.Cryptography.X509Certificates.X509CertificateLoader' = '.NET 9; use the X509Certificate2 constructors'
    'System.Security.Cryptography.PemEncoding'                            = '.NET 5'
    'System.Management.Automation.SemanticVersion'                        = '6.0 ([semver])'
    'semver'                                                              = '6.0; use [version]'
    'System.Text.Json.'                                                   = 'not in .NET Framework; use ConvertTo-Json/ConvertFrom-Json'
    'System.Formats.Asn1.'                                                = '.NET 5'
}

# --- Helpers ----------------------------------------------------------------------------------------------

function New-Finding {
    param($File, [System.Management.Automation.Language.IScriptExtent]$Extent, [string]$Rule, [string]$Message)
    $text = $Extent.Text -replace '\s+', ' '
    if ($text.Length -gt 60) { $text = $text.Substring(0, 57) + '...' }
    [pscustomobject]@{
        File    = $File
        Line    = $Extent.StartLineNumber
        Column  = $Extent.StartColumnNumber
        Rule    = $Rule
        Message = $Message
        Text    = $text
    }
}

$script:CommandNameCache = @{}
# The canonical name of a command as written (alias or module-qualified), or the name itself.
function Resolve-CanonicalCommandName([string]$Name) {
    if ($Name -match '\\') { $Name = ($Name -split '\\')[-1] }  # Microsoft.PowerShell.Utility\ConvertFrom-Json
    if ($script:CommandNameCache.ContainsKey($Name)) { return $script:CommandNameCache[$Name] }
    $resolved = $Name
    if ($script:WindowsAliases.ContainsKey($Name)) {
        $resolved = $script:WindowsAliases[$Name]
    } elseif (-not $script:SevenOnlyParameters.ContainsKey($Name) -and -not $script:SevenOnlyCommands.ContainsKey($Name)) {
        $alias = Get-Alias -Name $Name -ErrorAction Ignore
        if ($alias) { $resolved = $alias.ResolvedCommandName }
    }
    foreach ($known in @($script:SevenOnlyParameters.Keys) + @($script:SevenOnlyCommands.Keys) + $script:EncodingCommands) {
        if ($known -eq $resolved) { $resolved = $known; break }  # canonical spelling
    }
    $script:CommandNameCache[$Name] = $resolved
    return $resolved
}

# Parameters bound for a command the way PowerShell would bind it (PowerShell 7's own parameter sets).
# Returns name -> ParameterBindingResult. A command written with a Windows-only alias is re-parsed
# under its cmdlet name first, so the binder knows it.
function Get-BoundParameter([System.Management.Automation.Language.CommandAst]$Command, [string]$CanonicalName) {
    $ast = $Command
    if ($Command.GetCommandName() -ne $CanonicalName) {
        $first = $Command.CommandElements[0].Extent
        $text = $CanonicalName + $Command.Extent.Text.Substring($first.EndOffset - $Command.Extent.StartOffset)
        $reparsed = [System.Management.Automation.Language.Parser]::ParseInput($text, [ref]$null, [ref]$null)
        $ast = $reparsed.Find({ param($n) $n -is [System.Management.Automation.Language.CommandAst] }, $true)
    }
    $bound = @{}
    try {
        $result = [System.Management.Automation.Language.StaticParameterBinder]::BindCommand($ast, $true)
        foreach ($key in $result.BoundParameters.Keys) { $bound[$key] = $result.BoundParameters[$key] }
    } catch {
        # The binder refused (e.g. an ambiguous prefix): the prefix match below still applies.
        $null = $_
    }
    return $bound
}

# Keys of hashtables splatted into a command (@params), when the hashtable is built in the same file:
# $params = @{ Key = ... }, $params.Key = ..., $params['Key'] = ...
function Get-SplattedKey([System.Management.Automation.Language.Ast]$Root, [string]$VariableName) {
    $keys = [System.Collections.Generic.List[string]]::new()
    $assignments = $Root.FindAll({ param($n) $n -is [System.Management.Automation.Language.AssignmentStatementAst] }, $true)
    foreach ($assignment in $assignments) {
        $left = $assignment.Left
        if ($left -is [System.Management.Automation.Language.ConvertExpressionAst]) { $left = $left.Child }
        if ($left -is [System.Management.Automation.Language.VariableExpressionAst] -and
            $left.VariablePath.UserPath -eq $VariableName) {
            $table = $assignment.Right.Find({ param($n) $n -is [System.Management.Automation.Language.HashtableAst] }, $true)
            if ($table) {
                foreach ($pair in $table.KeyValuePairs) {
                    if ($pair.Item1 -is [System.Management.Automation.Language.StringConstantExpressionAst]) {
                        $keys.Add($pair.Item1.Value)
                    }
                }
            }
        } elseif (($left -is [System.Management.Automation.Language.MemberExpressionAst] -or
                $left -is [System.Management.Automation.Language.IndexExpressionAst]) -and
            ($target = if ($left -is [System.Management.Automation.Language.MemberExpressionAst]) { $left.Expression } else { $left.Target }) -is
            [System.Management.Automation.Language.VariableExpressionAst] -and
            $target.VariablePath.UserPath -eq $VariableName) {
            $member = if ($left -is [System.Management.Automation.Language.MemberExpressionAst]) { $left.Member } else { $left.Index }
            if ($member -is [System.Management.Automation.Language.StringConstantExpressionAst]) { $keys.Add($member.Value) }
        }
    }
    return , $keys
}

$script:ParameterMapCache = @{}
# A command's parameters in this PowerShell 7: lower-case name or alias -> @{ Name = canonical; IsAlias = bool }.
# Empty when the command does not exist on this platform.
function Get-ParameterMap([string]$CommandName) {
    if (-not $script:ParameterMapCache.ContainsKey($CommandName)) {
        $map = @{}
        $command = Get-Command -Name $CommandName -CommandType Cmdlet, Function -ErrorAction Ignore | Select-Object -First 1
        if ($command) {
            foreach ($parameter in $command.Parameters.Values) {
                $map[$parameter.Name.ToLowerInvariant()] = @{ Name = $parameter.Name; IsAlias = $false }
                foreach ($alias in $parameter.Aliases) {
                    $map[$alias.ToLowerInvariant()] = @{ Name = $parameter.Name; IsAlias = $true }
                }
            }
        }
        $script:ParameterMapCache[$CommandName] = $map
    }
    return $script:ParameterMapCache[$CommandName]
}

# The parameter a written name refers to, as PowerShell resolves it: an exact name or alias, else a unique
# prefix. Returns @{ Name; IsAlias } or $null. IsAlias: written as an alias, which PowerShell 7 sometimes
# maps from a 5.1 parameter onto a new one (Invoke-RestMethod -TimeoutSec -> -ConnectionTimeoutSeconds),
# so it is not a 7-only spelling.
function Resolve-WrittenParameter([hashtable]$Map, [hashtable]$Table, [string]$Written) {
    $key = $Written.ToLowerInvariant()
    if ($Map.Count -eq 0) {  # unknown command here: match the 7-only names alone
        $names = @($Table.Keys | Where-Object { $_.ToLowerInvariant().StartsWith($key) })
        if ($names.Count -eq 1) { return @{ Name = $names[0]; IsAlias = $false } }
        return $null
    }
    if ($Map.ContainsKey($key)) { return $Map[$key] }
    $matching = @($Map.Keys | Where-Object { $_.StartsWith($key) })
    $canonical = @($matching | ForEach-Object { $Map[$_].Name } | Select-Object -Unique)
    if ($canonical.Count -ne 1) { return $null }
    $viaName = @($matching | Where-Object { -not $Map[$_].IsAlias }).Count -gt 0
    return @{ Name = $canonical[0]; IsAlias = -not $viaName }
}

function Test-CommandAst([System.Management.Automation.Language.CommandAst]$Command, $File, $Root) {
    $written = $Command.GetCommandName()
    if (-not $written) { return }  # & $scriptBlock, & $path: nothing to resolve statically
    $name = Resolve-CanonicalCommandName $written

    if ($script:SevenOnlyCommands.ContainsKey($name)) {
        New-Finding $File $Command.CommandElements[0].Extent 'Command7' `
            "$name is not a Windows PowerShell 5.1 command ($($script:SevenOnlyCommands[$name]))"
        return
    }
    $table = $script:SevenOnlyParameters[$name]
    $checksEncoding = $script:EncodingCommands -contains $name
    if (-not $table -and -not $checksEncoding) { return }
    if (-not $table) { $table = @{} }

    $bound = Get-BoundParameter $Command $name
    $map = Get-ParameterMap $name
    # Named parameters and keys of splatted hashtables, as written.
    $written = [System.Collections.Generic.List[object]]::new()
    foreach ($element in $Command.CommandElements) {
        if ($element -is [System.Management.Automation.Language.CommandParameterAst]) {
            $written.Add(@($element.ParameterName, $element.Extent, "-$($element.ParameterName)"))
        } elseif ($element -is [System.Management.Automation.Language.VariableExpressionAst] -and $element.Splatted) {
            foreach ($key in (Get-SplattedKey $Root $element.VariablePath.UserPath)) {
                $written.Add(@($key, $element.Extent, "key '$key' of @$($element.VariablePath.UserPath)"))
            }
        }
    }
    $named = @{}
    foreach ($entry in $written) {
        $parameter = Resolve-WrittenParameter $map $table $entry[0]
        if (-not $parameter) { continue }
        $named[$parameter.Name] = $true
        if ($table.ContainsKey($parameter.Name) -and -not $parameter.IsAlias) {
            New-Finding $File $entry[1] 'Parameter7' `
                "$name -$($parameter.Name) (written as $($entry[2])) does not exist in Windows PowerShell 5.1 ($($table[$parameter.Name]))"
        }
    }
    # Bound by position (Join-Path a b c binds c to -AdditionalChildPath).
    foreach ($parameter in $bound.Keys) {
        if ($table.ContainsKey($parameter) -and -not $named.ContainsKey($parameter)) {
            $value = $bound[$parameter].Value
            $extent = if ($value -and $value.Extent.StartOffset -ge $Command.Extent.StartOffset) { $value.Extent } else { $Command.Extent }
            New-Finding $File $extent 'Parameter7' `
                "$name -$parameter (written as a positional argument) does not exist in Windows PowerShell 5.1 ($($table[$parameter]))"
        }
    }

    if ($checksEncoding -and $bound.ContainsKey('Encoding')) {
        $value = $bound['Encoding'].Value
        # -Encoding ([Text.Encoding]::UTF8): look through the parentheses.
        while ($value -is [System.Management.Automation.Language.ParenExpressionAst] -and
            $value.Pipeline -is [System.Management.Automation.Language.PipelineAst] -and
            $value.Pipeline.PipelineElements.Count -eq 1 -and
            $value.Pipeline.PipelineElements[0] -is [System.Management.Automation.Language.CommandExpressionAst]) {
            $value = $value.Pipeline.PipelineElements[0].Expression
        }
        $constant = $null
        if ($value -is [System.Management.Automation.Language.ConstantExpressionAst]) { $constant = [string]$value.Value }
        if ($null -ne $constant -and ($script:Encodings51 -notcontains $constant)) {
            New-Finding $File $value.Extent 'Encoding7' `
                "$name -Encoding $constant is not a Windows PowerShell 5.1 encoding name (5.1 takes $($script:Encodings51 -join ', '); UTF8 there writes a BOM)"
        } elseif ($value -is [System.Management.Automation.Language.MemberExpressionAst] -and
            $value.Expression -is [System.Management.Automation.Language.TypeExpressionAst] -and
            $value.Expression.TypeName.FullName -match '(^|\.)(Text\.)?Encoding$') {
            New-Finding $File $value.Extent 'Encoding7' `
                "$name -Encoding takes an encoding name on Windows PowerShell 5.1, not a [System.Text.Encoding] object"
        }
    }
}

function Test-TypeName([string]$FullName) {
    foreach ($entry in $script:DotNetCoreTypes.GetEnumerator()) {
        $key = $entry.Key
        if ($key.EndsWith('.')) {
            if ($FullName.StartsWith($key, [StringComparison]::OrdinalIgnoreCase)) { return $entry.Value }
        } elseif ($FullName -eq $key -or $key.EndsWith('.' + $FullName, [StringComparison]::OrdinalIgnoreCase)) {
            return $entry.Value
        }
    }
    return $null
}

# --- The walk ---------------------------------------------------------------------------------------------

function Find-InAst {
    param([System.Management.Automation.Language.ScriptBlockAst]$Root, $File)
    $nodes = $Root.FindAll({ $true }, $true)
    foreach ($node in $nodes) {
        switch ($node) {
            { $_ -is [System.Management.Automation.Language.TernaryExpressionAst] } {
                New-Finding $File $node.Extent 'Ternary' 'the ternary operator (a ? b : c) needs PowerShell 7.0; use if/else'
            }
            { $_ -is [System.Management.Automation.Language.BinaryExpressionAst] } {
                if ($node.Operator -eq [System.Management.Automation.Language.TokenKind]::QuestionQuestion) {
                    New-Finding $File $node.ErrorPosition 'NullCoalescing' 'the ?? operator needs PowerShell 7.0; use if ($null -eq $x)'
                } elseif ($node.Operator -in [System.Management.Automation.Language.TokenKind]::Ireplace,
                    [System.Management.Automation.Language.TokenKind]::Creplace -and
                    $node.Right -is [System.Management.Automation.Language.ArrayLiteralAst] -and
                    $node.Right.Elements.Count -eq 2 -and
                    $node.Right.Elements[1] -is [System.Management.Automation.Language.ScriptBlockExpressionAst]) {
                    New-Finding $File $node.Extent 'ReplaceScriptBlock' `
                        'a script block as -replace substitution needs PowerShell 6.1 (5.1 inserts its text); use [regex]::Replace with a script block'
                }
            }
            { $_ -is [System.Management.Automation.Language.AssignmentStatementAst] } {
                if ($node.Operator -eq [System.Management.Automation.Language.TokenKind]::QuestionQuestionEquals) {
                    New-Finding $File $node.ErrorPosition 'NullCoalescingAssignment' 'the ??= operator needs PowerShell 7.0'
                }
            }
            { $_ -is [System.Management.Automation.Language.MemberExpressionAst] } {
                if ($node.NullConditional) {
                    New-Finding $File $node.Extent 'NullConditionalAccess' 'null-conditional member access (?.) needs PowerShell 7.1'
                }
                if ($node -is [System.Management.Automation.Language.InvokeMemberExpressionAst]) {
                    if ($node.GenericTypeArguments -and $node.GenericTypeArguments.Count -gt 0) {
                        New-Finding $File $node.Extent 'GenericMethodCall' 'generic method call syntax (.Method[T]()) needs PowerShell 7.3; use reflection (MakeGenericMethod)'
                    }
                    if ($node.Member -is [System.Management.Automation.Language.StringConstantExpressionAst] -and
                        $script:DotNetCoreMethods.ContainsKey($node.Member.Value)) {
                        New-Finding $File $node.Extent 'DotNetCoreApi' `
                            ".$($node.Member.Value)() is not in .NET Framework 4.x, the runtime of Windows PowerShell 5.1 ($($script:DotNetCoreMethods[$node.Member.Value]))"
                    }
                }
            }
            { $_ -is [System.Management.Automation.Language.IndexExpressionAst] } {
                if ($node.NullConditional) {
                    New-Finding $File $node.Extent 'NullConditionalAccess' 'null-conditional index access (?[]) needs PowerShell 7.1'
                }
            }
            { $_ -is [System.Management.Automation.Language.PipelineChainAst] } {
                New-Finding $File $node.Extent 'PipelineChain' 'pipeline chain operators (&& and ||) need PowerShell 7.0; use if ($?) or try/catch'
            }
            { $_ -is [System.Management.Automation.Language.PipelineAst] } {
                if ($node.Background) {
                    New-Finding $File $node.Extent 'BackgroundOperator' 'the background operator (pipeline &) needs PowerShell 6.0; use Start-Job'
                }
            }
            { $_ -is [System.Management.Automation.Language.ScriptBlockAst] } {
                if ($node.CleanBlock) {
                    New-Finding $File $node.CleanBlock.Extent 'CleanBlock' 'clean { } blocks need PowerShell 7.3; use end { } with try/finally'
                }
                $requirements = $node.ScriptRequirements
                if ($requirements -and $requirements.RequiredPSVersion -and $requirements.RequiredPSVersion -gt [version]'5.1') {
                    New-Finding $File $node.Extent 'RequiresVersion' "#requires -Version $($requirements.RequiredPSVersion) excludes Windows PowerShell 5.1"
                }
                if ($requirements -and $requirements.RequiredPSEditions -and
                    -not ($requirements.RequiredPSEditions -contains 'Desktop')) {
                    New-Finding $File $node.Extent 'RequiresVersion' '#requires -PSEdition Core excludes Windows PowerShell 5.1 (Desktop)'
                }
            }
            { $_ -is [System.Management.Automation.Language.VariableExpressionAst] } {
                $variableName = $node.VariablePath.UserPath
                if ($script:SevenOnlyVariables.ContainsKey($variableName) -and $node.VariablePath.IsUnscopedVariable) {
                    New-Finding $File $node.Extent 'Variable7' `
                        "`$$variableName is not defined in Windows PowerShell 5.1 ($($script:SevenOnlyVariables[$variableName]))"
                } elseif ($variableName.EndsWith('?') -and $node.Extent.Text -notmatch '^\$\{') {
                    New-Finding $File $node.Extent 'QuestionMarkVariable' `
                        "the variable name '$variableName' ends in '?': `$x?.y and `$x?[0] read the variable 'x?' (null-conditional access needs `${x}?.y and PowerShell 7.1)"
                }
            }
            { $_ -is [System.Management.Automation.Language.StringConstantExpressionAst] -or
                $_ -is [System.Management.Automation.Language.ExpandableStringExpressionAst] } {
                if ($node.StringConstantType -in 'DoubleQuoted', 'DoubleQuotedHereString' -and
                    -not ($node.Parent -is [System.Management.Automation.Language.ExpandableStringExpressionAst]) -and
                    $node.Extent.Text -match '(?<!`)(``)*`u\{') {
                    New-Finding $File $node.Extent 'UnicodeEscape' 'the `u{XXXX} escape needs PowerShell 6.0 (5.1 reads it as "u{XXXX}"); use [char]0xXXXX'
                }
            }
            { $_ -is [System.Management.Automation.Language.ConstantExpressionAst] -and
                $_ -isnot [System.Management.Automation.Language.StringConstantExpressionAst] } {
                if ($node.Extent.Text -match '^[+-]?0[bB][01]+') {
                    New-Finding $File $node.Extent 'NumericLiteral' "the binary literal $($node.Extent.Text) needs PowerShell 7.0; use 0x..."
                } elseif ($node.Extent.Text -match '^[+-]?(0[xX][0-9a-fA-F]+|[0-9]*\.?[0-9]+([eE][+-]?[0-9]+)?)(?<suffix>(u[ly]?|y|s|us|n))(kb|mb|gb|tb|pb)?$') {
                    New-Finding $File $node.Extent 'NumericLiteral' `
                        "the numeric suffix '$($Matches.suffix)' of $($node.Extent.Text) needs PowerShell 6.2; use a cast like [uint32]"
                }
            }
            { $_ -is [System.Management.Automation.Language.TypeExpressionAst] -or
                $_ -is [System.Management.Automation.Language.TypeConstraintAst] } {
                $why = Test-TypeName $node.TypeName.FullName
                if ($why) {
                    New-Finding $File $node.Extent 'DotNetCoreApi' "[$($node.TypeName.FullName)] is not available on Windows PowerShell 5.1 ($why)"
                }
            }
            { $_ -is [System.Management.Automation.Language.CommandAst] } {
                Test-CommandAst $node $File $Root
                if ($node.GetCommandName() -and (Resolve-CanonicalCommandName $node.GetCommandName()) -eq 'New-Object') {
                    $binding = Get-BoundParameter $node 'New-Object'
                    if ($binding.ContainsKey('TypeName') -and $binding['TypeName'].ConstantValue) {
                        $why = Test-TypeName ([string]$binding['TypeName'].ConstantValue)
                        if ($why) {
                            New-Finding $File $node.Extent 'DotNetCoreApi' "New-Object $($binding['TypeName'].ConstantValue) is not available on Windows PowerShell 5.1 ($why)"
                        }
                    }
                }
            }
        }
    }
}

# Lines where findings are allowed: "# ps51-allow: RuleId reason" on the line or the line before.
function Get-Allowance([System.Management.Automation.Language.Token[]]$Tokens) {
    $allowed = @{}
    foreach ($token in $Tokens) {
        if ($token.Kind -eq [System.Management.Automation.Language.TokenKind]::Comment -and
            $token.Text -match 'ps51-allow:\s*(?<rule>[A-Za-z0-9]+)\s+\S') {
            foreach ($line in $token.Extent.StartLineNumber, ($token.Extent.EndLineNumber + 1)) {
                $allowed["$line/$($Matches.rule)"] = $true
            }
        }
    }
    return $allowed
}

function Find-Ps51Incompatibility {
    <#
    .SYNOPSIS
    Lists what Windows PowerShell 5.1 lacks in PowerShell scripts: one object per finding
    (File, Line, Column, Rule, Message, Text).
    .PARAMETER Path
    Files or directories (*.ps1, *.psm1, *.psd1 directly inside).
    .PARAMETER ScriptText
    Script text to check (tests, snippets); reported as -Name.
    #>
    [CmdletBinding(DefaultParameterSetName = 'Path')]
    param(
        [Parameter(Mandatory, ParameterSetName = 'Path', Position = 0)][string[]]$Path,
        [Parameter(Mandatory, ParameterSetName = 'Text')][string]$ScriptText,
        [Parameter(ParameterSetName = 'Text')][string]$Name = '<input>'
    )
    $inputs = [System.Collections.Generic.List[object]]::new()
    if ($PSCmdlet.ParameterSetName -eq 'Text') {
        $inputs.Add(@($Name, $ScriptText))
    } else {
        foreach ($target in $Path) {
            if (Test-Path -LiteralPath $target -PathType Container) {
                Get-ChildItem -LiteralPath $target -File |
                    Where-Object { $_.Extension -in '.ps1', '.psm1', '.psd1' } | Sort-Object Name |
                    ForEach-Object { $inputs.Add(@($_.FullName, $null)) }
            } elseif (Test-Path -LiteralPath $target -PathType Leaf) {
                $inputs.Add(@((Resolve-Path -LiteralPath $target).ProviderPath, $null))
            } else {
                throw "ps51-check: no such file or directory: $target"
            }
        }
    }
    foreach ($item in $inputs) {
        $file = $item[0]
        $tokens = $null
        $errors = $null
        $ast = if ($null -ne $item[1]) {
            [System.Management.Automation.Language.Parser]::ParseInput($item[1], [ref]$tokens, [ref]$errors)
        } else {
            [System.Management.Automation.Language.Parser]::ParseFile($file, [ref]$tokens, [ref]$errors)
        }
        foreach ($parseError in $errors) {
            New-Finding $file $parseError.Extent 'ParseError' "does not parse: $($parseError.Message)"
        }
        $allowed = Get-Allowance $tokens
        Find-InAst $ast $file | Where-Object { -not $allowed.ContainsKey("$($_.Line)/$($_.Rule)") } |
            Sort-Object Line, Column, Rule -Unique
    }
}

# The tables, for tests and documentation.
function Get-Ps51RuleTable {
    [pscustomobject]@{
        Parameters = $script:SevenOnlyParameters
        Commands   = $script:SevenOnlyCommands
        Variables  = $script:SevenOnlyVariables
        Methods    = $script:DotNetCoreMethods
        Types      = $script:DotNetCoreTypes
        Encodings  = $script:Encodings51
    }
}

Export-ModuleMember -Function Find-Ps51Incompatibility, Get-Ps51RuleTable
