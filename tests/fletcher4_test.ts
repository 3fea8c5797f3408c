/**
 * fletcher-4: the native library (every SIMD variant this CPU runs) against the TypeScript
 * implementation, both against a BigInt reference; and io/native/device.ts, native against
 * Deno's FsFile.
 *
 * Without a loadable native library the native tests are ignored with a message saying why,
 * except under `CI=true`, where they fail. Random data comes from a seeded generator; set
 * `ZSEND_TEST_SEED` to replay a failure (the seed is in every failure message).
 */

import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  Fletcher4,
  fletcher4,
  type Fletcher4Engine,
  tsFletcher4,
} from "../core/checksum/fletcher4.ts";
import type { Checksum } from "../core/stream/record.ts";
import { envVar, nativeLoadError } from "../io/native/ffi.ts";
import {
  bestFletcher4,
  nativeFletcher4,
  nativeImplementations,
  withNativeImplementation,
} from "../io/native/fletcher4_native.ts";
import { Device } from "../io/native/device.ts";
import { mulberry32 } from "./helpers/prng.ts";

const SEED = Number(envVar("ZSEND_TEST_SEED") ?? Math.floor(Math.random() * 2 ** 32)) >>> 0;
const CI = envVar("CI") === "true";
const native = nativeFletcher4();
const IMPLS = nativeImplementations();
const FIXTURES = new URL("./fixtures/zfs-fuse/", import.meta.url);
const MAX_LEN = 65536;

if (native === null) {
  console.warn(
    `${CI ? "FAILING (CI=true)" : "IGNORING"} native-vs-TypeScript tests: ${nativeLoadError()}`,
  );
}

const rng = mulberry32;

function randomBytes(next: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  const words = new Uint32Array(out.buffer, 0, n >>> 2);
  for (let i = 0; i < words.length; i++) words[i] = next();
  for (let i = words.length * 4; i < n; i++) out[i] = next() & 0xff;
  return out;
}

function randomState(next: () => number): Uint32Array {
  const s = new Uint32Array(8);
  for (let i = 0; i < 8; i++) s[i] = next();
  return s;
}

const M64 = (1n << 64n) - 1n;

/** The definition, in BigInt: slow and obviously right. */
function reference(state: Uint32Array, data: Uint8Array, littleEndian: boolean): Uint32Array {
  const w = new BigUint64Array(new Uint32Array(state).buffer);
  let a = w[0]!, b = w[1]!, c = w[2]!, d = w[3]!;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let i = 0; i + 4 <= data.byteLength; i += 4) {
    a = (a + BigInt(view.getUint32(i, littleEndian))) & M64;
    b = (b + a) & M64;
    c = (c + b) & M64;
    d = (d + c) & M64;
  }
  return new Uint32Array(new BigUint64Array([a, b, c, d]).buffer);
}

function run(
  engine: Fletcher4Engine,
  init: Uint32Array,
  data: Uint8Array,
  littleEndian: boolean,
): Uint32Array {
  const s = new Uint32Array(init);
  engine.update(s, data, littleEndian);
  return s;
}

function hex(s: Uint32Array): string {
  return Array.from(new BigUint64Array(new Uint32Array(s).buffer), (x) => x.toString(16)).join(
    ",",
  );
}

/** Runs fn once per native implementation; the engine follows the process-wide switch. */
function eachImpl(fn: (impl: string, engine: Fletcher4Engine) => void): void {
  for (const impl of IMPLS) {
    assert(withNativeImplementation(impl, () => fn(impl, native!)), `cannot select ${impl}`);
  }
}

/** A test that needs the native library: ignored without it, failed without it under CI. */
function nativeTest(name: string, fn: (t: Deno.TestContext) => void | Promise<void>): void {
  Deno.test({
    name: native === null && !CI ? `${name} (ignored: native library not loaded)` : name,
    ignore: native === null && !CI,
    fn: (t) => {
      if (native === null) {
        throw new Error(`CI=true needs the native library: ${nativeLoadError()}`);
      }
      return fn(t);
    },
  });
}

Deno.test("fletcher-4: TypeScript matches the BigInt reference on small sizes", () => {
  const next = rng(SEED);
  const buf = randomBytes(next, 2048 + 64);
  for (let len = 0; len <= 1024; len++) {
    for (const le of [true, false]) {
      const off = next() & 63;
      const init = len % 3 === 0 ? new Uint32Array(8) : randomState(next);
      const data = buf.subarray(off, off + len);
      assertEquals(
        hex(run(tsFletcher4, init, data, le)),
        hex(reference(init, data, le)),
        `seed ${SEED} len ${len} off ${off} le ${le}`,
      );
    }
  }
  // Every word 0xffffffff, from a state of all ones: every addition carries.
  const ones = new Uint8Array(4096).fill(0xff);
  const full = new Uint32Array(8).fill(0xffffffff);
  assertEquals(hex(run(tsFletcher4, full, ones, true)), hex(reference(full, ones, true)));
});

nativeTest("fletcher-4: native (every implementation) matches the BigInt reference", () => {
  const next = rng(SEED ^ 1);
  const buf = randomBytes(next, 4096 + 64);
  const cases: [number, number, boolean, Uint32Array][] = [];
  for (let len = 0; len <= 1200; len += len < 300 ? 1 : 7) {
    for (const le of [true, false]) cases.push([len, next() & 63, le, randomState(next)]);
  }
  const expected = cases.map(([len, off, le, init]) =>
    hex(reference(init, buf.subarray(off, off + len), le))
  );
  eachImpl((impl, engine) => {
    cases.forEach(([len, off, le, init], i) => {
      assertEquals(
        hex(run(engine, init, buf.subarray(off, off + len), le)),
        expected[i],
        `${impl} seed ${SEED} len ${len} off ${off} le ${le}`,
      );
    });
    const ones = new Uint8Array(4096).fill(0xff);
    const full = new Uint32Array(8).fill(0xffffffff);
    assertEquals(hex(run(engine, full, ones, false)), hex(reference(full, ones, false)), impl);
  });
});

nativeTest(`fletcher-4: native = TypeScript for every length 0..${MAX_LEN}, both orders`, () => {
  const next = rng(SEED ^ 2);
  const buf = randomBytes(next, MAX_LEN + 64);
  const offsets = new Uint8Array(MAX_LEN + 1).map(() => next() & 63);
  const inits = new Uint32Array(8 * (MAX_LEN + 1)).map(() => next());
  for (const le of [true, false]) {
    // Native results for every implementation first (cheap), then one TypeScript pass.
    const results = new Map<string, Uint32Array>();
    eachImpl((impl, engine) => {
      const out = new Uint32Array(8 * (MAX_LEN + 1));
      for (let len = 0; len <= MAX_LEN; len++) {
        const s = out.subarray(8 * len, 8 * len + 8);
        s.set(inits.subarray(8 * len, 8 * len + 8));
        engine.update(s, buf.subarray(offsets[len]!, offsets[len]! + len), le);
      }
      results.set(impl, out);
    });
    const s = new Uint32Array(8);
    for (let len = 0; len <= MAX_LEN; len++) {
      s.set(inits.subarray(8 * len, 8 * len + 8));
      tsFletcher4.update(s, buf.subarray(offsets[len]!, offsets[len]! + len), le);
      for (const [impl, out] of results) {
        const got = out.subarray(8 * len, 8 * len + 8);
        for (let k = 0; k < 8; k++) {
          if (got[k] !== s[k]) {
            assertEquals(
              hex(got),
              hex(s),
              `${impl} seed ${SEED} len ${len} off ${offsets[len]} le ${le}`,
            );
          }
        }
      }
    }
  }
});

function splitRun(
  engine: Fletcher4Engine,
  data: Uint8Array,
  le: boolean,
  cuts: number[],
): Uint32Array {
  const s = new Uint32Array(8);
  let prev = 0;
  for (const cut of [...cuts, data.byteLength]) {
    engine.update(s, data.subarray(prev, cut), le);
    prev = cut;
  }
  return s;
}

function randomCuts(next: () => number, len: number): number[] {
  const words = len >>> 2;
  const n = next() % 12;
  const cuts: number[] = [];
  for (let i = 0; i < n; i++) cuts.push(4 * (next() % (words + 1)));
  if (n > 0 && next() % 2 === 0) cuts.push(cuts[0]!); // an empty piece
  return cuts.sort((x, y) => x - y);
}

Deno.test("fletcher-4: TypeScript updates split at random word boundaries equal one-shot", () => {
  const next = rng(SEED ^ 3);
  const buf = randomBytes(next, (1 << 18) + 64);
  for (let trial = 0; trial < 200; trial++) {
    const len = next() % (trial < 100 ? 2048 : 1 << 18);
    const off = next() & 63;
    const data = buf.subarray(off, off + len);
    const le = trial % 2 === 0;
    const cuts = randomCuts(next, len);
    assertEquals(
      hex(splitRun(tsFletcher4, data, le, cuts)),
      hex(run(tsFletcher4, new Uint32Array(8), data, le)),
      `seed ${SEED} len ${len} off ${off} cuts ${cuts}`,
    );
  }
});

Deno.test("Fletcher4.append() of a part's own checksum equals updating with its bytes", () => {
  const next = rng(SEED ^ 11);
  const buf = randomBytes(next, (1 << 18) + 64);
  for (let trial = 0; trial < 300; trial++) {
    // Random starting states make every accumulator wrap, as they do deep into a stream.
    const start = randomState(next);
    const headLen = (next() % 4096) & ~3;
    const tailLen = next() % (trial < 150 ? 4096 : 1 << 18);
    const le = trial % 2 === 0;
    const head = buf.subarray(0, headLen), tail = buf.subarray(64, 64 + tailLen);
    const whole = new Fletcher4();
    whole.halves.set(start);
    whole.update(head, le);
    whole.update(tail, le);
    const folded = new Fletcher4();
    folded.halves.set(start);
    folded.update(head, le);
    folded.append(fletcher4(tail, le), tail.length);
    assertEquals(folded.value(), whole.value(), `seed ${SEED} head ${headLen} tail ${tailLen}`);
  }
  // The largest count of words a payload can have (16 MiB) and beyond: the triangular
  // factors are exact before they wrap.
  const big = new Fletcher4();
  big.halves.set(randomState(next));
  const ref = new Fletcher4();
  ref.halves.set(big.halves);
  const zeros = new Uint8Array(1 << 24);
  ref.update(zeros, true);
  big.append([0n, 0n, 0n, 0n], zeros.length);
  assertEquals(big.value(), ref.value());
});

Deno.test("Fletcher4.append() with the native engine equals the BigInt arithmetic", () => {
  const engine = nativeFletcher4();
  if (engine === null) throw new Error("the native library is not built (deno task build-native)");
  assert(engine.append !== undefined);
  const next = rng(SEED ^ 12);
  const lengths = [0, 3, 4, 312, 131072, 131075, (1 << 24) + 2, 0xfffffffc, 0xffffffff];
  for (let trial = 0; trial < 400; trial++) {
    const start = randomState(next);
    const ck = randomState(next);
    const sums = new BigUint64Array(ck.buffer.slice(0));
    const part: Checksum = [sums[0]!, sums[1]!, sums[2]!, sums[3]!];
    const length = trial < lengths.length ? lengths[trial]! : next() % (1 << 25);
    const ts = new Fletcher4();
    ts.halves.set(start);
    ts.append(part, length);
    const native = new Fletcher4(engine);
    native.halves.set(start);
    native.append(part, length);
    assertEquals(native.value(), ts.value(), `seed ${SEED} length ${length}`);
  }
});

nativeTest("fletcher-4: native updates split at random word boundaries equal one-shot", () => {
  const next = rng(SEED ^ 4);
  const buf = randomBytes(next, (1 << 20) + 64);
  const trials = Array.from({ length: 300 }, (_, trial) => {
    const len = next() % (trial < 150 ? 4096 : 1 << 20);
    const off = next() & 63;
    return { len, off, le: trial % 2 === 0, cuts: randomCuts(next, len) };
  });
  const expected = trials.map(({ len, off, le }) =>
    hex(run(tsFletcher4, new Uint32Array(8), buf.subarray(off, off + len), le))
  );
  eachImpl((impl, engine) => {
    trials.forEach(({ len, off, le, cuts }, i) => {
      assertEquals(
        hex(splitRun(engine, buf.subarray(off, off + len), le, cuts)),
        expected[i],
        `${impl} seed ${SEED} len ${len} off ${off} le ${le} cuts ${cuts}`,
      );
    });
  });
});

nativeTest("fletcher-4: native = TypeScript on 48 MiB (accumulators wrap mod 2^64)", () => {
  const next = rng(SEED ^ 5);
  const len = (48 << 20) + 13;
  const buf = randomBytes(next, len + 8);
  for (const [off, le] of [[0, true], [4, false], [3, true]] as const) {
    const init = randomState(next);
    const data = buf.subarray(off, off + len);
    const want = hex(run(tsFletcher4, init, data, le));
    eachImpl((impl, engine) => {
      assertEquals(hex(run(engine, init, data, le)), want, `${impl} seed ${SEED} off ${off}`);
    });
  }
});

nativeTest("fletcher-4: native engine details", () => {
  const engine = native!;
  assert(engine.name.startsWith("native-"), engine.name);
  assert(IMPLS.includes(engine.name.slice("native-".length)), `${engine.name} vs ${IMPLS}`);
  assertEquals(IMPLS.at(-1), "scalar");
  // The state may be any 4-byte-aligned view; the library must not touch anything else.
  const next = rng(SEED ^ 6);
  const data = randomBytes(next, 1000);
  const backing = new Uint32Array(12).fill(0xdeadbeef);
  const state = backing.subarray(1, 9);
  state.fill(0);
  engine.update(state, data, false);
  assertEquals(hex(state), hex(run(tsFletcher4, new Uint32Array(8), data, false)));
  assertEquals([backing[0], backing[9], backing[10], backing[11]], Array(4).fill(0xdeadbeef));
  // Fewer than four bytes change nothing.
  const before = hex(state);
  engine.update(state, new Uint8Array(3).fill(9), true);
  assertEquals(hex(state), before);
  assertThrows(() => engine.update(new Uint32Array(4), data, true), RangeError);
});

Deno.test("fletcher-4: bestFletcher4 honours ZSEND_NO_NATIVE=1", () => {
  const saved = Deno.env.get("ZSEND_NO_NATIVE");
  try {
    Deno.env.set("ZSEND_NO_NATIVE", "1");
    assertEquals(bestFletcher4(), tsFletcher4);
    Deno.env.delete("ZSEND_NO_NATIVE");
    assertEquals(bestFletcher4(), native ?? tsFletcher4);
  } finally {
    if (saved === undefined) Deno.env.delete("ZSEND_NO_NATIVE");
    else Deno.env.set("ZSEND_NO_NATIVE", saved);
  }
});

async function fixtureFiles(): Promise<string[]> {
  try {
    const names: string[] = [];
    for await (const e of Deno.readDir(FIXTURES)) {
      if (e.isFile && e.name.endsWith(".zstream")) names.push(e.name);
    }
    return names.sort();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

const fixtures = await fixtureFiles();

Deno.test({
  name: fixtures.length > 0
    ? `fletcher-4: native = TypeScript on ${fixtures.length} zfs-fuse fixture streams`
    : "fletcher-4: fixture streams (ignored: no tests/fixtures/zfs-fuse/*.zstream)",
  // (when the library is missing the name does not say so; the pre-test message does)
  ignore: fixtures.length === 0 || (native === null && !CI),
  fn() {
    if (native === null) throw new Error(`CI=true needs the native library: ${nativeLoadError()}`);
    for (const name of fixtures) {
      const data = Deno.readFileSync(new URL(name, FIXTURES));
      for (const le of [true, false]) {
        const want = hex(run(tsFletcher4, new Uint32Array(8), data, le));
        eachImpl((impl, engine) => {
          assertEquals(hex(run(engine, new Uint32Array(8), data, le)), want, `${name} ${impl}`);
        });
      }
    }
  },
});

nativeTest(
  "native loader: a bad ZSEND_NATIVE_LIB falls back; no --allow-ffi means null",
  async () => {
    const script = `
    import { loadNative, nativeLoadError } from ${
      JSON.stringify(
        new URL("../io/native/ffi.ts", import.meta.url).href,
      )
    };
    const lib = loadNative();
    console.log(JSON.stringify({ loaded: lib !== null, error: nativeLoadError() }));
  `;
    const dir = await Deno.makeTempDir({ prefix: "zsend-loader-" });
    const file = `${dir}/load.ts`;
    await Deno.writeTextFile(file, script);
    const runScript = async (args: string[], env: Record<string, string>) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-prompt", "--no-config", ...args, file],
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert(out.success, stderr);
      return JSON.parse(new TextDecoder().decode(out.stdout)) as {
        loaded: boolean;
        error: string | null;
      };
    };
    const bad = "/nonexistent/libzsend_native.so";
    let fellBack, noFfi;
    try {
      fellBack = await runScript(["--allow-all"], { ZSEND_NATIVE_LIB: bad });
      noFfi = await runScript(["--allow-env", "--allow-read"], { ZSEND_NATIVE_LIB: bad });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    assertEquals(fellBack, { loaded: true, error: null });
    assertEquals(noFfi.loaded, false);
    assert(noFfi.error?.includes(bad), noFfi.error ?? "");
    assert(noFfi.error?.includes("build/libzsend_native.so"), noFfi.error ?? "");
    assert(noFfi.error?.includes("ZSEND_NATIVE_LIB"), noFfi.error ?? "");
    assert(noFfi.error?.includes("--allow-ffi"), noFfi.error ?? "");
  },
);

// ---------------------------------------------------------------------------------------------
// Device

Deno.test("device: the Deno backend reads and writes at positions", () => {
  const path = Deno.makeTempFileSync({ prefix: "zsend-device-" });
  try {
    using dev = Device.open(path, { write: true, native: false });
    assertEquals(dev.backend, "deno");
    assertEquals(dev.size(), 0);
    assertEquals(dev.pwrite(new Uint8Array([1, 2, 3]), 5), 3);
    assertEquals(dev.size(), 8);
    const buf = new Uint8Array(10).fill(7);
    assertEquals(dev.pread(buf, 4), 4);
    assertEquals([...buf.subarray(0, 5)], [0, 1, 2, 3, 7]);
    assertEquals(dev.pread(buf, 8), 0);
    dev.fsync();
  } finally {
    Deno.removeSync(path);
  }
});

nativeTest("device: native and Deno backends agree on random pwrite/pread", () => {
  const next = rng(SEED ^ 7);
  const dir = Deno.makeTempDirSync({ prefix: "zsend-device-" });
  try {
    const devs = [
      Device.open(`${dir}/native`, { write: true, create: true, native: true }),
      Device.open(`${dir}/deno`, { write: true, create: true, native: false }),
    ];
    assertEquals(devs.map((d) => d.backend), ["native", "deno"]);
    for (let i = 0; i < 200; i++) {
      const off = next() % (4 << 20);
      const data = randomBytes(next, next() % (i % 10 === 0 ? 1 << 20 : 5000));
      for (const d of devs) assertEquals(d.pwrite(data, off), data.length);
      if (i % 50 === 0) { for (const d of devs) d.fsync(); }
    }
    assertEquals(devs[0]!.size(), devs[1]!.size());
    const size = devs[0]!.size();
    for (let i = 0; i < 200; i++) {
      const off = next() % (size + 10000);
      const len = next() % 300000;
      const b0 = new Uint8Array(len).fill(0xaa); // bytes past the end must stay untouched
      const b1 = new Uint8Array(len).fill(0xaa);
      const n0 = devs[0]!.pread(b0, off);
      const n1 = devs[1]!.pread(b1, off);
      assertEquals(n0, n1, `seed ${SEED} off ${off}`);
      assertEquals(n0, Math.max(0, Math.min(len, size - off)));
      assertEquals(b0, b1, `seed ${SEED} off ${off}`);
    }
    for (const d of devs) d.close();
    assertEquals(Deno.readFileSync(`${dir}/native`), Deno.readFileSync(`${dir}/deno`));
    assertThrows(() => devs[0]!.pread(new Uint8Array(1), 0), Deno.errors.BadResource);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

nativeTest("device: native and Deno backends fail alike", () => {
  const dir = Deno.makeTempDirSync({ prefix: "zsend-device-" });
  try {
    const file = `${dir}/f`;
    Deno.writeFileSync(file, new Uint8Array(100));
    for (const native of [true, false]) {
      assertThrows(() => Device.open(`${dir}/missing`, { native }), Deno.errors.NotFound);
      assertThrows(
        () => Device.open(file, { write: true, createNew: true, native }),
        Deno.errors.AlreadyExists,
      );
      assertThrows(() => Device.open(file, { create: true, native }), TypeError);
      using ro = Device.open(file, { native });
      assertEquals(ro.size(), 100);
      assertThrows(() => ro.pwrite(new Uint8Array(1), 0));
      assertThrows(() => ro.pread(new Uint8Array(1), -1), RangeError);
      using t = Device.open(file, { write: true, truncate: true, native });
      assertEquals(t.size(), 0);
      t.pwrite(new Uint8Array(100), 0);
    }
    // A character device: both report what lseek(SEEK_END) says.
    using n0 = Device.open("/dev/null", { native: true });
    using n1 = Device.open("/dev/null", { native: false });
    assertEquals(n0.size(), n1.size());
    assertEquals(n0.pread(new Uint8Array(10), 0), n1.pread(new Uint8Array(10), 0));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
