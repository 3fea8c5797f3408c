/**
 * The fresh corpus that real OpenZFS 2.3 made in this test run (scripts/openzfs/make_corpus.sh,
 * run by scripts/test.sh in the QEMU guest of scripts/openzfs/vm.sh), and the guest itself for
 * tests that hand zsend's own streams to a real `zfs receive`.
 *
 * @module
 */

import { IN_CI, ROOT } from "./_fixtures.ts";

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** A snapshot that the guest made, as corpus.txt names it. */
export interface CorpusSnapshot {
  /** `fs@a`, `fs/child@r`: the name below the guest's pool. */
  key: string;
  /** The name in the guest's pool (`zc/fs@a`). */
  name: string;
  guid: bigint;
  creation: number;
  /** `fs-a.manifest.txt` for a filesystem, `vol-v1.img` for a volume. */
  manifest: string;
}

/** A `zfs diff` the guest ran, as corpus.txt describes it. */
export interface CorpusDiff {
  /** The pair's name (`fs-a-b`). */
  name: string;
  /** The snapshots, as corpus keys (`fs@a`, `clone@c1`). */
  from: string;
  to: string;
  /** The flags given (`-FHt`), or "" for none. */
  flags: string;
  /** The file holding zfs diff's stdout. */
  file: string;
  /** The later snapshot's dataset's mountpoint in the guest. */
  mountpoint: string;
  /** zfs diff's exit status. */
  status: number;
}

/** A stream that the guest made, as corpus.txt describes it. */
export interface CorpusStream {
  name: string;
  kind: string;
  from: string | null;
  to: string;
  snapshots: string[];
  command: string;
  /** The stream's path. */
  file: string;
  /** `zstream dump -v` of it by OpenZFS 2.3's own zstream (absent for a cut stream). */
  dump: string | null;
}

/** The corpus: where it is and what it holds. */
export interface Corpus {
  dir: string;
  seed: string;
  zfsVersion: string;
  snapshots: Map<string, CorpusSnapshot>;
  streams: Map<string, CorpusStream>;
  /** The `zfs diff` outputs, in the order they were made (none in older corpora). */
  diffs: CorpusDiff[];
  /**
   * `zfs send -n -v` and `-n -P` runs: NAME.sendv.txt and NAME.sendP.txt hold their output,
   * `args` the rest of the command line (none in older corpora).
   */
  sendv: { name: string; args: string[] }[];
  /** The passphrase of the guest's passphrase-encrypted datasets. */
  passphrase: string;
}

/** Why the corpus tests cannot run here, or null when they can (never null-less in CI). */
export function corpusUnavailable(): string | null {
  const dir = env("ZSEND_OPENZFS_CORPUS");
  if (dir) {
    try {
      Deno.statSync(`${dir}/corpus.txt`);
      return null;
    } catch {
      const why = `ZSEND_OPENZFS_CORPUS=${dir} has no corpus.txt`;
      if (IN_CI) throw new Error(`CI must test against OpenZFS 2.3, but: ${why}`);
      return why;
    }
  }
  const why = "no OpenZFS 2.3 corpus (scripts/test.sh makes one as root: it sets " +
    "ZSEND_OPENZFS_CORPUS)";
  if (IN_CI) throw new Error(`CI must test against OpenZFS 2.3, but: ${why}`);
  return why;
}

/** Why the tests that boot the OpenZFS 2.3 guest cannot run here, or null. */
export function vmUnavailable(): string | null {
  if (env("ZSEND_OPENZFS_VM") === "1") return null;
  const why = "the OpenZFS 2.3 guest is not built (scripts/test.sh builds it as root: it sets " +
    "ZSEND_OPENZFS_VM=1)";
  if (IN_CI) throw new Error(`CI must test against OpenZFS 2.3, but: ${why}`);
  return why;
}

let loaded: Corpus | null = null;

/** Reads corpus.txt of ZSEND_OPENZFS_CORPUS. */
export function openzfsCorpus(): Corpus {
  if (loaded) return loaded;
  const dir = env("ZSEND_OPENZFS_CORPUS")!;
  const snapshots = new Map<string, CorpusSnapshot>();
  const streams = new Map<string, CorpusStream>();
  const diffs: CorpusDiff[] = [];
  const sendv: { name: string; args: string[] }[] = [];
  let seed = "";
  for (const line of Deno.readTextFileSync(`${dir}/corpus.txt`).split("\n")) {
    const [head, command = ""] = line.split(" | ");
    const f = head!.split(" ");
    if (f[0] === "snapshot") {
      const [, key, name, guid, creation, manifest] = f;
      snapshots.set(key!, {
        key: key!,
        name: name!,
        guid: BigInt(guid!),
        creation: Number(creation),
        manifest: manifest!,
      });
    } else if (f[0] === "stream") {
      const [, name, kind, from, to, snaps] = f;
      let dump: string | null = `${dir}/${name}.dump.txt`;
      try {
        Deno.statSync(dump);
      } catch {
        dump = null;
      }
      streams.set(name!, {
        name: name!,
        kind: kind!,
        from: from === "-" ? null : from!,
        to: to!,
        snapshots: snaps!.split(","),
        command,
        file: `${dir}/${name}.zstream`,
        dump,
      });
    } else if (f[0] === "sendv") {
      sendv.push({ name: f[1]!, args: command.replace(/^zfs send /, "").split(" ") });
    } else if (f[0] === "zdiff") {
      const [, name, from, to, flags, file, mountpoint, status] = f;
      diffs.push({
        name: name!,
        from: from!,
        to: to!,
        flags: flags === "-" ? "" : flags!,
        file: `${dir}/${file}`,
        mountpoint: mountpoint!,
        status: Number(status),
      });
    } else if (f[0] === "seed") {
      seed = f[1]!;
    }
  }
  loaded = {
    dir,
    seed,
    zfsVersion: Deno.readTextFileSync(`${dir}/zfs-version.txt`).trim(),
    snapshots,
    streams,
    diffs,
    sendv,
    passphrase: Deno.readTextFileSync(`${dir}/passphrase.txt`),
  };
  return loaded;
}

/** The path of a file of the corpus. */
export function corpusFile(name: string): string {
  return `${openzfsCorpus().dir}/${name}`;
}

/** One stream of the corpus by name; throws when the corpus lacks it. */
export function corpusStream(name: string): CorpusStream {
  const s = openzfsCorpus().streams.get(name);
  if (!s) throw new Error(`the OpenZFS corpus has no stream ${name}`);
  return s;
}

/** The manifest file of a snapshot of the corpus (`fs@a` -> .../fs-a.manifest.txt). */
export function corpusManifest(key: string): string {
  const s = openzfsCorpus().snapshots.get(key);
  if (!s) throw new Error(`the OpenZFS corpus has no snapshot ${key}`);
  return `${openzfsCorpus().dir}/${s.manifest}`;
}

/**
 * Runs a guest script in the OpenZFS 2.3 VM with input files; returns the output folder and
 * the console text. Throws with the console's tail when the script fails.
 */
export async function runGuest(
  script: string,
  inputs: string[],
  options: { outSize?: string } = {},
): Promise<{ out: string; console: string }> {
  const out = await Deno.makeTempDir({ prefix: "zsend-guest-" });
  const cmd = new Deno.Command("bash", {
    args: [`${ROOT}scripts/openzfs/vm.sh`, "run", script, out, ...inputs],
    stdout: "piped",
    stderr: "piped",
    env: options.outSize ? { ZSEND_VM_OUT_SIZE: options.outSize } : {},
  });
  const r = await cmd.output();
  let console = "";
  try {
    console = await Deno.readTextFile(`${out}/console.log`);
  } catch { /* none */ }
  if (!r.success) {
    const err = new TextDecoder().decode(r.stderr);
    throw new Error(
      `the OpenZFS guest failed (status ${r.code}): ${err}\n${
        console.split("\n").slice(-40).join("\n")
      }`,
    );
  }
  return { out, console };
}

/**
 * Has the guest's real `zfs receive` carry out `plan` (steps of scripts/openzfs/guest/receive.sh)
 * on `streams`, with the corpus's passphrase for `load-key`; `work` gets plan.txt. Returns the
 * output folder and results.txt's lines (`ok STEP` or `fail STEP: why`).
 */
export async function receiveInGuest(
  work: string,
  plan: string[],
  streams: string[],
): Promise<{ out: string; results: string[] }> {
  await Deno.writeTextFile(`${work}/plan.txt`, plan.join("\n") + "\n");
  await Deno.writeTextFile(`${work}/passphrase.txt`, openzfsCorpus().passphrase);
  const { out } = await runGuest(`${ROOT}scripts/openzfs/guest/receive.sh`, [
    `${work}/plan.txt`,
    `${work}/passphrase.txt`,
    `${ROOT}scripts/lib_tree.sh`,
    `${ROOT}scripts/openzfs/guest/guest_lib.sh`,
    ...streams,
  ]);
  const results = (await Deno.readTextFile(`${out}/results.txt`)).trim().split("\n");
  return { out, results };
}

/** The extended attributes and ACLs of a tree, each as `path -> sorted lines`. */
export interface TreeAttrs {
  /** `name=0x...` per path, POSIX ACLs left out (ZFS does not list them as xattrs). */
  xattrs: Map<string, string[]>;
  /** getfacl's entries per path, for paths with more than the mode bits. */
  acls: Map<string, string[]>;
}

async function lines(cmd: string, args: string[], cwd: string): Promise<string> {
  const r = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "null" }).output();
  return new TextDecoder().decode(r.stdout);
}

/**
 * The xattrs and ACLs under `dir` as the guest reads them for the corpus:
 * `getfattr -R -h -d -m - -e hex` and `getfacl -R -s -p`.
 */
export async function attrsOfTree(dir: string): Promise<TreeAttrs> {
  return {
    xattrs: parseGetfattr(
      await lines("getfattr", ["-R", "-h", "-d", "-m", "-", "-e", "hex", "."], dir),
    ),
    acls: parseGetfattr(await lines("getfacl", ["-R", "-s", "-p", "."], dir)),
  };
}

/** The xattrs and ACLs that the guest wrote beside `BASE.manifest.txt`. */
export async function attrsOfManifest(manifest: string): Promise<TreeAttrs> {
  const base = manifest.replace(/\.manifest\.txt$/, "");
  return {
    xattrs: parseGetfattr(await Deno.readTextFile(`${base}.xattrs.txt`)),
    acls: parseGetfattr(await Deno.readTextFile(`${base}.acls.txt`)),
  };
}

/** Where two trees' attributes differ, one line a path and kind; empty when they agree. */
export function attrsDiff(want: TreeAttrs, got: TreeAttrs): string[] {
  const out: string[] = [];
  for (const kind of ["xattrs", "acls"] as const) {
    const w = want[kind], g = got[kind];
    for (const p of new Set([...w.keys(), ...g.keys()])) {
      const a = new Set(w.get(p) ?? []), b = new Set(g.get(p) ?? []);
      const missing = [...a].filter((l) => !b.has(l)).map((l) => l.split("=")[0]);
      const extra = [...b].filter((l) => !a.has(l)).map((l) => l.split("=")[0]);
      if (missing.length + extra.length > 0) {
        out.push(`${p}: ${kind} missing [${missing.join(", ")}] extra [${extra.join(", ")}]`);
      }
    }
  }
  return out.sort();
}

/**
 * Parses getfattr's or getfacl's text (`# file: PATH` then lines) into `path -> sorted lines`,
 * without getfacl's owner and group comments and without POSIX ACLs shown as xattrs.
 */
export function parseGetfattr(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let path: string | null = null;
  for (const line of text.split("\n")) {
    if (line.startsWith("# file: ")) {
      path = line.slice("# file: ".length).replace(/^\.\//, "");
      out.set(path, []);
    } else if (
      line !== "" && path !== null && !line.startsWith("#") &&
      !line.startsWith("system.posix_acl_")
    ) {
      out.get(path)!.push(line);
    }
  }
  for (const [p, v] of out) {
    if (v.length === 0) out.delete(p);
    else v.sort();
  }
  return out;
}
