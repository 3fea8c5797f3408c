/**
 * The bench's inputs, cached by path under bench/: the 1 GiB send stream (made by real
 * zfs-fuse with `scripts/make_bench_stream.sh`, or, where that cannot run, a synthetic one
 * written by zsend's own `StreamWriter`) and a 1 GiB random file for `image send`.
 *
 * @module
 */

import { StreamWriter } from "../../core/stream/writer.ts";
import { readRecords } from "../../core/stream/reader.ts";
import { DRR } from "../../core/stream/constants.ts";
import { bestFletcher4 } from "../../io/native/fletcher4_native.ts";
import { alignedBytes } from "../../io/aligned_buffer.ts";
import { log } from "./harness.ts";

/** At least this many bytes. */
export const GIB = 1 << 30;

/** The stream the bench reads. */
export interface StreamInput {
  path: string;
  bytes: number;
  /** zfs-fuse: made by real `zfs send`; synthetic: by zsend's writer; given: `--stream`. */
  origin: "zfs-fuse" | "synthetic" | "given";
  /** Whether it was made in this run (else reused from bench/). */
  madeNow: boolean;
  /** Seconds it took to make, when made now. */
  makeSeconds?: number;
  /** Why it is synthetic, when it is. */
  why?: string;
  /** The first substream's toname ("pool/fs@snap"). */
  toname: string;
}

function size(path: string): number | null {
  try {
    return Deno.statSync(path).size;
  } catch {
    return null;
  }
}

/** The toname of the stream's first BEGIN. */
export async function firstToname(path: string): Promise<string> {
  using file = await Deno.open(path);
  for await (const r of readRecords(file.readable, { ignoreChecksums: true })) {
    if (r.header.type === DRR.BEGIN && r.header.toname !== "") return r.header.toname;
    if (r.index > 4) break;
  }
  throw new Error(`${path}: no BEGIN with a toname`);
}

/** A dedup stream for redup: at least this many bytes. */
export const DEDUP_MIN = 256 << 20;

/**
 * Makes (or reuses) the stream made by real zfs-fuse (`--dedup`: a `zfs send -D` stream of at
 * least {@linkcode DEDUP_MIN} bytes, else one of at least 1 GiB); throws when the script fails.
 */
export async function zfsFuseStream(
  root: string,
  path: string,
  options: { dedup?: boolean } = {},
): Promise<StreamInput> {
  const min = options.dedup ? DEDUP_MIN : GIB;
  const have = size(path);
  if (have !== null && have >= min) {
    return {
      path,
      bytes: have,
      origin: "zfs-fuse",
      madeNow: false,
      toname: await firstToname(path),
    };
  }
  const partial = `${path}.partial`;
  log(`making ${path} with scripts/make_bench_stream.sh${options.dedup ? " --dedup" : ""}`);
  const t0 = performance.now();
  const out = await new Deno.Command("bash", {
    args: [`${root}/scripts/make_bench_stream.sh`, ...(options.dedup ? ["--dedup"] : []), partial],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).output();
  if (!out.success) {
    await Deno.remove(partial).catch(() => {});
    throw new Error(`scripts/make_bench_stream.sh failed (${out.code})`);
  }
  await Deno.rename(partial, path);
  return {
    path,
    bytes: size(path)!,
    origin: "zfs-fuse",
    madeNow: true,
    makeSeconds: (performance.now() - t0) / 1000,
    toname: await firstToname(path),
  };
}

/**
 * Makes (or reuses) a synthetic stream of a little over 1 GiB in the zfs-fuse style (no
 * per-record checksums, END checksum only): one filesystem with four files of 256 MiB
 * pseudo-random data in 128 KiB WRITE records.
 */
export async function syntheticStream(path: string, why: string): Promise<StreamInput> {
  const toname = "synthetic/fs@bench";
  const have = size(path);
  if (have !== null && have >= GIB) {
    return { path, bytes: have, origin: "synthetic", madeNow: false, why, toname };
  }
  log(`writing synthetic stream ${path} with core/stream/writer.ts (${why})`);
  const t0 = performance.now();
  const partial = `${path}.partial`;
  const file = await Deno.open(partial, { write: true, create: true, truncate: true });
  const w = new StreamWriter({
    littleEndian: true,
    recordChecksums: false,
    fletcher4: bestFletcher4(),
  });
  const toguid = 0x5e7e_c7ed_0000_0001n;
  const out: Uint8Array[] = [];
  let pending = 0;
  const flush = async () => {
    for (const c of out) {
      for (let off = 0; off < c.length;) off += await file.write(c.subarray(off));
    }
    out.length = 0;
    pending = 0;
  };
  const put = async (chunks: Uint8Array[]) => {
    for (const c of chunks) {
      out.push(c.slice()); // the payload buffer is reused below
      pending += c.length;
    }
    if (pending >= 4 << 20) await flush();
  };
  await put(
    w.begin({ toname, toguid, objset_type: 2, creation_time: BigInt(Date.now() / 1000 | 0) }),
  );
  await put(w.write({ type: DRR.FREEOBJECTS, firstobj: 0n, numobjs: 5n, toguid }));
  const block = new Uint8Array(128 << 10);
  const words = new Uint32Array(block.buffer);
  let x = 0x9e3779b9;
  for (let obj = 5n; obj < 9n; obj++) {
    await put(w.write(
      {
        type: DRR.OBJECT,
        object: obj,
        object_type: 19,
        bonustype: 17,
        blksz: block.length,
        bonuslen: 264,
        toguid,
      },
      new Uint8Array(264),
    ));
    for (let blk = 0n; blk < 2048n; blk++) {
      for (let i = 0; i < words.length; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        words[i] = x;
      }
      await put(w.write(
        {
          type: DRR.WRITE,
          object: obj,
          object_type: 19,
          offset: blk * BigInt(block.length),
          logical_size: BigInt(block.length),
          checksumtype: 7,
          toguid,
        },
        block,
      ));
    }
    await put(
      w.write({
        type: DRR.FREE,
        object: obj,
        offset: 256n << 20n,
        length: (1n << 64n) - 1n,
        toguid,
      }),
    );
  }
  await put(w.end());
  await flush();
  file.close();
  await Deno.rename(partial, path);
  return {
    path,
    bytes: size(path)!,
    origin: "synthetic",
    madeNow: true,
    makeSeconds: (performance.now() - t0) / 1000,
    why,
    toname,
  };
}

/** Makes (or reuses) a file of `bytes` random bytes. */
export async function randomFile(path: string, bytes: number): Promise<number> {
  const have = size(path);
  if (have === bytes) return have;
  log(`writing ${bytes} random bytes to ${path}`);
  const partial = `${path}.partial`;
  const out = await new Deno.Command("sh", {
    args: ["-c", 'head -c "$1" /dev/urandom >"$2"', "sh", String(bytes), partial],
    stdin: "null",
  }).output();
  if (!out.success || size(partial) !== bytes) {
    await Deno.remove(partial).catch(() => {});
    throw new Error(`could not write ${path}`);
  }
  await Deno.rename(partial, path);
  return bytes;
}

/**
 * Reads a file once to its end, so that the runs find it in the page cache, in the state that
 * one sequential read leaves: it is dropped from the cache first (GNU dd's `iflag=nocache
 * count=0`). How the cache holds a file depends on how it got there (pages written in small
 * pieces stay 4 KiB folios; a sequential read on a recent kernel makes large ones, up to 2 MiB),
 * and both mapping (zsend) and copying (`zstream`) cost less with large folios; dropping it
 * first makes every run start from the same state, whatever made the file.
 */
export async function warm(path: string): Promise<void> {
  await new Deno.Command("dd", {
    args: [`if=${path}`, "iflag=nocache", "count=0", "status=none"],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output().catch(() => {});
  using file = await Deno.open(path);
  const buf = alignedBytes(4 << 20);
  while ((await file.read(buf)) !== null) { /* reading is the point */ }
}

/** Sum of the sizes of the regular files under `dir`. */
export async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) total += await treeBytes(p);
    else if (e.isFile) total += (await Deno.lstat(p)).size;
  }
  return total;
}

/**
 * The input of encrypted extract: a raw (`zfs send -w`) stream of an aes-256-gcm
 * passphrase-encrypted filesystem, a plain stream of an unencrypted filesystem that holds the
 * same tree (about 1 GiB: four 256 MiB random files and 1000 small files, compression off,
 * 128 KiB records), and the passphrase, made by real OpenZFS 2.3 in the QEMU guest
 * (`scripts/bench/make_crypt_stream.sh`).
 */
export interface CryptInput {
  dir: string;
  crypt: string;
  cryptBytes: number;
  plain: string;
  plainBytes: number;
  passphrase: string;
  /** toname of each stream. */
  cryptToname: string;
  plainToname: string;
  madeNow: boolean;
  makeSeconds?: number;
}

/**
 * The cache folder of {@linkcode cryptInput} under bench/. Its name says what is in it: bump
 * `v1` when `scripts/openzfs/guest/crypt_bench.sh` makes something else.
 */
export const CRYPT_DIR = "crypt-v1-4x256m-1000-s11";

/**
 * Makes (or reuses, from `benchDir`/{@linkcode CRYPT_DIR}) the input of encrypted extract.
 * Returns why it cannot be made (not root, no QEMU, the guest failed) instead of throwing.
 */
export async function cryptInput(root: string, benchDir: string): Promise<CryptInput | string> {
  const dir = `${benchDir}/${CRYPT_DIR}`;
  const files = {
    crypt: `${dir}/crypt.zstream`,
    plain: `${dir}/plain.zstream`,
    passphrase: `${dir}/passphrase.txt`,
  };
  let madeNow = false;
  let makeSeconds: number | undefined;
  if (size(files.crypt) === null || size(files.plain) === null || size(files.passphrase) === null) {
    const qemu = (Deno.env.get("PATH") ?? "").split(":").some((d) =>
      size(`${d}/qemu-system-x86_64`) !== null
    );
    if (!qemu && Deno.uid() !== 0) {
      return "no qemu-system-x86_64 and not root to install it: the OpenZFS 2.3 guest " +
        "(scripts/openzfs/vm.sh) that makes the encrypted input cannot run";
    }
    const partial = `${dir}.partial`;
    await Deno.remove(partial, { recursive: true }).catch(() => {});
    log(`making ${dir} with scripts/bench/make_crypt_stream.sh (OpenZFS 2.3 in QEMU, minutes)`);
    const t0 = performance.now();
    const out = await new Deno.Command("bash", {
      args: [`${root}/scripts/bench/make_crypt_stream.sh`, partial],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) {
      // The scripts' own lines (not the guest console's tail that follows them); the partial
      // folder stays for its console.log, and is made anew by the next attempt.
      const said = new TextDecoder().decode(out.stderr).split("\n")
        .filter((l) => /^(make_crypt_stream|openzfs): /.test(l)).slice(-2).join(" | ");
      return `scripts/bench/make_crypt_stream.sh failed (${out.code}; the OpenZFS 2.3 guest ` +
        `needs root, QEMU and apt's packages): ${said}`;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.rename(partial, dir);
    madeNow = true;
    makeSeconds = (performance.now() - t0) / 1000;
  }
  return {
    dir,
    crypt: files.crypt,
    cryptBytes: size(files.crypt)!,
    plain: files.plain,
    plainBytes: size(files.plain)!,
    passphrase: files.passphrase,
    cryptToname: await firstToname(files.crypt),
    plainToname: await firstToname(files.plain),
    madeNow,
    ...(makeSeconds === undefined ? {} : { makeSeconds }),
  };
}
