/**
 * The library as JSR would publish it: `deno doc --lint mod.ts` finds nothing to say (every
 * export typed and documented) and `deno publish --dry-run` passes (no slow types, the license,
 * the file list).
 */

import { assert, assertEquals } from "@std/assert";
import { ROOT } from "./_fixtures.ts";

async function deno(args: string[]): Promise<{ code: number; text: string }> {
  const out = await new Deno.Command(Deno.execPath(), { args, cwd: ROOT, stdin: "null" })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

Deno.test("deno doc --lint mod.ts reports nothing", async () => {
  const r = await deno(["doc", "--lint", "mod.ts"]);
  assertEquals(r.code, 0, r.text);
  assert(!/error\[/.test(r.text), r.text);
});

Deno.test("deno publish --dry-run passes, with the license and the native C source", async () => {
  // --allow-dirty: a test run leaves files in the work tree (build/, tests/tmp) that git ignores.
  const r = await deno(["publish", "--dry-run", "--allow-dirty"]);
  assertEquals(r.code, 0, r.text);
  assert(r.text.includes("Dry run complete"), r.text);
  for (const file of ["mod.ts", "io/native/zsend_native.c", "LICENSE"]) {
    assert(r.text.includes(`/${file}`), `${file} is not in the package:\n${r.text}`);
  }
  for (const left of ["tests/", "scripts/", "bench/"]) {
    assert(!r.text.includes(`${ROOT}${left}`), `${left} is in the package`);
  }
});
