/**
 * FilePieceOutput (io/piece_output.ts): bytes and ranges of a file written to standard output,
 * by the native library's `zs_write_pieces` (into a file: `writev` from the file mapped; into a
 * pipe: `sendfile`), with `ZSEND_NO_MMAP=1` (`sendfile` everywhere) and without the library
 * (ranges read): every way gives the bytes asked for, in order.
 */

import { assertEquals } from "@std/assert";
import { concat } from "@std/bytes";
import { ROOT } from "./_fixtures.ts";

/** What the child writes: small bytes and ranges in turn, and now and then bytes past 1 MiB. */
const CHILD = (src: string) => `
  import { FilePieceOutput } from "${ROOT}io/piece_output.ts";
  using out = FilePieceOutput.open(${JSON.stringify(src)});
  const big = new Uint8Array(3 << 20).map((_, i) => i % 251);
  for (let i = 0; i < 3000; i++) {
    out.write(new Uint8Array([i & 255, 1, 2]));
    out.writeRange(i * 1000, 777);
    if (i % 1000 === 500) out.write(big);
  }
  out.flush();
`;

function expected(src: Uint8Array): Uint8Array {
  const big = new Uint8Array(3 << 20).map((_, i) => i % 251);
  const parts: Uint8Array[] = [];
  for (let i = 0; i < 3000; i++) {
    parts.push(new Uint8Array([i & 255, 1, 2]), src.subarray(i * 1000, i * 1000 + 777));
    if (i % 1000 === 500) parts.push(big);
  }
  return concat(parts);
}

Deno.test("FilePieceOutput writes bytes and file ranges in order, into a file and a pipe", async () => {
  const dir = await Deno.makeTempDir({ prefix: "zsend-pieces-" });
  try {
    const src = new Uint8Array(3_000_000).map((_, i) => (i * 7 + (i >> 12)) & 255);
    await Deno.writeFile(`${dir}/src`, src);
    await Deno.writeTextFile(`${dir}/child.ts`, CHILD(`${dir}/src`));
    const want = expected(src);
    for (const env of [{}, { ZSEND_NO_MMAP: "1" }, { ZSEND_NO_NATIVE: "1" }]) {
      const what = JSON.stringify(env);
      const script = ["run", "--allow-all", "--quiet", `${dir}/child.ts`];
      // Into a pipe: the test reads it.
      const piped = await new Deno.Command(Deno.execPath(), { args: script, env }).output();
      assertEquals(piped.code, 0, new TextDecoder().decode(piped.stderr));
      assertEquals(piped.stdout, want, `pipe ${what}`);
      // Into a file: the shell redirects.
      const file = await new Deno.Command("sh", {
        args: ["-c", 'exec "$@" > "$OUT"', "sh", Deno.execPath(), ...script],
        env: { ...env, OUT: `${dir}/out` },
      }).output();
      assertEquals(file.code, 0, new TextDecoder().decode(file.stderr));
      assertEquals(await Deno.readFile(`${dir}/out`), want, `file ${what}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
