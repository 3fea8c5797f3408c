/**
 * The bench's measuring machinery: one child process timed (wall clock) with its peak RSS, and
 * the pluggable list of cases that `scripts/bench.ts` runs best-of-N.
 *
 * Wall time is taken by the bench itself (`performance.now()` from spawn to exit), so it has
 * sub-millisecond resolution; peak RSS and CPU time come from GNU time (`%M`, the child's
 * `ru_maxrss`, and `%U + %S`), or, without GNU time, from polling `/proc/PID/status` `VmHWM`
 * (a lower bound: the last moments before exit are not seen; no CPU time then).
 *
 * Every child runs as `sh -c 'exec "$@" <IN >OUT 2>ERR'`, so file redirections (zstreamdump
 * reads stdin) cost the same for zsend and its peers; that shell and exec are part of each
 * time, and the bench measures their cost on `true` and reports it.
 *
 * @module
 */

/** What one run of one case measured. */
export interface Measurement {
  /** Wall seconds, spawn to exit (or the in-process time of an in-process case). */
  seconds: number;
  /** User + system CPU seconds of the child (null when unknown). */
  cpuSeconds: number | null;
  /** Peak resident set of the child in KiB (null when unknown). */
  peakRssKiB: number | null;
  /** The bytes the case processed, for MB/s. */
  bytes: number;
  /**
   * CPU seconds the zfs-fuse daemon used during the run, for peers whose work the daemon does
   * (`zfs receive`, `zfs send`: the `zfs` command only hands it the file descriptor).
   */
  daemonCpuSeconds?: number;
  /**
   * Dirty + Writeback page cache (KiB, /proc/meminfo) right after the run, for rows that
   * should be durable when they return (recv): near zero when they are.
   */
  dirtyAfterKiB?: number;
  /** For breakdown stages: seconds the stage's own loop took inside the child. */
  innerSeconds?: number;
}

/**
 * One row of the bench. Cases of the same `group` run interleaved (run 1 of each, run 2 of
 * each, ...), so a slow moment of the machine does not favour one side.
 */
export interface BenchCase {
  /** Unique, as shown in the table: "zsend verify", "zstreamdump", ... */
  name: string;
  /** Rows compared with each other: "verify", "recv", ... (`--only` takes names or groups). */
  group: string;
  /** The command as the table shows it. */
  command: string;
  /** The case(s) this one is compared with (time and RSS ratios). */
  peer?: string | string[];
  /** Which table: the comparison (default) or the breakdown of zsend's time. */
  table?: "main" | "breakdown";
  /** The case brings its own input: it does not need the bench's stream. */
  ownInput?: boolean;
  /** Why the case cannot run here, or null when it can (checked before setup). */
  skip?: () => Promise<string | null>;
  /** Once, before the first run (untimed): inputs, warm cache, reference data. */
  setup?: () => Promise<void>;
  /** Before each run (untimed): a fresh store, dataset or output directory. */
  before?: () => Promise<void>;
  /** One timed run. */
  run: () => Promise<Measurement>;
}

/** How peak RSS is measured. */
export type RssMethod = "gnu-time" | "poll-vmhwm";

/** A child to time. */
export interface ChildSpec {
  /** The command and its arguments. */
  argv: string[];
  /** File to read as stdin (default /dev/null). */
  stdin?: string;
  /** File to write stdout to (default /dev/null). */
  stdout?: string;
  /** Working directory. */
  cwd?: string;
  /** Variables added to the environment (OpenZFS's `LD_LIBRARY_PATH`). */
  env?: Record<string, string>;
}

/** The child failed: exit status and the end of its stderr. */
export class ChildFailed extends Error {
  /** @param argv the command, @param code its status, @param stderr what it said */
  constructor(argv: string[], code: number, stderr: string) {
    const said = stderr.trim().split("\n").slice(-6).join(" | ");
    super(`\`${argv.join(" ")}\` exited with ${code}${said ? `: ${said}` : ""}`);
    this.name = "ChildFailed";
  }
}

const WRAP = 'in=$1 out=$2 err=$3; shift 3; exec "$@" <"$in" >"$out" 2>"$err"';
export const GNU_TIME = "/usr/bin/time";

/** Children in flight, so that an interrupted bench can end them. */
const running = new Set<Deno.ChildProcess>();

/** Sends SIGTERM to every child the harness started that has not exited yet. */
export function killRunning(): void {
  for (const c of running) {
    try {
      c.kill("SIGTERM");
    } catch { /* already gone */ }
  }
}

/** Times children and measures their peak RSS. */
export class ChildTimer {
  #n = 0;

  /**
   * @param method GNU time or /proc polling
   * @param scratch a directory for the timer's small files
   */
  constructor(readonly method: RssMethod, readonly scratch: string) {}

  /** Runs `spec` once; throws {@linkcode ChildFailed} unless it exits 0. */
  async run(spec: ChildSpec, bytes: number): Promise<Measurement> {
    const n = this.#n++;
    const errFile = `${this.scratch}/child-${n}.err`;
    const timeFile = `${this.scratch}/child-${n}.time`;
    const shArgs = [
      "sh",
      "-c",
      WRAP,
      "sh",
      spec.stdin ?? "/dev/null",
      spec.stdout ?? "/dev/null",
      errFile,
      ...spec.argv,
    ];
    const argv = this.method === "gnu-time"
      ? [GNU_TIME, "-f", "%e %M %U %S", "-o", timeFile, ...shArgs]
      : shArgs;
    const [exe, ...args] = argv;
    const cmd = new Deno.Command(exe!, {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "null",
      ...(spec.cwd ? { cwd: spec.cwd } : {}),
      ...(spec.env ? { env: spec.env } : {}),
    });
    const t0 = performance.now();
    const child = cmd.spawn();
    running.add(child);
    let hwm = 0;
    let status: Deno.CommandStatus;
    try {
      if (this.method === "poll-vmhwm") {
        let done = false;
        const exited = child.status.then((s) => {
          done = true;
          return s;
        });
        while (!done) {
          hwm = Math.max(hwm, readVmHwm(child.pid));
          await Promise.race([exited, delay(2)]);
        }
        status = await exited;
      } else {
        status = await child.status;
      }
    } finally {
      running.delete(child);
    }
    const seconds = (performance.now() - t0) / 1000;
    const stderr = await readText(errFile);
    await Deno.remove(errFile).catch(() => {});
    if (!status.success) throw new ChildFailed(spec.argv, status.code, stderr);
    if (this.method === "poll-vmhwm") {
      return { seconds, cpuSeconds: null, peakRssKiB: hwm > 0 ? hwm : null, bytes };
    }
    const line = (await readText(timeFile)).trim().split("\n").at(-1) ?? "";
    await Deno.remove(timeFile).catch(() => {});
    const [, maxRss, user, sys] = line.split(/\s+/).map(Number);
    return {
      seconds,
      cpuSeconds: Number.isFinite(user) && Number.isFinite(sys) ? user! + sys! : null,
      peakRssKiB: Number.isFinite(maxRss) ? maxRss! : null,
      bytes,
    };
  }
}

/** Dirty + Writeback of the page cache, KiB. */
export function dirtyKiB(): number {
  try {
    const m = Deno.readTextFileSync("/proc/meminfo");
    const get = (k: string) => Number(m.match(new RegExp(`^${k}:\\s*(\\d+)`, "m"))?.[1] ?? 0);
    return get("Dirty") + get("Writeback");
  } catch {
    return 0;
  }
}

function readVmHwm(pid: number): number {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = s.match(/^VmHWM:\s*(\d+)\s*kB/m);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

async function readText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return "";
  }
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What the runs of one case came to. */
export interface CaseResult {
  name: string;
  group: string;
  command: string;
  table: "main" | "breakdown";
  peers: string[];
  status: "ok" | "skipped" | "failed";
  /** Why skipped or failed. */
  reason?: string;
  /** Every run, in order. */
  runs: Measurement[];
  /** The fastest run. */
  best?: Measurement;
  /** Median wall seconds over the runs. */
  medianSeconds?: number;
  /** Largest peak RSS of any run, KiB. */
  peakRssKiB?: number | null;
  /** bytes / best seconds / 10^6. */
  mbPerSecond?: number;
}

/** Progress lines go to stderr, so that stdout carries only the report. */
export function log(line: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`bench: ${line}\n`));
}

function summarize(r: CaseResult): void {
  if (r.runs.length === 0) return;
  const sorted = [...r.runs].sort((a, b) => a.seconds - b.seconds);
  r.best = sorted[0]!;
  const mid = sorted.length >> 1;
  r.medianSeconds = sorted.length % 2
    ? sorted[mid]!.seconds
    : (sorted[mid - 1]!.seconds + sorted[mid]!.seconds) / 2;
  const rss = r.runs.map((m) => m.peakRssKiB).filter((x): x is number => x !== null);
  r.peakRssKiB = rss.length ? Math.max(...rss) : null;
  r.mbPerSecond = r.best.bytes / r.best.seconds / 1e6;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Runs the cases of one group: skip checks and setups in order, then `runs` rounds of one run
 * per live case. A case that throws is marked failed and leaves the rounds.
 */
export async function runGroup(cases: BenchCase[], runs: number): Promise<CaseResult[]> {
  const results = cases.map((c): CaseResult => ({
    name: c.name,
    group: c.group,
    command: c.command,
    table: c.table ?? "main",
    peers: c.peer === undefined ? [] : typeof c.peer === "string" ? [c.peer] : [...c.peer],
    status: "ok",
    runs: [],
  }));
  const live: number[] = [];
  for (const [i, c] of cases.entries()) {
    const r = results[i]!;
    try {
      const why = c.skip ? await c.skip() : null;
      if (why !== null) {
        r.status = "skipped";
        r.reason = why;
        log(`${c.name}: skipped: ${why}`);
        continue;
      }
      if (c.setup) await c.setup();
      live.push(i);
    } catch (e) {
      r.status = "failed";
      r.reason = `setup: ${errorText(e)}`;
      log(`${c.name}: FAILED in setup: ${errorText(e)}`);
    }
  }
  for (let round = 1; round <= runs; round++) {
    for (const i of live) {
      const c = cases[i]!;
      const r = results[i]!;
      if (r.status !== "ok") continue;
      try {
        if (c.before) await c.before();
        const m = await c.run();
        r.runs.push(m);
        log(
          `${c.name}: run ${round}/${runs}: ${m.seconds.toFixed(3)} s` +
            (m.innerSeconds !== undefined ? ` (loop ${m.innerSeconds.toFixed(3)} s)` : "") +
            (m.peakRssKiB !== null ? `, ${(m.peakRssKiB / 1024).toFixed(1)} MiB peak RSS` : ""),
        );
      } catch (e) {
        r.status = "failed";
        r.reason = errorText(e);
        log(`${c.name}: FAILED: ${r.reason}`);
      }
    }
  }
  for (const r of results) {
    if (r.status === "ok") summarize(r);
  }
  return results;
}
