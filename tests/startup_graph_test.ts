/**
 * What a verb loads before it runs. Every module of the static import graph is read, compiled
 * and kept in memory at start: `verify` once loaded the store (through help's property table
 * and the key flags) and the crypto and resume code, 35 ms and 23 MiB more at start than a bare
 * script, which put it over its 64 MiB goal. These verbs now load such code only when a flag
 * asks for it (`import()`), and this test keeps it so.
 */

import { assert, assertEquals } from "@std/assert";
import { ROOT } from "./_fixtures.ts";

interface InfoModule {
  specifier: string;
  dependencies?: { isDynamic?: boolean; code?: { specifier?: string } }[];
}

/** The modules that `deno info --json` says load statically from `entries`, relative to ROOT. */
async function staticGraph(entries: string[]): Promise<Set<string>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "cli.ts"],
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: InfoModule[] };
  const byName = new Map(info.modules.map((m) => [m.specifier, m]));
  const base = new URL(`file://${ROOT}`).href.replace(/\/?$/, "/");
  const seen = new Set<string>();
  const walk = (spec: string) => {
    if (seen.has(spec)) return;
    seen.add(spec);
    for (const d of byName.get(spec)?.dependencies ?? []) {
      if (!d.isDynamic && d.code?.specifier) walk(d.code.specifier);
    }
  };
  for (const e of entries) walk(base + e);
  return new Set([...seen].map((s) => s.startsWith(base) ? s.slice(base.length) : s));
}

const HEAVY = [/^io\/store\//, /^core\/crypto\//, /^core\/resume\//, /^core\/compress\//];

for (const verb of ["verify", "dump"]) {
  Deno.test(`zsend ${verb} loads neither the store nor crypto, resume or codecs at start`, async () => {
    const graph = await staticGraph(["cli.ts", `cli/${verb}.ts`]);
    assert(graph.has(`cli/${verb}.ts`) && graph.has("core/stream/reader.ts"), [...graph].join());
    const heavy = [...graph].filter((m) => HEAVY.some((h) => h.test(m)));
    assertEquals(heavy, [], `static imports of cli.ts + cli/${verb}.ts`);
  });
}

Deno.test("no verb loads Node's crypto or fs at start (20 ms and 8-11 MiB each)", async () => {
  const verbs = [...Deno.readDirSync(`${ROOT}cli`)]
    .filter((e) => e.isFile && e.name.endsWith(".ts"))
    .map((e) => `cli/${e.name}`);
  assert(verbs.includes("cli/extract.ts") && verbs.includes("cli/recv.ts"), verbs.join());
  for (const verb of verbs) {
    const graph = await staticGraph(["cli.ts", verb]);
    const node = [...graph].filter((m) => /^node:(crypto|fs)$/.test(m));
    assertEquals(node, [], `static imports of cli.ts + ${verb}`);
  }
});

Deno.test("the dispatcher alone loads no verb and no help table", async () => {
  const graph = await staticGraph(["cli.ts"]);
  const verbs = [...graph].filter((m) => m.startsWith("cli/") && m !== "cli/common.ts");
  assertEquals(verbs, []);
});
