/**
 * The compiled executable (`deno task compile`): runs the same as `deno run` where it can be
 * built; says plainly that it was skipped, and why, where it cannot (no reachable denort and
 * no DENORT_BIN).
 */

import { assertEquals } from "@std/assert";
import { ROOT, ZFS_FUSE_DIR } from "./_fixtures.ts";
import { runZsend } from "./_run.ts";

const BIN = `${ROOT}build/zsend-test-${Deno.pid}`;

async function build(): Promise<string | null> {
  const out = await new Deno.Command("bash", {
    args: [`${ROOT}scripts/compile.sh`],
    env: { ZSEND_COMPILE_OUT: BIN, DENO: Deno.execPath() },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.success) return null;
  // deno-lint-ignore no-control-regex -- colour codes out of the error text
  const text = new TextDecoder().decode(out.stderr).replace(/\x1b\[[0-9;]*m/g, "");
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const cause = lines.find((l) => /error sending request|dns error|DENORT_BIN|denort/.test(l)) ??
    lines[0] ?? "unknown";
  return `deno compile failed: ${cause.trim()}`;
}

const why = await build();
if (why !== null) {
  console.log(`SKIPPED the compiled zsend binary: ${why}. Set DENORT_BIN to a local denort.`);
}

Deno.test({
  name: "compiled zsend verifies and dumps exactly as deno run does",
  ignore: why !== null,
  async fn() {
    try {
      for (const name of ["fs-s1.full", "fs-r1.replicate"]) {
        const file = `${ZFS_FUSE_DIR}/${name}.zstream`;
        const a = await runZsend(["dump", "-v", file], { cmd: [BIN] });
        const b = await runZsend(["dump", "-v", file]);
        assertEquals(a.code, 0, a.stderr);
        assertEquals(a.stdout, b.stdout);
        const v = await runZsend(["verify", "--json", file], { cmd: [BIN] });
        assertEquals(v.code, 0, v.stderr);
      }
    } finally {
      await Deno.remove(BIN).catch(() => {});
    }
  },
});
