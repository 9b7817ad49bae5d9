# Manifest of the wincert-agent host-side module (certstore/ps/WincertOps.psm1). Windows PowerShell 5.1
# and PowerShell 7. Only the op functions are exported; assemble.py checks this list against the module.
@{
    RootModule = 'WincertOps.psm1'
    ModuleVersion = '1.0.0'
    GUID = '5b0c7a52-3f7e-4d0e-9a51-6f2d8f3c1e47'
    Author = 'wincert-agent'
    Description = 'wincert-agent host operations: certificate stores, IIS and SQL Server bindings, CSRs.'
    PowerShellVersion = '5.1'
    CompatiblePSEditions = @('Desktop', 'Core')
    FunctionsToExport = @(
        'Invoke-WincertEcho',
        'Invoke-WincertHostInfo',
        'Invoke-WincertStoreInventory',
        'Invoke-WincertCertAdd',
        'Invoke-WincertCertRemove',
        'Invoke-WincertIisListBindings',
        'Invoke-WincertIisBind',
        'Invoke-WincertIisUnbind',
        'Invoke-WincertIisRemoveCertIfUnused',
        'Invoke-WincertSqlListInstances',
        'Invoke-WincertSqlBind',
        'Invoke-WincertSqlUnbind',
        'Invoke-WincertSqlRestart',
        'Invoke-WincertCsrCreate',
        'Invoke-WincertCsrAccept'
    )
    CmdletsToExport = @()
    VariablesToExport = @()
    AliasesToExport = @()
}
