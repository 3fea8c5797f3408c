/**
 * The store's SQLite schema. Snapshots are materialised: each has its own object table and
 * block map, whose rows point at blocks kept once by content hash in append-only packs.
 *
 * @module
 */

/** Bumped when the schema changes; {@linkcode MIGRATIONS} bring older stores up to it. */
export const SCHEMA_VERSION = 4;

/** What runs SQL: the store's database. */
export interface SqlRunner {
  exec(sql: string): void;
  prepare(sql: string): { all(...args: never[]): unknown[] };
}

/** The columns the snapshots table got in schema 3. */
const SNAPSHOT_COLUMNS_3: [string, string][] = [
  ["redact_snaps", "TEXT"],
  ["redacted_ranges", "INTEGER NOT NULL DEFAULT 0"],
  ["large_blocks", "INTEGER NOT NULL DEFAULT 0"],
];

/** What takes a store from schema version N (the key) to N + 1: SQL, or a function of it. */
export const MIGRATIONS: Record<number, string | ((db: SqlRunner) => void)> = {
  // 2: blocks keep their fletcher-4, so that send need not read them to checksum them.
  1: "ALTER TABLE blocks ADD COLUMN f4 BLOB;",
  // 3: snapshots say whether they are redacted and whether their dataset holds large blocks.
  // Stores of before knew neither: a snapshot with redacted ranges is taken as redacted with
  // respect to unknown snapshots (''), one with blocks over 128 KiB as holding large blocks.
  2: (db) => {
    const have = new Set(
      (db.prepare("PRAGMA table_info(snapshots)").all() as { name: string }[]).map((c) => c.name),
    );
    for (const [name, type] of SNAPSHOT_COLUMNS_3) {
      if (!have.has(name)) db.exec(`ALTER TABLE snapshots ADD COLUMN ${name} ${type};`);
    }
    db.exec(`UPDATE snapshots SET redacted_ranges = 1, redact_snaps = '' WHERE EXISTS
  (SELECT 1 FROM block_map m WHERE m.snapshot = snapshots.id AND m.kind = 2);
UPDATE snapshots SET large_blocks = 1 WHERE EXISTS
  (SELECT 1 FROM block_map m WHERE m.snapshot = snapshots.id AND m.kind = 0 AND m.lsize > 131072);`);
  },
  // 4: partial receives (recv -s) are snapshot rows that hold their resume token.
  3: (db) => {
    const have = new Set(
      (db.prepare("PRAGMA table_info(snapshots)").all() as { name: string }[]).map((c) => c.name),
    );
    if (!have.has("resume_token")) db.exec("ALTER TABLE snapshots ADD COLUMN resume_token TEXT;");
  },
};

/** Every table and index, created when absent. */
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

-- A dataset: a filesystem or volume, or a clone of a snapshot.
CREATE TABLE IF NOT EXISTS datasets (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  objset_type INTEGER NOT NULL,
  origin INTEGER REFERENCES snapshots(id),
  created INTEGER NOT NULL
);

-- A snapshot received from a (sub)stream.
CREATE TABLE IF NOT EXISTS snapshots (
  id INTEGER PRIMARY KEY,
  dataset INTEGER NOT NULL REFERENCES datasets(id),
  name TEXT NOT NULL,
  guid TEXT NOT NULL,
  fromguid TEXT NOT NULL,
  creation_time INTEGER NOT NULL,
  parent INTEGER REFERENCES snapshots(id),
  features TEXT NOT NULL,
  begin_flags INTEGER NOT NULL,
  little_endian INTEGER NOT NULL,
  record_checksums INTEGER NOT NULL,
  received INTEGER NOT NULL,
  stream_bytes INTEGER NOT NULL,
  -- Redacted (zfs send --redact): the guids (hex, comma-separated) of the snapshots it is
  -- redacted with respect to; NULL when it is not redacted.
  redact_snaps TEXT,
  -- 1 when some of its ranges are redacted (block_map kind 2): those files cannot be read.
  redacted_ranges INTEGER NOT NULL DEFAULT 0,
  -- 1 when a block over 128 KiB was ever written into its dataset up to it (the dataset's
  -- large_blocks feature is active): incrementals onto it must be -L.
  large_blocks INTEGER NOT NULL DEFAULT 0,
  -- A partial receive (recv -s cut short): its receive_resume_token; NULL for a snapshot.
  -- A partial receive is no snapshot: only partialReceive() and list's partial rows see it.
  resume_token TEXT,
  UNIQUE (dataset, name),
  UNIQUE (dataset, guid)
);
CREATE INDEX IF NOT EXISTS snapshots_guid ON snapshots(guid);

-- The objects of each snapshot: the OBJECT record's fields, bonus, spill block.
CREATE TABLE IF NOT EXISTS objects (
  snapshot INTEGER NOT NULL,
  object INTEGER NOT NULL,
  type INTEGER NOT NULL,
  bonustype INTEGER NOT NULL,
  blksz INTEGER NOT NULL,
  bonuslen INTEGER NOT NULL,
  checksumtype INTEGER NOT NULL,
  compress INTEGER NOT NULL,
  dn_slots INTEGER NOT NULL,
  flags INTEGER NOT NULL,
  raw_bonuslen INTEGER NOT NULL,
  indblkshift INTEGER NOT NULL,
  nlevels INTEGER NOT NULL,
  nblkptr INTEGER NOT NULL,
  maxblkid INTEGER NOT NULL,
  bonus BLOB NOT NULL,
  spill_block INTEGER,
  spill_meta BLOB,
  PRIMARY KEY (snapshot, object)
) WITHOUT ROWID;

-- The blocks of each object of each snapshot, by byte offset.
-- kind: 0 WRITE, 1 WRITE_EMBEDDED, 2 redacted range (no block).
-- meta: the rest of the record needed to send it again (see block_meta.ts).
CREATE TABLE IF NOT EXISTS block_map (
  snapshot INTEGER NOT NULL,
  object INTEGER NOT NULL,
  offset INTEGER NOT NULL,
  lsize INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  block INTEGER,
  meta BLOB NOT NULL,
  PRIMARY KEY (snapshot, object, offset)
) WITHOUT ROWID;

-- Each distinct block's bytes, kept once. hash: the store's content hash (meta block_hash);
-- f4: the bytes' fletcher-4 over little-endian words (four u64 LE), when the stream gave it.
CREATE TABLE IF NOT EXISTS blocks (
  id INTEGER PRIMARY KEY,
  hash BLOB NOT NULL UNIQUE,
  pack INTEGER NOT NULL,
  offset INTEGER NOT NULL,
  length INTEGER NOT NULL,
  f4 BLOB
);

-- Raw (encrypted) snapshots: the BEGIN payload as received (its crypt_keydata holds the
-- dataset's master and HMAC keys, wrapped: useless without the user's key or passphrase).
CREATE TABLE IF NOT EXISTS snapshot_crypt (
  snapshot INTEGER PRIMARY KEY,
  begin_nvlist BLOB NOT NULL
);

-- Encrypted (raw) datasets: whether each is its own encryption root (0: it inherits the key of
-- its nearest encrypted ancestor, as a raw -R stream without is_encroot says), and the
-- keylocation a raw -R stream gave it. A raw dataset without a row is its own root.
CREATE TABLE IF NOT EXISTS dataset_crypt (
  dataset INTEGER PRIMARY KEY,
  encroot INTEGER NOT NULL,
  keylocation TEXT
);

-- The properties a -R or -p stream's header carried for a dataset (its fss entry's props
-- nvlist, XDR-encoded as it came): list -o shows them, send -R and -p send them back.
CREATE TABLE IF NOT EXISTS dataset_props (
  dataset INTEGER PRIMARY KEY,
  props BLOB NOT NULL
);

-- Raw snapshots: each dnode block's crypt parameters (the OBJECT_RANGE record's salt, iv, mac
-- and flags, little-endian, as meta), by its first object. Carried forward like objects.
CREATE TABLE IF NOT EXISTS object_ranges (
  snapshot INTEGER NOT NULL,
  firstobj INTEGER NOT NULL,
  numslots INTEGER NOT NULL,
  meta BLOB NOT NULL,
  PRIMARY KEY (snapshot, firstobj)
) WITHOUT ROWID;

-- Pack files and how much of each is committed; bytes past it are from a failed receive.
CREATE TABLE IF NOT EXISTS packs (
  id INTEGER PRIMARY KEY,
  committed INTEGER NOT NULL
);
`;
