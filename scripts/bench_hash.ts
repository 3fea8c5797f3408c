/**
 * The store's content hash in process: BLAKE3 (each native implementation the CPU runs, and
 * TypeScript) against SHA-256 (node:crypto, what stores made before BLAKE3 key blocks by), over
 * a buffer hashed block by block as a receive hashes it.
 *
 *   deno run -A scripts/bench_hash.ts [MiB] [block KiB]
 *
 * @module
 */

import { createHash } from "node:crypto";
import { blake3 } from "../core/checksum/blake3.ts";
import {
  blake3Implementations,
  nativeBlake3,
  withBlake3Implementation,
} from "../io/native/blake3_native.ts";

/** One measurement. */
export interface HashThroughput {
  /** "blake3 native-avx512", "blake3 typescript", "sha256 node:crypto". */
  engine: string;
  /** Best of the runs, in 10^9 bytes per second. */
  gbps: number;
}

/** What {@linkcode benchBlockHash} measured. */
export interface HashBenchResult {
  /** Buffer size in bytes. */
  bytes: number;
  /** Bytes per hash call. */
  blockBytes: number;
  runs: number;
  results: HashThroughput[];
}

function fill(buf: Uint8Array): void {
  const words = new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength >>> 2);
  let x = 0x2545f491;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
}

/**
 * Hashes `bytes` of data in `blockBytes` pieces with each engine, best of `runs`.
 *
 * @example
 * ```ts
 * import { benchBlockHash } from "./bench_hash.ts";
 * const r = benchBlockHash({ bytes: 1 << 20, runs: 1 });
 * if (!r.results.some((x) => x.engine === "sha256 node:crypto" && x.gbps > 0)) throw new Error();
 * ```
 */
export function benchBlockHash(
  options: { bytes?: number; blockBytes?: number; runs?: number } = {},
): HashBenchResult {
  const bytes = options.bytes ?? 256 << 20;
  const blockBytes = options.blockBytes ?? 128 << 10;
  const runs = options.runs ?? 3;
  const data = new Uint8Array(bytes);
  fill(data);
  const results: HashThroughput[] = [];
  const measure = (engine: string, hash: (b: Uint8Array) => unknown, limit = bytes) => {
    let best = Infinity;
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      for (let at = 0; at + blockBytes <= limit; at += blockBytes) {
        hash(data.subarray(at, at + blockBytes));
      }
      best = Math.min(best, performance.now() - t0);
    }
    results.push({ engine, gbps: limit / (Math.max(best, 1e-3) * 1e6) });
  };
  const native = nativeBlake3();
  if (native !== null) {
    for (const impl of blake3Implementations()) {
      withBlake3Implementation(impl, () => measure(`blake3 native-${impl}`, native));
    }
  }
  // TypeScript is slow: a sixteenth of the buffer says its speed well enough.
  measure("blake3 typescript", blake3, Math.max(blockBytes, bytes / 16));
  measure("sha256 node:crypto", (b) => createHash("sha256").update(b).digest());
  return { bytes, blockBytes, runs, results };
}

if (import.meta.main) {
  const mib = Number(Deno.args[0] ?? 256), kib = Number(Deno.args[1] ?? 128);
  const r = benchBlockHash({ bytes: mib << 20, blockBytes: kib << 10 });
  for (const x of r.results) console.log(`${x.engine.padEnd(24)} ${x.gbps.toFixed(2)} GB/s`);
}
