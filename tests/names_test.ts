/**
 * Dataset and snapshot names: what OpenZFS's `zfs_namecheck.c` takes and refuses.
 */

import { assertEquals, assertThrows } from "@std/assert";
import { checkName, MAX_NAME_LEN, nameProblem, quoteName } from "../core/receive/names.ts";

Deno.test("nameProblem() takes the names ZFS takes", () => {
  for (
    const [name, kind] of [
      ["tank", "dataset"],
      ["tank/fs", "dataset"],
      ["tank/a-b_c.d:e f", "dataset"],
      ["tank/fs@s1", "snapshot"],
      ["tank/fs@auto-2024-01-01_00:00", "snapshot"],
      ["Tank9/.hidden/..x@.y", "snapshot"],
      ["tank/fs", "dataset or snapshot"],
      ["tank/fs@s", "dataset or snapshot"],
      [`t/${"x".repeat(MAX_NAME_LEN - 3)}`, "dataset"],
      [Array(MAX_NAME_LEN / 8).fill("a").join("/"), "dataset"],
    ] as const
  ) assertEquals(nameProblem(name, kind), null, `${name} (${kind})`);
});

Deno.test("nameProblem() refuses what ZFS refuses, and says why", () => {
  for (
    const [name, kind, why] of [
      ["", "dataset", "empty name"],
      ["tank/new@a@b", "snapshot", "more than one '@'"],
      ["tank@a@", "snapshot", "more than one '@'"],
      ["bad#name", "dataset", "invalid character '#' (it marks a bookmark)"],
      ["tank/fs#b", "dataset or snapshot", "invalid character '#' (it marks a bookmark)"],
      ["tank//fs", "dataset", "empty component"],
      ["/tank", "dataset", "leading '/'"],
      ["tank/", "dataset", "trailing '/'"],
      ["tank/fs@", "snapshot", "empty component"],
      ["@s", "snapshot", "empty component"],
      ["tank/fs@a/b", "snapshot", "'/' after '@'"],
      ["tank/./fs", "dataset", "component '.'"],
      ["tank/..", "dataset", "component '..'"],
      ["tank/fs@..", "snapshot", "component '..'"],
      ["tank/f*s", "dataset", "invalid character '*'"],
      ["tank/f\ns", "dataset", "invalid character U+000A"],
      ["tank/fé", "dataset", "invalid character 'é'"],
      ["tank/%recv", "dataset", "invalid character '%'"],
      ["tank/fs@s", "dataset", "'@' in a dataset name"],
      ["tank/fs", "snapshot", "no '@' (expected DATASET@SNAP)"],
      [
        `t/${"x".repeat(MAX_NAME_LEN - 2)}`,
        "dataset",
        "too long (256 bytes; ZFS takes at most 255)",
      ],
      ["x".repeat(300), "dataset", "too long (300 bytes; ZFS takes at most 255)"],
      [Array(51).fill("a").join("/"), "dataset", "nested too deep (50 levels; ZFS takes 49)"],
    ] as const
  ) assertEquals(nameProblem(name, kind), why, JSON.stringify(name));
});

Deno.test("nameProblem() takes '%' only in names ZFS made itself", () => {
  assertEquals(nameProblem("tank/fs%recv@s", "snapshot", { internal: true }), null);
  assertEquals(nameProblem("tank/fs%recv@s", "snapshot"), "invalid character '%'");
});

Deno.test("checkName() throws a TypeError that names the name and the kind", () => {
  checkName("tank/fs@s", "snapshot");
  assertThrows(
    () => checkName("tank//fs", "dataset"),
    TypeError,
    "invalid dataset name 'tank//fs': empty component",
  );
  assertThrows(
    () => checkName("a@b@c", "snapshot"),
    TypeError,
    "invalid snapshot name 'a@b@c': more than one '@'",
  );
});

Deno.test("quoteName() escapes control characters and shortens long names", () => {
  assertEquals(quoteName("a\x1bb"), "a\\x1bb");
  assertEquals(quoteName("x".repeat(300)).length, 63);
});
