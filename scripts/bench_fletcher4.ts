/**
 * fletcher-4 throughput: native (the implementation in use, and every one this CPU runs) and
 * TypeScript, both byte orders, on one large buffer, best of N runs.
 *
 *   deno run --allow-all scripts/bench_fletcher4.ts [--mib N] [--runs N]
 *
 * (Deno reads /proc/cpuinfo only with --allow-all; with less the CPU is reported as unknown.)
 *
 * `benchFletcher4()` returns the same numbers for the project's bench.
 *
 * @module
 */

import { type Fletcher4Engine, tsFletcher4 } from "../core/checksum/fletcher4.ts";
import { nativeLoadError } from "../io/native/ffi.ts";
import {
  nativeFletcher4,
  nativeImplementations,
  withNativeImplementation,
} from "../io/native/fletcher4_native.ts";

/** One measurement. */
export interface Fletcher4Throughput {
  /** "typescript", "native-avx2", ... (each native implementation appears once). */
  engine: string;
  /** Word byte order: "le" (native on x86-64) or "be" (byteswapped). */
  order: "le" | "be";
  /** Best of the runs, in 10^9 bytes per second. */
  gbps: number;
}

/** What {@linkcode benchFletcher4} measured. */
export interface Fletcher4BenchResult {
  /** CPU model from /proc/cpuinfo ("unknown ..." if unreadable). */
  cpu: string;
  /** Logical CPUs. */
  cpus: number;
  /** `Deno.version.deno`. */
  deno: string;
  /** Buffer size in bytes. */
  bytes: number;
  /** Runs per measurement (the best is kept). */
  runs: number;
  /** The native engine in use (e.g. "native-avx512"), or null when not loaded. */
  native: string | null;
  /** Why the native library did not load, when it did not. */
  nativeError: string | null;
  /** Best-of-runs throughput of the default native engine, per byte order; null without it. */
  nativeGBps: { le: number; be: number } | null;
  /** The same for TypeScript. */
  tsGBps: { le: number; be: number };
  /** Every measurement, including each native implementation forced in turn. */
  results: Fletcher4Throughput[];
}

/** Options for {@linkcode benchFletcher4}. */
export interface Fletcher4BenchOptions {
  /** Buffer size in bytes (default 256 MiB). */
  bytes?: number;
  /** Runs per measurement (default 5). */
  runs?: number;
  /** Also time each native implementation the CPU supports (default true). */
  implementations?: boolean;
}

function cpuModel(): string {
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    return info.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? "unknown";
  } catch {
    return "unknown (reading /proc/cpuinfo needs --allow-all)";
  }
}

function fill(buf: Uint8Array): void {
  const words = new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength >>> 2);
  let x = 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
}

function best(engine: Fletcher4Engine, data: Uint8Array, le: boolean, runs: number): number {
  const state = new Uint32Array(8);
  let bestMs = Infinity;
  for (let r = 0; r < runs; r++) {
    state.fill(0);
    const t0 = performance.now();
    engine.update(state, data, le);
    bestMs = Math.min(bestMs, performance.now() - t0);
  }
  return data.byteLength / (Math.max(bestMs, 1e-3) * 1e6);
}

/**
 * Measures fletcher-4 throughput (best of `runs`) on one buffer of `bytes`.
 *
 * @example
 * ```ts
 * import { benchFletcher4 } from "./bench_fletcher4.ts";
 * const r = benchFletcher4({ bytes: 1 << 16, runs: 1, implementations: false });
 * if (!(r.tsGBps.le > 0) || (r.native === null) !== (r.nativeGBps === null)) throw new Error();
 * ```
 */
export function benchFletcher4(options: Fletcher4BenchOptions = {}): Fletcher4BenchResult {
  const bytes = options.bytes ?? 256 << 20;
  const runs = options.runs ?? 5;
  const data = new Uint8Array(bytes);
  fill(data);
  const results: Fletcher4Throughput[] = [];
  const measure = (name: string, engine: Fletcher4Engine) => {
    const le = best(engine, data, true, runs);
    const be = best(engine, data, false, runs);
    results.push({ engine: name, order: "le", gbps: le }, { engine: name, order: "be", gbps: be });
    return { le, be };
  };
  const native = nativeFletcher4();
  const nativeGBps = native === null ? null : measure(native.name, native);
  if (native !== null && (options.implementations ?? true)) {
    for (const impl of nativeImplementations()) {
      if (`native-${impl}` === native.name) continue; // measured above
      withNativeImplementation(impl, () => measure(`native-${impl}`, native));
    }
  }
  const tsGBps = measure(tsFletcher4.name, tsFletcher4);
  return {
    cpu: cpuModel(),
    cpus: navigator.hardwareConcurrency,
    deno: Deno.version.deno,
    bytes,
    runs,
    native: native?.name ?? null,
    nativeError: native === null ? nativeLoadError() : null,
    nativeGBps,
    tsGBps,
    results,
  };
}

if (import.meta.main) {
  const arg = (name: string, fallback: number) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
  };
  const r = benchFletcher4({ bytes: arg("--mib", 256) * (1 << 20), runs: arg("--runs", 5) });
  console.log(`cpu: ${r.cpu} (${r.cpus} logical CPUs), deno ${r.deno}`);
  console.log(`buffer: ${r.bytes / (1 << 20)} MiB, best of ${r.runs}`);
  if (r.nativeError) console.log(`native: not loaded (${r.nativeError})`);
  else console.log(`native: ${r.native} (default)`);
  const rows = new Map<string, Record<string, number>>();
  for (const m of r.results) rows.set(m.engine, { ...rows.get(m.engine), [m.order]: m.gbps });
  for (const [engine, { le, be }] of rows) {
    console.log(
      `${engine.padEnd(16)} le ${le!.toFixed(2).padStart(7)} GB/s   be ${
        be!.toFixed(2).padStart(7)
      } GB/s`,
    );
  }
}
