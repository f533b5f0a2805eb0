// The ONNX Runtime side of bench/onnx/compare.sh (test tool only): one forward
// pass of an exported model on ONNX Runtime's CPU provider, 2 intra-op threads
// by default. Checks the output against the exporter's reference first, then
// times --warmup untimed runs and --runs timed ones.
//
//   node bench/onnx/ort_forward.mjs build/bench-onnx/realesr-animevideov3-x4-276.json [--runs 5]
//        [--warmup 2] [--threads 2]
//
// Prints one JSON line: {"side":"ort", "model", "size", "max_abs_diff", "tolerance",
// "runs", "min_ms", "median_ms", "max_ms", "ms" (every run, sorted), "threads", "ort_version"}. Exit 1 when
// the output is off the reference by more than its tolerance.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import ort from 'onnxruntime-node';

function parseArgs(argv) {
  const opts = { runs: 5, warmup: 2, threads: 2, meta: null };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const value = () => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 0) throw new Error(`${a} needs a non-negative integer`);
      return v;
    };
    if (a === '--runs') opts.runs = value();
    else if (a === '--warmup') opts.warmup = value();
    else if (a === '--threads') opts.threads = value();
    else if (!a.startsWith('--') && opts.meta === null) opts.meta = a;
    else throw new Error(`unknown argument ${a}`);
  }
  if (opts.meta === null) throw new Error('usage: ort_forward.mjs CASE.json [--runs N] [--warmup N] [--threads N]');
  if (opts.runs < 1) throw new Error('--runs must be at least 1');
  return opts;
}

function readFloat32(path, expected) {
  const bytes = readFileSync(path);
  if (bytes.length !== expected * 4) throw new Error(`${path}: ${bytes.length} bytes, want ${expected * 4}`);
  // Copy into an aligned buffer: readFileSync's may start at any offset.
  const out = new Float32Array(expected);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

const count = (shape) => shape.reduce((a, b) => a * b, 1);

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const meta = JSON.parse(readFileSync(opts.meta, 'utf8'));
  const input = new ort.Tensor('float32', readFloat32(meta.input, count(meta.input_shape)), meta.input_shape);
  const reference = readFloat32(meta.reference, count(meta.output_shape));

  const session = await ort.InferenceSession.create(meta.onnx, {
    executionProviders: ['cpu'],
    intraOpNumThreads: opts.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const run = async () => (await session.run({ [session.inputNames[0]]: input }))[session.outputNames[0]];

  const first = await run();  // also the first warm-up
  if (first.data.length !== reference.length) {
    throw new Error(`output has ${first.data.length} values, reference ${reference.length}`);
  }
  let maxDiff = 0;
  for (let i = 0; i < reference.length; ++i) maxDiff = Math.max(maxDiff, Math.abs(first.data[i] - reference[i]));
  if (!(maxDiff <= meta.tolerance)) {
    console.error(`ort_forward: ${meta.model}: output off the ${meta.reference_kind} reference by ${maxDiff} ` +
                  `(tolerance ${meta.tolerance})`);
    process.exit(1);
  }
  for (let i = 1; i < opts.warmup; ++i) await run();

  const ms = [];
  for (let i = 0; i < opts.runs; ++i) {
    const start = performance.now();
    await run();
    ms.push(performance.now() - start);
  }
  ms.sort((a, b) => a - b);
  const mid = ms.length >> 1;
  const median = ms.length % 2 ? ms[mid] : (ms[mid - 1] + ms[mid]) / 2;
  console.log(JSON.stringify({
    side: 'ort', model: meta.model, size: meta.input_shape[3], max_abs_diff: maxDiff, tolerance: meta.tolerance,
    reference_kind: meta.reference_kind, runs: ms.length, min_ms: ms[0], median_ms: median,
    max_ms: ms[ms.length - 1], ms, threads: opts.threads, ort_version: ort.env.versions?.common ?? 'unknown',
  }));
  await session.release();
}

main().catch((e) => {
  console.error(`ort_forward: ${e.message}`);
  process.exit(2);
});
