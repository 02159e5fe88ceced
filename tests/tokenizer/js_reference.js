// tests/tokenizer/js_reference.js: the independent reference for the gpt2-bpe
// tokenizer tests: the npm package gpt-3-encoder (1.1.4, a JavaScript port of
// OpenAI's GPT-2 encoder.py), run by node.
//
// Usage: node js_reference.js PACKAGE_DIR < INPUT.jsonl > OUTPUT.jsonl
//   INPUT: one JSON object per line with a "text" string.
//   OUTPUT: one JSON object per line, {"js": IDS, "py": IDS}:
//     js  the package's encode(text), untouched;
//     py  the same Encoder.js with its two departures from encoder.py (the
//         Python original, which Megatron's GPT2BPETokenizer copies) undone:
//         1. JavaScript's \s is not Unicode White_Space (what Python's
//            `regex` module uses): it lacks U+0085 and adds U+FEFF;
//         2. merge ranks are keyed by pair.toString() ("a,b"), so a pair with
//            a comma in a symbol can be mistaken for another pair.
//         Each patch is a literal replacement in the source and must apply
//         exactly once, or this script fails.
'use strict';
const fs = require('fs');
const path = require('path');
const Module = require('module');

function loadFrom(src, filename) {
  const m = new Module(filename, module);
  m.filename = filename;
  m.paths = Module._nodeModulePaths(path.dirname(filename));
  m._compile(src, filename);
  return m.exports;
}

function patchOnce(src, from, to) {
  const at = src.indexOf(from);
  if (at < 0 || src.indexOf(from, at + 1) >= 0) {
    throw new Error('js_reference.js: the patch does not apply exactly once: ' + from);
  }
  return src.slice(0, at) + to + src.slice(at + from.length);
}

const pkg = process.argv[2];
if (!pkg) {
  process.stderr.write('usage: node js_reference.js PACKAGE_DIR < IN.jsonl > OUT.jsonl\n');
  process.exit(64);
}
const file = path.join(pkg, 'Encoder.js');
const original = fs.readFileSync(file, 'utf-8');
const js = loadFrom(original, file);

// Unicode White_Space, as \s of Python's `regex` module.
const WS = '\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
let src = original;
src = patchOnce(src,
  "const pat = /'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+/gu",
  "const pat = /'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" + WS + "\\p{L}\\p{N}]+|[" + WS +
  "]+(?![^" + WS + "])|[" + WS + "]+/gu");
src = patchOnce(src,
  'const bpe_ranks = dictZip(bpe_merges, range(0, bpe_merges.length))',
  "const bpe_ranks = dictZip(bpe_merges.map(p => p.join('\\u0000')), range(0, bpe_merges.length))");
src = patchOnce(src, 'const rank = bpe_ranks[pair]', "const rank = bpe_ranks[pair.join('\\u0000')]");
src = patchOnce(src, 'if (!(bigram in bpe_ranks))',
  "if (!(bigram !== undefined && bigram.join('\\u0000') in bpe_ranks))");
const py = loadFrom(src, file);

const input = fs.readFileSync(0, 'utf-8').split('\n').filter(l => l.length > 0);
const out = [];
for (const line of input) {
  const text = JSON.parse(line).text;
  out.push(JSON.stringify({js: js.encode(text), py: py.encode(text)}));
}
process.stdout.write(out.join('\n') + (out.length ? '\n' : ''));
