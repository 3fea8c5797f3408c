/**
 * The order in which a ZAP cursor visits entries (OpenZFS `zap_cursor_retrieve`): by hash,
 * then by collision differentiator. Micro ZAPs store no hash; it is the salted CRC-64 of the
 * name that `zap_hash` computes, keeping its top 28 bits (48 with `ZAP_FLAG_HASH64`). What
 * depends on the order is `zap_value_search`: the first entry whose value matches, the name
 * `zfs diff` prints for a file with several names in one directory.
 *
 * @module
 */

import { type Zap, ZAP_FLAG, type ZapEntry, ZapError } from "./zap.ts";

/** `ZFS_CRC64_POLY`. */
const CRC64_POLY = 0xC96C5795D7870F42n;
const MASK64 = (1n << 64n) - 1n;

let table: bigint[] | null = null;

function crcTable(): bigint[] {
  if (table !== null) return table;
  table = [];
  for (let i = 0; i < 256; i++) {
    let c = BigInt(i);
    for (let j = 0; j < 8; j++) c = (c >> 1n) ^ ((c & 1n) === 1n ? CRC64_POLY : 0n);
    table.push(c);
  }
  return table;
}

/**
 * The hash a ZAP gives a string key (`zap_hash` without normalisation): the CRC-64 of the
 * name's bytes (not its NUL) started from the salt, its low `64 - hashBits` bits cleared.
 *
 * @param salt the ZAP's salt
 * @param name the key's bytes
 * @param hashBits 28, or 48 for `ZAP_FLAG_HASH64`
 * @example
 * ```ts
 * import { zapHash } from "./zap_cursor.ts";
 * const h = zapHash(0x1234n, new TextEncoder().encode("a"), 28);
 * if ((h & ((1n << 36n) - 1n)) !== 0n) throw new Error("only the top 28 bits are kept");
 * ```
 */
export function zapHash(salt: bigint, name: Uint8Array, hashBits: number): bigint {
  const t = crcTable();
  let h = salt & MASK64;
  for (const b of name) h = (h >> 8n) ^ t[Number((h ^ BigInt(b)) & 0xFFn)]!;
  return h & ~((1n << BigInt(64 - hashBits)) - 1n) & MASK64;
}

/**
 * A ZAP's entries in cursor order, or null when it cannot be known (a micro ZAP that
 * normalises its names, whose hashes are of the normalised form).
 *
 * @param zap a ZAP as `readZap` returns it
 * @example
 * ```ts
 * import { cursorOrder } from "./zap_cursor.ts";
 * const e = (hash: bigint, cd: number) => ({
 *   name: "", nameBytes: new Uint8Array(), value: [1n], intSize: 8, hash, cd,
 * });
 * const order = cursorOrder({
 *   object: 3, micro: false, salt: 1n, normflags: 0n, flags: 0n,
 *   entries: [e(5n, 1), e(2n, 0), e(5n, 0)],
 * })!;
 * if (order.map((x) => `${x.hash}:${x.cd}`).join() !== "2:0,5:0,5:1") throw new Error();
 * ```
 */
export function cursorOrder(zap: Zap): ZapEntry[] | null {
  const bits = (zap.flags & BigInt(ZAP_FLAG.HASH64)) !== 0n ? 48 : 28;
  if (zap.micro && zap.normflags !== 0n) return null;
  const keyed = zap.entries.map((e) => ({
    e,
    hash: e.hash ?? zapHash(zap.salt, e.nameBytes, bits),
    cd: e.cd ?? 0,
  }));
  keyed.sort((a, b) => a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : a.cd - b.cd);
  return keyed.map((k) => k.e);
}

/**
 * `zap_value_search`: the first entry, in cursor order, whose first integer masked by `mask`
 * is `value`; null when none is.
 *
 * @throws {ZapError} when several entries match and the cursor order cannot be known
 * @example
 * ```ts
 * import { zapValueSearch } from "./zap_cursor.ts";
 * const e = (name: string, v: bigint, hash: bigint) => ({
 *   name, nameBytes: new TextEncoder().encode(name), value: [v], intSize: 8, hash, cd: 0,
 * });
 * const zap = {
 *   object: 4, micro: false, salt: 1n, normflags: 0n, flags: 0n,
 *   entries: [e("b", 7n, 9n), e("a", 7n, 3n), e("c", 8n, 1n)],
 * };
 * if (zapValueSearch(zap, 7n, (1n << 48n) - 1n)?.name !== "a") throw new Error();
 * if (zapValueSearch(zap, 6n, (1n << 48n) - 1n) !== null) throw new Error();
 * ```
 */
export function zapValueSearch(zap: Zap, value: bigint, mask: bigint): ZapEntry | null {
  const first = (e: ZapEntry): bigint | null =>
    e.value.length === 0 ? null : e.value instanceof Uint8Array ? BigInt(e.value[0]!) : e.value[0]!;
  const matches = (e: ZapEntry) => {
    const v = first(e);
    return v !== null && (v & mask) === (value & mask);
  };
  const ordered = cursorOrder(zap);
  if (ordered !== null) return ordered.find(matches) ?? null;
  const found = zap.entries.filter(matches);
  if (found.length > 1) {
    throw new ZapError(
      zap.object,
      `${found.length} names hold ${value}, and the order of a normalising micro ZAP is unknown`,
    );
  }
  return found[0] ?? null;
}
