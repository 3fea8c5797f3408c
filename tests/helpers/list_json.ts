/**
 * `zsend list --json` as the tests read it: one object `{"datasets":[...]}` whose rows carry
 * zfs's property names.
 *
 * @module
 */

import { assertEquals } from "@std/assert";
import { runZsend } from "../_run.ts";

/** A row of `list --json`. */
export interface ListedRow {
  name: string;
  type: "filesystem" | "volume" | "snapshot";
  properties: Record<string, string | string[] | null>;
}

/** Every dataset and snapshot of a store (`list --json -t all`, plus `args`). */
export async function listJson(store: string, ...args: string[]): Promise<ListedRow[]> {
  const r = await runZsend(["list", "--json", "-t", "all", ...args, store]);
  assertEquals(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).datasets;
}

/** The names of a store's snapshots, in list's order. */
export async function snapshotNames(store: string): Promise<string[]> {
  return (await listJson(store)).filter((r) => r.type === "snapshot").map((r) => r.name);
}

/** The datasets holding a partial receive: name, token and the stream bytes applied. */
export async function partialReceives(
  store: string,
): Promise<{ name: string; receive_resume_token: string; stream_bytes: string }[]> {
  return (await listJson(store)).filter((r) => r.properties.receive_resume_token != null).map(
    (r) => ({
      name: r.name,
      receive_resume_token: r.properties.receive_resume_token as string,
      stream_bytes: r.properties.stream_bytes as string,
    }),
  );
}
