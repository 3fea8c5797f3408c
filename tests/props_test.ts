/**
 * The properties a `-R` stream's header carries for each filesystem are kept by the store:
 * `list -o` shows them, `send -R` and `send -p` send them back in their headers (zfs-fuse's
 * `-R` fixture, and OpenZFS 2.3's `-R` stream of the corpus where it is made).
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { ZFS_FUSE_DIR } from "./_fixtures.ts";
import { corpusStream, corpusUnavailable } from "./_openzfs.ts";
import { runZsend } from "./_run.ts";
import { readRecords } from "../core/stream/reader.ts";
import { DATA_TYPE, decodeNvlist, nvlistToObject, type NvObject } from "../core/stream/nvlist.ts";

const FIXTURE = `${ZFS_FUSE_DIR}/fs-r1.replicate.zstream`;

async function ok(args: string[]): Promise<Uint8Array> {
  const r = await runZsend(args);
  assertEquals(r.code, 0, `zsend ${args.join(" ")}: ${r.stderr}`);
  return r.stdoutBytes;
}

/** Each filesystem's props in a compound stream's header, by name below the pool. */
async function headerProps(stream: Uint8Array): Promise<Map<string, NvObject>> {
  for await (const r of readRecords([stream])) {
    const header = nvlistToObject(decodeNvlist(r.payload));
    const out = new Map<string, NvObject>();
    for (const fs of Object.values(header["fss"] as NvObject) as NvObject[]) {
      out.set((fs["name"] as string).replace(/^[^/]+\//, ""), fs["props"] as NvObject);
    }
    return out;
  }
  throw new Error("an empty stream");
}

/** `list -H -o name,mountpoint`, below the pool. */
async function mountpoints(store: string): Promise<Map<string, string>> {
  const text = new TextDecoder().decode(await ok(["list", "-H", "-o", "name,mountpoint", store]));
  return new Map(
    text.trim().split("\n").map((l) => l.split("\t")).map(([n, m]) => [
      n!.replace(/^[^/]+\//, ""),
      m!,
    ]),
  );
}

Deno.test("a -R stream's properties: kept, listed, and sent back by send -R and send -p", async () => {
  const dir = await Deno.makeTempDir({ prefix: "zsend-props-" });
  try {
    const fixture = await Deno.readFile(FIXTURE);
    const want = await headerProps(fixture);
    assert([...want.values()].some((p) => typeof p["mountpoint"] === "string"));
    await ok(["recv", "-d", `${dir}/a`, "q", FIXTURE]);
    const listed = await mountpoints(`${dir}/a`);
    for (const [name, props] of want) {
      assertEquals(listed.get(name), (props["mountpoint"] as string | undefined) ?? "-", name);
    }
    // send -R carries them again; received by zsend, the next store lists the same.
    const r = await ok(["send", "-R", `${dir}/a`, "q/fs@r1"]);
    assertEquals(await headerProps(r), want);
    await Deno.writeFile(`${dir}/r.zstream`, r);
    await ok(["recv", "-d", `${dir}/b`, "z", `${dir}/r.zstream`]);
    assertEquals(await mountpoints(`${dir}/b`), listed);
    // send -p of one filesystem: not_recursive, its own entry.
    const p = await ok(["send", "-p", `${dir}/a`, "q/fs@r1"]);
    const one = await headerProps(p);
    assertEquals([...one.keys()], ["fs"]);
    assertEquals(one.get("fs"), want.get("fs"));
    // An index property travels as its number: sent back as it came, not shown as a number.
    const bad = await runZsend(["list", "-o", "name,compression", `${dir}/a`]);
    assertEquals(bad.code, 2);
    assertMatch(bad.stderr, /invalid property 'compression'/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "OpenZFS 2.3's -R stream: its properties are kept and sent back with it",
  ignore: corpusUnavailable() !== null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "zsend-props-oz-" });
    try {
      const file = corpusStream("fs-r.R").file;
      const want = await headerProps(await Deno.readFile(file));
      await ok(["recv", "-d", `${dir}/a`, "q", file]);
      const listed = await mountpoints(`${dir}/a`);
      for (const [name, props] of want) {
        assertEquals(listed.get(name), (props["mountpoint"] as string | undefined) ?? "-", name);
      }
      const top = [...want.keys()][0]!;
      const r = await ok(["send", "-R", `${dir}/a`, `q/${top}@r`]);
      assertEquals(await headerProps(r), want);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("send -R: two datasets received from one stream get distinct fss keys", async () => {
  const dir = await Deno.makeTempDir({ prefix: "zsend-fss-keys-" });
  try {
    const full = `${ZFS_FUSE_DIR}/fs-s1.full.zstream`;
    await ok(["recv", `${dir}/s`, "t/a@x", full]);
    await ok(["recv", `${dir}/s`, "t/a/b@x", full]);
    const r = await ok(["send", "-R", `${dir}/s`, "t/a@x"]);
    for await (const rec of readRecords([r])) {
      const fss = decodeNvlist(rec.payload).pairs.find((p) => p.name === "fss");
      if (fss === undefined || fss.type !== DATA_TYPE.NVLIST) throw new Error("no fss");
      const keys = fss.value.pairs.map((p) => p.name);
      assertEquals(keys.length, 2);
      assertEquals(new Set(keys).size, 2, keys.join(" "));
      break;
    }
    // And zsend takes it back whole.
    await Deno.writeFile(`${dir}/r.zstream`, r);
    await ok(["recv", "-d", `${dir}/b`, "z", `${dir}/r.zstream`]);
    const listed = new TextDecoder().decode(await ok(["list", "-H", "-o", "name", `${dir}/b`]));
    assertEquals(listed.trim().split("\n"), ["z/a", "z/a/b"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
