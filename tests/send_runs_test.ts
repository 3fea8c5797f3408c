/**
 * `zsend send` writes the stored WRITEs whose payloads lie in one pack as runs (one native call
 * each: `writev` of the headers and the pack mapped into a file or a device, `sendfile`s into a
 * pipe). The bytes are those of the record-by-record path, on every output and without the
 * native library; a pack cut short under a send is an error that names it, not a crash.
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { ROOT, ZFS_FUSE_DIR } from "./_fixtures.ts";
import { runZsend, runZsendToFile } from "./_run.ts";
import { xorshift32 } from "./helpers/prng.ts";
import { Store } from "../io/store/store.ts";
import { sendStream, type SendStreamOptions } from "../io/send.ts";
import { isPayloadRun, type PayloadRun } from "../core/stream/writer.ts";
import { concat } from "@std/bytes";

const MiB = 1 << 20;
const F = (n: string) => `${ZFS_FUSE_DIR}/${n}.zstream`;
const tmp = await Deno.makeTempDir({ prefix: "zsend-send-runs-" });

async function ok(args: string[]): Promise<void> {
  const r = await runZsend(args);
  assertEquals(r.code, 0, `zsend ${args.join(" ")}: ${r.stderr}`);
}

/** A volume image: random data with holes, so that runs break and restart. */
async function image(path: string, seed: number): Promise<void> {
  const rand = xorshift32(seed);
  const data = new Uint8Array(6 * MiB);
  const words = new Uint32Array(data.buffer);
  for (let i = 0; i < words.length; i++) words[i] = rand();
  data.fill(0, MiB, MiB + 3 * 16384);
  data.fill(0, 4 * MiB, 5 * MiB);
  await Deno.writeFile(path, data);
}

/** A store with a volume of two snapshots and the zfs-fuse fixture filesystem. */
async function makeStore(): Promise<string> {
  const store = `${tmp}/s`;
  for (const [snap, seed] of [["a", 3], ["b", 5]] as const) {
    const img = `${tmp}/${snap}.img`;
    await image(img, seed);
    const stream = `${tmp}/${snap}.zstream`;
    const from = snap === "b" ? ["--from-store", store, "t/v@a"] : [];
    const out = await runZsendToFile(["image", "send", ...from, "--name", `t/v@${snap}`, img]);
    await Deno.writeFile(stream, out);
    await ok(["recv", store, "t/v", stream]);
  }
  await ok(["recv", store, "bk/fs", F("fs-s1.full")]);
  await ok(["recv", store, "bk/fs", F("fs-s1-s2.incr")]);
  await ok(["recv", store, "bk/fs", F("fs-s2-s3.incr")]);
  return store;
}

/** The stream through the library, every payload read (no references, no runs). */
function byRecord(store: string, name: string, options: SendStreamOptions): Uint8Array {
  const s = Store.open(store);
  try {
    // Payload buffers are reused by the source: each chunk is copied as it comes.
    const parts: Uint8Array[] = [];
    for (const c of sendStream(s, name, { ...options, payloadRefs: false })) {
      parts.push((c as Uint8Array).slice());
    }
    return concat(parts);
  } finally {
    s.close();
  }
}

const store = await makeStore();

Deno.test("zsend send: runs of stored WRITEs give the record-by-record bytes, into a file, a pipe, without the native library", async () => {
  const cases: [string[], string, SendStreamOptions][] = [
    [[], "t/v@b", {}],
    [["-i", "@a"], "t/v@b", { from: "@a" }],
    [["-I", "@a", "-c"], "t/v@b", { from: "@a", intermediate: true, compressed: true }],
    [["-D"], "t/v@b", { dedup: true }],
    [["-L", "-e", "-c"], "bk/fs@s3", { largeBlocks: true, embed: true, compressed: true }],
    [["-I", "@s1"], "bk/fs@s3", { from: "@s1", intermediate: true }],
  ];
  for (const [flags, name, options] of cases) {
    const args = ["send", ...flags, store, name];
    const want = byRecord(store, name, options);
    const what = args.join(" ");
    assertEquals(await runZsendToFile(args), want, `${what} > FILE`);
    const piped = await runZsend(args);
    assertEquals([piped.code, piped.stderr], [0, ""], what);
    assertEquals(piped.stdoutBytes, want, `${what} | ...`);
    const plain = await runZsend(args, { env: { ZSEND_NO_NATIVE: "1" } });
    assertEquals(plain.stdoutBytes, want, `ZSEND_NO_NATIVE=1 ${what}`);
  }
  // The volume's data went out in runs of many records (the test would prove nothing else).
  const s = Store.open(store);
  try {
    const runs = [...sendStream(s, "t/v@a", { payloadRefs: true })].filter(
      isPayloadRun,
    ) as PayloadRun[];
    assert(runs.length > 1 && runs.some((r) => r.offsets.length > 64), `runs: ${runs.length}`);
  } finally {
    s.close();
  }
});

Deno.test("zsend send: a pack cut short under a send is an error naming it, into a file, a pipe, and without the native library", async () => {
  const copy = `${tmp}/cut`;
  const code = `
    import { Store } from "${ROOT}io/store/store.ts";
    import { sendStream } from "${ROOT}io/send.ts";
    import { writeStreamOutput } from "${ROOT}io/stream_output.ts";
    const store = Store.open("${copy}");
    const chunks = sendStream(store, "t/v@b", { payloadRefs: true });
    for (const e of Deno.readDirSync("${copy}/packs")) {
      const p = "${copy}/packs/" + e.name;
      Deno.truncateSync(p, ${MiB});
    }
    writeStreamOutput(chunks);`;
  for (
    const [stdout, env] of [
      ["null", {}],
      ["piped", {}],
      ["piped", { ZSEND_NO_NATIVE: "1" }],
    ] as const
  ) {
    await Deno.remove(copy, { recursive: true }).catch(() => {});
    await new Deno.Command("cp", { args: ["-a", store, copy] }).output();
    const cut = await new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      env,
      stdout,
      stderr: "piped",
    }).output();
    assertEquals(cut.code, 1, `${stdout} ${JSON.stringify(env)}`);
    assertMatch(new TextDecoder().decode(cut.stderr), /packs\/\d+\.pack ends before byte \d+/);
  }
});
