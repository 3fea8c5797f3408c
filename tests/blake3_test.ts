/**
 * BLAKE3: the TypeScript implementation (core/checksum/blake3.ts) and every native implementation the
 * CPU runs (io/native/blake3.c) against known digests, against the reference tool `b3sum`
 * (Debian package b3sum; scripts/setup.sh installs it as root), and against each other on
 * unaligned views.
 *
 * Without `b3sum` the tests against it are ignored with a message saying why, and without a
 * loadable native library the native tests are; under `CI=true` both fail instead. Random data
 * comes from a seeded generator; set `ZSEND_TEST_SEED` to replay a failure (the seed is in
 * every failure message).
 */

import { assert, assertEquals } from "@std/assert";
import { blake3 } from "../core/checksum/blake3.ts";
import { envVar, nativeLoadError } from "../io/native/ffi.ts";
import {
  bestBlake3,
  blake3Implementations,
  nativeBlake3,
  withBlake3Implementation,
} from "../io/native/blake3_native.ts";
import { mulberry32 } from "./helpers/prng.ts";

const SEED = Number(envVar("ZSEND_TEST_SEED") ?? Math.floor(Math.random() * 2 ** 32)) >>> 0;
const CI = envVar("CI") === "true";
const native = nativeBlake3();
const IMPLS = blake3Implementations();
const MiB = 1 << 20;

/** Why `b3sum` cannot be run, or null when it can. */
async function b3sumMissing(): Promise<string | null> {
  try {
    const out = await new Deno.Command("b3sum", {
      args: ["--version"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return out.success ? null : `b3sum --version failed: ${new TextDecoder().decode(out.stderr)}`;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return "b3sum is not installed (Debian package b3sum; scripts/setup.sh installs it as root)";
    }
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      return "running b3sum needs --allow-run";
    }
    throw e;
  }
}

const b3sumWhy = await b3sumMissing();

if (native === null) {
  console.warn(
    `${CI ? "FAILING (CI=true)" : "IGNORING"} native BLAKE3 tests: ${nativeLoadError()}`,
  );
}
if (b3sumWhy !== null) {
  console.warn(
    `${CI ? "FAILING (CI=true)" : "SKIPPING"} the BLAKE3 tests against b3sum: ${b3sumWhy}`,
  );
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function randomBytes(next: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  const words = new Uint32Array(out.buffer, 0, n >>> 2);
  for (let i = 0; i < words.length; i++) words[i] = next();
  for (let i = words.length * 4; i < n; i++) out[i] = next() & 0xff;
  return out;
}

/** Every hash function under test: TypeScript, then each native implementation by name. */
function eachHash(fn: (name: string, hash: (data: Uint8Array) => Uint8Array) => void): void {
  fn("typescript", blake3);
  for (const impl of IMPLS) {
    assert(withBlake3Implementation(impl, () => fn(`native-${impl}`, native!)), impl);
  }
}

/** A test that needs the native library: ignored without it, failed without it under CI. */
function nativeTest(name: string, fn: () => void | Promise<void>): void {
  Deno.test({
    name: native === null && !CI ? `${name} (ignored: native library not loaded)` : name,
    ignore: native === null && !CI,
    fn: () => {
      if (native === null) {
        throw new Error(`CI=true needs the native library: ${nativeLoadError()}`);
      }
      return fn();
    },
  });
}

/** A test that needs b3sum: ignored without it, failed without it under CI. */
function b3sumTest(name: string, fn: () => void | Promise<void>): void {
  Deno.test({
    name: b3sumWhy !== null && !CI ? `${name} (ignored: ${b3sumWhy})` : name,
    ignore: b3sumWhy !== null && !CI,
    fn: () => {
      if (b3sumWhy !== null) throw new Error(`CI=true needs b3sum: ${b3sumWhy}`);
      return fn();
    },
  });
}

/**
 * Checks every hash function on data[0 .. len), for each len, against b3sum. The prefixes are
 * written to files (on tmpfs when there is one) in batches, one b3sum run per batch, which
 * runs while this process hashes the same batch.
 */
async function checkAgainstB3sum(data: Uint8Array, lens: number[], what: string): Promise<void> {
  let dir: string;
  try {
    dir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "zsend-b3sum-" });
  } catch {
    dir = await Deno.makeTempDir({ prefix: "zsend-b3sum-" });
  }
  try {
    for (let i = 0; i < lens.length;) {
      const batch: number[] = [];
      const files: string[] = [];
      let bytes = 0;
      for (; i < lens.length && (batch.length === 0 || bytes < 64 * MiB); i++) {
        const file = `${dir}/${batch.length}`;
        await Deno.writeFile(file, data.subarray(0, lens[i]!));
        batch.push(lens[i]!);
        files.push(file);
        bytes += lens[i]!;
      }
      const running = new Deno.Command("b3sum", {
        args: ["--no-names", "--", ...files],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const ours: [string, string[]][] = [];
      eachHash((name, hash) =>
        ours.push([name, batch.map((len) => hex(hash(data.subarray(0, len))))])
      );
      const out = await running;
      assert(out.success, new TextDecoder().decode(out.stderr));
      const want = new TextDecoder().decode(out.stdout).trim().split("\n");
      assertEquals(want.length, batch.length);
      for (const [name, got] of ours) {
        batch.forEach((len, k) => {
          if (got[k] !== want[k]) {
            assertEquals(got[k], want[k], `${name} ${what} len ${len} seed ${SEED}`);
          }
        });
      }
      await Promise.all(files.map((f) => Deno.remove(f)));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// The official test-vector input: byte i is i % 251. Digests from b3sum 1.2.0.
const KNOWN: [number, string][] = [
  [0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"],
  [1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"],
  [1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"],
  [1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"],
  [1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"],
  [2048, "e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a"],
  [3072, "b98cb0ff3623be03326b373de6b9095218513e64f1ee2edd2525c7ad1e5cffd2"],
  [4097, "9b4052b38f1c5fc8b1f9ff7ac7b27cd242487b3d890d15c96a1c25b8aa0fb995"],
  [8193, "bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b"],
  [31744, "62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47"],
  [102400, "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085"],
];

Deno.test("blake3: known digests (TypeScript and every native implementation)", () => {
  const pattern = new Uint8Array(102400).map((_, i) => i % 251);
  eachHash((name, hash) => {
    for (const [len, want] of KNOWN) {
      assertEquals(hex(hash(pattern.subarray(0, len))), want, `${name} len ${len}`);
    }
    assertEquals(
      hex(hash(new TextEncoder().encode("abc"))),
      "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
      name,
    );
  });
});

Deno.test("blake3: level-wise pairing builds the left-complete tree, 1..4096 chunks", () => {
  // A tree over leaves 0..n-1 is determined by the intervals [s, e) of its parents.
  const key = (s: number, e: number) => s * 8192 + e;
  const leftComplete = (s: number, e: number, out: number[]): void => {
    if (e - s < 2) return;
    let left = 1;
    while (left * 2 < e - s) left *= 2; // the largest power of two below the count
    leftComplete(s, s + left, out);
    leftComplete(s + left, e, out);
    out.push(key(s, e));
  };
  for (let n = 1; n <= 4096; n++) {
    const want: number[] = [];
    leftComplete(0, n, want);
    const got: number[] = [];
    let level = Array.from({ length: n }, (_, i) => [i, i + 1] as const);
    while (level.length > 1) {
      const next: (readonly [number, number])[] = [];
      for (let i = 0; i + 1 < level.length; i += 2) {
        next.push([level[i]![0], level[i + 1]![1]]);
        got.push(key(level[i]![0], level[i + 1]![1]));
      }
      if (level.length % 2 === 1) next.push(level.at(-1)!);
      level = next;
    }
    want.sort((x, y) => x - y);
    got.sort((x, y) => x - y);
    if (String(got) !== String(want)) assertEquals(got, want, `n = ${n}`);
  }
});

b3sumTest(
  "blake3: = b3sum for lengths 0..2100, around every chunk boundary and 2^k up to 2 MiB",
  async () => {
    const set = new Set<number>();
    for (let len = 0; len <= 2100; len++) set.add(len);
    for (let n = 1; n * 1024 <= 2 * MiB; n++) {
      for (const d of [-1, 0, 1]) set.add(n * 1024 + d);
    }
    for (let k = 0; 2 ** k <= 2 * MiB; k++) {
      for (const d of [-1, 0, 1]) set.add(2 ** k + d);
    }
    const lens = [...set].filter((n) => n >= 0).sort((x, y) => x - y);
    const data = randomBytes(mulberry32(SEED), lens.at(-1)!);
    await checkAgainstB3sum(data, lens, "boundaries");
  },
);

b3sumTest("blake3: = b3sum for random lengths up to 16 MiB", async () => {
  const next = mulberry32(SEED ^ 1);
  const lens = [16 * MiB, 16 * MiB - 1];
  for (let i = 0; i < 6; i++) lens.push(next() % (16 * MiB));
  const data = randomBytes(next, 16 * MiB);
  await checkAgainstB3sum(data, lens, "random");
});

nativeTest("blake3: native = TypeScript on unaligned subarrays (byteOffset 1..63)", () => {
  const next = mulberry32(SEED ^ 2);
  const buf = randomBytes(next, 600 * 1024 + 64);
  const cases: [number, number][] = [];
  for (let off = 1; off < 64; off++) {
    for (const max of [2100, 40 * 1024, 600 * 1024]) cases.push([off, next() % (max + 1)]);
  }
  const want = cases.map(([off, len]) => {
    const view = buf.subarray(off, off + len);
    const digest = hex(blake3(view));
    // The TypeScript byte-by-byte path (unaligned) against its word path (an aligned copy).
    assertEquals(digest, hex(blake3(view.slice())), `typescript off ${off} len ${len}`);
    return digest;
  });
  eachHash((name, hash) => {
    cases.forEach(([off, len], i) => {
      assertEquals(
        hex(hash(buf.subarray(off, off + len))),
        want[i],
        `${name} off ${off} len ${len}`,
      );
    });
  });
});

nativeTest("blake3: native details", () => {
  assertEquals(IMPLS.at(-1), "scalar");
  for (const impl of IMPLS) assert(["avx512", "avx2", "sse41", "scalar"].includes(impl), impl);
  assertEquals(withBlake3Implementation("no-such-implementation", () => {}), false);
  // Empty views, at the start and in the middle of a buffer; the output is fresh each time.
  const buf = new Uint8Array(100).fill(7);
  const empty = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";
  eachHash((name, hash) => {
    assertEquals(hex(hash(new Uint8Array(0))), empty, name);
    assertEquals(hex(hash(buf.subarray(50, 50))), empty, name);
    const a = hash(buf), b = hash(buf);
    assert(a !== b && a.length === 32 && hex(a) === hex(b), name);
    assertEquals([...buf], Array(100).fill(7), `${name} wrote to its input`);
  });
});

Deno.test("blake3: bestBlake3 honours ZSEND_NO_NATIVE=1", () => {
  const saved = Deno.env.get("ZSEND_NO_NATIVE");
  try {
    Deno.env.set("ZSEND_NO_NATIVE", "1");
    assertEquals(bestBlake3(), blake3);
    Deno.env.delete("ZSEND_NO_NATIVE");
    assertEquals(bestBlake3(), native ?? blake3);
  } finally {
    if (saved === undefined) Deno.env.delete("ZSEND_NO_NATIVE");
    else Deno.env.set("ZSEND_NO_NATIVE", saved);
  }
});
