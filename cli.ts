/**
 * `zsend`: ZFS send streams without ZFS. A thin dispatcher: each verb is its own module.
 *
 * @module
 */

import { StreamError } from "./core/stream/errors.ts";
import { isBrokenPipe } from "./io/output.ts";
import {
  errorJson,
  type ErrorKind,
  EXIT_USAGE,
  noteShrunkInput,
  UsageError,
  wantsJson,
  warn,
} from "./cli/common.ts";
import meta from "./deno.json" with { type: "json" };

type Verb = { main(args: string[]): Promise<number> | number; USAGE: string };

const VERBS: Record<string, () => Promise<Verb>> = {
  dump: () => import("./cli/dump.ts"),
  verify: () => import("./cli/verify.ts"),
  recv: () => import("./cli/recv.ts"),
  receive: () => import("./cli/recv.ts"),
  list: () => import("./cli/list.ts"),
  destroy: () => import("./cli/destroy.ts"),
  gc: () => import("./cli/gc.ts"),
  redup: () => import("./cli/redup.ts"),
  image: () => import("./cli/image.ts"),
  extract: () => import("./cli/extract.ts"),
  cat: () => import("./cli/cat.ts"),
  ls: () => import("./cli/ls.ts"),
  diff: () => import("./cli/diff.ts"),
  send: () => import("./cli/send.ts"),
  token: () => import("./cli/token.ts"),
  "drop-record": () => import("./cli/drop_record.ts"),
  decompress: () => import("./cli/decompress.ts"),
  recompress: () => import("./cli/recompress.ts"),
};

const HELP = `zsend: ZFS send streams without ZFS

usage: zsend VERB [options]

  dump [-v] [-vv] [-C] [-d] [--json] [FILE|-]   print every record, as zstream dump does
  verify [--quiet] [--json] [FILE|-]           prove a stream intact (exit 0) or not (exit 1)
  recv [-F] [-d|-e] [-n] [-v] STORE TARGET [FILE|-]
                                               receive a stream into a store (made on first use)
  list [-Hpr] [-o PROPS] [-s|-S PROP] [-t TYPES] [--json] STORE [DATASET]...
                                               the datasets and snapshots in a store, as zfs list
  destroy [-n] [-p] [-r] [-v] STORE DATASET[@SNAP]
                                               destroy snapshots or datasets, as zfs destroy
  gc [-n] [-v] [--threshold PERCENT] STORE     give unused blocks' space back (crash-safe)
  redup [-v] [FILE|-] > PLAIN                  a dedup stream as a plain one (zstream redup)
  image send|recv [options] IMAGE|DEVICE       a raw image or device as a volume stream, and back
  extract STORE DATASET@SNAP DIR               a snapshot as a directory tree
  extract STORE VOL@SNAP --image PATH|DEVICE   a volume snapshot as an image or onto a device
  extract --stream [--snapshot NAME] FILE... DIR
                                               straight from stream files, without a store
  ls [-R] STORE DATASET@SNAP [PATH]            list a directory like ls -l
  cat STORE DATASET@SNAP PATH                  one file to stdout
  diff [-F] [-H] [-t] [-h] STORE DATASET@A DATASET@B|DATASET
                                               what changed between two snapshots (zfs diff)
  send [-i SNAP | -I SNAP] [-D] [-R] [-p] [-L] [-e] [-c] [-v] [-P] [-n] STORE DATASET@SNAP
                                               a stored snapshot as a stream, for zfs receive
  send -t TOKEN STORE | send --saved STORE DATASET
                                               the rest of a cut receive; a partial receive's data
  token [--json] TOKEN                         decode a receive_resume_token (zstream token)
  drop-record [-v] OBJECT,OFFSET... < IN > OUT drop WRITE records (zstream drop_record)
  decompress [-v] OBJECT,OFFSET[,TYPE]... < IN > OUT
                                               decompress WRITE records (zstream decompress)
  recompress [-l LEVEL] ALGO < IN > OUT        recompress every WRITE (zstream recompress)

  help VERB, VERB -h, VERB --help              a verb's usage and every flag (diff: --help)
  --version                                    the version of zsend

The long verbs show progress on a terminal, and as plain lines with --progress (or -v).
'zsend help VERB' tells more.`;

/** The version of this zsend, as deno.json gives it. */
export const VERSION: string = meta.version;

/** Verbs whose `-h` is a flag of their own (zfs diff's "names as they are"). */
const OWN_H = new Set(["diff"]);

/** Whether the arguments ask for help (`-h` or `--help` before any `--`). */
function asksHelp(verb: string, args: string[]): boolean {
  for (const a of args) {
    if (a === "--") return false;
    if (a === "--help" || (a === "-h" && !OWN_H.has(verb))) return true;
  }
  return false;
}

async function verbHelp(verb: string, load: () => Promise<Verb>): Promise<string> {
  const { USAGE } = await load();
  // Loaded only for help: its tables (list's properties) would slow every verb's start.
  const { formatHelp, VERB_HELP } = await import("./cli/help.ts");
  const help = VERB_HELP[verb];
  return help === undefined ? `usage: ${USAGE}` : formatHelp(USAGE, help);
}

/** Runs the command line; returns the exit status. */
export async function run(args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  if (verb === undefined) {
    warn(HELP);
    return EXIT_USAGE;
  }
  if (verb === "--version" || verb === "version") {
    console.log(`zsend ${VERSION} (deno ${Deno.version.deno})`);
    return 0;
  }
  if (verb === "help" || verb === "--help" || verb === "-h") {
    const [about, ...extra] = rest;
    if (about === undefined) {
      console.log(HELP);
      return 0;
    }
    const load = VERBS[about];
    if (load === undefined || extra.length > 0) {
      const why = extra.length > 0 ? "help takes one VERB" : `unknown verb '${about}'`;
      warn(`zsend help: ${why}\n\n${HELP}`);
      return EXIT_USAGE;
    }
    console.log(await verbHelp(about, load));
    return 0;
  }
  const load = VERBS[verb];
  if (load === undefined) {
    warn(`zsend: unknown verb '${verb}'\n\n${HELP}`);
    return EXIT_USAGE;
  }
  if (asksHelp(verb, rest)) {
    console.log(await verbHelp(verb, load));
    return 0;
  }
  const module = await load();
  try {
    return await module.main(rest);
  } catch (e) {
    if (isBrokenPipe(e)) return 0;
    const [kind, status] = classify(e);
    if (kind === "stream") noteShrunkInput(e as StreamError);
    // With --json the error is also one JSON object on stdout, for whoever parses it.
    if (wantsJson(rest)) console.log(JSON.stringify(errorJson(e, kind, status)));
    const message = e instanceof Error ? e.message : String(e);
    if (kind === "usage") warn(`zsend ${verb}: ${message}\nusage: ${module.USAGE}`);
    else warn(`zsend ${verb}: ${message}`);
    // Anything unexpected (an error of the system, a refusal of the receive rules, a fault of
    // zsend's own): one line too, never a stack trace, unless ZSEND_DEBUG asks for it.
    if (kind === "failure" && debugging() && e instanceof Error && e.stack) warn(e.stack);
    return status;
  }
}

/** The kind of an error a verb threw, and the exit status it gets. */
function classify(e: unknown): [ErrorKind, number] {
  if (e instanceof UsageError) return ["usage", EXIT_USAGE];
  if (e instanceof StreamError) return ["stream", 1];
  if (e instanceof Deno.errors.NotFound) return ["not_found", 1];
  if (e instanceof Deno.errors.PermissionDenied) return ["permission_denied", 1];
  // TypeError: a request that cannot be met; RangeError: a value out of range;
  // SyntaxError: damaged data met while reading a snapshot (ZPL, ZAP, nvlist).
  return ["failure", 1];
}

function debugging(): boolean {
  try {
    return (Deno.env.get("ZSEND_DEBUG") ?? "") !== "";
  } catch {
    return false;
  }
}

if (import.meta.main) {
  // A fault outside the verb's own await chain (a background write, a timer) ends the run the
  // same way: one line, status 1.
  const fatal = (e: unknown) => {
    if (isBrokenPipe(e)) Deno.exit(0);
    if (wantsJson(Deno.args.slice(1))) console.log(JSON.stringify(errorJson(e, "failure", 1)));
    warn(`zsend: ${e instanceof Error ? e.message : String(e)}`);
    if (debugging() && e instanceof Error && e.stack) warn(e.stack);
    Deno.exit(1);
  };
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    fatal(event.reason);
  });
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    fatal(event.error);
  });
  Deno.exit(await run(Deno.args));
}
