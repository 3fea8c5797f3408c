/**
 * What the bench ran on, read at run time: CPU, memory, kernel, free disk, load, versions.
 *
 * @module
 */

/** The machine and the software under test. */
export interface MachineInfo {
  date: string;
  cpu: string;
  logicalCpus: number;
  memTotalBytes: number | null;
  memAvailableBytes: number | null;
  kernel: string;
  /** The filesystem holding bench/: type, free and total bytes. */
  disk: { mount: string; fstype: string; freeBytes: number; totalBytes: number } | null;
  /** /proc/loadavg when the bench started and ended (others may share the machine). */
  loadStart: string;
  loadEnd?: string;
  deno: string;
  v8: string;
  /** git HEAD and how many paths differ from it. */
  git: { head: string; changedPaths: number } | null;
  zfsFuse: string | null;
  gnuTime: string | null;
}

/** Runs a command, returns its stdout (trimmed) or null when it cannot run or fails. */
export async function capture(argv: string[], cwd?: string): Promise<string | null> {
  try {
    const [exe, ...args] = argv;
    const out = await new Deno.Command(exe!, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      ...(cwd ? { cwd } : {}),
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null;
  }
}

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

function meminfo(key: string): number | null {
  const m = readText("/proc/meminfo").match(new RegExp(`^${key}:\\s*(\\d+)\\s*kB`, "m"));
  return m ? Number(m[1]) * 1024 : null;
}

/** /proc/loadavg's first three fields. */
export function loadAverage(): string {
  return readText("/proc/loadavg").split(" ").slice(0, 3).join(" ") || "unknown";
}

/** Reads the machine's description. */
export async function machineInfo(root: string, benchDir: string): Promise<MachineInfo> {
  const cpuinfo = readText("/proc/cpuinfo");
  const cpu = cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? "unknown";
  const df = await capture(["df", "-P", "-T", "-k", benchDir]);
  let disk: MachineInfo["disk"] = null;
  const fields = df?.split("\n")[1]?.split(/\s+/);
  if (fields && fields.length >= 7) {
    disk = {
      mount: fields[6]!,
      fstype: fields[1]!,
      totalBytes: Number(fields[2]) * 1024,
      freeBytes: Number(fields[4]) * 1024,
    };
  }
  const head = await capture(["git", "rev-parse", "--short", "HEAD"], root);
  const porcelain = await capture(["git", "status", "--porcelain", "--untracked-files=no"], root);
  const gnuTime = (await capture(["/usr/bin/time", "--version"]))?.split("\n")[0] ?? null;
  return {
    date: new Date().toISOString(),
    cpu,
    logicalCpus: navigator.hardwareConcurrency,
    memTotalBytes: meminfo("MemTotal"),
    memAvailableBytes: meminfo("MemAvailable"),
    kernel: Deno.osRelease(),
    disk,
    loadStart: loadAverage(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    git: head === null
      ? null
      : { head, changedPaths: porcelain ? porcelain.split("\n").filter(Boolean).length : 0 },
    zfsFuse: await capture(["dpkg-query", "-W", "-f", "${Version}", "zfs-fuse"]),
    gnuTime,
  };
}
