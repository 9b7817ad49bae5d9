# echo: prints its JSON argument object unchanged (ASCII-escaped); anything that is not JSON is InvalidArgument.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-WincertModule | Out-Null
}

Describe 'echo' {
    It 'returns the contract''s argument object unchanged' {
        $json = (Get-OpContract echo).args | ConvertTo-Json -Depth 10 -Compress
        $run = Invoke-WincertOp echo -ArgsJson $json
        $run.ExitCode | Should -Be 0
        $run.Json | Should -BeExactly $json
        Assert-OpContract -Op echo -Json $run.Json
    }

    It 'returns any other object unchanged (free-form)' {
        $run = Invoke-WincertOp echo -ArgsJson '{"Hello":"world","N":3,"List":[1,2],"Nested":{"A":true}}'
        $run.ExitCode | Should -Be 0
        $run.Json | Should -BeExactly '{"Hello":"world","N":3,"List":[1,2],"Nested":{"A":true}}'
    }

    It 'escapes non-ASCII characters as \uXXXX (survives any console code page)' {
        $run = Invoke-WincertOp echo -ArgsJson "{`"Message`":`"w$([char]0x00F6)rld $([char]0x20AC)`",`"Number`":1,`"Nested`":{`"List`":[]}}"
        $run.ExitCode | Should -Be 0
        $run.Json | Should -BeExactly '{"Message":"w\u00f6rld \u20ac","Number":1,"Nested":{"List":[]}}'
        $run.Output.Message | Should -BeExactly "w$([char]0x00F6)rld $([char]0x20AC)"
        Assert-OpContract -Op echo -Json $run.Json
    }

    It 'refuses text that is not JSON as InvalidArgument' {
        $run = Invoke-WincertOp echo -ArgsJson '{"Hello":'
        $run.ExitCode | Should -Be 1
        $run.Category | Should -BeExactly 'InvalidArgument'
        $run.Message | Should -Match 'not JSON'
        Assert-OpContract -Op echo -Json $run.Json -Failure
    }
}
