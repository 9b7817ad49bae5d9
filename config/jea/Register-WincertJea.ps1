<#
.SYNOPSIS
Registers the JEA endpoint wincert-agent connects to when a store sets JEAEndpointName.

.DESCRIPTION
Run as an administrator on each Windows host, in Windows PowerShell 5.1 or PowerShell 7, from this folder
(config/jea of the wincert-agent package, next to the module files WincertOps.psm1 and WincertOps.psd1).
It:
  1. installs the WincertOps module under $env:ProgramFiles\WindowsPowerShell\Modules\WincertOps\<version>,
     with the role capability WincertAgent.psrc in its RoleCapabilities folder;
  2. writes a session configuration: RestrictedRemoteServer (NoLanguage), a virtual account with local
     administrator rights (certificate stores, IIS and SQL Server need them), transcripts when asked, and
     the role WincertAgent for -AgentAccount only;
  3. registers it under -Name (default WincertAgent), replacing an older registration of that name.
The agent then sends commands only: no script text, no module upload.

.EXAMPLE
.\Register-WincertJea.ps1 -AgentAccount 'CONTOSO\svc-wincert'

.EXAMPLE
.\Register-WincertJea.ps1 -AgentAccount 'CONTOSO\Wincert Agents' -Name WincertAgent -TranscriptDirectory C:\JEA\Transcripts
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    # The account (user or group) the agent connects as: the only one given the role.
    [Parameter(Mandatory = $true)][string]$AgentAccount,
    # The endpoint name; the store's JEAEndpointName must match it.
    [string]$Name = 'WincertAgent',
    # Where JEA writes a transcript of every session (none when empty).
    [string]$TranscriptDirectory = '',
    # Where the module files are; by default next to this script, or in ..\..\certstore\ps of a source tree.
    [string]$ModuleSource = ''
)
$ErrorActionPreference = 'Stop'

if (-not $ModuleSource) {
    $ModuleSource = $PSScriptRoot
    if (-not (Test-Path (Join-Path $ModuleSource 'WincertOps.psd1'))) {
        $ModuleSource = Join-Path $PSScriptRoot '..\..\certstore\ps'
    }
}
$manifestPath = Join-Path $ModuleSource 'WincertOps.psd1'
if (-not (Test-Path $manifestPath)) {
    throw ('WincertOps.psd1 not found in ' + $ModuleSource + ': pass -ModuleSource with the module files')
}
$manifest = Import-PowerShellDataFile $manifestPath
$version = [string]$manifest.ModuleVersion

$moduleRoot = Join-Path $env:ProgramFiles ('WindowsPowerShell\Modules\WincertOps\' + $version)
$roleFolder = Join-Path $moduleRoot 'RoleCapabilities'
if ($PSCmdlet.ShouldProcess($moduleRoot, 'install the WincertOps module and its role capability')) {
    $null = New-Item -ItemType Directory -Force -Path $roleFolder
    Copy-Item -Force (Join-Path $ModuleSource 'WincertOps.psm1') $moduleRoot
    Copy-Item -Force $manifestPath $moduleRoot
    Copy-Item -Force (Join-Path $PSScriptRoot 'WincertAgent.psrc') $roleFolder
}

$sessionFile = Join-Path $env:TEMP ($Name + '.pssc')
$configuration = @{
    Path = $sessionFile
    SessionType = 'RestrictedRemoteServer'
    RunAsVirtualAccount = $true
    RoleDefinitions = @{ $AgentAccount = @{ RoleCapabilities = 'WincertAgent' } }
    Description = 'wincert-agent certificate operations (JEA)'
}
if ($TranscriptDirectory) { $configuration.TranscriptDirectory = $TranscriptDirectory }
New-PSSessionConfigurationFile @configuration
$check = Test-PSSessionConfigurationFile -Path $sessionFile
if (-not $check) { throw ('the session configuration ' + $sessionFile + ' is not valid') }

if ($PSCmdlet.ShouldProcess($Name, 'register the JEA session configuration')) {
    if (Get-PSSessionConfiguration -Name $Name -ErrorAction SilentlyContinue) {
        Unregister-PSSessionConfiguration -Name $Name -Force
    }
    Register-PSSessionConfiguration -Name $Name -Path $sessionFile -Force | Out-Null
}
Remove-Item -Force $sessionFile
Write-Output ('Registered JEA endpoint ' + $Name + ' for ' + $AgentAccount + ' (WincertOps ' + $version + ').')
Write-Output ('Set the store property JEAEndpointName to ' + $Name + '.')
