/**
 * The properties a `-R` (or `-p`) stream's header carries for each filesystem (libzfs
 * `send_iterate_fs`: the `props` nvlist of each `fss` entry, the dataset's locally set
 * properties). A store keeps them so that `list -o` shows them and `send -R`/`-p` sends them
 * back, as `zfs receive` sets them and `zfs send` sends them.
 *
 * @module
 */

import { DATA_TYPE, encodeNvlist, type NvList, nvlistLookup } from "../stream/nvlist.ts";

/**
 * Each filesystem's `props` (XDR-encoded, as they came) by the guid of every snapshot the
 * header lists for it (a substream's toguid finds its filesystem). Filesystems without
 * properties are left out.
 *
 * @example
 * ```ts
 * import { decodeNvlist, encodeNvlist, nv } from "../stream/nvlist.ts";
 * import { replicationProps } from "./replication_props.ts";
 * const header = nv.list(
 *   nv.string("tosnap", "r1"),
 *   nv.nvlist("fss", nv.list(nv.nvlist("0x1", nv.list(
 *     nv.string("name", "p/fs"),
 *     nv.nvlist("props", nv.list(nv.string("mountpoint", "/srv"))),
 *     nv.nvlist("snaps", nv.list(nv.uint64("r1", 7n))),
 *   )))),
 * );
 * const props = replicationProps(decodeNvlist(encodeNvlist(header, { encoding: "xdr" })));
 * const back = decodeNvlist(props.get(7n)!);
 * if (back.pairs[0]?.name !== "mountpoint") throw new Error();
 * ```
 */
export function replicationProps(header: NvList): Map<bigint, Uint8Array> {
  const out = new Map<bigint, Uint8Array>();
  const fss = nvlistLookup(header, "fss");
  if (fss === undefined || fss.type !== DATA_TYPE.NVLIST) return out;
  for (const entry of fss.value.pairs) {
    if (entry.type !== DATA_TYPE.NVLIST) continue;
    const props = nvlistLookup(entry.value, "props");
    const snaps = nvlistLookup(entry.value, "snaps");
    if (props?.type !== DATA_TYPE.NVLIST || props.value.pairs.length === 0) continue;
    if (snaps?.type !== DATA_TYPE.NVLIST) continue;
    const bytes = encodeNvlist(props.value, { encoding: "xdr" });
    for (const s of snaps.value.pairs) {
      if (s.type === DATA_TYPE.UINT64) out.set(BigInt(s.value), bytes);
    }
  }
  return out;
}
