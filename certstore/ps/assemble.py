#!/usr/bin/python3
"""Build-time assembly of the wincert-op scripts from the WincertOps module (no PowerShell needed).

Reads certstore/ps/WincertOps.psm1, whose functions each sit alone in a region:
    #region helper NAME | #region seam NAME | #region op OP-NAME   ...   #endregion
and writes, for each op, the script that travels over WinRS (`# wincert-op: OP-NAME`, `param([string]$ArgsJson)`,
only the helpers and seams the op references - directly or through other helpers, found by scanning for
function names - the op function, and the call with the exit-code handling). Full-line comments and blank
lines inside regions are dropped from the scripts. Also embeds the whole module text and its SHA-256.

Usage: assemble.py --module PSM1 --manifest PSD1 --cpp OUT.cpp --scripts-dir DIR
Checks (the build fails otherwise): one function per region, no code outside regions but the final
Export-ModuleMember, every function defined once, op names unique, and the manifest's FunctionsToExport ==
Export-ModuleMember's list == the op functions.
"""
import argparse
import hashlib
import os
import re
import sys

REGION_START = re.compile(r'^#region (helper|seam|op) ([A-Za-z0-9-]+)\s*$')
FUNCTION_LINE = re.compile(r'^function ([A-Za-z][A-Za-z0-9-]*)\b')
OP_NAME = re.compile(r'^[a-z0-9-]+$')


class Region:
    def __init__(self, kind, name, lines, first_line):
        self.kind = kind
        self.name = name  # op name for ops, function name otherwise
        self.lines = lines
        self.first_line = first_line
        functions = [m.group(1) for m in (FUNCTION_LINE.match(line) for line in lines) if m]
        if len(functions) != 1:
            fail(first_line, f"region '{name}' must define exactly one function (found {len(functions)})")
        self.function = functions[0]
        if kind != 'op' and self.function != name:
            fail(first_line, f"region '{name}' defines function '{self.function}'")
        if kind == 'op' and not OP_NAME.match(name):
            fail(first_line, f"op name '{name}' must be lowercase letters, digits and dashes")
        # The explanation lines above the function (used as the op script's header).
        self.description = []
        for line in lines:
            if not line.startswith('#'):
                break
            self.description.append(line)

    def code_lines(self):
        return [line for line in self.lines if line.strip() and not line.lstrip().startswith('#')]

    def compact_lines(self):
        """Code lines with one space per 4-space indentation level (safe: the module has no here-strings)."""
        out = []
        for line in self.code_lines():
            stripped = line.lstrip(' ')
            indent = len(line) - len(stripped)
            out.append(' ' * (indent // 4) + ' ' * (indent % 4) + stripped)
        return out


def fail(line_number, message):
    sys.exit(f"assemble.py: WincertOps.psm1:{line_number}: {message}")


def parse_module(text):
    regions = []
    exported = None
    current = None
    lines = text.split('\n')
    index = 0
    while index < len(lines):
        line = lines[index]
        number = index + 1
        if current is not None:
            if line.strip() == '#endregion':
                regions.append(Region(current[0], current[1], current[2], current[3]))
                current = None
            elif line.startswith('#region'):
                fail(number, 'nested region')
            else:
                current[2].append(line)
        else:
            match = REGION_START.match(line)
            if match:
                current = (match.group(1), match.group(2), [], number)
            elif line.startswith('Export-ModuleMember -Function @('):
                exported = []
                index += 1
                while index < len(lines) and lines[index].strip() != ')':
                    exported.append(lines[index].strip().rstrip(',').strip("'"))
                    index += 1
            elif line.strip() and not line.startswith('#'):
                fail(number, 'code outside a region (every function lives in its own #region)')
        index += 1
    if current is not None:
        fail(current[3], 'region without #endregion')
    if exported is None:
        sys.exit('assemble.py: WincertOps.psm1 has no Export-ModuleMember -Function @( ... ) list')
    return regions, exported


def manifest_exports(text):
    match = re.search(r'FunctionsToExport\s*=\s*@\(([^)]*)\)', text)
    if not match:
        sys.exit('assemble.py: the manifest has no FunctionsToExport = @( ... )')
    return re.findall(r"'([^']+)'", match.group(1))


def dependencies(regions):
    """function name -> set of function names its code references."""
    names = [region.function for region in regions]
    patterns = {name: re.compile(r'(?<![\w$-])' + re.escape(name) + r'(?![\w-])') for name in names}
    uses = {}
    for region in regions:
        code = '\n'.join(region.code_lines())
        uses[region.function] = {name for name in names if name != region.function and patterns[name].search(code)}
    return uses


def closure(start, uses):
    needed = set()
    pending = [start]
    while pending:
        name = pending.pop()
        for dependency in uses[name]:
            if dependency not in needed:
                needed.add(dependency)
                pending.append(dependency)
    return needed


def assemble_script(op, regions, uses):
    needed = closure(op.function, uses) | closure('ConvertTo-OpErrorJson', uses) | {'ConvertTo-OpErrorJson'}
    needed.discard(op.function)
    out = [f'# wincert-op: {op.name}']
    out += op.description
    out.append('# Assembled from certstore/ps/WincertOps.psm1 at build time; contract certstore/scripts/' + op.name
               + '.contract.json.')
    out.append('param([string]$ArgsJson)')
    for region in regions:  # module order: deterministic
        if region.function in needed:
            out += region.compact_lines()
    out += op.compact_lines()
    out += [
        'try {',
        f'    Write-Output ({op.function} -ArgsJson $ArgsJson)',
        '    exit 0',
        '} catch {',
        '    Write-Output (ConvertTo-OpErrorJson $_)',
        '    exit 1',
        '}',
    ]
    return '\n'.join(out) + '\n'


def byte_array(name, data):
    hex_bytes = [f'0x{b:02x},' for b in data]
    rows = ['    ' + ''.join(hex_bytes[i:i + 24]) for i in range(0, len(hex_bytes), 24)]
    return f'const unsigned char {name}[] = {{\n' + '\n'.join(rows) + ('\n' if rows else '') + '    0x00};\n'


def write_if_changed(path, content):
    data = content.encode('utf-8') if isinstance(content, str) else content
    if os.path.exists(path):
        with open(path, 'rb') as existing:
            if existing.read() == data:
                return
    with open(path, 'wb') as output:
        output.write(data)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--module', required=True)
    parser.add_argument('--manifest', required=True)
    parser.add_argument('--cpp', required=True)
    parser.add_argument('--scripts-dir', required=True)
    options = parser.parse_args()

    with open(options.module, 'rb') as module_file:
        module_bytes = module_file.read()
    module_text = module_bytes.decode('utf-8')
    if '\r' in module_text:
        sys.exit('assemble.py: WincertOps.psm1 must use LF line endings')
    if re.search(r'@[\'"]\s*$', module_text, re.MULTILINE):
        sys.exit('assemble.py: WincertOps.psm1 must not use here-strings (assembly re-indents lines)')
    regions, exported = parse_module(module_text)

    seen = {}
    for region in regions:
        if region.function in seen:
            fail(region.first_line, f"function '{region.function}' is defined twice (first at line {seen[region.function]})")
        seen[region.function] = region.first_line
    ops = sorted((region for region in regions if region.kind == 'op'), key=lambda region: region.name)
    op_names = [op.name for op in ops]
    if len(set(op_names)) != len(op_names):
        sys.exit('assemble.py: an op name is used twice')
    op_functions = sorted(op.function for op in ops)
    with open(options.manifest, encoding='utf-8') as manifest_file:
        manifest = sorted(manifest_exports(manifest_file.read()))
    if manifest != op_functions or sorted(exported) != op_functions:
        sys.exit('assemble.py: the manifest FunctionsToExport, the module Export-ModuleMember list and the op '
                 f'functions differ:\n  manifest {manifest}\n  module   {sorted(exported)}\n  ops      {op_functions}')

    uses = dependencies(regions)
    os.makedirs(options.scripts_dir, exist_ok=True)
    arrays = []
    table = []
    for index, op in enumerate(ops):
        script = assemble_script(op, regions, uses)
        write_if_changed(os.path.join(options.scripts_dir, op.name + '.ps1'), script)
        data = script.encode('utf-8')
        arrays.append(byte_array(f'kScript{index}', data))
        table.append(f'    {{"{op.name}", kScript{index}, {len(data)}}},\n')

    version = hashlib.sha256(module_bytes).hexdigest()
    content = (
        '// Generated by certstore/ps/assemble.py from certstore/ps/WincertOps.psm1. Do not edit.\n'
        '#include <cstddef>\n#include <string_view>\n\n'
        'namespace wincert::certstore::generated {\nnamespace {\n'
        + ''.join(arrays)
        + byte_array('kModule', module_bytes)
        + '}  // namespace\n\n'
        'struct EmbeddedScript {\n  std::string_view op;\n  const unsigned char* text;\n  std::size_t size;\n};\n\n'
        'extern const EmbeddedScript kEmbeddedScripts[];\nextern const std::size_t kEmbeddedScriptCount;\n'
        'extern const unsigned char* const kModuleText;\nextern const std::size_t kModuleSize;\n'
        'extern const char kModuleVersion[];\n'
        'const EmbeddedScript kEmbeddedScripts[] = {\n' + ''.join(table) + '};\n'
        f'const std::size_t kEmbeddedScriptCount = {len(ops)};\n'
        'const unsigned char* const kModuleText = kModule;\n'
        f'const std::size_t kModuleSize = {len(module_bytes)};\n'
        f'const char kModuleVersion[] = "{version}";\n\n'
        '}  // namespace wincert::certstore::generated\n')
    write_if_changed(options.cpp, content)


if __name__ == '__main__':
    main()
