/**
 * `node:crypto`, loaded on first use. A static import of it (or any touch of the global
 * `process`) loads Deno's Node compatibility layer at start: about 20 ms and 8 MiB for every
 * verb, where only a few paths hash with SHA-256 or decrypt without libcrypto.
 *
 * @module
 */

type NodeCrypto = typeof import("node:crypto");

let loaded: NodeCrypto | null = null;

/**
 * The `node:crypto` module, loaded synchronously the first time it is asked for.
 *
 * @example
 * ```ts
 * import { nodeCrypto } from "./node_crypto.ts";
 * const hex = nodeCrypto().createHash("sha256").update("abc").digest("hex");
 * if (!hex.startsWith("ba7816bf")) throw new Error(hex);
 * ```
 */
export function nodeCrypto(): NodeCrypto {
  if (loaded === null) {
    const process = (globalThis as unknown as {
      process: { getBuiltinModule(id: string): unknown };
    }).process;
    loaded = process.getBuiltinModule("node:crypto") as NodeCrypto;
  }
  return loaded;
}
