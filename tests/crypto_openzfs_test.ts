/**
 * Raw (encrypted) streams of real OpenZFS 2.3 (tests/_openzfs.ts) opened with their key:
 * received sealed, then extracted with `--passphrase-file` or `--key-file` to trees equal to the
 * mounted snapshots (aes-256-gcm and aes-128-ccm with passphrases, aes-256-gcm with a hex key,
 * a raw incremental); a wrong key refused before anything is written; a flipped bit in a sealed
 * block caught, naming the object and offset.
 */

import { assert, assertEquals, assertMatch, assertNotEquals } from "@std/assert";
import { corpusFile, corpusManifest, corpusStream, corpusUnavailable } from "./_openzfs.ts";
import { runZsend, zsendCommand } from "./_run.ts";
import { expectCorpusTree } from "./helpers/corpus_tree.ts";
import { Store } from "../io/store/store.ts";
import { DRR } from "../core/stream/constants.ts";
import { StreamError } from "../core/stream/errors.ts";
import { readRecords, type StreamRecord } from "../core/stream/reader.ts";
import { type MacReport, StreamMacChecker } from "../core/crypto/stream_macs.ts";
import { transcodeRecords } from "../core/transform/transcode.ts";
import { openKeys, parseCryptKeydata } from "../core/crypto/keys.ts";
import { decodeNvlist, nvlistToObject } from "../core/stream/nvlist.ts";
import { listJson } from "./helpers/list_json.ts";

const why = corpusUnavailable();
const S = (name: string) => corpusStream(name).file;
const PASS = () => ["--passphrase-file", corpusFile("passphrase.txt")];
const HEX = () => ["--key-file", corpusFile("enc-hex.key")];

async function ok(args: string[]): Promise<string> {
  const r = await runZsend(args);
  assertEquals(r.code, 0, `zsend ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

async function tmp(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "zsend-crypt-" });
}

const expectTree = expectCorpusTree;

Deno.test({
  name: "raw OpenZFS streams: extract with the key equals the mounted snapshot",
  ignore: why !== null,
  async fn(t) {
    const base = await tmp();
    const store = `${base}/store`;
    try {
      await ok(["recv", store, "oz/gcm", S("enc-gcm-e1.raw")]);
      await ok(["recv", store, "oz/ccm", S("enc-ccm-e1.raw")]);
      await ok(["recv", store, "oz/hex", S("enc-hex-e1.raw")]);
      await t.step(
        "aes-256-gcm, passphrase",
        () => expectTree([...PASS(), store, "oz/gcm@e1"], "enc-gcm@e1"),
      );
      await t.step(
        "aes-128-ccm, passphrase",
        () => expectTree([...PASS(), store, "oz/ccm@e1"], "enc-ccm@e1"),
      );
      await t.step(
        "aes-256-gcm, hex key",
        () => expectTree([...HEX(), store, "oz/hex@e1"], "enc-hex@e1"),
      );
      await t.step("raw incremental e1 -> e2, and e1 stays as it was", async () => {
        await ok(["recv", store, "oz/gcm", S("enc-gcm-e1-e2.raw")]);
        await expectTree([...PASS(), store, "oz/gcm@e2"], "enc-gcm@e2");
        await expectTree([...PASS(), store, "oz/gcm@e1"], "enc-gcm@e1");
      });
      await t.step("extract --stream of the full and the incremental", () =>
        expectTree(
          [...PASS(), "--stream", S("enc-gcm-e1.raw"), S("enc-gcm-e1-e2.raw")],
          "enc-gcm@e2",
        ));
      await t.step("cat and ls with the key", async () => {
        const manifest = await Deno.readTextFile(corpusManifest("enc-gcm@e1"));
        const names = manifest.split("\n").filter((l) => l.startsWith("./") && / f /.test(l))
          .map((l) => l.split(" ")[0]!.slice(1));
        assert(names.length > 0);
        const listing = await ok(["ls", "-R", ...PASS(), store, "oz/gcm@e1"]);
        for (const n of names) assertMatch(listing, new RegExp(n.split("/").pop()!));
        const r = await runZsend(["cat", ...PASS(), store, "oz/gcm@e1", names[0]!]);
        assertEquals(r.code, 0, r.stderr);
        // A manifest line: path, kind, mode, uid, gid, size, links, mtime, sha-256.
        const fields = manifest.split("\n").find((l) => l.startsWith(`.${names[0]} `))!.split(" ");
        assertEquals(String(r.stdoutBytes.length), fields[5]);
        const sha = new Uint8Array(await crypto.subtle.digest("SHA-256", r.stdoutBytes.slice()));
        assertEquals(Array.from(sha, (b) => b.toString(16).padStart(2, "0")).join(""), fields[8]);
      });
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});

Deno.test({
  name: "raw OpenZFS streams: a wrong or missing key is refused before anything is written",
  ignore: why !== null,
  async fn() {
    const base = await tmp();
    const store = `${base}/store`;
    try {
      await ok(["recv", store, "oz/gcm", S("enc-gcm-e1.raw")]);
      await ok(["recv", store, "oz/hex", S("enc-hex-e1.raw")]);
      const wrongPass = `${base}/wrong.txt`;
      await Deno.writeTextFile(wrongPass, "not the passphrase\n");
      const wrongHex = `${base}/wrong.key`;
      await Deno.writeTextFile(wrongHex, "0".repeat(64));
      const cases = [
        { args: ["--passphrase-file", wrongPass, store, "oz/gcm@e1"], re: /passphrase is wrong/ },
        { args: ["--key-file", wrongHex, store, "oz/hex@e1"], re: /key is wrong/ },
        { args: [store, "oz/gcm@e1"], re: /encrypted.*--key-file.*--passphrase-file/ },
      ];
      for (const c of cases) {
        const dir = `${base}/tree`;
        const r = await runZsend(["extract", "-q", ...c.args, dir]);
        assertEquals(r.code, 1, r.stderr);
        assertMatch(r.stderr, c.re);
        const made = await Deno.stat(dir).then(() => true, () => false);
        assertEquals(made, false, `${c.args.join(" ")}: DIR must not be made`);
        const cat = await runZsend(["cat", ...c.args, "/secret.txt"]);
        assertEquals(cat.code, 1);
        assertEquals(cat.stdoutBytes.length, 0);
      }
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});

Deno.test({
  name: "raw OpenZFS streams: a flipped bit in a sealed block is caught, naming object and offset",
  ignore: why !== null,
  async fn() {
    const base = await tmp();
    const store = `${base}/store`;
    try {
      await ok(["recv", store, "oz/gcm", S("enc-gcm-e1.raw")]);
      // The largest file's last block, as the store keeps it (sealed).
      const s = Store.open(store);
      const row = s.db.prepare(
        `SELECT m.object, m.offset, b.pack, b.offset AS at, b.length FROM block_map m
         JOIN blocks b ON b.id = m.block JOIN objects o ON o.snapshot = m.snapshot
         AND o.object = m.object WHERE o.type = 19 ORDER BY b.length DESC, m.object LIMIT 1`,
      ).get() as { object: number; offset: number; pack: number; at: number; length: number };
      const packPath = s.packs.path(row.pack);
      s.close();
      const f = await Deno.open(packPath, { read: true, write: true });
      const byte = new Uint8Array(1);
      const where = row.at + Math.floor(row.length / 2);
      await f.seek(where, Deno.SeekMode.Start);
      await f.read(byte);
      byte[0]! ^= 0x10;
      await f.seek(where, Deno.SeekMode.Start);
      await f.write(byte);
      f.close();
      const dir = `${base}/tree`;
      const r = await runZsend(["extract", "-q", ...PASS(), store, "oz/gcm@e1", dir]);
      assertNotEquals(r.code, 0);
      assertMatch(r.stderr, new RegExp(`offset ${row.offset} of object ${row.object}.*MAC`));
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});

Deno.test({
  name: "raw OpenZFS streams: a changed bonus buffer or dnode field fails its dnode block's MAC",
  ignore: why !== null,
  async fn() {
    const base = await tmp();
    const store = `${base}/store`;
    try {
      await ok(["recv", store, "oz/gcm", S("enc-gcm-e1.raw")]);
      const block0 = /dnode block of objects 0\.\.31 fails its MAC/;
      const edits: [(s: Store, object: number) => void, RegExp][] = [
        [(s, object) => {
          // One bit of the ciphertext of a file's (SA) bonus buffer.
          const r = s.db.prepare("SELECT bonus FROM objects WHERE object = ?").get(object) as {
            bonus: Uint8Array;
          };
          const bonus = r.bonus.slice();
          bonus[9]! ^= 1;
          s.db.prepare("UPDATE objects SET bonus = ? WHERE object = ?").run(bonus, object);
        }, block0],
        // A field that only the additional data covers.
        [
          (s, object) =>
            s.db.prepare("UPDATE objects SET maxblkid = maxblkid + 1 WHERE object = ?").run(object),
          block0,
        ],
        // A dnode block's MAC itself: the objset MAC refuses the snapshot before DIR is made.
        [(s) => {
          const r = s.db.prepare("SELECT meta FROM object_ranges WHERE firstobj = 0").get() as {
            meta: Uint8Array;
          };
          const meta = r.meta.slice();
          meta[60]! ^= 0x80;
          s.db.prepare("UPDATE object_ranges SET meta = ? WHERE firstobj = 0").run(meta);
        }, /objset MAC does not match/],
      ];
      for (const [n, [edit, re]] of edits.entries()) {
        const copy = `${base}/copy${n}`;
        await new Deno.Command("cp", { args: ["-a", store, copy] }).output();
        const s = Store.open(copy);
        const object = (s.db.prepare("SELECT min(object) AS o FROM objects WHERE type = 19")
          .get() as { o: number }).o;
        edit(s, object);
        s.close();
        const r = await runZsend(["extract", "-q", ...PASS(), copy, "oz/gcm@e1", `${base}/t${n}`]);
        assertNotEquals(r.code, 0);
        assertMatch(r.stderr, re);
        if (re.source.includes("objset")) {
          const made = await Deno.stat(`${base}/t${n}`).then(() => true, () => false);
          assertEquals(made, false, "a snapshot whose objset MAC fails writes nothing");
        }
      }
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});

/** The records of a corpus stream, each with its own copy of its payload. */
async function recordsOf(name: string): Promise<StreamRecord[]> {
  const out: StreamRecord[] = [];
  for await (const r of readRecords([await Deno.readFile(S(name))])) {
    out.push({ ...r, payload: r.payload.slice(), header: { ...r.header } as typeof r.header });
  }
  return out;
}

const wrappingKeys = new Map<string, Promise<Uint8Array>>();

async function checkMacs(records: StreamRecord[]): Promise<MacReport> {
  const c = new StreamMacChecker({
    kind: "passphrase",
    text: (await Deno.readTextFile(corpusFile("passphrase.txt"))).replace(/\n$/, ""),
  }, wrappingKeys);
  for (const r of records) await c.check(r);
  return c.report;
}

Deno.test({
  name: "verify --passphrase-file: bit flips of sealed blocks, bonus buffers and MACs are caught",
  ignore: why !== null,
  async fn() {
    for (const name of ["enc-gcm-e1.raw", "enc-ccm-e1.raw"]) {
      const records = await recordsOf(name);
      const good = await checkMacs(records);
      assert(good.blocks > 0 && good.dnodeBlocks > 0 && good.objsets === 1, JSON.stringify(good));
      let flips = 0;
      for (const [i, r] of records.entries()) {
        const h = r.header;
        const targets: { what: string; bytes: Uint8Array; re: RegExp }[] = [];
        if (h.type === DRR.WRITE) {
          targets.push({
            what: "payload",
            bytes: r.payload,
            re: new RegExp(`offset ${h.offset} of object ${h.object} fails its MAC`),
          });
          targets.push({ what: "mac", bytes: h.mac, re: /object .* fails its MAC/ });
        } else if (h.type === DRR.OBJECT && r.payload.length > 0) {
          targets.push({ what: "bonus", bytes: r.payload, re: /dnode block of objects .* MAC/ });
        } else if (h.type === DRR.OBJECT_RANGE) {
          targets.push({ what: "range mac", bytes: h.mac, re: /dnode block of objects .* MAC/ });
        }
        for (const t of targets) {
          // Bits spread over the block: first, last, and some between.
          const n = t.bytes.length * 8;
          for (const bit of [0, n - 1, Math.floor(n / 3), Math.floor((2 * n) / 3) + 5]) {
            const copy = records.slice();
            const bytes = t.bytes.slice();
            bytes[bit >> 3]! ^= 1 << (bit & 7);
            copy[i] = t.what === "payload" || t.what === "bonus"
              ? { ...r, payload: bytes }
              : { ...r, header: { ...h, mac: bytes } as typeof h };
            const err = await checkMacs(copy).then(() => null, (e: Error) => e);
            assert(
              err instanceof StreamError,
              `${name} record ${i} ${t.what} bit ${bit}: not caught`,
            );
            assertMatch(
              (err as StreamError).message,
              t.re,
              `${name} record ${i} ${t.what} bit ${bit}`,
            );
            flips++;
          }
        }
      }
      assert(flips > 50, `${flips} flips`);
    }
  },
});

Deno.test({
  name: "verify --passphrase-file: a whole raw stream with a re-checksummed flip fails, naming it",
  ignore: why !== null,
  async fn() {
    const records = await recordsOf("enc-gcm-e1.raw");
    const i = records.findLastIndex((r) => r.header.type === DRR.WRITE);
    const r = records[i]!;
    const h = r.header as { object: bigint; offset: bigint };
    const payload = r.payload.slice();
    payload[payload.length >> 1]! ^= 4;
    records[i] = { ...r, payload };
    const bytes = new Uint8Array(
      (await Array.fromAsync(transcodeRecords(
        (async function* () {
          yield* records;
        })(),
        true,
      ))).flatMap((c) => [...c]),
    );
    const base = await tmp();
    try {
      await Deno.writeFile(`${base}/s`, bytes);
      const plain = await runZsend(["verify", `${base}/s`]);
      assertEquals(plain.code, 0, "without the key the checksums hold: " + plain.stderr);
      const v = await runZsend(["verify", ...PASS(), `${base}/s`]);
      assertEquals(v.code, 1);
      assertMatch(v.stderr, new RegExp(`offset ${h.offset} of object ${h.object} fails its MAC`));
      const good = await runZsend(["verify", ...PASS(), S("enc-gcm-e1.raw")]);
      assertEquals(good.code, 0, good.stderr);
      assertMatch(good.stdout, /1 objset MAC authenticated/);
      const wrong = await runZsend(["verify", ...HEX(), S("enc-gcm-e1.raw")]);
      assertEquals(wrong.code, 1);
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});

/** Whether `needle` occurs in `hay`. */
function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  if (needle.length === 0) return false;
  const first = needle[0]!;
  for (
    let i = hay.indexOf(first);
    i !== -1 && i + needle.length <= hay.length;
    i = hay.indexOf(first, i + 1)
  ) {
    let j = 1;
    while (j < needle.length && hay[i + j] === needle[j]) j++;
    if (j === needle.length) return true;
  }
  return false;
}

Deno.test({
  name: "raw OpenZFS streams: the store holds no plaintext, no key and no passphrase; list says so",
  ignore: why !== null,
  async fn() {
    const base = await tmp();
    const store = `${base}/store`;
    try {
      await ok(["recv", store, "oz/gcm", S("enc-gcm-e1.raw")]);
      await ok(["recv", store, "oz/gcm", S("enc-gcm-e1-e2.raw")]);
      await ok(["extract", "-q", ...PASS(), store, "oz/gcm@e2", `${base}/tree`]);
      const list = await listJson(store);
      assertEquals(list.length, 3);
      for (const s of list) {
        assertEquals(s.properties.encryption, "aes-256-gcm", s.name);
        assertEquals(s.properties.keystatus, "unavailable", s.name);
        if (s.type !== "snapshot") assertEquals(s.properties.keyformat, "passphrase", s.name);
      }
      // What must not be there: the passphrase, the unwrapped keys, and any 64 bytes of a file.
      const records = await recordsOf("enc-gcm-e1.raw");
      const begin = records[0]!;
      const kd = parseCryptKeydata(nvlistToObject(decodeNvlist(begin.payload)))!;
      const pass = (await Deno.readTextFile(corpusFile("passphrase.txt"))).replace(/\n$/, "");
      const keys = await openKeys(kd, { kind: "passphrase", text: pass });
      const secrets: [string, Uint8Array][] = [
        ["passphrase", new TextEncoder().encode(pass)],
        ["master key", keys.master],
        ["HMAC key", keys.hmac],
      ];
      for await (const e of Deno.readDir(`${base}/tree`)) {
        if (!e.isFile) continue;
        const data = await Deno.readFile(`${base}/tree/${e.name}`);
        if (data.length >= 64) {
          secrets.push([`${e.name} [0, 64)`, data.subarray(0, 64)]);
          const mid = data.length >> 1;
          secrets.push([`${e.name} [${mid}, +64)`, data.subarray(mid, mid + 64)]);
        } else if (data.length >= 6) secrets.push([e.name, data]);
      }
      const files: string[] = [];
      const walk = async (dir: string) => {
        for await (const e of Deno.readDir(dir)) {
          if (e.isDirectory) await walk(`${dir}/${e.name}`);
          else if (e.isFile) files.push(`${dir}/${e.name}`);
        }
      };
      await walk(store);
      assert(files.length >= 2, files.join(" "));
      // The sealed bytes are there, as the stream carried them (the scan can find things).
      const sealed = records.find((r) => r.header.type === DRR.WRITE && r.payload.length >= 64)!;
      let found = false;
      for (const f of files) {
        const bytes = await Deno.readFile(f);
        found ||= contains(bytes, sealed.payload.subarray(0, 64));
        for (const [what, needle] of secrets) {
          assertEquals(contains(bytes, needle), false, `${f} holds the ${what}`);
        }
      }
      assert(found, "the store must hold the sealed blocks");
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});

/** `dump -v` lines that say what the snapshot holds (not FREE records, names or sums). */
function records(dump: string): string[] {
  return dump.split("\n").filter((l) =>
    /^(OBJECT|OBJECT_RANGE|WRITE|SPILL) /.test(l) ||
    /^\t\t(DSL_CRYPTO|portable_mac|mdn_|pbkdf2|keyformat|to_ivset|from_ivset)/.test(l)
  );
}

Deno.test({
  name: "raw send from the store: OpenZFS's records, keys and MACs; received again, it opens",
  ignore: why !== null,
  async fn() {
    const base = await tmp();
    const store = `${base}/store`;
    try {
      await ok(["recv", store, "oz/gcm", S("enc-gcm-e1.raw")]);
      await ok(["recv", store, "oz/gcm", S("enc-gcm-e1-e2.raw")]);
      const sends = [
        { file: "e1", args: ["send", store, "oz/gcm@e1"], orig: "enc-gcm-e1.raw" },
        { file: "e12", args: ["send", "-i", "@e1", store, "oz/gcm@e2"], orig: "enc-gcm-e1-e2.raw" },
      ];
      for (const s of sends) {
        const r = await runZsend(s.args);
        assertEquals(r.code, 0, r.stderr);
        await Deno.writeFile(`${base}/${s.file}`, r.stdoutBytes);
        const dump = await ok(["dump", "-v", `${base}/${s.file}`]);
        const want = records(await Deno.readTextFile(corpusStream(s.orig).dump!));
        assert(want.some((l) => l.startsWith("OBJECT_RANGE")), s.orig);
        assertEquals(records(dump), want, `${s.file} against OpenZFS's ${s.orig}`);
      }
      const full = await ok(["verify", ...PASS(), `${base}/e1`]);
      assertMatch(full, /1 objset MAC authenticated/);
      const again = `${base}/again`;
      await ok(["recv", again, "x/y", `${base}/e1`]);
      await ok(["recv", again, "x/y", `${base}/e12`]);
      await expectTree([...PASS(), again, "x/y@e2"], "enc-gcm@e2");
      // A full send of the snapshot received incrementally, twice over: still the objset MAC.
      const e2 = await runZsend(["send", again, "x/y@e2"]);
      assertEquals(e2.code, 0, e2.stderr);
      const v = await runZsend(["verify", ...PASS(), "-"], { stdin: e2.stdoutBytes });
      assertEquals(v.code, 0, v.stderr);
      assertMatch(v.stdout, /1 objset MAC authenticated/);
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});

Deno.test({
  name: "raw OpenZFS streams: on a terminal the passphrase is asked for, never echoed",
  ignore: why !== null || Deno.build.os !== "linux",
  async fn() {
    const has = await new Deno.Command("script", { args: ["--version"], stdout: "null" }).output()
      .then((r) => r.success, () => false);
    if (!has) return; // no script(1) to make a terminal
    const base = await tmp();
    const store = `${base}/store`;
    try {
      await ok(["recv", store, "oz/gcm", S("enc-gcm-e1.raw")]);
      const pass = (await Deno.readTextFile(corpusFile("passphrase.txt"))).replace(/\n$/, "");
      const cmd = [...zsendCommand(), "ls", store, "oz/gcm@e1", "/"].map((a) => `'${a}'`).join(" ");
      const child = new Deno.Command("script", {
        args: ["-qec", cmd, "/dev/null"],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      // Type only once the prompt is out (the terminal no longer echoes then).
      const w = child.stdin.getWriter();
      const reader = child.stdout.getReader();
      let out = "";
      while (!out.includes("Enter passphrase")) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
      await w.write(new TextEncoder().encode(`${pass}\r`));
      await w.close();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
      const r = await child.status;
      await child.stderr.cancel();
      assertEquals(r.code, 0, out);
      assertMatch(out, /Enter passphrase for 'oz\/gcm@e1'/);
      assertMatch(out, /secret\.txt/);
      assertEquals(out.includes(pass), false, "the passphrase must not be echoed");
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});

Deno.test({
  name: "send --decrypt: a raw snapshot as a plain stream that extracts without the key",
  ignore: why !== null,
  async fn() {
    const base = await tmp();
    const store = `${base}/store`;
    try {
      await ok(["recv", store, "oz/gcm", S("enc-gcm-e1.raw")]);
      await ok(["recv", store, "oz/gcm", S("enc-gcm-e1-e2.raw")]);
      await ok(["recv", store, "oz/ccm", S("enc-ccm-e1.raw")]);
      const plain = `${base}/plain`;
      const sends: [string[], string][] = [
        [["send", "--decrypt", ...PASS(), store, "oz/gcm@e1"], "x/gcm"],
        [["send", "--decrypt", ...PASS(), "-i", "@e1", store, "oz/gcm@e2"], "x/gcm"],
        [["send", "--decrypt", ...PASS(), store, "oz/ccm@e1"], "x/ccm"],
      ];
      for (const [args, target] of sends) {
        const r = await runZsend(args);
        assertEquals(r.code, 0, r.stderr);
        const dump = await runZsend(["dump", "-v", "-"], { stdin: r.stdoutBytes });
        assertEquals(dump.code, 0, dump.stderr);
        assertEquals(/OBJECT_RANGE firstobj|crypt_keydata/.test(dump.stdout), false);
        assertMatch(dump.stdout, /features = 4\n/);
        const v = await runZsend(["recv", plain, target, "-"], { stdin: r.stdoutBytes });
        assertEquals(v.code, 0, v.stderr);
      }
      const list = await ok(["list", "-t", "all", plain]);
      assertEquals(/ENCRYPTION|KEYFORMAT|aes-/.test(list), false, list);
      await expectTree([plain, "x/gcm@e1"], "enc-gcm@e1");
      await expectTree([plain, "x/gcm@e2"], "enc-gcm@e2");
      await expectTree([plain, "x/ccm@e1"], "enc-ccm@e1");
      const wrong = `${base}/wrong.txt`;
      await Deno.writeTextFile(wrong, "not the passphrase");
      const r = await runZsend([
        "send",
        "--decrypt",
        "--passphrase-file",
        wrong,
        store,
        "oz/gcm@e1",
      ]);
      assertEquals(r.code, 1);
      assertEquals(r.stdoutBytes.length, 0, "nothing is sent with a wrong key");
      assertMatch(r.stderr, /passphrase is wrong/);
      const u = await runZsend(["send", ...PASS(), store, "oz/gcm@e1"]);
      assertEquals(u.code, 2, u.stderr);
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});

Deno.test({
  name: "raw OpenZFS streams: an encrypted volume extracts with its key to the volume's image",
  ignore: why !== null,
  async fn() {
    const base = await tmp();
    try {
      const store = `${base}/store`;
      await ok(["recv", store, "oz/encvol", S("encvol-ev1.raw")]);
      const sealed = await runZsend([
        "extract",
        "-q",
        store,
        "oz/encvol@ev1",
        "--image",
        `${base}/x`,
      ]);
      assertNotEquals(sealed.code, 0, "a sealed volume must not be written without its key");
      await Deno.stat(`${base}/x`).then(
        () => assert(false, "no image may be written without the key"),
        () => {},
      );
      await ok(["extract", "-q", ...PASS(), store, "oz/encvol@ev1", "--image", `${base}/img`]);
      const got = await Deno.readFile(`${base}/img`);
      const want = await Deno.readFile(corpusManifest("encvol@ev1"));
      assertEquals(got.length, want.length, "image size");
      assert(got.every((b, i) => b === want[i]), "the image differs from the volume's bytes");
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});
