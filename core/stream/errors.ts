/**
 * The error every stream fault becomes: it names the record and where it starts.
 *
 * @module
 */

import { recordTypeName } from "./constants.ts";

/** Where in a stream a fault was found. */
export interface StreamPosition {
  /** 0-based index of the record. */
  index: number;
  /** The record's type number, or -1 when the header could not be read. */
  type: number;
  /** Byte offset of the record's start in the stream. */
  offset: number;
}

/**
 * A damaged, truncated or hostile stream: the message reads
 * `record 1834 (WRITE at byte 5242880): checksum mismatch`.
 *
 * @example
 * ```ts
 * import { StreamError } from "jsr:@zsend/zsend";
 * const e = new StreamError({ index: 3, type: 3, offset: 936 }, "checksum mismatch");
 * if (e.message !== "record 3 (WRITE at byte 936): checksum mismatch") throw new Error();
 * ```
 */
export class StreamError extends SyntaxError {
  /** 0-based index of the faulty record. */
  readonly index: number;
  /** Its type number (-1 when unknown). */
  readonly type: number;
  /** Byte offset of the record's start. */
  readonly offset: number;
  /** What is wrong, without the position. */
  readonly fault: string;

  /**
   * An error that names the record and what is wrong with it.
   *
   * @param at the record
   * @param fault what is wrong with it
   */
  constructor(at: StreamPosition, fault: string) {
    const what = at.type < 0 ? "record" : recordTypeName(at.type);
    super(`record ${at.index} (${what} at byte ${at.offset}): ${fault}`);
    this.name = "StreamError";
    this.index = at.index;
    this.type = at.type;
    this.offset = at.offset;
    this.fault = fault;
  }
}
