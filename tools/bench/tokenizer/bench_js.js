// tools/bench/tokenizer/bench_js.js: the JavaScript reference's speed on the
// same chunks as bench_tokenizer (gpt-3-encoder@1.1.4 under node, one thread).
//
// Usage: node bench_js.js PACKAGE_DIR CHUNKS.jsonl [IDS_OUT]
// Prints one JSON object: load_ms (require: reads encoder.json and vocab.bpe),
// encode_cold_mbs (first pass, empty cache), encode_warm_mbs (second pass),
// decode_mbs, bytes, tokens. MB are of UTF-8 text, 1e6 bytes. IDS_OUT gets
// every chunk's ids (int32, little-endian, in order).
'use strict';
const fs = require('fs');
const path = require('path');

const pkg = process.argv[2];
const chunks = fs.readFileSync(process.argv[3], 'utf-8').split('\n').filter(l => l).map(l => JSON.parse(l));
const bytes = chunks.reduce((s, c) => s + Buffer.byteLength(c, 'utf-8'), 0);

const now = () => Number(process.hrtime.bigint()) / 1e9;
let t0 = now();
const enc = require(path.join(pkg, 'Encoder.js'));
const loadMs = (now() - t0) * 1e3;

const ids = [];
const times = [];
for (let pass = 0; pass < 2; pass++) {
  t0 = now();
  for (let i = 0; i < chunks.length; i++) {
    const r = enc.encode(chunks[i]);
    if (pass === 0) ids.push(r);
  }
  times.push(now() - t0);
}
let outBytes = 0;
t0 = now();
for (const r of ids) outBytes += Buffer.byteLength(enc.decode(r), 'utf-8');
const dec = now() - t0;
const tokens = ids.reduce((s, r) => s + r.length, 0);
if (process.argv[4]) {
  const all = new Int32Array(tokens);
  let at = 0;
  for (const r of ids) { all.set(r, at); at += r.length; }
  fs.writeFileSync(process.argv[4], Buffer.from(all.buffer));
}
process.stdout.write(JSON.stringify({
  bytes, chunks: chunks.length, tokens, load_ms: +loadMs.toFixed(1),
  encode_cold_mbs: +(bytes / 1e6 / times[0]).toFixed(3),
  encode_warm_mbs: +(bytes / 1e6 / times[1]).toFixed(3),
  decode_mbs: +(outBytes / 1e6 / dec).toFixed(3),
}) + '\n');
