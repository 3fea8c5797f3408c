/**
 * The read side of a received snapshot, as the ZPL layer sees it: objects with their bonus
 * buffers, and blocks of logical (decompressed) data. The store implements it; so can an
 * in-memory receive of one stream.
 *
 * @module
 */

/** One object (dnode) of a snapshot. */
export interface ObjectInfo {
  /** Object number (below 2^48, so exact as a number). */
  object: number;
  /** DMU object type (`dmu_object_type_t`). */
  type: number;
  /** Type of the bonus buffer (17 znode, 44 SA, ...). */
  bonustype: number;
  /** Data block size in bytes. */
  blksz: number;
  /** Bonus length in bytes. */
  bonuslen: number;
  /** The bonus buffer: `bonuslen` bytes (the stream's 8-byte padding removed). */
  bonus: Uint8Array;
  /** Highest block id the object may have (from the OBJECT record; 0 in old streams). */
  maxblkid: number;
  /** Dnode slots (1 unless large dnodes). */
  dnSlots: number;
  /** The spill block (SA attributes that do not fit in the bonus), logical bytes, or null. */
  spill: Uint8Array | null;
}

/** A snapshot whose objects and blocks can be read. */
export interface SnapshotView {
  /** Objset type: 2 filesystem, 3 volume. */
  readonly objsetType: number;
  /** Byte order of the sender's data (bonus buffers, ZAP and SA blocks). */
  readonly littleEndian: boolean;
  /** The object, or null when it is not allocated in this snapshot. */
  object(id: number): Promise<ObjectInfo | null>;
  /**
   * Logical data of block `blkid` of an object (`blksz` bytes), or null for a hole. Throws
   * `TypeError` with a clear message for data it cannot decode (encrypted, or a codec this
   * implementation lacks).
   */
  readBlock(id: number, blkid: number): Promise<Uint8Array | null>;
  /** Every allocated object number, in increasing order. */
  objectIds(): AsyncIterable<number>;
}
