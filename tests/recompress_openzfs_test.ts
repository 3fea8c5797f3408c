/**
 * recompress against real OpenZFS 2.3 (the corpus of tests/_openzfs.ts): zsend's output and
 * OpenZFS 2.3.2's `zstream recompress` of the same stream hold the same records and the same
 * data in every WRITE, and differ where they must (named below); the real `zfs receive` in the
 * guest takes zsend's outputs, and the trees are the snapshot's.
 */

import { assertEquals } from "@std/assert";
import { decompressBlock } from "../core/compress/mod.ts";
import { DRR } from "../core/stream/constants.ts";
import { readRecords, type StreamRecord } from "../core/stream/reader.ts";
import { featureFlags } from "../core/stream/record.ts";
import { RECOMPRESS_CODECS, recompressedFeatures } from "../core/transform/recompress.ts";
import { ROOT } from "./_fixtures.ts";
import {
  corpusManifest,
  corpusStream,
  corpusUnavailable,
  runGuest,
  vmUnavailable,
} from "./_openzfs.ts";
import { manifestDiff } from "./helpers/tree_manifest.ts";

const why = corpusUnavailable();
const ZSTREAM = ["bash", `${ROOT}scripts/openzfs/tool.sh`, "zstream"];
const ZSEND = [Deno.execPath(), "run", "-A", "--quiet", `${ROOT}cli.ts`];

async function run(cmd: string[], stdinFile: string): Promise<Uint8Array> {
  const f = await Deno.open(stdinFile);
  const child = new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const [r] = await Promise.all([child.output(), f.readable.pipeTo(child.stdin)]);
  assertEquals(r.code, 0, `${cmd.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
  return r.stdout;
}

/** A record with its WRITE payload decompressed and the fields compression changes cleared. */
function logical(r: StreamRecord) {
  const h = r.header;
  if (h.type === DRR.WRITE) {
    return {
      header: { ...h, compressiontype: 0, compressed_size: 0n, record_checksum: null },
      data: decompressBlock(h.compressiontype, r.payload, Number(h.logical_size)),
    };
  }
  if (h.type === DRR.BEGIN) return { header: { ...h, versioninfo: h.versioninfo & 3n } };
  if (h.type === DRR.END) return { header: { ...h, checksum: null, record_checksum: null } };
  return { header: { ...h, record_checksum: null }, data: r.payload };
}

const CASES: [string, string][] = [
  ["comp-gzip-6.c", "lz4"],
  ["comp-gzip-6.c", "off"],
  ["comp-zstd-1.c", "gzip-9"],
  ["comp-lz4.c", "zle"],
  ["comp-off.c", "lzjb"],
];

Deno.test({
  name: "OpenZFS 2.3: zsend recompress holds the data zstream recompress 2.3.2 holds",
  ignore: why !== null,
  async fn() {
    for (const [name, algo] of CASES) {
      const file = corpusStream(name).file;
      const ours = await Array.fromAsync(
        readRecords([await run([...ZSEND, "recompress", algo], file)]),
      );
      const theirs = await Array.fromAsync(
        readRecords([await run([...ZSTREAM, "recompress", algo], file)]),
      );
      // The same records and the same data; what may differ: the compressed bytes (zsend's
      // compressors are its own, so a block may even be stored plain by one and compressed by
      // the other), and so the checksums; the BEGIN feature flags, which 2.3.2 leaves as they
      // were and zsend sets as OpenZFS master does.
      assertEquals(ours.length, theirs.length, `${name} ${algo}`);
      for (let i = 0; i < ours.length; i++) {
        assertEquals(logical(ours[i]!), logical(theirs[i]!), `${name} ${algo}: record ${i}`);
      }
      const [ob, tb] = [ours[0]!.header, theirs[0]!.header];
      if (ob.type !== DRR.BEGIN || tb.type !== DRR.BEGIN) throw new Error("no BEGIN");
      // 2.3.2 leaves the input's BEGIN as it was.
      let input: StreamRecord | undefined;
      for await (const r of readRecords((await Deno.open(file)).readable)) {
        input = r;
        break;
      }
      const ib = input!.header;
      if (ib.type !== DRR.BEGIN) throw new Error("no BEGIN");
      assertEquals(tb.versioninfo, ib.versioninfo);
      assertEquals(
        featureFlags(ob.versioninfo),
        recompressedFeatures(featureFlags(tb.versioninfo), RECOMPRESS_CODECS[algo]!),
        `${name} ${algo}: features`,
      );
    }
  },
});

Deno.test({
  name: "OpenZFS 2.3 guest: zfs receive takes zsend recompress outputs; trees are the snapshots'",
  ignore: why !== null || vmUnavailable() !== null,
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "zsend-recompress-vm-" });
    try {
      const plan: string[] = [];
      const inputs: string[] = [];
      const checks: [string, string][] = [];
      for (const [i, [name, algo]] of CASES.entries()) {
        const out = `${work}/r${i}.zstream`;
        await Deno.writeFile(
          out,
          await run([...ZSEND, "recompress", algo], corpusStream(name).file),
        );
        inputs.push(out);
        plan.push(`recv - r${i} r${i}.zstream`, `manifest r${i}@s1 r${i}`);
        checks.push([`r${i}`, `${name.replace(/\.c$/, "")}@s1`]);
      }
      await Deno.writeTextFile(`${work}/plan.txt`, plan.join("\n") + "\n");
      await Deno.writeTextFile(`${work}/passphrase.txt`, "unused");
      const { out } = await runGuest(`${ROOT}scripts/openzfs/guest/receive.sh`, [
        `${work}/plan.txt`,
        `${work}/passphrase.txt`,
        `${ROOT}scripts/lib_tree.sh`,
        ...inputs,
      ]);
      const results = (await Deno.readTextFile(`${out}/results.txt`)).trim().split("\n");
      assertEquals(results.filter((l) => !l.startsWith("ok ")), [], results.join("\n"));
      for (const [n, key] of checks) {
        const diff = manifestDiff(
          await Deno.readTextFile(corpusManifest(key)),
          await Deno.readTextFile(`${out}/${n}.manifest.txt`),
          10,
        );
        assertEquals(diff, [], `${n} (${key}): ${diff.join("\n")}`);
      }
      await Deno.remove(out, { recursive: true });
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});
