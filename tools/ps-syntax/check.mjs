// PowerShell grammar check for the embedded remote scripts (ARCHITECTURE.md, "Remote execution contract").
// Parses each .ps1 with tree-sitter-powershell (wasm, through web-tree-sitter) and lists every ERROR or
// MISSING node as path:line:column. Exit 0 = all clean, 1 = syntax errors, 2 = usage/setup problem.
//
// Usage: node check.mjs [--modules DIR] FILE_OR_DIR...
//   --modules DIR  the node_modules directory to load from (the build tree keeps its own copy, so the
//                  source tree never holds node_modules); default: ./node_modules beside this file.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import v8 from 'node:v8';

// The grammar is a 1 MB wasm module: V8's optimizing tier-up compiles it in the background for tens of
// seconds (and exit waits for it). The baseline compiler parses a script in milliseconds.
v8.setFlagsFromString('--liftoff-only');

const here = path.dirname(fileURLToPath(import.meta.url));
let modulesDir = path.join(here, 'node_modules');
const inputs = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--modules') modulesDir = path.resolve(argv[++i] ?? '');
  else inputs.push(argv[i]);
}
if (inputs.length === 0) {
  console.error('usage: node check.mjs [--modules DIR] FILE_OR_DIR...');
  process.exit(2);
}

function collectScripts(target) {
  const stat = statSync(target);
  if (!stat.isDirectory()) return [target];
  return readdirSync(target)
    .filter((name) => name.toLowerCase().endsWith('.ps1'))
    .sort()
    .map((name) => path.join(target, name));
}

let files;
try {
  files = inputs.flatMap(collectScripts);
} catch (err) {
  console.error(`ps-syntax: cannot read input: ${err.message}`);
  process.exit(2);
}
if (files.length === 0) {
  console.error(`ps-syntax: no .ps1 files found in ${inputs.join(', ')}`);
  process.exit(2);
}

let Parser, Language, wasmPath;
try {
  const require = createRequire(path.join(modulesDir, 'noop.js'));
  ({ Parser, Language } = await import(pathToFileURL(require.resolve('web-tree-sitter')).href));
  wasmPath = path.join(path.dirname(require.resolve('tree-sitter-powershell/package.json')),
    'tree-sitter-powershell.wasm');
} catch (err) {
  console.error(`ps-syntax: cannot load web-tree-sitter / tree-sitter-powershell from ${modulesDir} ` +
    `(run "npm ci" in tools/ps-syntax or pass --modules): ${err.message}`);
  process.exit(2);
}

await Parser.init();
const language = await Language.load(wasmPath);
const parser = new Parser();
parser.setLanguage(language);

function problems(root) {
  const found = [];
  const cursor = root.walk();
  // Iterative pre-order walk; only descend into subtrees that contain an error.
  let descend = true;
  for (;;) {
    const node = cursor.currentNode;
    if (descend) {
      if (node.isError) found.push({ node, kind: 'ERROR' });
      else if (node.isMissing) found.push({ node, kind: `MISSING ${node.type}` });
    }
    if (descend && node.hasError && cursor.gotoFirstChild()) continue;
    if (cursor.gotoNextSibling()) { descend = true; continue; }
    let climbed = false;
    while (cursor.gotoParent()) {
      if (cursor.gotoNextSibling()) { climbed = true; break; }
    }
    if (!climbed) break;
    descend = true;
  }
  return found;
}

let failures = 0;
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  const tree = parser.parse(text);
  const found = problems(tree.rootNode);
  for (const { node, kind } of found) {
    const { row, column } = node.startPosition;
    const snippet = text.slice(node.startIndex, Math.min(node.endIndex, node.startIndex + 60))
      .replace(/\s+/g, ' ');
    console.log(`${file}:${row + 1}:${column + 1}: ${kind}: ${JSON.stringify(snippet)}`);
  }
  if (found.length > 0) failures++;
  tree.delete();
}
console.log(`ps-syntax: ${files.length} file(s) parsed, ${failures} with syntax errors`);
process.exit(failures > 0 ? 1 : 0);
