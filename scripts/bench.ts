/**
 * The project's benchmark (`deno task bench`): a report, not a timed test. zsend against its
 * peers on a send stream of more than 1 GiB, best of N runs each, in one run on one machine;
 * where zsend verify's time goes; fletcher-4 throughput. Markdown to stdout and to
 * bench/last.md, JSON to bench/last.json (and to stdout with --json).
 *
 *   deno run -A scripts/bench.ts [--runs N] [--only NAME[,NAME]]... [--json] [--list]
 *                                [--stream FILE | --synthetic] [--rss gnu-time|poll]
 *                                [--f4-mib N]
 *
 * The stream is bench/stream-1g.zstream, made once by `scripts/make_bench_stream.sh` (real
 * zfs-fuse; needs root) and reused after; without root or zfs-fuse, a synthetic stream written
 * by zsend's own StreamWriter (bench/synthetic-1g.zstream), labelled so in the report. zsend is
 * build/zsend when `deno task compile` made it, else `deno run -A cli.ts`. Rows of verbs that
 * do not exist yet (`zsend VERB --help` fails) and rows whose peer needs zfs-fuse where it
 * cannot run are listed as skipped with the reason. ZFS peers use a file-backed pool of their
 * own (zsbench<pid>), destroyed at the end, also on failure or interrupt. ZSEND_BIN, when set,
 * names the zsend command instead (as tests/_run.ts takes it); the report says so.
 *
 * Rows are the cases of scripts/bench/cases.ts; `--only` takes case names or group names
 * (`--list` shows them; `fletcher4` is the in-process fletcher-4 table, `hash` the block hash
 * table, `align` the alignment probe: the stream read into an aligned buffer and 16 bytes
 * further on, which shows what a misaligned buffer costs on this CPU).
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { benchFletcher4, type Fletcher4BenchResult } from "./bench_fletcher4.ts";
import { benchBlockHash, type HashBenchResult } from "./bench_hash.ts";
import { alignProbe, type AlignProbeResult } from "./bench/align_probe.ts";
import {
  type CaseResult,
  ChildTimer,
  GNU_TIME,
  killRunning,
  log,
  type Measurement,
  type RssMethod,
  runGroup,
} from "./bench/harness.ts";
import { loadAverage, machineInfo } from "./bench/machine.ts";
import {
  type CryptInput,
  firstToname,
  GIB,
  type StreamInput,
  syntheticStream,
  zfsFuseStream,
} from "./bench/inputs.ts";
import { benchCases, type BenchContext } from "./bench/cases.ts";
import { isRoot, ScratchPool, zfsUnavailable } from "./bench/zfs.ts";
import { type BenchReport, goals, toJson, toMarkdown, withRatios } from "./bench/report.ts";

const USAGE =
  `usage: deno run -A scripts/bench.ts [--runs N] [--only NAME[,NAME]]... [--json] [--list]
                                  [--stream FILE | --synthetic] [--rss gnu-time|poll] [--f4-mib N]`;

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const BENCH = `${ROOT}/bench`;

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** GNU time, installed from Debian's `time` package when missing and root; else polling. */
async function rssMethod(wanted: string | undefined): Promise<RssMethod> {
  if (wanted === "poll") return "poll-vmhwm";
  if (exists(GNU_TIME)) return "gnu-time";
  if (isRoot()) {
    log("GNU time is missing: apt-get install time");
    for (const args of [["install", "-y", "time"], ["update"], ["install", "-y", "time"]]) {
      await new Deno.Command("apt-get", {
        args,
        stdin: "null",
        stdout: "null",
        stderr: "null",
        env: { DEBIAN_FRONTEND: "noninteractive" },
      }).output().catch(() => {});
      if (exists(GNU_TIME)) return "gnu-time";
    }
  }
  if (wanted === "gnu-time") throw new Error(`${GNU_TIME} is missing and could not be installed`);
  log(`${GNU_TIME} is missing: peak RSS by polling /proc/PID/status (a lower bound)`);
  return "poll-vmhwm";
}

async function main(): Promise<number> {
  const flags = parseArgs(Deno.args, {
    string: ["runs", "only", "stream", "rss", "f4-mib"],
    boolean: ["json", "synthetic", "list", "help"],
    collect: ["only"],
    default: { runs: "5", "f4-mib": "256" },
    unknown: (a: string) => {
      throw new TypeError(`unknown argument ${a}\n${USAGE}`);
    },
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const runs = Number(flags.runs);
  const f4Mib = Number(flags["f4-mib"]);
  if (!Number.isInteger(runs) || runs < 1) throw new TypeError("--runs takes a whole number ≥ 1");
  if (!Number.isInteger(f4Mib) || f4Mib < 1) {
    throw new TypeError("--f4-mib takes a whole number ≥ 1");
  }
  if (flags.rss !== undefined && !["gnu-time", "poll"].includes(flags.rss)) {
    throw new TypeError("--rss takes gnu-time or poll");
  }
  const only = (flags.only as string[]).flatMap((o) => o.split(",")).map((o) => o.trim())
    .filter(Boolean);

  // ZSEND_BIN (as tests/_run.ts takes it), else build/zsend, else deno run.
  const compiled = `${ROOT}/build/zsend`;
  const bin = Deno.env.get("ZSEND_BIN");
  const zsend = bin
    ? [bin]
    : exists(compiled)
    ? [compiled]
    : [Deno.execPath(), "run", "-A", `${ROOT}/cli.ts`];
  const zsendKind = bin ? "ZSEND_BIN" : zsend.length === 1 ? "compiled" : "deno run";

  // Untimed housekeeping that must happen however the run ends.
  const cleanups: (() => Promise<void>)[] = [];
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    killRunning();
    for (const fn of cleanups.reverse()) await fn().catch((e) => log(`cleanup: ${e}`));
  };
  const onSignal = (sig: Deno.Signal, code: number) => () => {
    log(`${sig}: cleaning up`);
    cleanup().finally(() => Deno.exit(code));
  };
  const sigint = onSignal("SIGINT", 130);
  const sigterm = onSignal("SIGTERM", 143);
  Deno.addSignalListener("SIGINT", sigint);
  Deno.addSignalListener("SIGTERM", sigterm);

  try {
    await Deno.mkdir(BENCH, { recursive: true });
    const scratch = await Deno.makeTempDir({ dir: BENCH, prefix: "run-" });
    cleanups.push(() => Deno.remove(scratch, { recursive: true }));
    const method = await rssMethod(flags.rss);
    const timer = new ChildTimer(method, scratch);

    const memo = new Map<string, Promise<unknown>>();
    const once = <T>(key: string, fn: () => Promise<T>): Promise<T> => {
      if (!memo.has(key)) memo.set(key, fn());
      return memo.get(key) as Promise<T>;
    };
    const zfsMissing = () => once("zfsMissing", () => zfsUnavailable(ROOT));
    const ctx: BenchContext = {
      root: ROOT,
      benchDir: BENCH,
      scratch,
      stream: { path: "FILE", bytes: 0, origin: "given", madeNow: false, toname: "pool/fs@snap" },
      zsend,
      timer,
      once,
      zfsMissing,
      verbMissing: (args) =>
        once(`verb:${args.join(" ")}`, async () => {
          const [exe, ...pre] = zsend;
          const out = await new Deno.Command(exe!, {
            args: [...pre, ...args, "--help"],
            cwd: ROOT,
            stdin: "null",
            stdout: "null",
            stderr: "null",
          }).output();
          return out.success
            ? null
            : `\`zsend ${args.join(" ")} --help\` exits ${out.code}: the verb is not there yet`;
        }),
      pool: () =>
        once("pool", async () => {
          const why = await zfsMissing();
          if (why !== null) throw new Error(why);
          const pool = await ScratchPool.create(scratch, 4 * GIB);
          cleanups.push(() => pool.destroy());
          return pool;
        }),
    };

    // Which rows: all, or those --only names (by case or group).
    const all = benchCases(ctx);
    if (flags.list) {
      const groups = [...new Set(all.map((c) => c.group)), "fletcher4", "hash", "align"];
      for (const g of groups) {
        console.log(`${g}: ${all.filter((c) => c.group === g).map((c) => c.name).join(", ")}`);
      }
      return 0;
    }
    const known = new Set([
      ...all.flatMap((c) => [c.name, c.group]),
      "fletcher4",
      "hash",
      "align",
    ]);
    const unknown = only.filter((o) => !known.has(o));
    if (unknown.length) {
      throw new TypeError(`--only ${unknown.join(", ")}: not a row or group; --list shows them`);
    }
    const picked = (c: { name: string; group: string }) =>
      only.length === 0 || only.includes(c.name) || only.includes(c.group);
    const wantF4 = only.length === 0 || only.includes("fletcher4");
    const wantHash = only.length === 0 || only.includes("hash");
    const wantAlign = only.length === 0 || only.includes("align");
    const wantCases = all.some(picked);
    const wantStream = all.some((c) => picked(c) && !c.ownInput) || wantAlign;

    const machine = await machineInfo(ROOT, BENCH);
    const notes: string[] = [];

    // The stream.
    let stream: StreamInput = ctx.stream;
    if (wantStream) {
      if (flags.stream) {
        const path = await Deno.realPath(flags.stream);
        stream = {
          path,
          bytes: (await Deno.stat(path)).size,
          origin: "given",
          madeNow: false,
          toname: await firstToname(path),
        };
        if (stream.bytes < GIB) notes.push(`the stream given is smaller than 1 GiB`);
      } else if (flags.synthetic) {
        stream = await syntheticStream(`${BENCH}/synthetic-1g.zstream`, "--synthetic");
      } else {
        const real = `${BENCH}/stream-1g.zstream`;
        const cached = exists(real) && Deno.statSync(real).size >= GIB;
        const why = cached ? null : await zfsMissing();
        if (why === null) {
          try {
            stream = await zfsFuseStream(ROOT, real);
          } catch (e) {
            const msg = `scripts/make_bench_stream.sh failed: ${(e as Error).message}`;
            stream = await syntheticStream(`${BENCH}/synthetic-1g.zstream`, msg);
          }
        } else {
          stream = await syntheticStream(`${BENCH}/synthetic-1g.zstream`, why);
        }
      }
      if (stream.origin === "synthetic") {
        notes.push(
          `The stream is SYNTHETIC (${stream.why}): written by core/stream/writer.ts, not by ZFS; ` +
            "its numbers are not those of a real stream. Run as root with zfs-fuse (without " +
            "--synthetic) for the real one.",
        );
      }
      ctx.stream = stream;
      log(`stream: ${stream.path} (${stream.bytes} bytes, ${stream.origin})`);
    }

    let harness: Measurement | null = null;
    let results: CaseResult[] = [];
    if (wantCases) {
      // The cost of the wrapper itself, included in every time.
      const overhead: Measurement[] = [];
      for (let i = 0; i < runs; i++) overhead.push(await timer.run({ argv: ["true"] }, 0));
      harness = overhead.reduce((a, b) => (b.seconds < a.seconds ? b : a));

      const cases = benchCases(ctx).filter(picked);
      const groups = [...new Set(cases.map((c) => c.group))];
      for (const g of groups) {
        log(`group ${g}`);
        results = results.concat(await runGroup(cases.filter((c) => c.group === g), runs));
      }
      const crypt = memo.has("crypt") ? await memo.get("crypt") : null;
      if (crypt !== null && typeof crypt === "object") {
        const c = crypt as CryptInput;
        notes.push(
          `crypt-extract: ${c.dir.replace(/^.*\/bench\//, "bench/")}: crypt.zstream ` +
            `(\`zfs send -w\` of an aes-256-gcm passphrase-encrypted filesystem, ${c.cryptBytes} ` +
            `bytes) and plain.zstream (\`zfs send\` of an unencrypted filesystem holding the same ` +
            `tree, ${c.plainBytes} bytes), made by OpenZFS 2.3 in a QEMU guest ` +
            `(scripts/bench/make_crypt_stream.sh), ${
              c.madeNow
                ? `made in this run in ${c.makeSeconds?.toFixed(0)} s`
                : "reused from bench/"
            }; each received into a store of its own before the runs.`,
        );
      }
      const zfsWhy = memo.has("zfsMissing") ? await zfsMissing() : null;
      if (zfsWhy !== null) notes.push(`zfs-fuse peers not run: ${zfsWhy}.`);
    }

    let align: AlignProbeResult | null = null;
    if (wantAlign) {
      log(`alignment probe: ${stream.path} read whole per buffer placement, ${runs} runs`);
      align = alignProbe(stream.path, Math.max(runs, 3), scratch);
    }
    let fletcher4: Fletcher4BenchResult | null = null;
    if (wantF4) {
      log(`fletcher-4: ${f4Mib} MiB buffer, best of ${runs}`);
      fletcher4 = benchFletcher4({ bytes: f4Mib << 20, runs });
    }
    let hash: HashBenchResult | null = null;
    if (wantHash) {
      log(`block hash: ${f4Mib} MiB buffer in 128 KiB blocks, best of ${runs}`);
      hash = benchBlockHash({ bytes: f4Mib << 20, runs });
    }

    const daemonRows = results.filter((r) => r.best?.daemonCpuSeconds !== undefined);
    if (daemonRows.length) {
      notes.push(
        `${daemonRows.map((r) => r.name).join(", ")}: zfs-fuse does the work in its daemon, so ` +
          "their peak RSS is only the `zfs` command's (the daemon's memory, ARC included, is " +
          "not counted) and their CPU is the command's + the daemon's during the run (which " +
          "includes anything else the shared daemon did meanwhile).",
      );
    }
    const dirty = results.filter((r) => r.best?.dirtyAfterKiB !== undefined);
    if (dirty.length) {
      notes.push(
        "Each recv and extract row starts after an untimed `sync`. Dirty + Writeback page cache right " +
          "after the best run (/proc/meminfo; near zero means the data was on disk when the " +
          `command returned): ${
            dirty.map((r) => `${r.name} ${(r.best!.dirtyAfterKiB! / 1024).toFixed(1)} MiB`)
              .join(", ")
          }.`,
      );
    }
    machine.loadEnd = loadAverage();
    const busiest = Math.max(
      ...[machine.loadStart, machine.loadEnd].map((l) => Number(l.split(" ")[0])),
    );
    if (busiest > 0.5 * machine.logicalCpus) {
      notes.push(
        `The machine was busy (1-minute load average up to ${busiest} on ${machine.logicalCpus} ` +
          "CPUs): other work competed with the runs, so the times are noisier and slower than " +
          "on an idle machine; best-of-N and interleaving reduce, not remove, that.",
      );
    }
    const rated = withRatios(results);
    const zstreamTool = memo.has("zstream") ? await memo.get("zstream") : null;
    const openzfs = zstreamTool !== null && typeof zstreamTool === "object"
      ? (zstreamTool as { version: string }).version
      : null;
    const report: BenchReport = {
      machine,
      stream: wantStream ? stream : null,
      zsend: { command: zsend, kind: zsendKind },
      runs,
      rssMethod: method,
      harness,
      results: rated,
      align,
      openzfs,
      fletcher4,
      hash,
      goals: wantCases ? goals(rated) : [],
      notes,
    };
    if (report.zsend.kind === "deno run") {
      notes.push(
        "zsend ran as `deno run -A cli.ts` (build/zsend absent; `deno task compile` makes it).",
      );
    }
    const md = toMarkdown(report);
    const json = toJson(report);
    await Deno.writeTextFile(`${BENCH}/last.md`, md);
    await Deno.writeTextFile(`${BENCH}/last.json`, json + "\n");
    console.log(flags.json ? json : md);
    log(`wrote ${BENCH}/last.md and ${BENCH}/last.json`);
    return results.some((r) => r.status === "failed") ? 1 : 0;
  } finally {
    await cleanup();
    Deno.removeSignalListener("SIGINT", sigint);
    Deno.removeSignalListener("SIGTERM", sigterm);
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    console.error(`bench: ${e instanceof Error ? e.message : e}`);
    Deno.exit(2);
  }
}
