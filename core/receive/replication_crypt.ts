/**
 * The encryption hierarchy a raw `-R` stream's header carries (libzfs `send_iterate_fs`): the
 * header says `raw`, and each encrypted filesystem that is its own encryption root says
 * `is_encroot`, with its `keylocation` among its `props`. A child without `is_encroot`
 * inherits the key of its parent (`recv_fix_encryption_hierarchy` makes it so), except the top
 * of the receive, which the kernel never makes inherit.
 *
 * @module
 */

import type { NvObject, NvPlainValue } from "../stream/nvlist.ts";

/** What a raw `-R` header says of one filesystem's encryption. */
export interface FsCrypt {
  /** It is its own encryption root (`is_encroot`). */
  encroot: boolean;
  /** Its `keylocation` property as the header's `props` give it, or null. */
  keylocation: string | null;
}

function isObject(v: NvPlainValue | undefined): v is NvObject {
  return typeof v === "object" && v !== null && !(v instanceof Uint8Array) && !Array.isArray(v);
}

/**
 * Each filesystem's encryption facts, by the guid of every snapshot the header lists for it
 * (a substream's toguid finds its filesystem); null when the header is not of a raw send.
 *
 * @example
 * ```ts
 * import { replicationCrypt } from "./replication_crypt.ts";
 * const m = replicationCrypt({
 *   tosnap: "r1", raw: true,
 *   fss: { "0x1": { name: "p/e", is_encroot: true, props: { keylocation: "prompt" },
 *     snaps: { r1: 7n } } },
 * });
 * if (m?.get(7n)?.encroot !== true || m.get(7n)?.keylocation !== "prompt") throw new Error();
 * ```
 */
export function replicationCrypt(header: NvObject): Map<bigint, FsCrypt> | null {
  if (header["raw"] !== true) return null;
  const out = new Map<bigint, FsCrypt>();
  const fss = header["fss"];
  if (!isObject(fss)) return out;
  for (const fs of Object.values(fss)) {
    if (!isObject(fs) || !isObject(fs["snaps"])) continue;
    const props = fs["props"];
    const keylocation = isObject(props) && typeof props["keylocation"] === "string"
      ? props["keylocation"]
      : null;
    const facts = { encroot: fs["is_encroot"] === true, keylocation };
    for (const guid of Object.values(fs["snaps"])) {
      if (typeof guid === "bigint") out.set(guid, facts);
      else if (typeof guid === "number") out.set(BigInt(guid), facts);
    }
  }
  return out;
}
