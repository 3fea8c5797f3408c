/**
 * The running hash behind an image's content guid (see io/image.ts): SHA-256 over
 * `zsend-volume-guid-v2`, the block size and the volume size (u64 little-endian each), and each
 * block's fletcher-4 (four u64 little-endian), the first 64 bits of it little-endian.
 *
 * Where the checksums are kept anyway (to send the blocks by reference), they are hashed at the
 * end in one go with WebCrypto, which is built in; otherwise as they come with `node:crypto`,
 * loaded only then: loading it costs every start-up ~15 ms.
 *
 * @module
 */

const PREFIX = "zsend-volume-guid-v2";
/** The prefix and the two sizes; the checksums follow at a multiple of 8 (after a 4-byte pad). */
const PAD = 4;
const HEAD = PREFIX.length + 16;

/** Something that takes bytes and gives their SHA-256 in the end. */
interface Sha256 {
  update(data: Uint8Array): void;
  digest(): Promise<Uint8Array>;
}

/**
 * A content guid being taken, block by block.
 *
 * @example
 * ```ts
 * import { GuidHash } from "./guid_hash.ts";
 * const sums = new BigUint64Array([1n, 1n, 1n, 1n, 0n, 0n, 0n, 0n]);
 * const kept = await GuidHash.open(4096, 8192, true);
 * kept.blocks(sums);
 * const streamed = await GuidHash.open(4096, 8192, false);
 * streamed.blocks(sums.subarray(0, 4));
 * streamed.blocks(sums.subarray(4));
 * if (await kept.guid() !== await streamed.guid()) throw new Error();
 * if (kept.kept?.join() !== sums.join()) throw new Error();
 * ```
 */
export class GuidHash {
  /** Every block's checksum in order, when kept (filled as blocks are added); else null. */
  readonly kept: BigUint64Array | null;
  readonly #message: Uint8Array<ArrayBuffer> | null;
  readonly #stream: Sha256 | null;
  #added = 0;

  private constructor(head: Uint8Array, blocks: number, stream: Sha256 | null) {
    this.#stream = stream;
    if (stream !== null) {
      stream.update(head);
      this.#message = null;
      this.kept = null;
      return;
    }
    const message = new Uint8Array(PAD + HEAD + blocks * 32);
    message.set(head, PAD);
    this.#message = message;
    this.kept = new BigUint64Array(message.buffer, PAD + HEAD, blocks * 4);
  }

  /**
   * A hash for a volume of `volsize` bytes in blocks of `blockSize`; `keep` keeps every block's
   * checksum (32 bytes a block) in {@linkcode GuidHash.kept}.
   */
  static async open(blockSize: number, volsize: number, keep: boolean): Promise<GuidHash> {
    const head = new Uint8Array(HEAD);
    head.set(new TextEncoder().encode(PREFIX));
    const v = new DataView(head.buffer);
    v.setBigUint64(PREFIX.length, BigInt(blockSize), true);
    v.setBigUint64(PREFIX.length + 8, BigInt(volsize), true);
    const blocks = Math.floor(volsize / blockSize);
    return new GuidHash(head, blocks, keep ? null : await nodeSha256());
  }

  /** Adds the checksums of the next blocks (four u64 each). */
  blocks(sums: BigUint64Array): void {
    if (this.#stream !== null) {
      this.#stream.update(new Uint8Array(sums.buffer, sums.byteOffset, sums.byteLength));
    } else {
      this.kept!.set(sums, this.#added * 4);
    }
    this.#added += sums.length / 4;
  }

  /** The guid of the blocks added (never 0). */
  async guid(): Promise<bigint> {
    const d = this.#stream !== null ? await this.#stream.digest() : new Uint8Array(
      await crypto.subtle.digest(
        "SHA-256",
        this.#message!.subarray(PAD, PAD + HEAD + this.#added * 32),
      ),
    );
    const g = new DataView(d.buffer, d.byteOffset, 8).getBigUint64(0, true);
    return g === 0n ? 1n : g;
  }
}

async function nodeSha256(): Promise<Sha256> {
  const { createHash } = await import("node:crypto");
  const h = createHash("sha256");
  return {
    update: (data) => void h.update(data),
    digest: () => Promise.resolve(new Uint8Array(h.digest())),
  };
}
