/**
 * Every `--json` output of every verb against the written schema (docs/json-schema.json): dump,
 * verify (plain, with a key, --resume-token), token, list, and the error object of each verb,
 * over the zfs-fuse fixtures, OpenZFS's test streams and the OpenZFS 2.3 corpus.
 */

import { assert, assertEquals } from "@std/assert";
import { type Schema, SchemaValidator } from "./helpers/json_schema.ts";
import {
  openzfsDir,
  ROOT,
  skipNote,
  unpackBz2,
  ZFS_FUSE_DIR,
  zfsFuseStreams,
} from "./_fixtures.ts";
import { corpusFile, corpusUnavailable, openzfsCorpus } from "./_openzfs.ts";
import { runZsend } from "./_run.ts";

const SCHEMA = JSON.parse(await Deno.readTextFile(`${ROOT}docs/json-schema.json`));
const validator = new SchemaValidator(SCHEMA);
const FULL = `${ZFS_FUSE_DIR}/fs-s1.full.zstream`;

/** Asserts that a value is valid against `#/$defs/DEF` and against the root (one of all). */
function assertValid(value: unknown, def: string, where: string): void {
  const errors = validator.errors(value, def);
  assertEquals(errors, [], `${where}: ${JSON.stringify(value).slice(0, 400)}`);
  assertEquals(validator.errors(value), [], `${where}: not one of the root's outputs`);
}

/** The lines of NDJSON output. */
function lines(stdout: string): unknown[] {
  return stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
}

/** `dump --json` of a stream: every record, then the summary. */
async function checkDump(file: string, where: string): Promise<number> {
  const r = await runZsend(["dump", "--json", file]);
  assertEquals(r.code, 0, `${where}: ${r.stderr}`);
  const out = lines(r.stdout);
  const summary = out.pop();
  assertValid(summary, "dump_summary", `${where} summary`);
  out.forEach((rec, i) => assertValid(rec, "dump_record", `${where} record ${i}`));
  return out.length;
}

/** `verify --json` of an intact stream, with extra flags (a key). */
async function checkVerify(file: string, where: string, extra: string[] = []): Promise<unknown> {
  const r = await runZsend(["verify", "--json", ...extra, file]);
  assertEquals(r.code, 0, `${where}: ${r.stderr}`);
  const j = JSON.parse(r.stdout);
  assertValid(j, "verify_ok", where);
  return j;
}

Deno.test("the schema: the validator takes every keyword it uses, and refuses outputs of the old shape", () => {
  // Each of these was printed by an earlier zsend; each breaks one convention.
  const old: [unknown, string][] = [
    [{
      ok: true,
      records: 2,
      bytes: 624,
      substreams: 1,
      compound: false,
      recordChecksums: true,
      snapshots: [],
    }, "verify_ok"],
    [{ ok: false, record: 3, type: 3, offset: 936, fault: "f", message: "m" }, ""],
    [{
      index: 1,
      offset: 312,
      substream: 1,
      type: "FREE",
      drr_type: 4,
      fields: {},
      payload_size: 0,
    }, "dump_record"],
    [{
      ok: false,
      error: {
        kind: "stream",
        message: "m",
        index: 1,
        offset: "312",
        type: "WRITE",
        drr_type: 3,
        fault: "f",
        status: 2,
      },
    }, "error"],
    [{
      version: 1,
      checksum: "1",
      packed_length: 8,
      object: "1",
      offset: "0",
      bytes: "0",
      toguid: "19ae76b59316b832",
      toname: "p/fs@a",
    }, "token"],
    [{
      datasets: [{ name: "p/fs", type: "filesystem", properties: { guid: "0x19ae76b59316b83" } }],
    }, "list"],
    [{ datasets: [{ name: "p/fs", type: "filesystem", properties: { refer: 5 } }] }, "list"],
    [{ datasets: [{ name: "p/fs", type: "filesystem", properties: { createTxg: "5" } }] }, "list"],
  ];
  for (const [value, def] of old) {
    assert(validator.errors(value, def || undefined).length > 0, JSON.stringify(value));
  }
  // A record whose fields are another kind's does not pass.
  const free = {
    payloadlen: 0,
    object: "3",
    offset: "0",
    length: "512",
    toguid: "0x0000000000000001",
    record_checksum: ["0", "0", "0", "0"],
  };
  const rec = {
    index: 1,
    offset: "312",
    substream: 1,
    type: "FREE",
    drr_type: 4,
    fields: free,
    payload_size: 0,
  };
  assertEquals(validator.errors(rec, "dump_record"), []);
  assert(validator.errors({ ...rec, type: "REDACT" }, "dump_record").length > 0);
  assert(
    validator.errors({ ...rec, fields: { ...free, lenght: "512" } }, "dump_record").length > 0,
  );
  assert(
    validator.errors({ ...rec, fields: { ...free, toguid: "0x1" } }, "dump_record").length > 0,
  );
  assert(
    validator.errors({ ...rec, nvlist: {} }, "dump_record").length > 0,
    "nvlist only in BEGIN",
  );
  // A keyword the validator does not implement is refused rather than ignored.
  const odd = new SchemaValidator({ $defs: { x: { type: "string", format: "date" } } as Schema });
  let refused = false;
  try {
    odd.errors("a", "x");
  } catch {
    refused = true;
  }
  assert(refused);
});

Deno.test("dump --json and verify --json of every zfs-fuse fixture follow the schema", async () => {
  for (const name of zfsFuseStreams()) {
    const file = `${ZFS_FUSE_DIR}/${name}.zstream`;
    await checkDump(file, name);
    await checkVerify(file, name);
  }
});

Deno.test("dump --json and verify --json of OpenZFS's test streams follow the schema", async () => {
  const dir = openzfsDir();
  if (dir === null) return skipNote("OpenZFS test streams", "no ../shared/fixtures/openzfs");
  for (const entry of Deno.readDirSync(dir)) {
    if (!entry.name.endsWith(".zsend.bz2")) continue;
    const file = await unpackBz2(`${dir}/${entry.name}`);
    await checkDump(file, entry.name);
    // Some of them are damaged on purpose: verify's JSON either way.
    const v = await runZsend(["verify", "--json", file]);
    assertValid(JSON.parse(v.stdout), v.code === 0 ? "verify_ok" : "error", entry.name);
  }
});

const noCorpus = corpusUnavailable();
Deno.test({
  name:
    "OpenZFS 2.3 corpus: dump, verify (with keys), --resume-token and token JSON follow the schema",
  ignore: noCorpus !== null,
  async fn(t) {
    const corpus = openzfsCorpus();
    for (const s of corpus.streams.values()) {
      await t.step(s.name, async () => {
        if (s.dump === null) return; // the cut stream: below
        await checkDump(s.file, s.name);
        await checkVerify(s.file, s.name);
      });
    }
    await t.step("verify with the key: macs", async () => {
      const pass = ["--passphrase-file", corpusFile("passphrase.txt")];
      const j = await checkVerify(corpusFile("enc-gcm-e1.raw.zstream"), "enc-gcm-e1", pass);
      assert((j as { macs: { blocks: number } }).macs.blocks > 0);
      const key = ["--key-file", corpusFile("enc-hex.key")];
      await checkVerify(corpusFile("enc-hex-e1.raw.zstream"), "enc-hex-e1", key);
      // A wrong passphrase: the error object, status 1.
      const wrong = await Deno.makeTempFile();
      try {
        await Deno.writeTextFile(wrong, "not the passphrase\n");
        const r = await runZsend([
          "verify",
          "--json",
          "--passphrase-file",
          wrong,
          corpusFile("enc-gcm-e1.raw.zstream"),
        ]);
        assertEquals(r.code, 1, r.stderr);
        const e = JSON.parse(r.stdout);
        assertValid(e, "error", "a wrong passphrase");
        assert(/passphrase is wrong/.test(e.error.message), e.error.message);
      } finally {
        await Deno.remove(wrong);
      }
    });
    await t.step(
      "verify --resume-token of the cut stream, and token of the kernel's token",
      async () => {
        const r = await runZsend([
          "verify",
          "--resume-token",
          "--json",
          corpusFile("fs-a.cut.zstream"),
        ]);
        assertEquals(r.code, 1, r.stderr);
        const j = JSON.parse(r.stdout);
        assertValid(j, "verify_resume_failure", "fs-a.cut");
        const ours = await runZsend(["token", "--json", j.resume_token]);
        assertValid(JSON.parse(ours.stdout), "token", "zsend's token");
        const kernel = (await Deno.readTextFile(corpusFile("fs-a.resume-token.txt"))).trim();
        const k = await runZsend(["token", "--json", kernel]);
        assertEquals(k.code, 0, k.stderr);
        assertValid(JSON.parse(k.stdout), "token", "the kernel's token");
      },
    );
  },
});
if (noCorpus !== null) skipNote("the OpenZFS 2.3 corpus JSON", noCorpus);

Deno.test("verify --resume-token --json: whole and cut streams follow the schema", async () => {
  const whole = await runZsend(["verify", "--resume-token", "--json", FULL]);
  assertEquals(whole.code, 0, whole.stderr);
  assertValid(JSON.parse(whole.stdout), "verify_ok", "whole");
  const bytes = await Deno.readFile(FULL);
  for (const cut of [100, 400000, 600000]) {
    const r = await runZsend(["verify", "--resume-token", "--json", "--quiet", "-"], {
      stdin: bytes.subarray(0, cut),
    });
    assertEquals([r.code, r.stderr], [1, ""]);
    const j = JSON.parse(r.stdout);
    assertValid(j, "verify_resume_failure", `cut at ${cut}`);
    // zfs-fuse's stream carries no resumable state before its first data (cut at 100: none).
    if (cut === 100) assertEquals([j.resume, j.resume_token], [null, null]);
  }
});

Deno.test("every verb's error with --json is one schema-valid object on stdout, status unchanged", async () => {
  const bytes = await Deno.readFile(FULL);
  const flipped = bytes.slice();
  flipped[312 * 3 + 8]! ^= 1;
  const dir = await Deno.makeTempDir({ prefix: "zsend-json-" });
  try {
    await Deno.writeFile(`${dir}/file`, new Uint8Array(1));
    const cases: { args: string[]; stdin?: Uint8Array; status: number; kind: string }[] = [
      {
        args: ["dump", "--json", "-"],
        stdin: bytes.subarray(0, 400000),
        status: 1,
        kind: "stream",
      },
      { args: ["verify", "--json", "-"], stdin: flipped, status: 1, kind: "stream" },
      { args: ["verify", "--json", `${dir}/missing`], status: 1, kind: "not_found" },
      { args: ["dump", "--json", dir], status: 2, kind: "usage" },
      { args: ["verify", "--json", "--bogus", FULL], status: 2, kind: "usage" },
      { args: ["token", "--json", "1-e6d243981-d0-789c63"], status: 1, kind: "token" },
      { args: ["token", "--json"], status: 2, kind: "usage" },
      { args: ["list", "--json", `${dir}/file`], status: 2, kind: "usage" },
      { args: ["list", "--json", `${dir}/missing`], status: 1, kind: "not_found" },
    ];
    for (const c of cases) {
      const r = await runZsend(c.args, c.stdin === undefined ? {} : { stdin: c.stdin });
      const where = c.args.join(" ");
      assertEquals(r.code, c.status, `${where}: ${r.stderr}`);
      assert(r.stderr.length > 0, `${where}: the message still goes to stderr`);
      const last = lines(r.stdout).at(-1) as { error: { kind: string; status: number } };
      assertValid(last, "error", where);
      assertEquals([last.error.kind, last.error.status], [c.kind, c.status], where);
    }
    // dump of a damaged stream: the records before the fault, then the error.
    const d = await runZsend(["dump", "--json", "-"], { stdin: bytes.subarray(0, 400000) });
    const out = lines(d.stdout);
    const error = out.pop() as { error: { index: number; offset: string } };
    out.forEach((rec, i) => assertValid(rec, "dump_record", `damaged record ${i}`));
    assertEquals(error.error.index, out.length);
    assertEquals(
      BigInt(error.error.offset),
      BigInt((out.at(-1) as { offset: string }).offset) + 312n + 131072n,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("list --json of a store follows the schema", async () => {
  const dir = await Deno.makeTempDir({ prefix: "zsend-json-list-" });
  try {
    const recv = await runZsend(["recv", `${dir}/store`, "pool/fs", FULL]);
    if (recv.code !== 0) throw new Error(recv.stderr);
    const out = await runZsend(["list", "-t", "all", "--json", `${dir}/store`]);
    assertEquals(out.code, 0, out.stderr);
    const listed = JSON.parse(out.stdout);
    assertValid(listed, "list", "list --json");
    const names = (listed.datasets as { name: string }[]).map((d) => d.name);
    assert(names.includes("pool/fs") && names.includes("pool/fs@s1"), names.join(" "));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
