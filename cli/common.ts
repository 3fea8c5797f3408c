/**
 * What every verb shares: usage errors, exit codes, the checksum engine.
 *
 * @module
 */

import { bestFletcher4 } from "../io/native/fletcher4_native.ts";
import type { Fletcher4Engine } from "../core/checksum/fletcher4.ts";

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
