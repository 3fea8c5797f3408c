/**
 * `zsend drop-record [-v] OBJECT,OFFSET...`: the stream on stdin without the WRITE and
 * WRITE_EMBEDDED records named, checksums recomputed, on stdout (`zstream drop_record`).
 *
 * @module
 */

import { DROP_USAGE, runSurgery } from "./surgery.ts";

/** Usage of the verb. */
export const USAGE: string = DROP_USAGE;

/** Runs the verb; returns the exit status. */
export function main(args: string[]): Promise<number> {
  return runSurgery("drop-record", args);
}
