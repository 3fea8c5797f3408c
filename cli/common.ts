/**
 * What every verb shares: usage errors, exit codes, the checksum engine.
 *
 * @module
 */

import { shrunkWhileMapped } from "../io/mapped_source.ts";
import { bestFletcher4 } from "../io/native/fletcher4_native.ts";
import type { Fletcher4Engine } from "../core/checksum/fletcher4.ts";
import { StreamError } from "../core/stream/errors.ts";
import { type JsonObject, streamErrorJson } from "../core/stream/json.ts";

/** Exit status of a usage error, as `verify` documents it. */
export const EXIT_USAGE = 2;

/** A command line that cannot be run: wrong flags, missing arguments. */
export class UsageError extends TypeError {
  /** @param message what is wrong with the command line */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The fastest fletcher-4 this process can use (native when loaded, else TypeScript). */
export function engine(): Fletcher4Engine {
  return bestFletcher4();
}

/** Writes one line to stderr. */
export function warn(line: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
}

/** Takes at most one positional argument, the input stream. */
export function oneInput(positional: (string | number)[], verb: string): string | undefined {
  if (positional.length > 1) throw new UsageError(`${verb} takes one stream: FILE or -`);
  return positional.length === 1 ? String(positional[0]) : undefined;
}

/**
 * For `parseArgs`' `unknown`: an option the verb does not know is a usage error; anything
 * else (`-` for stdin, positional arguments) is kept.
 */
export function rejectUnknown(arg: string): boolean {
  if (arg.startsWith("-") && arg !== "-") throw new UsageError(`unknown option ${arg}`);
  return true;
}

/**
 * What kind of error a `--json` verb reports: a usage error (status 2), a damaged stream, a
 * corrupt resume token, a missing file, a denied permission, any other failure (status 1).
 */
export type ErrorKind =
  | "usage"
  | "stream"
  | "token"
  | "not_found"
  | "permission_denied"
  | "failure";

/** Whether the arguments ask for JSON (`--json` before any `--`). */
export function wantsJson(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === "--") return false;
    if (a === "--json") return true;
  }
  return false;
}

/**
 * The one JSON object a `--json` verb prints on stdout for an error (its one-line message still
 * goes to stderr, and the exit status is the same): `{"ok": false, "error": {kind, status,
 * message, ...}}`, with the record's `index`, byte `offset`, `type`, `drr_type` and `fault` for
 * a damaged stream.
 */
export function errorJson(e: unknown, kind: ErrorKind, status: number): JsonObject {
  const message = e instanceof Error ? e.message : String(e);
  const error: JsonObject = e instanceof StreamError
    ? { ...streamErrorJson(e), status }
    : { kind, message, status };
  return { ok: false, error };
}

/**
 * Prefixes a stream error with the input file that shrank while it was mapped (another process
 * cut it): the zeros read after that are what broke the stream.
 */
export function noteShrunkInput(e: Error): void {
  const path = shrunkWhileMapped();
  if (path !== null) e.message = `${path} shrank while it was read: ${e.message}`;
}
