/**
 * `zsend decompress [-v] OBJECT,OFFSET[,TYPE]...`: the stream on stdin with the WRITE records
 * named decompressed (or their compression type reset), checksums recomputed, on stdout
 * (`zstream decompress`).
 *
 * @module
 */

import { DECOMPRESS_USAGE, runSurgery } from "./surgery.ts";

/** Usage of the verb. */
export const USAGE: string = DECOMPRESS_USAGE;

/** Runs the verb; returns the exit status. */
export function main(args: string[]): Promise<number> {
  return runSurgery("decompress", args);
}
