/**
 * A throwaway zfs-fuse pool on a sparse file, for tests that hand streams to the real
 * `zfs receive` and look at what it made.
 *
 * @module
 */

/** Runs a command; throws with its output when it fails. */
export async function sh(
  cmd: string,
  args: string[],
  stdin?: Uint8Array | string,
): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(typeof stdin === "string" ? new TextEncoder().encode(stdin) : stdin).catch(
      () => {},
    );
    await w.close().catch(() => {});
  }
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}${text}`,
    );
  }
  return text;
}

/** A pool made for one test. */
export class TestPool {
  readonly name: string;
  readonly dir: string;

  private constructor(name: string, dir: string) {
    this.name = name;
    this.dir = dir;
  }

  /** Makes a 512 MiB file-backed pool with a unique name. */
  static async create(): Promise<TestPool> {
    const dir = await Deno.makeTempDir({ prefix: "zsend-pool-" });
    const name = `zst${Deno.pid}x${Math.floor(Math.random() * 1e6)}`;
    await sh("truncate", ["-s", "512M", `${dir}/disk`]);
    await sh("zpool", ["create", "-m", "none", name, `${dir}/disk`]);
    // Looking at a mounted tree must not count as a change that blocks the next incremental.
    await sh("zfs", ["set", "atime=off", name]);
    return new TestPool(name, dir);
  }

  /** `zfs create POOL/name` (a parent for `receive -d`). */
  async createDataset(name: string): Promise<void> {
    await sh("zfs", ["create", `${this.name}/${name}`]);
  }

  /**
   * `zfs receive -u [flags] POOL/target` of a stream: not mounted there (a -R stream sets the
   * sender's mountpoint, the same for several receives); {@linkcode mount} mounts where asked.
   */
  async receive(target: string, stream: Uint8Array, flags: string[] = []): Promise<void> {
    await sh("zfs", ["receive", "-u", ...flags, `${this.name}/${target}`], stream);
  }

  /** Mounts a dataset (read-only is not needed: tests only read) and returns where. */
  async mount(dataset: string): Promise<string> {
    const at = `${this.dir}/mnt-${dataset.replaceAll("/", "_")}`;
    await Deno.mkdir(at, { recursive: true });
    await sh("zfs", ["set", `mountpoint=${at}`, `${this.name}/${dataset}`]);
    try {
      await sh("zfs", ["mount", `${this.name}/${dataset}`]);
    } catch (e) {
      if (!/already mounted/.test((e as Error).message)) throw e;
    }
    return at;
  }

  /** Unmounts a dataset. */
  async unmount(dataset: string): Promise<void> {
    await sh("zfs", ["unmount", `${this.name}/${dataset}`]).catch(() => {});
  }

  /** Names of every snapshot under the pool. */
  async snapshots(): Promise<string[]> {
    const out = await sh("zfs", ["list", "-H", "-o", "name", "-t", "snapshot", "-r", this.name]);
    return out.trim().split("\n").filter((l) => l !== "").map((l) => l.slice(this.name.length + 1));
  }

  /** Destroys the pool and its file (retrying: zfs-fuse is sometimes busy a moment). */
  async destroy(): Promise<void> {
    for (let i = 0; i < 5; i++) {
      try {
        await sh("zpool", ["destroy", "-f", this.name]);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
