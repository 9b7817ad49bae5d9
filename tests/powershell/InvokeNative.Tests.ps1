# Invoke-Native (fix 6), run for real with real child processes: the function is portable .NET (Process with
# redirected pipes), so Linux exercises the same code a Windows host runs for certutil/certreq.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $module = Import-WincertModule
    function Invoke-RealNative([string]$FilePath, [string[]]$Arguments, [int]$TimeoutSeconds = 30) {
        & $module { param($f, $a, $t) Invoke-Native $f $a $t } $FilePath $Arguments $TimeoutSeconds
    }
    $sh = (Get-Command sh -CommandType Application | Select-Object -First 1).Source
}

Describe 'Invoke-Native' -Skip:($IsWindows) {
    It 'returns the exit code and stdout then stderr, trimmed' {
        $result = Invoke-RealNative $sh @('-c', 'echo out; echo err >&2; exit 3')
        $result.ExitCode | Should -Be 3
        $result.Output | Should -BeExactly "out`nerr"
    }

    It 'quotes arguments so the child receives them exactly (spaces, quotes, backslashes, empty)' {
        $values = @('plain', 'with space', 'with "quotes"', 'trailing\', 'a\"b', '')
        $result = Invoke-RealNative $sh (@('-c', 'for a in "$@"; do printf "[%s]\n" "$a"; done', 'sh') + $values)
        $result.ExitCode | Should -Be 0
        $result.Output | Should -BeExactly (($values | ForEach-Object { "[$_]" }) -join "`n")
    }

    It 'kills a child that outlives the timeout and throws Timeout' {
        $pidFile = Join-Path $TestDrive 'child.pid'
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        $failure = { Invoke-RealNative $sh @('-c', "echo `$`$ > '$pidFile'; exec sleep 60") 1 } | Should -Throw -PassThru
        $watch.Stop()
        $failure.Exception.Data['WincertCategory'] | Should -BeExactly 'Timeout'
        $failure.Exception.Message | Should -BeExactly 'sh did not finish within 1 seconds and was stopped'
        $watch.Elapsed.TotalSeconds | Should -BeLessThan 15
        $childPid = [int](Get-Content -LiteralPath $pidFile -Raw).Trim()
        # Killed (and reaped): no such process any more.
        Get-Process -Id $childPid -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'closes stdin at once: a child waiting for input (a PIN prompt) reads end-of-file instead of hanging' {
        $result = Invoke-RealNative $sh @('-c', 'if read pin; then echo "read:$pin"; else echo eof; fi') 10
        $result.ExitCode | Should -Be 0
        $result.Output | Should -BeExactly 'eof'
        $cat = Invoke-RealNative 'cat' @() 10
        $cat.ExitCode | Should -Be 0
        $cat.Output | Should -BeExactly ''
    }

    It 'reads 1 MB of stdout and 1 MB of stderr without blocking the child' {
        # Sequential writes: a reader that drained stdout only would leave the child blocked on a full stderr pipe.
        $result = Invoke-RealNative $sh @('-c', 'head -c 1048576 /dev/zero | tr "\0" e >&2; head -c 1048576 /dev/zero | tr "\0" o') 60
        $result.ExitCode | Should -Be 0
        $result.Output.Length | Should -Be (2 * 1048576)
        $result.Output.Substring(0, 1048576) | Should -Match '^o+$'
        $result.Output.Substring(1048576) | Should -Match '^e+$'
    }

    It 'a process that cannot start is CommandFailed naming the program (no exit code invented)' {
        $caught = $null
        try { Invoke-RealNative '/nonexistent/certutil.exe' @('-csplist') } catch { $caught = $_ }
        $caught | Should -Not -BeNullOrEmpty
        $caught.Exception.Data['WincertCategory'] | Should -Be 'CommandFailed'
        $caught.Exception.Message | Should -Match 'cannot start /nonexistent/certutil\.exe'
    }
}
