# wincert-op: broken
# Deliberately broken: the 5.1 check must reject this file with ParseError findings (unclosed if-condition and hashtable).
param([string]$ArgsJson)
try {
    $a = $ArgsJson | ConvertFrom-Json
    if ($a.StoreName -eq 'My' {
        $result = @{ Store = $a.StoreName
    }
} catch {
    exit 1
}
