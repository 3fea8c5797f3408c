/**
 * What the resume tests on built streams share: block contents, a stream's records, scratch
 * stores, and a receive into one that reports its error instead of throwing it.
 *
 * @module
 */

import { assertMatch } from "@std/assert";
import { receiveStream } from "../../io/receive.ts";
import { Store } from "../../io/store/store.ts";
import { readRecords, type StreamRecord } from "../../core/stream/reader.ts";
import { StreamError } from "../../core/stream/errors.ts";

/** `n` bytes of a pseudo-random pattern chosen by `seed`. */
export function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = (x >>> 16) & 0xff;
  }
  return out;
}

/**
 * The records of a stream, payloads copied; of one without END (`send --saved`, `endless`),
 * those before its end.
 */
export async function records(bytes: Uint8Array, endless = false): Promise<StreamRecord[]> {
  const out: StreamRecord[] = [];
  try {
    for await (const r of readRecords([bytes])) out.push({ ...r, payload: r.payload.slice() });
  } catch (e) {
    if (!endless || !(e instanceof StreamError)) throw e;
    assertMatch(e.message, /the stream ends before the END of its substream/);
  }
  return out;
}

/** A store path in a new scratch folder (remove the folder with {@linkcode dropStore}). */
export async function tmpStore(): Promise<string> {
  return `${await Deno.makeTempDir({ prefix: "zsend-resume-" })}/store`;
}

/** Removes a store made by {@linkcode tmpStore}, with its folder. */
export async function dropStore(dir: string): Promise<void> {
  await Deno.remove(dir.replace(/\/store$/, ""), { recursive: true });
}

/** Receives `bytes` into `bk/fs` of the store at `dir` (made if need be); the error, or null. */
export async function recv(
  dir: string,
  bytes: Uint8Array,
  resumable: boolean,
): Promise<Error | null> {
  const store = Store.open(dir, { create: true });
  try {
    await receiveStream(store, [bytes], { target: "bk/fs", resumable });
    return null;
  } catch (e) {
    return e as Error;
  } finally {
    store.close();
  }
}
