/**
 * Runs the zsend command line as a user would, in a child process.
 *
 * @module
 */

import { ROOT } from "./_fixtures.ts";

/** What a run printed and how it ended. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  stdoutBytes: Uint8Array;
}

/** The command that starts zsend: `deno run` of cli.ts (or the binary in ZSEND_BIN). */
export function zsendCommand(): string[] {
  const bin = Deno.env.get("ZSEND_BIN");
  if (bin) return [bin];
  return [Deno.execPath(), "run", "--allow-all", "--quiet", `${ROOT}cli.ts`];
}

/** Runs `zsend ARGS`, with `stdin` piped in when given. */
export async function runZsend(
  args: string[],
  options: { stdin?: Uint8Array | string; cmd?: string[]; env?: Record<string, string> } = {},
): Promise<RunResult> {
  const [exe, ...pre] = options.cmd ?? zsendCommand();
  const child = new Deno.Command(exe!, {
    args: [...pre, ...args],
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    ...(options.env ? { env: options.env } : {}),
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    const bytes = typeof options.stdin === "string"
      ? new TextEncoder().encode(options.stdin)
      : options.stdin;
    await w.write(bytes).catch(() => {});
    await w.close().catch(() => {});
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    stdoutBytes: out.stdout,
  };
}

/** Runs `zsend ARGS` as {@linkcode runZsend} does; the run must succeed (status 0). */
export async function runZsendOk(
  args: string[],
  options: { stdin?: Uint8Array | string; env?: Record<string, string> } = {},
): Promise<RunResult> {
  const r = await runZsend(args, options);
  if (r.code !== 0) throw new Error(`zsend ${args.join(" ")}: status ${r.code}: ${r.stderr}`);
  return r;
}

/**
 * Runs `zsend ARGS > FILE` through a shell, so that its stdout is a regular file rather than a
 * pipe; returns what it wrote (the run must succeed).
 */
export async function runZsendToFile(
  args: string[],
  env: Record<string, string> = {},
): Promise<Uint8Array> {
  const file = await Deno.makeTempFile({ prefix: "zsend-out-" });
  try {
    const [exe, ...pre] = zsendCommand();
    const out = await new Deno.Command("sh", {
      args: ["-c", 'out="$1"; shift; exec "$@" > "$out"', "sh", file, exe!, ...pre, ...args],
      env,
      stdin: "null",
      stderr: "piped",
    }).output();
    if (out.code !== 0) {
      throw new Error(`zsend ${args.join(" ")} > FILE: ${new TextDecoder().decode(out.stderr)}`);
    }
    return await Deno.readFile(file);
  } finally {
    await Deno.remove(file);
  }
}

/**
 * Starts `zsend ARGS`, kills it with SIGKILL after `ms` (as a power cut or `kill -9` would),
 * and waits for it; returns its exit status (0 when it ended before the kill).
 */
export async function runZsendKilledAfter(args: string[], ms: number): Promise<number> {
  const [exe, ...pre] = zsendCommand();
  const child = new Deno.Command(exe!, {
    args: [...pre, ...args],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await new Promise((r) => setTimeout(r, ms));
  try {
    child.kill("SIGKILL");
  } catch { /* already done */ }
  return (await child.status).code;
}

/** `cp -a FROM TO`: a copy of a store to run a destructive test on. */
export async function copyDir(from: string, to: string): Promise<void> {
  const r = await new Deno.Command("cp", { args: ["-a", from, to] }).output();
  if (!r.success) throw new Error(`cp -a ${from} ${to} failed`);
}
