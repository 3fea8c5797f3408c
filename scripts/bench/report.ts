/**
 * The bench's report: markdown for people, JSON for programs. Every number in it was measured
 * in the run that wrote it.
 *
 * @module
 */

import type { CaseResult, Measurement, RssMethod } from "./harness.ts";
import type { MachineInfo } from "./machine.ts";
import type { StreamInput } from "./inputs.ts";
import type { Fletcher4BenchResult } from "../bench_fletcher4.ts";
import type { HashBenchResult } from "../bench_hash.ts";
import type { AlignProbeResult } from "./align_probe.ts";

/** A zsend row against one of its peers. */
export interface Ratio {
  peer: string;
  /** zsend's best time / the peer's best time (> 1: zsend is slower). */
  time: number;
  /** zsend's peak RSS / the peer's (null when either is unknown). */
  rss: number | null;
}

/** A target the bench checks. */
export interface Goal {
  goal: string;
  met: boolean | null;
  detail: string;
}

/** Everything a run found. */
export interface BenchReport {
  machine: MachineInfo;
  /** Null when only the in-process fletcher-4 table ran. */
  stream: StreamInput | null;
  zsend: { command: string[]; kind: "compiled" | "deno run" | "ZSEND_BIN" };
  runs: number;
  rssMethod: RssMethod;
  /** `true` through the same wrapper as every child: the cost included in each time. */
  harness: Measurement | null;
  results: (CaseResult & { ratios: Ratio[] })[];
  /** The alignment probe (null when not run). */
  align: AlignProbeResult | null;
  /** The OpenZFS version whose `zstream` ran as a peer (null when none did). */
  openzfs: string | null;
  fletcher4: Fletcher4BenchResult | null;
  /** The store's content hash in process (null when not run). */
  hash: HashBenchResult | null;
  goals: Goal[];
  /** Things the reader should know (peers unavailable, synthetic stream, ...). */
  notes: string[];
}

/** Adds the ratios of each row to its peers. */
export function withRatios(results: CaseResult[]): (CaseResult & { ratios: Ratio[] })[] {
  const byName = new Map(results.map((r) => [r.name, r]));
  return results.map((r) => {
    const ratios: Ratio[] = [];
    for (const p of r.peers) {
      const peer = byName.get(p);
      if (r.best === undefined || peer?.best === undefined) continue;
      const a = r.peakRssKiB ?? null;
      const b = peer.peakRssKiB ?? null;
      ratios.push({
        peer: p,
        time: r.best.seconds / peer.best.seconds,
        rss: a !== null && b !== null && b > 0 ? a / b : null,
      });
    }
    return { ...r, ratios };
  });
}

/**
 * The goals the issues set, each a ratio of a zsend row to a peer row of the same run (at most
 * `max` times the peer's time), or a peak RSS limit.
 */
const GOALS: (
  | { goal: string; row: string; peer: string; max: number }
  | { goal: string; row: string; rssMiB: number }
)[] = [
  {
    goal: "zsend verify no slower than OpenZFS zstream dump",
    row: "zsend verify",
    peer: "zstream dump",
    max: 1,
  },
  { goal: "zsend verify under 64 MiB peak RSS", row: "zsend verify", rssMiB: 64 },
  {
    goal: "zsend dump -v no slower than OpenZFS zstream dump -v",
    row: "zsend dump -v",
    peer: "zstream dump -v",
    max: 1,
  },
  {
    goal: "zsend recv within 1.25× of the durable write of the same bytes",
    row: "zsend recv",
    peer: "durable floor",
    max: 1.25,
  },
  { goal: "zsend recv faster than zfs receive", row: "zsend recv", peer: "zfs receive", max: 1 },
  { goal: "zsend recv under 256 MiB peak RSS", row: "zsend recv", rssMiB: 256 },
  { goal: "zsend extract no slower than cp -a", row: "zsend extract", peer: "cp -a", max: 1 },
  { goal: "zsend extract under 256 MiB peak RSS", row: "zsend extract", rssMiB: 256 },
  {
    goal: "zsend extract of a raw aes-256-gcm snapshot with its key within 1.5× of the same " +
      "data unencrypted",
    row: "zsend extract, encrypted",
    peer: "zsend extract, unencrypted",
    max: 1.5,
  },
  {
    goal: "zsend send at least 2× faster than zfs send",
    row: "zsend send",
    peer: "zfs send",
    max: 0.5,
  },
  {
    goal: "zsend send into a pipe at least 2× faster than zfs send into a pipe",
    row: "zsend send, piped",
    peer: "zfs send, piped",
    max: 0.5,
  },
  { goal: "zsend image send within 1.5× of cat", row: "zsend image send", peer: "cat", max: 1.5 },
  {
    goal: "zsend redup no slower than OpenZFS zstream redup",
    row: "zsend redup",
    peer: "zstream redup",
    max: 1,
  },
];

/** Each goal of {@linkcode GOALS}: met, not met, or not measured in this run. */
export function goals(results: (CaseResult & { ratios: Ratio[] })[]): Goal[] {
  return GOALS.map((g) => {
    const r = results.find((x) => x.name === g.row);
    if ("rssMiB" in g) {
      const rss = r?.peakRssKiB ?? null;
      return {
        goal: g.goal,
        met: rss === null ? null : rss < g.rssMiB * 1024,
        detail: rss === null ? "not measured" : `${(rss / 1024).toFixed(1)} MiB`,
      };
    }
    const peer = results.find((x) => x.name === g.peer);
    const ratio = r?.ratios.find((x) => x.peer === g.peer);
    return {
      goal: g.goal,
      met: ratio ? ratio.time <= g.max : null,
      detail: ratio && r?.best && peer?.best
        ? `${fmtS(r.best.seconds)} s vs ${fmtS(peer.best.seconds)} s: ${
          ratio.time.toFixed(2)
        }× its time`
        : "not measured",
    };
  });
}

function fmtS(s: number): string {
  return s >= 10 ? s.toFixed(1) : s >= 1 ? s.toFixed(2) : s.toFixed(3);
}

function mib(kib: number | null | undefined): string {
  return kib === null || kib === undefined ? "?" : (kib / 1024).toFixed(1);
}

function gib(bytes: number | null): string {
  return bytes === null ? "?" : `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

function cell(s: string): string {
  return s.replaceAll("|", "\\|");
}

/** The report as markdown. */
export function toMarkdown(r: BenchReport): string {
  const m = r.machine;
  const L: string[] = [];
  L.push(`# zsend bench, ${m.date}`, "");
  L.push("| machine | |", "|---|---|");
  L.push(`| CPU | ${m.cpu}, ${m.logicalCpus} logical CPUs |`);
  L.push(`| memory | ${gib(m.memTotalBytes)} (${gib(m.memAvailableBytes)} available at start) |`);
  L.push(`| kernel | ${m.kernel} |`);
  L.push(
    `| disk (bench/) | ${
      m.disk
        ? `${gib(m.disk.freeBytes)} free of ${
          gib(m.disk.totalBytes)
        }, ${m.disk.fstype} on ${m.disk.mount}`
        : "unknown"
    } |`,
  );
  L.push(`| load average | ${m.loadStart} at start, ${m.loadEnd ?? "?"} at end |`);
  L.push(`| deno | ${m.deno} (V8 ${m.v8}) |`);
  const git = m.git
    ? `git ${m.git.head}${
      m.git.changedPaths ? ` + ${m.git.changedPaths} changed tracked paths` : ""
    }`
    : "no git";
  L.push(
    `| zsend | ${
      r.zsend.kind === "compiled"
        ? "compiled binary"
        : r.zsend.kind === "ZSEND_BIN"
        ? "**ZSEND_BIN**"
        : "not compiled:"
    } \`${r.zsend.command.map((a) => a.replace(/^.*\//, "")).join(" ")}\`, ${git} |`,
  );
  L.push(
    `| peers | zfs-fuse ${m.zfsFuse ?? "not installed"} (zstreamdump, zfs); OpenZFS ${
      r.openzfs ?? "not run"
    } userland (zstream dump, zstream redup) |`,
  );
  const s = r.stream;
  if (s) {
    L.push(
      `| stream | ${s.path.replace(/^.*\/bench\//, "bench/")}: ${s.bytes} bytes, ${
        s.origin === "zfs-fuse"
          ? "made by real zfs-fuse (scripts/make_bench_stream.sh)"
          : s.origin === "synthetic"
          ? `**SYNTHETIC**, made by zsend's own StreamWriter (${s.why})`
          : "given with --stream"
      }, ${
        s.madeNow ? `made in this run in ${s.makeSeconds?.toFixed(1)} s` : "reused from bench/"
      } |`,
    );
  }
  L.push(
    `| method | best of ${r.runs} runs per row, the rows of a group interleaved, warm page ` +
      `cache (each input dropped from the cache, then read once with one sequential read, so ` +
      `that its cache is as that leaves it: large folios on a recent kernel); wall time from spawn to exit, taken by the bench; peak RSS is the largest over ` +
      `the runs, ${
        r.rssMethod === "gnu-time"
          ? "GNU time %M (ru_maxrss); CPU = %U + %S"
          : "polled from /proc/PID/status VmHWM (a lower bound); no CPU time"
      }; MB = 10^6 bytes |`,
  );
  if (r.harness) {
    L.push(
      `| harness | \`true\` through the same wrapper (${
        r.rssMethod === "gnu-time" ? "/usr/bin/time + " : ""
      }sh + exec): ${(r.harness.seconds * 1000).toFixed(1)} ms, ${
        mib(r.harness.peakRssKiB)
      } MiB; included in every time below |`,
    );
  }
  L.push("");

  const main = r.results.filter((x) => x.table === "main");
  L.push("## zsend and its peers", "");
  L.push(
    "| group | row | command | best s | median s | MB/s | CPU s | peak RSS MiB | time vs peer | RSS vs peer |",
    "|---|---|---|--:|--:|--:|--:|--:|---|---|",
  );
  for (const x of main) {
    if (x.status !== "ok" || !x.best) continue;
    L.push(
      `| ${x.group} | ${x.name} | \`${cell(x.command)}\` | ${fmtS(x.best.seconds)} | ${
        fmtS(x.medianSeconds!)
      } | ${x.best.bytes > 0 ? x.mbPerSecond!.toFixed(0) : ""} | ${
        (x.best.cpuSeconds === null ? "?" : x.best.cpuSeconds.toFixed(2)) +
        (x.best.daemonCpuSeconds === undefined
          ? ""
          : ` + ${x.best.daemonCpuSeconds.toFixed(2)} daemon`)
      } | ${mib(x.peakRssKiB)} | ${
        x.ratios.map((q) => `${q.time.toFixed(2)}× ${q.peer}`).join("; ")
      } | ${
        x.ratios.map((q) => (q.rss === null ? "?" : `${q.rss.toFixed(1)}× ${q.peer}`)).join("; ")
      } |`,
    );
  }
  L.push("");
  const missing = r.results.filter((x) => x.status !== "ok");
  if (missing.length) {
    L.push("Not measured:", "");
    for (const x of missing) L.push(`- ${x.name} (${x.group}): ${x.status}: ${x.reason}`);
    L.push("");
  }

  L.push("## Goals", "");
  for (const g of r.goals) {
    L.push(
      `- ${g.goal}: **${
        g.met === null ? "not measured" : g.met ? "met" : "NOT met"
      }** (${g.detail})`,
    );
  }
  L.push("");

  const bd = r.results.filter((x) => x.table === "breakdown" && x.status === "ok" && x.best);
  if (bd.length) {
    L.push(
      "## Where zsend verify's time goes",
      "",
      "Each stage of verify's read path in a child of its own (`scripts/bench/breakdown.ts`, " +
        "`deno run`); each stage adds to the one before. *loop* is the stage's own loop, " +
        "timed inside the child (best run); *child* is spawn to exit.",
      "",
      "| stage | what | loop s | adds s | loop MB/s | child s | peak RSS MiB |",
      "|---|---|--:|--:|--:|--:|--:|",
    );
    let prev: number | null = null;
    for (const x of bd) {
      const loopRuns = x.runs.map((q) => q.innerSeconds).filter((q): q is number =>
        q !== undefined
      );
      const loop = loopRuns.length ? Math.min(...loopRuns) : null;
      const alternative = ["stage read-fresh", "stage read-ahead", "stage mapped"].includes(x.name);
      const adds = loop !== null && prev !== null && !alternative ? (loop - prev).toFixed(3) : "";
      L.push(
        `| ${x.name.replace(/^stage /, "")} | ${cell(x.command)} | ${
          loop === null ? "" : loop.toFixed(3)
        } | ${adds} | ${loop && x.best!.bytes ? (x.best!.bytes / loop / 1e6).toFixed(0) : ""} | ${
          fmtS(x.best!.seconds)
        } | ${mib(x.peakRssKiB)} |`,
      );
      if (loop !== null && x.name !== "stage noop") prev = loop;
    }
    L.push(
      "",
      "(*adds* for read-fresh, read-ahead and mapped is left out: each replaces read-reuse " +
        "rather than adding to it; read-fresh − read-reuse is the cost of a fresh buffer per " +
        "chunk, read-ahead − read-reuse what reading ahead on a native thread gains or costs, " +
        "mapped − read-reuse what mapping the file instead of copying it gains.)",
      "",
    );
  }

  const a = r.align;
  if (a) {
    const aligned = a.rows.find((x) => x.op === "read" && x.pageOffset === 0);
    const wAligned = a.rows.find((x) => x.op === "write" && x.pageOffset === 0);
    const pAligned = a.rows.find((x) => x.op === "pipe" && x.pageOffset === 0);
    L.push(
      `## Alignment probe (${a.chunkBytes / 2 ** 20} MiB buffer, best and median of ${a.runs})`,
      "",
      "What a misaligned I/O buffer costs on this CPU: the stream read whole with `readSync` " +
        "into one buffer at each placement, and 256 MiB written with `writeSync` to a file " +
        "and into a pipe that `cat` empties " +
        "(`scripts/bench/align_probe.ts`). zsend's I/O buffers are page-aligned " +
        "(`io/aligned_buffer.ts`): by their address with `--allow-ffi`, else as the bytes of a " +
        "`WebAssembly.Memory` (64 KiB or more; smaller ones are then plain).",
      "",
      "| op | buffer | page offset | best s | median s | MB/s (best) | best vs aligned | median vs aligned |",
      "|---|---|--:|--:|--:|--:|--:|--:|",
    );
    for (const x of a.rows) {
      const ref = x.op === "read" ? aligned : x.op === "write" ? wAligned : pAligned;
      L.push(
        `| ${x.op} | ${cell(x.buffer)} | ${x.pageOffset ?? "?"} | ${fmtS(x.best)} | ${
          fmtS(x.median)
        } | ${(x.bytes / x.best / 1e6).toFixed(0)} | ${
          ref ? `${(x.best / ref.best).toFixed(2)}×` : ""
        } | ${ref ? `${(x.median / ref.median).toFixed(2)}×` : ""} |`,
      );
    }
    L.push("");
  }
  const f = r.fletcher4;
  if (f) {
    L.push(
      `## fletcher-4 (in process, ${f.bytes / 2 ** 20} MiB buffer, best of ${f.runs})`,
      "",
      `Native: ${f.native ?? `not loaded (${f.nativeError})`}.`,
      "",
      "| engine | little-endian GB/s | big-endian GB/s |",
      "|---|--:|--:|",
    );
    const rows = new Map<string, { le?: number; be?: number }>();
    for (const t of f.results) rows.set(t.engine, { ...rows.get(t.engine), [t.order]: t.gbps });
    for (const [engine, v] of rows) {
      L.push(
        `| ${engine}${engine === f.native ? " (default)" : ""} | ${v.le?.toFixed(2) ?? "?"} | ${
          v.be?.toFixed(2) ?? "?"
        } |`,
      );
    }
    L.push("");
  }
  const h = r.hash;
  if (h) {
    L.push(
      `## Block hash (in process, ${h.bytes / 2 ** 20} MiB in ${
        h.blockBytes / 1024
      } KiB blocks, best of ${h.runs})`,
      "",
      "New stores key blocks by BLAKE3 (the default native implementation is the first); " +
        "stores made before, by SHA-256.",
      "",
      "| engine | GB/s |",
      "|---|--:|",
      ...h.results.map((x) => `| ${x.engine} | ${x.gbps.toFixed(2)} |`),
      "",
    );
  }
  if (r.notes.length) {
    L.push("## Notes", "");
    for (const n of r.notes) L.push(`- ${n}`);
    L.push("");
  }
  return L.join("\n");
}

/** The report as JSON (bigints as strings). */
export function toJson(r: BenchReport): string {
  return JSON.stringify(r, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2);
}
