/**
 * `zsend list [--json] [--space] STORE`: the datasets and snapshots in a store.
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { Store } from "../io/store/store.ts";
import { snapshotCryptInfo } from "../io/store/crypt_view.ts";
import { storeSpace } from "../io/store/space.ts";
import { encryptionRoot } from "../io/store/dataset_crypt.ts";
import { storeArg } from "./args.ts";
import { rejectUnknown, UsageError } from "./common.ts";

/** Usage of the verb. */
export const USAGE = "zsend list [--json] [--space] STORE";

const TYPES: Record<number, string> = { 2: "filesystem", 3: "volume" };

/** Runs the verb; returns the exit status. */
export function main(args: string[]): Promise<number> {
  return Promise.resolve(list(args));
}

function list(args: string[]): number {
  const flags = parseArgs(args, {
    boolean: ["json", "space", "help"],
    unknown: rejectUnknown,
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const [dir, ...extra] = flags._.map(String);
  if (dir === undefined || extra.length > 0) throw new UsageError("list takes one STORE");
  storeArg(dir);
  const store = Store.open(dir);
  try {
    const space = flags.space ? storeSpace(store) : null;
    const rows = [];
    for (const d of store.datasets()) {
      const origin = d.origin === null ? null : store.snapshot(d.origin);
      for (const s of store.snapshots(d.id)) {
        const crypt = snapshotCryptInfo(store, s.id);
        rows.push({
          name: `${d.name}@${s.name}`,
          type: TYPES[d.objsetType] ?? `objset type ${d.objsetType}`,
          guid: s.guid.toString(16),
          fromguid: s.fromguid === 0n ? null : s.fromguid.toString(16),
          creation: new Date(s.creationTime * 1000).toISOString(),
          received: new Date(s.received * 1000).toISOString(),
          origin: origin === null ? null : `${origin.datasetName}@${origin.name}`,
          stream_bytes: s.streamBytes,
          // Redacted (zfs send --redact): the snapshots it is redacted with respect to.
          redacted: s.redactSnaps === null ? null : s.redactSnaps.map((g) => g.toString(16)),
          // Some ranges were left out of its stream: the files holding them cannot be read.
          redacted_ranges: s.redactedRanges,
          large_blocks: s.largeBlocks,
          // Raw (zfs send -w): kept sealed; extract, ls, cat and verify open it with the key.
          encryption: crypt === null ? null : {
            suite: crypt.suite,
            keyformat: crypt.keyformat,
            key_guid: crypt.guid.toString(16),
            encryption_root: encryptionRoot(store, d.name),
            sealed: true,
          },
          ...(space
            ? { referenced: space.referenced.get(s.id) ?? 0, unique: space.unique.get(s.id) ?? 0 }
            : {}),
        });
      }
    }
    // Partial receives (recv -s cut short): no snapshot yet, resumable by their token.
    const partial = store.partialReceives().map((p) => ({
      name: `${p.datasetName}@${p.name}`,
      guid: p.guid.toString(16),
      fromguid: p.fromguid === 0n ? null : p.fromguid.toString(16),
      stream_bytes: p.streamBytes,
      receive_resume_token: p.token,
    }));
    if (flags.json) {
      console.log(JSON.stringify({
        snapshots: rows,
        ...(partial.length > 0 ? { partial_receives: partial } : {}),
        ...(space ? { store: space.totals } : {}),
      }));
      return 0;
    }
    const header = ["NAME", "TYPE", "GUID", "CREATION", "ORIGIN"];
    if (space) header.push("REFER", "UNIQUE");
    const redaction = rows.some((r) => r.redacted !== null || r.redacted_ranges);
    if (redaction) header.push("REDACTED");
    const encrypted = rows.some((r) => r.encryption !== null);
    if (encrypted) header.push("ENCRYPTION");
    const table = [
      header,
      ...rows.map((r) => {
        const cells = [r.name, r.type, r.guid, r.creation.replace(".000Z", "Z"), r.origin ?? "-"];
        if (space) cells.push(String(r.referenced), String(r.unique));
        if (redaction) {
          cells.push(
            r.redacted !== null
              ? `redacted (w.r.t. ${r.redacted.length} snapshot${
                r.redacted.length === 1 ? "" : "s"
              })`
              : r.redacted_ranges
              ? "has redacted ranges"
              : "-",
          );
        }
        if (encrypted) {
          const e = r.encryption;
          cells.push(
            e === null
              ? "-"
              : `${e.suite}, keyformat ${e.keyformat}, root ${e.encryption_root}, sealed (raw)`,
          );
        }
        return cells;
      }),
    ];
    const widths = header.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
    for (const row of table) {
      console.log(row.map((c, i) => i === row.length - 1 ? c : c.padEnd(widths[i]!)).join("  "));
    }
    for (const p of partial) {
      console.log(
        `partial receive of ${p.name} (${p.stream_bytes} bytes): receive_resume_token ` +
          p.receive_resume_token,
      );
    }
    if (space) {
      const t = space.totals;
      console.log(
        `\nstore: ${t.blocks} blocks, ${t.stored_bytes} bytes stored once, ` +
          `${t.pack_bytes} bytes in packs (${t.unused_bytes} unused), ` +
          `${t.logical_bytes} bytes referenced by all snapshots together`,
      );
    }
    return 0;
  } finally {
    store.close();
  }
}
