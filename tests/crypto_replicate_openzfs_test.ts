/**
 * Raw `-R` streams of real OpenZFS 2.3 (`zfs send -R -w` of an encryption root with a child
 * that inherits its key, and of an unencrypted parent with an encrypted child; full, `-i` and
 * `-I`): received sealed, each dataset's encryption root listed, extracted with the key to
 * trees equal to the mounted snapshots; zsend's own `send -R` of them writes the header as
 * `zfs send -R -w` does; `send --decrypt` with `-R`, `-i` and `-I` writes plain streams. Then a
 * real `zfs receive` in the QEMU guest takes zsend's raw `-R` streams (`zfs load-key -r` opens
 * them, each dataset keeps its encryption root) and its decrypted ones (no key there), and the
 * mounted trees equal the originals.
 */

import { assertEquals, assertMatch, assertNotEquals } from "@std/assert";
import {
  corpusFile,
  corpusStream,
  corpusUnavailable,
  receiveInGuest,
  vmUnavailable,
} from "./_openzfs.ts";
import { runZsend } from "./_run.ts";
import { expectCorpusTree, guestTreeDiff } from "./helpers/corpus_tree.ts";
import { readRecords } from "../core/stream/reader.ts";
import { decodeNvlist, nvlistToObject, type NvObject } from "../core/stream/nvlist.ts";

const why = corpusUnavailable();
const S = (name: string) => corpusStream(name).file;
const PASS = () => ["--passphrase-file", corpusFile("passphrase.txt")];

async function ok(args: string[], stdin?: Uint8Array): Promise<Uint8Array> {
  const r = await runZsend(args, stdin === undefined ? {} : { stdin });
  assertEquals(r.code, 0, `zsend ${args.join(" ")}: ${r.stderr}`);
  return r.stdoutBytes;
}

/** A store with the corpus's raw -R streams received below `rep` (recv -d). */
async function rawStore(base: string, ...streams: string[]): Promise<string> {
  const store = `${base}/store`;
  for (const s of streams) await ok(["recv", "-d", store, "rep", S(s)]);
  return store;
}

/** The -R header nvlist of a compound stream: what matters of each filesystem, by name. */
async function header(bytes: Uint8Array): Promise<{ raw: boolean; fss: Map<string, unknown> }> {
  for await (const r of readRecords([bytes])) {
    const o = nvlistToObject(decodeNvlist(r.payload));
    const fss = new Map<string, unknown>();
    for (const fs of Object.values(o["fss"] as NvObject) as NvObject[]) {
      // The pool's name is the sender's: compare below it.
      const name = (fs["name"] as string).replace(/^[^/]+\//, "");
      fss.set(name, {
        is_encroot: fs["is_encroot"] === true,
        keylocation: (fs["props"] as NvObject)["keylocation"] ?? null,
        snaps: Object.keys(fs["snaps"] as NvObject).sort(),
      });
    }
    return { raw: o["raw"] === true, fss };
  }
  throw new Error("an empty stream");
}

interface ListedSnapshot {
  name: string;
  encryption: { suite: string; keyformat: string; encryption_root: string } | null;
}

/** Each snapshot's encryption as `list -t all --json` gives it (the key format by dataset). */
async function listed(store: string): Promise<Map<string, ListedSnapshot>> {
  const out = new TextDecoder().decode(await ok(["list", "-t", "all", "--json", store]));
  type Row = { name: string; type: string; properties: Record<string, string | null> };
  const rows = (JSON.parse(out) as { datasets: Row[] }).datasets;
  const datasets = new Map(rows.filter((r) => r.type !== "snapshot").map((r) => [r.name, r]));
  return new Map(
    rows.filter((r) => r.type === "snapshot").map((r) => {
      const p = r.properties;
      const dataset = datasets.get(r.name.slice(0, r.name.indexOf("@")));
      const encryption = p["encryption"] === "off" ? null : {
        suite: p["encryption"]!,
        keyformat: dataset?.properties["keyformat"] ?? "?",
        encryption_root: p["encryptionroot"] ?? "?",
      };
      return [r.name, { name: r.name, encryption }];
    }),
  );
}

Deno.test({
  name: "raw -R OpenZFS streams: received sealed, each dataset's encryption root listed, " +
    "extract with the key equals the mounted snapshots",
  ignore: why !== null,
  async fn(t) {
    const base = await Deno.makeTempDir({ prefix: "zsend-rr-" });
    try {
      const store = await rawStore(base, "encR-r2.Rw", "plainR-r2.Rw");
      const list = await listed(store);
      for (const snap of ["r1", "r2"]) {
        for (const ds of ["encR", "encR/kid"]) {
          const e = list.get(`rep/${ds}@${snap}`)?.encryption;
          assertEquals([e?.suite, e?.keyformat], ["aes-256-gcm", "passphrase"], `${ds}@${snap}`);
          assertEquals(e?.encryption_root, "rep/encR", `${ds}@${snap}: the child inherits`);
        }
        assertEquals(list.get(`rep/plainR@${snap}`)?.encryption, null);
        const sec = list.get(`rep/plainR/sec@${snap}`)?.encryption;
        assertEquals([sec?.suite, sec?.encryption_root], ["aes-128-ccm", "rep/plainR/sec"]);
      }
      const text = new TextDecoder().decode(await ok(["list", "-t", "all", store]));
      assertMatch(text, /^rep\/encR\/kid@r2 .* aes-256-gcm +- +rep\/encR\b/m);
      // Sealed: nothing of the child without the key.
      const r = await runZsend(["extract", "-q", store, "rep/encR/kid@r2", `${base}/x`]);
      assertNotEquals(r.code, 0);
      assertMatch(r.stderr, /encrypted/);
      for (const key of ["encR@r1", "encR@r2", "encR/kid@r1", "encR/kid@r2", "plainR/sec@r2"]) {
        await t.step(key, () => expectCorpusTree([...PASS(), store, `rep/${key}`], key));
      }
      await t.step(
        "plainR@r2, unencrypted",
        () => expectCorpusTree([store, "rep/plainR@r2"], "plainR@r2"),
      );
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});

Deno.test({
  name: "send -R of raw datasets: the header says raw, each encryption root and its " +
    "keylocation as zfs send -R -w does; OpenZFS's -R -w -i and -I go onto it",
  ignore: why !== null,
  async fn(t) {
    const base = await Deno.makeTempDir({ prefix: "zsend-rr-" });
    try {
      const store = await rawStore(base, "encR-r2.Rw", "plainR-r2.Rw");
      for (const [snap, stream] of [["encR@r2", "encR-r2.Rw"], ["plainR@r2", "plainR-r2.Rw"]]) {
        const ours = await ok(["send", "-R", store, `rep/${snap}`]);
        assertEquals(
          await header(ours),
          await header(await Deno.readFile(S(stream!))),
          `the -R header of ${snap}`,
        );
        // Each substream as OpenZFS sent it.
        const v = await runZsend(["verify", ...PASS(), "-"], { stdin: ours });
        assertEquals(v.code, 0, v.stderr);
      }
      // -R of @r1 made by zsend, then OpenZFS's -R -w -i @r1 and -R -w -I @r1 onto it.
      const r1 = await ok(["send", "-R", store, "rep/encR@r1"]);
      for (
        const [stream, snaps] of [["encR-r1-r2.Rwi", ["r2"]], ["encR-r1-r3.RwI", ["r2", "r3"]]]
      ) {
        await t.step(stream as string, async () => {
          const s = `${base}/${stream}`;
          await ok(["recv", "-d", s, "rep", "-"], r1);
          await ok(["recv", "-d", s, "rep", S(stream as string)]);
          const list = await listed(s);
          for (const snap of snaps as string[]) {
            for (const ds of ["encR", "encR/kid"]) {
              const e = list.get(`rep/${ds}@${snap}`)?.encryption;
              assertEquals(e?.encryption_root, "rep/encR", `${ds}@${snap}`);
              await expectCorpusTree([...PASS(), s, `rep/${ds}@${snap}`], `${ds}@${snap}`);
            }
          }
        });
      }
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});

/** A `send --decrypt` case: its flags and snapshot, the base it goes onto, how it is received. */
interface DecryptCase {
  what: string;
  send: string[];
  /** The snapshot (sent with --decrypt, -R when the case has it) received first. */
  base: string | null;
  recv: string[];
  /** Received snapshots and the corpus snapshots they must equal. */
  expect: [string, string][];
}

const R_KEYS = ["encR@r1", "encR@r2", "encR/kid@r1", "encR/kid@r2"];

Deno.test({
  name: "send --decrypt with -R, -i and -I: plain streams of raw snapshots that extract " +
    "without the key",
  ignore: why !== null,
  async fn(t) {
    const base = await Deno.makeTempDir({ prefix: "zsend-rr-" });
    try {
      const store = await rawStore(base, "encR-r2.Rw", "plainR-r2.Rw");
      const cases: DecryptCase[] = [
        {
          what: "-R",
          send: ["-R", "rep/encR@r2"],
          base: null,
          recv: ["-d", "x"],
          expect: R_KEYS.map((k) => [`x/${k}`, k]),
        },
        {
          what: "-R of an unencrypted parent",
          send: ["-R", "rep/plainR@r2"],
          base: null,
          recv: ["-d", "x"],
          expect: [["x/plainR@r2", "plainR@r2"], ["x/plainR/sec@r2", "plainR/sec@r2"]],
        },
        {
          what: "-i",
          send: ["-i", "@r1", "rep/encR/kid@r2"],
          base: "rep/encR/kid@r1",
          recv: ["x/kid"],
          expect: [["x/kid@r1", "encR/kid@r1"], ["x/kid@r2", "encR/kid@r2"]],
        },
        {
          what: "-I",
          send: ["-I", "@r1", "rep/encR@r2"],
          base: "rep/encR@r1",
          recv: ["x/e"],
          expect: [["x/e@r2", "encR@r2"]],
        },
        {
          what: "-R -i",
          send: ["-R", "-i", "@r1", "rep/encR@r2"],
          base: "rep/encR@r1",
          recv: ["-d", "x"],
          expect: [["x/encR@r2", "encR@r2"], ["x/encR/kid@r2", "encR/kid@r2"]],
        },
        {
          what: "-R -I",
          send: ["-R", "-I", "@r1", "rep/encR@r2"],
          base: "rep/encR@r1",
          recv: ["-d", "x"],
          expect: [["x/encR@r2", "encR@r2"], ["x/encR/kid@r2", "encR/kid@r2"]],
        },
      ];
      for (const c of cases) {
        await t.step(c.what, async () => {
          const target = `${base}/${c.what.replace(/[^a-z]/gi, "")}`;
          const decrypt = ["send", "--decrypt", ...PASS()];
          const R = c.send.includes("-R") ? ["-R"] : [];
          if (c.base !== null) {
            await ok(
              ["recv", ...c.recv.slice(0, -1), target, c.recv.at(-1)!, "-"],
              await ok([
                ...decrypt,
                ...R,
                store,
                c.base,
              ]),
            );
          }
          const out = await ok([...decrypt, ...c.send.slice(0, -1), store, c.send.at(-1)!]);
          const dump = new TextDecoder().decode(await ok(["dump", "-v", "-"], out));
          assertEquals(/OBJECT_RANGE firstobj|crypt_keydata|is_encroot/.test(dump), false, c.what);
          await ok(["recv", ...c.recv.slice(0, -1), target, c.recv.at(-1)!, "-"], out);
          const list = new TextDecoder().decode(await ok(["list", target]));
          assertEquals(/ENCRYPTION|sealed/.test(list), false, list);
          for (const [got, key] of c.expect) await expectCorpusTree([target, got], key);
        });
      }
      await t.step("a plain snapshot alone is refused", async () => {
        const r = await runZsend(["send", "--decrypt", ...PASS(), store, "rep/plainR@r2"]);
        assertEquals(r.code, 1);
        assertMatch(r.stderr, /not encrypted/);
        assertEquals(r.stdoutBytes.length, 0);
      });
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});

Deno.test({
  name: "zsend send -R of raw datasets and send --decrypt (-R, -i, -I): real zfs receive takes " +
    "them, zfs load-key -r opens the raw ones, the mounted trees equal the originals",
  ignore: (why ?? vmUnavailable()) !== null,
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "zsend-rr-vm-" });
    const RE = await rawStore(`${work}/re`, "encR-r2.Rw", "plainR-r2.Rw");
    // r1, r2 and r3: zsend's -R of r1, then OpenZFS's -R -w -I @r1 to r3.
    const RI = `${work}/ri`;
    await ok(["recv", "-d", RI, "rep", "-"], await ok(["send", "-R", RE, "rep/encR@r1"]));
    await ok(["recv", "-d", RI, "rep", S("encR-r1-r3.RwI")]);
    const D = ["--decrypt", ...PASS()];
    // file, zsend's arguments, zfs receive's flags and target.
    const cases: [string, string[], string, string][] = [
      ["re-R", ["-R", RE, "rep/encR@r2"], "-d", "re"],
      ["rei-1", ["-R", RE, "rep/encR@r1"], "-d", "rei"],
      ["rei-12", ["-R", "-i", "@r1", RE, "rep/encR@r2"], "-d", "rei"],
      ["rii-1", ["-R", RI, "rep/encR@r1"], "-d", "rii"],
      ["rii-13", ["-R", "-I", "@r1", RI, "rep/encR@r3"], "-d", "rii"],
      ["pr-R", ["-R", RE, "rep/plainR@r2"], "-d", "pr"],
      ["d-R", [...D, "-R", RE, "rep/encR@r2"], "-d", "d"],
      ["di-1", [...D, "-R", RE, "rep/encR@r1"], "-d", "di"],
      ["di-12", [...D, "-R", "-i", "@r1", RE, "rep/encR@r2"], "-d", "di"],
      ["dI-1", [...D, RI, "rep/encR@r1"], "-", "dI/e"],
      ["dI-13", [...D, "-I", "@r1", RI, "rep/encR@r3"], "-", "dI/e"],
      ["dk-1", [...D, RI, "rep/encR/kid@r1"], "-", "dI/k"],
      ["dk-13", [...D, "-i", "@r1", RI, "rep/encR/kid@r3"], "-", "dI/k"],
      ["dpr-R", [...D, "-R", RE, "rep/plainR@r2"], "-d", "dpr"],
    ];
    const checks: [string, string][] = [
      ...R_KEYS.map((k): [string, string] => [`re/${k}`, k]),
      ["rei/encR@r2", "encR@r2"],
      ["rei/encR/kid@r2", "encR/kid@r2"],
      ["rii/encR@r2", "encR@r2"],
      ["rii/encR@r3", "encR@r3"],
      ["rii/encR/kid@r3", "encR/kid@r3"],
      ["pr/plainR@r2", "plainR@r2"],
      ["pr/plainR/sec@r2", "plainR/sec@r2"],
      ...R_KEYS.map((k): [string, string] => [`d/${k}`, k]),
      ["di/encR@r2", "encR@r2"],
      ["di/encR/kid@r2", "encR/kid@r2"],
      ["dI/e@r2", "encR@r2"],
      ["dI/e@r3", "encR@r3"],
      ["dI/k@r3", "encR/kid@r3"],
      ["dpr/plainR/sec@r2", "plainR/sec@r2"],
    ];
    const inputs: string[] = [];
    const plan = ["# made by tests/crypto_replicate_openzfs_test.ts"];
    for (const d of ["re", "rei", "rii", "pr", "d", "di", "dI", "dpr"]) plan.push(`mkdir ${d}`);
    for (const [file, args, flags, target] of cases) {
      const path = `${work}/${file}.zstream`;
      await Deno.writeFile(path, await ok(["send", ...args]));
      inputs.push(path);
      plan.push(`recv ${flags} ${target} ${file}.zstream`);
    }
    for (const d of ["re", "rei", "rii", "pr"]) plan.push(`load-key-r ${d}`);
    plan.push("crypt");
    for (const [guest] of checks) plan.push(`manifest ${guest} ${guest.replace(/[\/@]/g, "-")}`);
    const { out, results } = await receiveInGuest(work, plan, inputs);
    try {
      const problems = results.filter((l) => !l.startsWith("ok "));
      // name -> [encryption, encryptionroot, keystatus], below the guest's pool.
      const crypt = new Map(
        (await Deno.readTextFile(`${out}/crypt.txt`)).trim().split("\n").map((l) => {
          const [name, ...rest] = l.split("\t");
          return [name!.replace(/^zr\//, ""), rest.map((v) => v.replace(/^zr\//, ""))];
        }),
      );
      const wantCrypt: [string, string[]][] = [
        ["re/encR", ["aes-256-gcm", "re/encR", "available"]],
        ["re/encR/kid", ["aes-256-gcm", "re/encR", "available"]],
        ["rii/encR/kid", ["aes-256-gcm", "rii/encR", "available"]],
        ["pr/plainR", ["off", "-", "-"]],
        ["pr/plainR/sec", ["aes-128-ccm", "pr/plainR/sec", "available"]],
        ["d/encR/kid", ["off", "-", "-"]],
        ["dI/e", ["off", "-", "-"]],
      ];
      for (const [name, want] of wantCrypt) {
        if (JSON.stringify(crypt.get(name)) !== JSON.stringify(want)) {
          problems.push(`${name}: ${crypt.get(name)?.join(" ")}, want ${want.join(" ")}`);
        }
      }
      const received = new Set(
        results.filter((l) => l.startsWith("ok manifest ")).map((l) => l.split(" ")[2]),
      );
      for (const [guest, key] of checks) {
        if (!received.has(guest)) continue; // its refusal is among the problems already
        const manifest = `${out}/${guest.replace(/[\/@]/g, "-")}.manifest.txt`;
        problems.push(...await guestTreeDiff(manifest, key, guest));
      }
      assertEquals(
        problems,
        [],
        `the real zfs receive refused or differs:\n${problems.join("\n")}`,
      );
      assertEquals(results.length, plan.length - 1);
    } finally {
      await Deno.remove(work, { recursive: true });
      await Deno.remove(out, { recursive: true });
    }
  },
});
