/**
 * The rows of the bench. To add one, push a {@linkcode BenchCase} in {@linkcode benchCases}:
 * a `name`, a `group` (rows compared with each other), the `peer` it is compared with, a
 * `skip` check (the verb is there, zfs-fuse is usable), untimed `setup`/`before`, and `run`,
 * one timed run that returns a {@linkcode Measurement}.
 *
 * @module
 */

import {
  type BenchCase,
  type ChildSpec,
  type ChildTimer,
  dirtyKiB,
  type Measurement,
} from "./harness.ts";
import {
  type CryptInput,
  cryptInput,
  DEDUP_MIN,
  randomFile,
  type StreamInput,
  treeBytes,
  warm,
  zfsFuseStream,
} from "./inputs.ts";
import {
  cpuSecondsOf,
  daemonPid,
  type OpenZfsTool,
  openZfsZstream,
  type ScratchPool,
  which,
  zcmd,
} from "./zfs.ts";
import { STAGE_LABEL, STAGES } from "./breakdown.ts";

/** What the cases share. */
export interface BenchContext {
  /** The repository. */
  root: string;
  /** bench/, where cached inputs live. */
  benchDir: string;
  /** A directory of this run, removed at the end. */
  scratch: string;
  stream: StreamInput;
  /** How zsend is started: `[build/zsend]` or `[deno, run, -A, cli.ts]`. */
  zsend: string[];
  timer: ChildTimer;
  /** Null when `zsend ARGS... --help` exits 0, else why the verb is not usable. */
  verbMissing(args: string[]): Promise<string | null>;
  /** Null when zfs-fuse can be used, else why not. */
  zfsMissing(): Promise<string | null>;
  /** The scratch pool (made on first use, destroyed at the end). */
  pool(): Promise<ScratchPool>;
  /** Runs `fn` once per key for the whole bench (shared untimed preparations). */
  once<T>(key: string, fn: () => Promise<T>): Promise<T>;
}

/**
 * How the verbs are called: `recv`, `extract` and `send` as their USAGE says; `image send` is
 * the form the plan names, to adjust here when that verb lands (a wrong form shows up as a
 * failed row with the verb's usage message, never as a number).
 */
export const VERB_ARGS = {
  recv: (store: string, target: string, file: string) => ["recv", store, target, file],
  extract: (store: string, snapshot: string, dir: string) => ["extract", store, snapshot, dir],
  extractWithPassphrase: (passphraseFile: string, store: string, snapshot: string, dir: string) => [
    "extract",
    "--passphrase-file",
    passphraseFile,
    store,
    snapshot,
    dir,
  ],
  send: (store: string, snapshot: string) => ["send", store, snapshot],
  imageSend: (file: string) => ["image", "send", file],
};

/** The dataset zsend receives into, in its store. */
const STORE_TARGET = "bench/fs";

function snapName(toname: string): string {
  return toname.slice(toname.indexOf("@") + 1);
}

async function rmrf(path: string): Promise<void> {
  await Deno.remove(path, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}

/** `argv | cat > /dev/null` through sh (peak RSS: the largest process of the pipe). */
function piped(argv: string[]): string[] {
  return ["sh", "-c", '"$@" | cat > /dev/null', "sh", ...argv];
}

/** Every row, in the order the table shows them. */
export function benchCases(ctx: BenchContext): BenchCase[] {
  const S = ctx.stream;
  const zsend = (args: string[], bytes: number, io: Omit<ChildSpec, "argv"> = {}) => () =>
    ctx.timer.run({ argv: [...ctx.zsend, ...args], cwd: ctx.root, ...io }, bytes);
  const child = (argv: string[], bytes: number, io: Omit<ChildSpec, "argv"> = {}) => () =>
    ctx.timer.run({ argv, cwd: ctx.root, ...io }, bytes);
  const warmStream = () => ctx.once(`warm:${S.path}`, () => warm(S.path));
  const needs = (bin: string) => () =>
    Promise.resolve(which(bin) === null ? `${bin} not found (apt-get install zfs-fuse)` : null);
  const firstOf = (...checks: (() => Promise<string | null>)[]) => async () => {
    for (const c of checks) {
      const why = await c();
      if (why !== null) return why;
    }
    return null;
  };
  const verb = (...args: string[]) => () => ctx.verbMissing(args);
  // zfs-fuse does a peer's work in its daemon: add the daemon's CPU time of the run.
  const withDaemon = (run: () => Promise<Measurement>) => async (): Promise<Measurement> => {
    const pid = daemonPid();
    const before = pid === null ? null : cpuSecondsOf(pid);
    const m = await run();
    const after = pid === null ? null : cpuSecondsOf(pid);
    return before === null || after === null ? m : { ...m, daemonCpuSeconds: after - before };
  };
  // Each recv and extract row starts with nothing dirty in the page cache, so none pays for
  // another's writes (the floor's `sync` would, and so would writeback throttling).
  const sync = () => child(["sync"], 0)().then(() => {});
  const durable = (run: () => Promise<Measurement>) => async (): Promise<Measurement> => ({
    ...await run(),
    dirtyAfterKiB: dirtyKiB(),
  });
  const zfs = () => ctx.zfsMissing();
  // OpenZFS 2.3's zstream: the peer of verify, dump and redup.
  const zstream = () => ctx.once("zstream", () => openZfsZstream(ctx.root));
  const zstreamMissing = async () => {
    const z = await zstream();
    return typeof z === "string" ? z : null;
  };
  const zstreamRun =
    (args: string[], bytes: () => number, io: Omit<ChildSpec, "argv"> = {}) =>
    async (): Promise<Measurement> => {
      const z = (await zstream()) as OpenZfsTool;
      return await child([z.path, ...args], bytes(), { ...io, env: z.env })();
    };
  // The dedup stream redup reads (made by zfs-fuse `zfs send -D` once, then reused).
  const dedupPath = `${ctx.benchDir}/dedup.zstream`;
  let dedupBytes = 0;
  const dedup = () =>
    ctx.once("dedup", async () => {
      const have = (() => {
        try {
          return Deno.statSync(dedupPath).size;
        } catch {
          return 0;
        }
      })();
      if (have < DEDUP_MIN) {
        const why = await ctx.zfsMissing();
        if (why !== null) return `no dedup stream (${why})`;
      }
      const s = await zfsFuseStream(ctx.root, dedupPath, { dedup: true });
      await warm(s.path);
      dedupBytes = s.bytes;
      return s;
    });
  const dedupMissing = async () => {
    const d = await dedup().catch((e) => `make_bench_stream.sh --dedup: ${(e as Error).message}`);
    return typeof d === "string" ? d : null;
  };

  // Shared, untimed: a store holding the stream's snapshot, and the tree extracted from it.
  const refStore = () =>
    ctx.once("refStore", async () => {
      const store = `${ctx.scratch}/store-ref`;
      await ctx.timer.run(
        { argv: [...ctx.zsend, ...VERB_ARGS.recv(store, STORE_TARGET, S.path)], cwd: ctx.root },
        S.bytes,
      );
      return { store, snapshot: `${STORE_TARGET}@${snapName(S.toname)}` };
    });
  const refTree = () =>
    ctx.once("refTree", async () => {
      const { store, snapshot } = await refStore();
      const dir = `${ctx.scratch}/tree-ref`;
      await ctx.timer.run(
        { argv: [...ctx.zsend, ...VERB_ARGS.extract(store, snapshot, dir)], cwd: ctx.root },
        0,
      );
      return { dir, bytes: await treeBytes(dir) };
    });
  // Shared, untimed: the stream received once into the pool, for `zfs send`.
  const poolRef = () =>
    ctx.once("poolRef", async () => {
      const pool = await ctx.pool();
      const dataset = `${pool.name}/ref`;
      await zcmd(["zfs", "receive", dataset], S.path);
      return `${dataset}@${snapName(S.toname)}`;
    });

  // Encrypted extract: a raw aes-256-gcm snapshot and an unencrypted one of the same tree, made
  // by OpenZFS 2.3 in the QEMU guest once (bench/), each received into a store of its own here
  // (untimed), then extracted, the encrypted one with its passphrase.
  const crypt = () =>
    ctx.once(
      "crypt",
      () =>
        cryptInput(ctx.root, ctx.benchDir).catch((e) =>
          `the encrypted input could not be made: ${(e as Error).message}`
        ),
    );
  const cryptMissing = async () => {
    const c = await crypt();
    return typeof c === "string" ? c : null;
  };
  const cryptStores = () =>
    ctx.once("cryptStores", async () => {
      const c = (await crypt()) as CryptInput;
      const one = async (name: string, file: string, bytes: number, toname: string) => {
        const store = `${ctx.scratch}/store-${name}`;
        await ctx.timer.run(
          { argv: [...ctx.zsend, ...VERB_ARGS.recv(store, `bench/${name}`, file)], cwd: ctx.root },
          bytes,
        );
        return { store, snapshot: `bench/${name}@${snapName(toname)}` };
      };
      const enc = await one("crypt", c.crypt, c.cryptBytes, c.cryptToname);
      const plain = await one("plain", c.plain, c.plainBytes, c.plainToname);
      // The tree's size, from one untimed extract of the plain snapshot.
      const dir = `${ctx.scratch}/tree-plain`;
      await ctx.timer.run(
        {
          argv: [...ctx.zsend, ...VERB_ARGS.extract(plain.store, plain.snapshot, dir)],
          cwd: ctx.root,
        },
        0,
      );
      const bytes = await treeBytes(dir);
      await rmrf(dir);
      return { input: c, enc, plain, bytes };
    });
  const cryptOut = `${ctx.scratch}/crypt-out`;

  const recvStore = `${ctx.scratch}/store-recv`;
  const recvOut = `${ctx.scratch}/floor.out`;
  const extractOut = `${ctx.scratch}/extract-out`;
  const cpOut = `${ctx.scratch}/cp-out`;
  const image = `${ctx.benchDir}/image-1g.bin`;
  let treeSize = 0;
  let imageSize = 0;

  const cases: BenchCase[] = [
    // verify: the stream read, every checksum checked, nothing printed.
    {
      name: "zsend verify",
      group: "verify",
      command: "zsend verify FILE",
      peer: ["zstream dump", "zstreamdump"],
      setup: warmStream,
      run: zsend(["verify", S.path], S.bytes),
    },
    {
      name: "zstream dump",
      group: "verify",
      command: "zstream dump < FILE > /dev/null (OpenZFS 2.3)",
      skip: zstreamMissing,
      setup: warmStream,
      run: zstreamRun(["dump"], () => S.bytes, { stdin: S.path }),
    },
    {
      name: "zstreamdump",
      group: "verify",
      command: "zstreamdump < FILE > /dev/null",
      skip: needs("zstreamdump"),
      setup: warmStream,
      run: child([which("zstreamdump") ?? "zstreamdump"], S.bytes, { stdin: S.path }),
    },
    // dump -v: every record printed.
    {
      name: "zsend dump -v",
      group: "dump",
      command: "zsend dump -v FILE > /dev/null",
      peer: ["zstream dump -v", "zstreamdump -v"],
      setup: warmStream,
      run: zsend(["dump", "-v", S.path], S.bytes),
    },
    {
      name: "zstream dump -v",
      group: "dump",
      command: "zstream dump -v < FILE > /dev/null (OpenZFS 2.3)",
      skip: zstreamMissing,
      setup: warmStream,
      run: zstreamRun(["dump", "-v"], () => S.bytes, { stdin: S.path }),
    },
    {
      name: "zstreamdump -v",
      group: "dump",
      command: "zstreamdump -v < FILE > /dev/null",
      skip: needs("zstreamdump"),
      setup: warmStream,
      run: child([which("zstreamdump") ?? "zstreamdump", "-v"], S.bytes, { stdin: S.path }),
    },
    // redup: a dedup stream as a plain one.
    {
      name: "zsend redup",
      group: "redup",
      command: "zsend redup DEDUP_FILE > /dev/null (zfs-fuse zfs send -D)",
      peer: "zstream redup",
      skip: firstOf(verb("redup"), dedupMissing),
      setup: async () => void await dedup(),
      run: () => zsend(["redup", dedupPath], dedupBytes)(),
    },
    {
      name: "zstream redup",
      group: "redup",
      command: "zstream redup DEDUP_FILE > /dev/null (OpenZFS 2.3)",
      skip: firstOf(zstreamMissing, dedupMissing),
      setup: async () => void await dedup(),
      run: zstreamRun(["redup", dedupPath], () => dedupBytes),
    },
    // recv: the stream into a fresh store / a fresh dataset / a plain file, durably.
    {
      name: "zsend recv",
      group: "recv",
      command: `zsend recv STORE ${STORE_TARGET} FILE (fresh store)`,
      peer: ["zfs receive", "durable floor"],
      skip: verb("recv"),
      setup: warmStream,
      before: async () => {
        await rmrf(recvStore);
        await sync();
      },
      run: durable(zsend(VERB_ARGS.recv(recvStore, STORE_TARGET, S.path), S.bytes)),
    },
    {
      name: "zfs receive",
      group: "recv",
      command: "zfs receive POOL/recv < FILE (zfs-fuse, file-backed pool)",
      skip: zfs,
      setup: async () => {
        await warmStream();
        await ctx.pool();
      },
      before: async () => {
        const pool = await ctx.pool();
        await pool.destroyDataset(`${pool.name}/recv`);
        await sync();
      },
      run: durable(withDaemon(async () => {
        const pool = await ctx.pool();
        return await child([which("zfs")!, "receive", `${pool.name}/recv`], S.bytes, {
          stdin: S.path,
        })();
      })),
    },
    {
      name: "durable floor",
      group: "recv",
      command: "cat FILE > OUT && sync",
      setup: warmStream,
      before: async () => {
        await rmrf(recvOut);
        await sync();
      },
      run: durable(
        child(["sh", "-c", 'cat "$1" >"$2" && sync', "sh", S.path, recvOut], S.bytes),
      ),
    },
    // extract: the snapshot's files out of the store, against copying the same tree.
    {
      name: "zsend extract",
      group: "extract",
      command: "zsend extract STORE SNAPSHOT DIR",
      peer: "cp -a",
      skip: firstOf(verb("recv"), verb("extract")),
      setup: async () => {
        await refStore();
        treeSize = (await refTree()).bytes;
      },
      before: async () => {
        await rmrf(extractOut);
        await sync();
      },
      run: async () => {
        const { store, snapshot } = await refStore();
        return await zsend(VERB_ARGS.extract(store, snapshot, extractOut), treeSize)();
      },
    },
    {
      name: "cp -a",
      group: "extract",
      command: "cp -a TREE DIR (the tree zsend extract wrote, warm cache)",
      skip: firstOf(verb("recv"), verb("extract")),
      setup: async () => {
        const t = await refTree();
        treeSize = t.bytes;
        await child(["sh", "-c", 'find "$1" -type f -exec cat {} + >/dev/null', "sh", t.dir], 0)();
      },
      before: async () => {
        await rmrf(cpOut);
        await sync();
      },
      run: async () => child(["cp", "-a", (await refTree()).dir, cpOut], treeSize)(),
    },
    // Encrypted extract: the same tree from a raw aes-256-gcm snapshot (opened with its
    // passphrase: every block decrypted and authenticated) and from an unencrypted snapshot.
    {
      name: "zsend extract, encrypted",
      group: "crypt-extract",
      ownInput: true,
      command:
        "zsend extract --passphrase-file PASS STORE SNAPSHOT DIR (raw aes-256-gcm, OpenZFS 2.3)",
      peer: "zsend extract, unencrypted",
      skip: firstOf(verb("recv"), verb("extract"), cryptMissing),
      setup: async () => void await cryptStores(),
      before: async () => {
        await rmrf(cryptOut);
        await sync();
      },
      run: durable(async () => {
        const { input, enc, bytes } = await cryptStores();
        return await zsend(
          VERB_ARGS.extractWithPassphrase(input.passphrase, enc.store, enc.snapshot, cryptOut),
          bytes,
        )();
      }),
    },
    {
      name: "zsend extract, unencrypted",
      group: "crypt-extract",
      ownInput: true,
      command: "zsend extract STORE SNAPSHOT DIR (the same tree, unencrypted, OpenZFS 2.3)",
      skip: firstOf(verb("recv"), verb("extract"), cryptMissing),
      setup: async () => void await cryptStores(),
      before: async () => {
        await rmrf(cryptOut);
        await sync();
      },
      run: durable(async () => {
        const { plain, bytes } = await cryptStores();
        return await zsend(VERB_ARGS.extract(plain.store, plain.snapshot, cryptOut), bytes)();
      }),
    },
    // send: the snapshot back out as a stream, from the store / from the pool.
    {
      name: "zsend send",
      group: "send",
      command: "zsend send STORE SNAPSHOT > /dev/null",
      peer: "zfs send",
      skip: firstOf(verb("recv"), verb("send")),
      setup: async () => void await refStore(),
      run: async () => {
        const { store, snapshot } = await refStore();
        return await zsend(VERB_ARGS.send(store, snapshot), S.bytes)();
      },
    },
    {
      name: "zfs send",
      group: "send",
      command: "zfs send POOL/ref@SNAP > /dev/null (zfs-fuse)",
      skip: zfs,
      setup: async () => void await poolRef(),
      run: withDaemon(async () => child([which("zfs")!, "send", await poolRef()], S.bytes)()),
    },
    // The same sends into a pipe (what `| ssh` or `| zfs receive` reads): the kernel's copies
    // of the payloads cost more there than into /dev/null.
    {
      name: "zsend send, piped",
      group: "send-pipe",
      command: "zsend send STORE SNAPSHOT | cat > /dev/null",
      peer: "zfs send, piped",
      skip: firstOf(verb("recv"), verb("send")),
      setup: async () => void await refStore(),
      run: async () => {
        const { store, snapshot } = await refStore();
        return await child(piped([...ctx.zsend, ...VERB_ARGS.send(store, snapshot)]), S.bytes)();
      },
    },
    {
      name: "zfs send, piped",
      group: "send-pipe",
      command: "zfs send POOL/ref@SNAP | cat > /dev/null (zfs-fuse)",
      skip: zfs,
      setup: async () => void await poolRef(),
      run: withDaemon(async () =>
        child(piped([which("zfs")!, "send", await poolRef()]), S.bytes)()
      ),
    },
    // image send: a 1 GiB file as a stream, against reading it.
    {
      name: "zsend image send",
      group: "image",
      command: "zsend image send FILE > /dev/null (1 GiB random file)",
      peer: "cat",
      skip: verb("image", "send"),
      setup: async () => {
        imageSize = await randomFile(image, 1 << 30);
        await warm(image);
      },
      run: () => zsend(VERB_ARGS.imageSend(image), imageSize)(),
    },
    {
      name: "cat",
      group: "image",
      command: "cat FILE > /dev/null (the same file)",
      skip: verb("image", "send"),
      setup: async () => {
        imageSize = await randomFile(image, 1 << 30);
        await warm(image);
      },
      run: () => child(["cat", image], imageSize)(),
    },
    {
      name: "zsend image send, piped",
      group: "image-pipe",
      command: "zsend image send FILE | cat > /dev/null",
      peer: "cat, piped",
      skip: verb("image", "send"),
      setup: async () => {
        imageSize = await randomFile(image, 1 << 30);
        await warm(image);
      },
      run: () => child(piped([...ctx.zsend, ...VERB_ARGS.imageSend(image)]), imageSize)(),
    },
    {
      name: "cat, piped",
      group: "image-pipe",
      command: "cat FILE | cat > /dev/null",
      skip: verb("image", "send"),
      setup: async () => {
        imageSize = await randomFile(image, 1 << 30);
        await warm(image);
      },
      run: () => child(piped(["cat", image]), imageSize)(),
    },
  ];

  // Where zsend verify's time goes: each stage of its read path in a child of its own.
  const breakdownOut = `${ctx.scratch}/breakdown.json`;
  cases.push({
    name: "zsend --help",
    group: "breakdown",
    table: "breakdown",
    command: "zsend --help: startup of the CLI as the rows above start it",
    run: zsend(["--help"], 0),
  });
  for (const stage of STAGES) {
    cases.push({
      name: `stage ${stage}`,
      group: "breakdown",
      table: "breakdown",
      command: STAGE_LABEL[stage]!,
      setup: warmStream,
      run: async (): Promise<Measurement> => {
        const m = await child(
          [Deno.execPath(), "run", "-A", `${ctx.root}/scripts/bench/breakdown.ts`, stage, S.path],
          S.bytes,
          { stdout: breakdownOut },
        )();
        const out = JSON.parse(await Deno.readTextFile(breakdownOut));
        return { ...m, bytes: out.bytes as number, innerSeconds: out.seconds as number };
      },
    });
  }
  return cases;
}
