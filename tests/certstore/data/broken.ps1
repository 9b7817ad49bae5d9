# wincert-op: broken
# Deliberately broken: the grammar check must reject this file (unclosed if-condition and hashtable).
param([string]$ArgsJson)
try {
    $a = $ArgsJson | ConvertFrom-Json
    if ($a.StoreName -eq 'My' {
        $result = @{ Store = $a.StoreName
    }
} catch {
    exit 1
}
