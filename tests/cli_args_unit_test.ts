/**
 * The argument checks of cli/args.ts in process, for the arguments that must never reach a
 * verb: an empty path would put what the verb writes under `/`.
 */

import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import {
  firstMissing,
  nameArg,
  notDirectoryArg,
  outputDirArg,
  storeArg,
  streamInputArg,
} from "../cli/args.ts";
import { UsageError } from "../cli/common.ts";

Deno.test("the argument checks refuse an empty path", () => {
  assertThrows(() => outputDirArg(""), UsageError, "DIR is an empty string");
  assertThrows(() => storeArg("", { create: true }), UsageError, "STORE is an empty string");
  assertThrows(() => storeArg(""), UsageError, "STORE is an empty string");
  assertThrows(() => streamInputArg(""), UsageError, "FILE is an empty string");
  assertThrows(() => notDirectoryArg("", "IMAGE"), UsageError, "IMAGE is an empty string");
});

Deno.test("storeArg() tells a new, an empty and a foreign directory apart", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "zsend-args-" });
  try {
    assertEquals(storeArg(`${tmp}/new`, { create: true }), "absent");
    assertEquals(storeArg(tmp, { create: true }), "empty");
    await Deno.writeTextFile(`${tmp}/x`, "");
    assertThrows(() => storeArg(tmp, { create: true }), UsageError, "is a directory that is not");
    assertThrows(() => storeArg(`${tmp}/x`), UsageError, "is not a directory");
    assertThrows(() => storeArg(`${tmp}/none`), Deno.errors.NotFound, "no such directory");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("firstMissing() finds the highest directory a mkdir -p would make", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "zsend-args-" });
  try {
    assertEquals(firstMissing(tmp), null);
    assertEquals(firstMissing(`${tmp}/a`), `${tmp}/a`);
    assertEquals(firstMissing(`${tmp}/a/b/c`), `${tmp}/a`);
    assertEquals(firstMissing(`${tmp}/a/b/c/`), `${tmp}/a`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("nameArg() names the argument and allows '%' only for look-ups", () => {
  assertEquals(nameArg("a/fs@s1", "snapshot", "DATASET@SNAP"), "a/fs@s1");
  assertThrows(
    () => nameArg("a/fs%x@s1", "snapshot", "TARGET"),
    UsageError,
    "TARGET 'a/fs%x@s1' is not a valid snapshot name: invalid character '%'",
  );
  assertEquals(nameArg("a/fs%x@s1", "snapshot", "DATASET@SNAP", { lookup: true }), "a/fs%x@s1");
});

Deno.test("the library refuses an empty directory name too", async () => {
  const { prepareTarget } = await import("../io/extract.ts");
  const { Store } = await import("../io/store/store.ts");
  await assertRejects(() => prepareTarget(""), TypeError, "the target directory's name is empty");
  assertThrows(
    () => Store.open("", { create: true }),
    TypeError,
    "store directory's name is empty",
  );
});
