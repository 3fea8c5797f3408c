/**
 * `zsend list`: the datasets and snapshots of a store, as `zfs list` prints them.
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { Store } from "../io/store/store.ts";
import { storeSpace } from "../io/store/space.ts";
import { packFileBytes } from "../io/store/gc.ts";
import { nameArg, storeArg } from "./args.ts";
import { rejectUnknown, UsageError } from "./common.ts";
import {
  type Entry,
  type EntryType,
  findProperty,
  ListContext,
  PROPERTIES,
  type Property,
  type Value,
} from "./list_props.ts";
import { niceBytes, zfsDate } from "./zfs_format.ts";

/** Usage of the verb. */
export const USAGE =
  "zsend list [-H] [-p] [-r] [-o PROP[,...]] [-s PROP] [-S PROP] [-t TYPE[,...]] [--json] " +
  "[--space]\n       STORE [DATASET|DATASET@SNAP]...";

const TYPES: Record<number, EntryType> = { 2: "filesystem", 3: "volume" };

/** `-t` words, as zfs takes them. */
const TYPE_WORDS: Record<string, EntryType[]> = {
  filesystem: ["filesystem"],
  fs: ["filesystem"],
  volume: ["volume"],
  vol: ["volume"],
  snapshot: ["snapshot"],
  snap: ["snapshot"],
  bookmark: [], // a store keeps none
  all: ["filesystem", "volume", "snapshot"],
};

/** Runs the verb; returns the exit status. */
export function main(args: string[]): Promise<number> {
  return Promise.resolve(list(args));
}

function list(args: string[]): number {
  const flags = parseArgs(args, {
    boolean: ["H", "p", "r", "json", "space", "help"],
    string: ["o", "t"],
    collect: ["s", "S"],
    unknown: rejectUnknown,
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const [dir, ...names] = flags._.map(String);
  if (dir === undefined) throw new UsageError("list takes a STORE");
  if (flags.space && flags.json) {
    throw new UsageError("--space adds the store's totals as text: not with --json");
  }
  const types = parseTypes(flags.t as string | undefined);
  const columns = flags.o === undefined ? null : parseColumns(flags.o as string);
  const sorts = [
    ...((flags.s ?? []) as string[]).map((p) => ({ prop: sortProperty(p), down: false })),
    ...((flags.S ?? []) as string[]).map((p) => ({ prop: sortProperty(p), down: true })),
  ];
  for (const n of names) nameArg(n, "dataset or snapshot", "DATASET", { lookup: true });
  storeArg(dir);
  const store = Store.open(dir);
  try {
    store.beginRead();
    const ctx = new ListContext(store);
    const entries = select(store, ctx, names, types ?? ["filesystem", "volume"], {
      recursive: flags.r || names.length === 0,
      explicitTypes: types !== null,
    });
    sortEntries(ctx, entries, sorts);
    const shown = columns ?? (flags.space ? spaceColumns() : defaultColumns(ctx, entries));
    if (flags.json) {
      printJson(ctx, entries, columns ?? PROPERTIES);
      return 0;
    }
    printTable(ctx, entries, shown, { header: !flags.H, tabs: flags.H, exact: flags.p });
    if (entries.length === 0 && !flags.H) console.error("no datasets available");
    if (flags.space && !flags.H) printTotals(store, flags.p);
    return 0;
  } finally {
    store.close();
  }
}

function parseTypes(t: string | undefined): EntryType[] | null {
  if (t === undefined) return null;
  const out = new Set<EntryType>();
  for (const word of t.split(",")) {
    const ts = TYPE_WORDS[word];
    if (ts === undefined) {
      throw new UsageError(
        `invalid type '${word}': expected filesystem, volume, snapshot, bookmark or all`,
      );
    }
    for (const x of ts) out.add(x);
  }
  return [...out];
}

function parseColumns(o: string): Property[] {
  return o.split(",").map((name) => {
    const p = findProperty(name);
    if (p === null) throw new UsageError(`bad property list: invalid property '${name}'`);
    return p;
  });
}

function sortProperty(name: string): Property {
  const p = findProperty(name);
  if (p === null) throw new UsageError(`invalid sort property '${name}'`);
  return p;
}

/** The datasets and snapshots to show, depth first, each dataset before its snapshots. */
function select(
  store: Store,
  ctx: ListContext,
  names: string[],
  types: EntryType[],
  o: { recursive: boolean; explicitTypes: boolean },
): Entry[] {
  const all = store.datasets().sort((a, b) => compareNames(a.name, b.name));
  const want = new Set(types);
  const entries: Entry[] = [];
  const seen = new Set<string>();
  const push = (e: Entry) => {
    if (seen.has(e.name)) return;
    seen.add(e.name);
    entries.push(e);
  };
  const roots = names.length === 0 ? all.map((d) => d.name) : names;
  for (const root of roots) {
    const at = root.indexOf("@");
    const dname = at < 0 ? root : root.slice(0, at);
    const top = all.find((d) => d.name === dname);
    // A parent the store keeps no row for (`recv -d` into POOL) stands for its descendants.
    const below = all.filter((d) => d.name.startsWith(`${dname}/`));
    if (top === undefined && (at >= 0 || below.length === 0)) {
      throw new Deno.errors.NotFound(`cannot open '${dname}': dataset does not exist`);
    }
    if (at >= 0) {
      const s = ctx.snapshots(top!).find((x) => x.name === root.slice(at + 1));
      if (s === undefined) {
        throw new Deno.errors.NotFound(`cannot open '${root}': snapshot does not exist`);
      }
      // A snapshot named is shown unless -t leaves snapshots out.
      if (!o.explicitTypes || want.has("snapshot")) {
        push({ type: "snapshot", name: root, dataset: top!, snapshot: s });
      }
      continue;
    }
    const tree = o.recursive || top === undefined
      ? [...(top === undefined ? [] : [top]), ...below]
      : [top];
    for (const d of tree) {
      const type = TYPES[d.objsetType] ?? "filesystem";
      if (want.has(type)) push({ type, name: d.name, dataset: d, snapshot: null });
      if (want.has("snapshot")) {
        for (const s of ctx.snapshots(d)) {
          push({ type: "snapshot", name: `${d.name}@${s.name}`, dataset: d, snapshot: s });
        }
      }
    }
  }
  return entries;
}

/** Orders names as zfs walks them: by component, a parent right before its children. */
function compareNames(a: string, b: string): number {
  const x = a.split("/"), y = b.split("/");
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  }
  return x.length - y.length;
}

function sortEntries(
  ctx: ListContext,
  entries: Entry[],
  sorts: { prop: Property; down: boolean }[],
): void {
  if (sorts.length === 0) return;
  const keyed = entries.map((e, i) => ({ e, i, keys: sorts.map((s) => s.prop.get(ctx, e)) }));
  keyed.sort((a, b) => {
    for (let k = 0; k < sorts.length; k++) {
      const c = compareValues(a.keys[k]!, b.keys[k]!);
      if (c !== 0) return sorts[k]!.down ? -c : c;
    }
    return a.i - b.i;
  });
  entries.splice(0, entries.length, ...keyed.map((k) => k.e));
}

/** Numbers by value, text by bytes; a value the row lacks sorts after every other. */
function compareValues(a: Value, b: Value): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? 1 : -1;
  const num = (v: NonNullable<Value>) =>
    v.kind === "size" || v.kind === "time" ? BigInt(v.n) : v.kind === "guid" ? v.g : null;
  const x = num(a), y = num(b);
  if (x !== null && y !== null) return x < y ? -1 : x > y ? 1 : 0;
  const s = textOf(a, true), t = textOf(b, true);
  return s < t ? -1 : s > t ? 1 : 0;
}

/** NAME USED REFER CREATION, and what the rows shown hold: guids, origins, keys, tokens. */
function defaultColumns(ctx: ListContext, entries: Entry[]): Property[] {
  const names = ["name", "used", "referenced", "creation"];
  const any = (f: (e: Entry) => unknown) => entries.some((e) => f(e));
  if (any((e) => e.snapshot !== null)) names.push("guid");
  if (any((e) => e.snapshot === null && e.dataset.origin !== null)) names.push("origin");
  if (any((e) => ctx.crypt(e) !== null)) names.push("encryption", "keyformat", "encryptionroot");
  if (any((e) => ctx.newest(e)?.redactSnaps != null)) names.push("redact_snaps");
  if (any((e) => ctx.newest(e)?.redactedRanges)) names.push("redacted_ranges");
  if (any((e) => e.snapshot === null && ctx.partial(e.dataset) !== null)) {
    names.push("receive_resume_token");
  }
  return names.map((n) => findProperty(n)!);
}

function spaceColumns(): Property[] {
  return ["name", "used", "referenced", "logicalreferenced", "written"].map((n) =>
    findProperty(n)!
  );
}

/** A value as zfs prints it: sizes human-readable (exact with -p), `-` when absent. */
function textOf(v: Value, exact: boolean): string {
  if (v === null) return "-";
  switch (v.kind) {
    case "size":
      return exact ? String(v.n) : niceBytes(v.n);
    case "time":
      return exact ? String(v.n) : zfsDate(v.n);
    case "guid":
      return v.g.toString();
    case "guids":
      return v.g.length === 0 ? "none" : v.g.map((g) => g.toString()).join(",");
    case "text":
      return v.t;
  }
}

/** A value for --json: u64s as decimal strings, guids as 0x and 16 hex digits, absent as null. */
function jsonOf(v: Value): string | string[] | null {
  if (v === null) return null;
  const hex = (g: bigint) => `0x${g.toString(16).padStart(16, "0")}`;
  switch (v.kind) {
    case "size":
    case "time":
      return String(v.n);
    case "guid":
      return hex(v.g);
    case "guids":
      return v.g.map(hex);
    case "text":
      return v.t;
  }
}

function printJson(ctx: ListContext, entries: Entry[], props: Property[]): void {
  const datasets = entries.map((e) => {
    const properties: Record<string, string | string[] | null> = {};
    for (const p of props) {
      if (p.name !== "name" && p.name !== "type") properties[p.name] = jsonOf(p.get(ctx, e));
    }
    return { name: e.name, type: e.type, properties };
  });
  console.log(JSON.stringify({ datasets }));
}

function printTable(
  ctx: ListContext,
  entries: Entry[],
  props: Property[],
  o: { header: boolean; tabs: boolean; exact: boolean },
): void {
  const values = entries.map((e) => props.map((p) => p.get(ctx, e)));
  const rows = values.map((r) => r.map((v) => textOf(v, o.exact)));
  if (o.tabs) {
    for (const r of rows) console.log(r.join("\t"));
    return;
  }
  // zfs prints the header with the first row: nothing at all when there is none.
  if (rows.length === 0) return;
  const table = o.header ? [props.map((p) => p.header), ...rows] : rows;
  const widths = props.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  // Sizes are right-aligned, as zfs aligns numbers.
  const right = props.map((_, i) => values.some((r) => r[i]?.kind === "size"));
  for (const r of table) {
    console.log(
      r.map((c, i) =>
        right[i] ? c.padStart(widths[i]!) : i === r.length - 1 ? c : c.padEnd(widths[i]!)
      ).join("  "),
    );
  }
}

/** `--space`: the store's totals under the table. */
function printTotals(store: Store, exact: boolean): void {
  const t = storeSpace(store).totals;
  const files = packFileBytes(store);
  const n = (x: number) => (exact ? String(x) : niceBytes(x));
  console.log(
    `\nstore: ${t.blocks} blocks, ${n(t.stored_bytes)} stored (each block once), ` +
      `${n(files)} in pack files, ${n(Math.max(0, files - t.stored_bytes))} unused ` +
      `(zsend gc gives it back), ${n(t.logical_bytes)} referenced by all snapshots together`,
  );
}
