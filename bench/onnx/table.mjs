// Prints compare.sh's table from the JSON lines ort_forward.mjs and forward_bench
// wrote: per model and padded input, ONNX Runtime's median against tessera's
// (medians of every run of every round) under each oneDNN ISA setting, and the
// speed-up (ORT ms / tessera ms; issue 14's target is >= 1.5 at the default ISA).
// Then how far each side's output was from the reference it was checked against.
//
//   node bench/onnx/table.mjs RESULTS.jsonl [CHECKS.jsonl]
import { existsSync, readFileSync } from 'node:fs';

const read = (path) => (path && existsSync(path) ? readFileSync(path, 'utf8') : '')
  .split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));

// One entry per side (and ISA) per case, every process's runs pooled.
function pool(lines) {
  const byKey = new Map();
  for (const l of lines) {
    const who = l.side === 'ort' ? `ORT ${l.ort_version}` : `tessera ${l.isa}`;
    const key = `${l.model}|${l.size}|${who}`;
    const e = byKey.get(key) ?? { ...l, who, ms: [], max_abs_diff: 0, processes: 0 };
    e.ms.push(...(l.ms ?? [l.median_ms]));
    e.max_abs_diff = Math.max(e.max_abs_diff, l.max_abs_diff);
    e.processes += 1;
    byKey.set(key, e);
  }
  for (const e of byKey.values()) {
    e.ms.sort((a, b) => a - b);
    const mid = e.ms.length >> 1;
    e.median_ms = e.ms.length % 2 ? e.ms[mid] : (e.ms[mid - 1] + e.ms[mid]) / 2;
  }
  return [...byKey.values()];
}

const results = pool(read(process.argv[2]));
const checks = pool(read(process.argv[3]));
const ms = (v) => v.toFixed(0);
const range = (e) => `${ms(e.ms[0])}-${ms(e.ms[e.ms.length - 1])}`;

const rows = [['model', 'input', 'tessera ISA', 'ORT ms', 'tessera ms', 'speed-up (ORT/tessera)', 'ORT min-max',
  'tessera min-max', 'runs ORT/tessera']];
for (const ort of results.filter((r) => r.side === 'ort')) {
  for (const t of results.filter((r) => r.side === 'tessera' && r.model === ort.model && r.size === ort.size)) {
    rows.push([ort.model, `${ort.size}x${ort.size}`, t.isa, ms(ort.median_ms), ms(t.median_ms),
      `${(ort.median_ms / t.median_ms).toFixed(2)}x`, range(ort), range(t), `${ort.ms.length}/${t.ms.length}`]);
  }
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ').trimEnd();
console.log(line(rows[0]));
console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
for (const r of rows.slice(1)) console.log(line(r));

console.log('\noutputs against the reference (max |diff| over every process):');
for (const r of [...results, ...checks]) {
  console.log(`  ${r.model} ${r.size}x${r.size} ${r.who}: ${r.max_abs_diff.toExponential(2)} vs ${r.reference_kind}` +
              ` (tolerance ${r.tolerance})`);
}
