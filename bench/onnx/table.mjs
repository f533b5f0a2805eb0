// Prints compare.sh's table from the JSON lines ort_forward.mjs and forward_bench
// wrote: per model and padded input, ONNX Runtime's median against tessera's
// (medians) under each oneDNN ISA setting, and the speed-up (ORT ms / tessera ms; issue 14's
// target is >= 1.5 at the default ISA). Then how far each side's output was from
// the reference it was checked against.
//
//   node bench/onnx/table.mjs RESULTS.jsonl [CHECKS.jsonl]
import { existsSync, readFileSync } from 'node:fs';

const read = (path) => (path && existsSync(path) ? readFileSync(path, 'utf8') : '')
  .split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
const results = read(process.argv[2]);
const checks = read(process.argv[3]);

const ms = (v) => v.toFixed(0);
const pad = (cells, widths) => cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ');

const rows = [['model', 'input', 'tessera ISA', 'ORT ms', 'tessera ms', 'speed-up (ORT/tessera)',
  'ORT min-max', 'tessera min-max', 'runs']];
for (const ort of results.filter((r) => r.side === 'ort')) {
  for (const t of results.filter((r) => r.side === 'tessera' && r.model === ort.model && r.size === ort.size)) {
    rows.push([ort.model, `${ort.size}x${ort.size}`, t.isa, ms(ort.median_ms), ms(t.median_ms),
      `${(ort.median_ms / t.median_ms).toFixed(2)}x`, `${ms(ort.min_ms)}-${ms(ort.max_ms)}`,
      `${ms(t.min_ms)}-${ms(t.max_ms)}`, `${ort.runs}/${t.runs}`]);
  }
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
console.log(pad(rows[0], widths));
console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
for (const r of rows.slice(1)) console.log(pad(r, widths));

console.log('\noutputs against the reference (max |diff|):');
for (const r of [...results, ...checks]) {
  const who = r.side === 'ort' ? `ORT ${r.ort_version}` : `tessera ${r.isa}`;
  console.log(`  ${r.model} ${r.size}x${r.size} ${who}: ${r.max_abs_diff.toExponential(2)} vs ${r.reference_kind}` +
              ` (tolerance ${r.tolerance})`);
}
