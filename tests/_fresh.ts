/**
 * Fresh streams made during the test run by real zfs-fuse (scripts/make_streams.sh), once per
 * run and shared by the test modules that use them.
 *
 * @module
 */

import { IN_CI, ROOT } from "./_fixtures.ts";

/** Whether scripts/test.sh found a running zfs-fuse daemon. */
export const HAVE_ZFS_FUSE = (() => {
  try {
    return Deno.env.get("ZSEND_ZFS_FUSE") === "1";
  } catch {
    return false;
  }
})();

/** Why the fresh-stream tests cannot run here, or null when they can. */
export function freshUnavailable(): string | null {
  if (HAVE_ZFS_FUSE) return null;
  const why = "no running zfs-fuse (run the suite with scripts/test.sh as root with /dev/fuse)";
  if (IN_CI) throw new Error(`CI must test against real ZFS, but: ${why}`);
  return why;
}

/** What make_streams.sh wrote: streams.json, parsed. */
export interface FreshSet {
  dir: string;
  info: {
    seed: number;
    snapshots: Record<string, { name: string; guid: string; guid_hex: string; manifest: string }>;
    streams: {
      file: string;
      dump: string;
      kind: string;
      from: string | null;
      to: string;
      snapshots: string[];
    }[];
  };
}

let made: Promise<FreshSet> | null = null;

/** Makes the fresh streams (once per process) and returns where they are. */
export function freshStreams(): Promise<FreshSet> {
  made ??= (async () => {
    const dir = `${ROOT}tests/tmp/fresh-${Deno.pid}`;
    try {
      const info = JSON.parse(await Deno.readTextFile(`${dir}/streams.json`));
      return { dir, info };
    } catch { /* not made yet in this run */ }
    // Streams of earlier runs (tens of MiB each) go; this run's stay for its other modules.
    try {
      for (const e of Deno.readDirSync(`${ROOT}tests/tmp`)) {
        if (e.name.startsWith("fresh-") && e.name !== `fresh-${Deno.pid}`) {
          Deno.removeSync(`${ROOT}tests/tmp/${e.name}`, { recursive: true });
        }
      }
    } catch { /* no tests/tmp yet */ }
    await Deno.mkdir(dir, { recursive: true });
    const out = await new Deno.Command("bash", {
      args: [`${ROOT}scripts/make_streams.sh`, dir],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    if (!out.success) throw new Error(`make_streams.sh failed:\n${text}`);
    const info = JSON.parse(await Deno.readTextFile(`${dir}/streams.json`));
    console.log(`fresh zfs-fuse streams in ${dir} (ZSEND_SEED=${info.seed})`);
    return { dir, info };
  })();
  return made;
}
