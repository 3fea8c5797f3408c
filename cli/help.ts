/**
 * What `zsend help VERB`, `zsend VERB -h` and `zsend VERB --help` print: the verb's usage line
 * (from its module), what it does, and every flag the usage line names.
 *
 * @module
 */

import { PROPERTIES } from "./list_props.ts";

/** What a verb does, and what each of its flags does. */
export interface VerbHelp {
  /** A paragraph or two. */
  about: string;
  /** `[spelling, meaning]`: `["-q, --quiet", "print nothing"]`. */
  flags: [string, string][];
}

/** The help of each verb, by the name it is called by. */
export const VERB_HELP: Record<string, VerbHelp> = {
  dump: {
    about:
      `Prints the records of a stream as OpenZFS's zstream dump does (BEGIN, END, the nvlist of a
compound stream, the SUMMARY). Reads stdin when FILE is - or absent. A damaged stream ends with a
message on stderr and status 1.`,
    flags: [
      ["-v", "every record, not only BEGIN and END"],
      ["-vv", "every record and its checksum"],
      ["-C", "do not verify checksums"],
      ["-d", "every record, its checksum and its payload in hex"],
      [
        "--json",
        "one JSON object per record, then a summary object (docs/json-schema.json; an error " +
        "as {ok: false, error} on stdout too)",
      ],
      [
        "--progress",
        "progress on stderr: on a terminal one line redrawn (unless stdout is that terminal); elsewhere a plain line every 5 s and one at the end, only with this flag",
      ],
    ],
  },
  verify: {
    about:
      `Proves a stream intact: every record checksum and END checksum, the BEGIN/END structure, every
length and size limit, the receiver's field rules, the sender's ordering, every WRITE_BYREF.
Status 0 when intact, 1 when not, 2 on a usage error. Reads stdin when FILE is - or absent.`,
    flags: [
      ["-q, --quiet", "print nothing; the status says it"],
      [
        "--json",
        "one JSON object: ok and the counts, or the error: the record's index, byte offset, " +
        "type and fault (docs/json-schema.json)",
      ],
      [
        "--progress",
        "progress on stderr: on a terminal one line redrawn (always); elsewhere a plain line every 5 s and one at the end, only with this flag",
      ],
      [
        "--key-file PATH",
        "also check every MAC of raw substreams with this key (raw or hex): blocks, dnode blocks, the objset",
      ],
      ["--passphrase-file PATH", "as --key-file, with the dataset's passphrase"],
      [
        "--resume-token",
        "for a cut or damaged stream, print the receive_resume_token of what a zfs receive -s of it keeps (stdout), for zfs send -t",
      ],
    ],
  },
  recv: {
    about:
      `Receives a stream (full, incremental, clone, dedup, -R, -I) into STORE, as zfs receive TARGET
does into a pool. STORE is made on first use: a new or empty directory (a directory holding
anything else is refused); a first receive that fails leaves no store behind. TARGET is a
dataset (or DATASET@SNAP for a single snapshot), named as ZFS names them. Each snapshot commits
only after its END checksum: a damaged stream leaves the store as it was (with -s, what was
applied is kept as a partial receive that the rest of the stream, zfs send -t, completes).`,
    flags: [
      [
        "-F",
        "roll an incremental's dataset back to the stream's source snapshot first, destroying the snapshots after it",
      ],
      ["-d", "name datasets TARGET + the sent name without its pool"],
      ["-e", "name datasets TARGET + the last component of the sent name"],
      ["-n", "receive nothing, touch nothing: say what would be received (and destroyed)"],
      [
        "-v",
        "one line per snapshot received (and per snapshot -F destroys); progress as --progress",
      ],
      [
        "-s",
        "when the stream breaks, keep what was applied as a partial receive with a receive_resume_token (zfs send -t of it, received again, completes it)",
      ],
      ["-A", "recv -A STORE TARGET: drop TARGET's partial receive"],
      [
        "--progress",
        "progress on stderr: on a terminal one line redrawn (always); elsewhere a plain line every 5 s and one at the end, only with this flag",
      ],
    ],
  },
  list: {
    about:
      `The datasets and snapshots in STORE, as zfs list prints them: by default the filesystems and
volumes (-t snapshot or -t all for snapshots), NAME USED REFER CREATION, and the columns that
the rows hold: GUID for snapshots, ORIGIN for clones, ENCRYPTION and KEYFORMAT for raw
(encrypted) ones, kept sealed, RSNAPS and REDACTED for redacted ones, RESUMETOK for a dataset
with a partial receive (recv -s). With DATASET, that dataset (and its snapshots with -t
snapshot); with DATASET@SNAP, that snapshot. Space is the store's: each distinct block once, in
the bytes the packs hold; used is what destroying it would give back.

Properties for -o, -s and -S (zfs's names, or their column headers, in any case):
${propertyNames()}.`,
    flags: [
      ["-H", "no header; columns separated by one tab, values not padded (for scripts)"],
      ["-p", "exact numbers: sizes in bytes, times in seconds since the epoch"],
      ["-r", "each DATASET named and its descendants (without DATASET: every dataset)"],
      [
        "-o PROP[,...]",
        "these columns, in this order (also the properties a -R or -p stream gave a dataset, " +
        "such as mountpoint); an unknown property is a usage error",
      ],
      ["-s PROP", "sort by PROP, ascending (numbers by value); repeat for more keys"],
      ["-S PROP", "sort by PROP, descending (after the -s keys)"],
      [
        "-t TYPE[,...]",
        "filesystem (fs), volume (vol), snapshot (snap), bookmark (a store has none) or all; default filesystem,volume",
      ],
      [
        "--json",
        'one object {"datasets":[{"name","type","properties":{...}}]}: every property (or those of -o) by its zfs name, sizes and times as decimal strings, guids as "0x" and 16 hex digits, null where absent',
      ],
      [
        "--space",
        "columns name, used, refer, lrefer, written, then the store's totals: blocks, bytes stored, bytes of pack files and how much of them is unused (what zsend gc gives back)",
      ],
    ],
  },
  destroy: {
    about:
      `Destroys snapshots (SNAP, a range FIRST%LAST of a dataset's snapshots, oldest first, where an
end left out means the oldest or the newest, or a comma-separated list of these; with -r, those
of every descendant too), or a dataset with its snapshots and partial receive (with -r, its
descendants too), as zfs destroy does, in one transaction. Refused as zfs refuses them: a
snapshot that a clone was made from, or that a partial receive (recv -s) grows from ("snapshot
has dependent clones"; zsend has no -R); a dataset with children without -r. Unlike zfs,
DATASET without -r takes its snapshots with it (every dataset of a store holds snapshots). Later
snapshots lose nothing: each keeps its own blocks. Blocks nothing uses any more are released;
pack files that held only those are deleted at once; packs still partly used keep the space
until zsend gc compacts them.`,
    flags: [
      ["-n", "destroy nothing, touch nothing: print what would be destroyed and reclaimed"],
      [
        "-r",
        "also the descendants (DATASET) or the same snapshot of the descendants (DATASET@SNAP)",
      ],
      [
        "-v",
        "print what is destroyed, the stored bytes it releases, and the pack bytes given back",
      ],
      ["-p", "as -v, machine-readable: destroy<TAB>NAME, reclaim<TAB>BYTES"],
    ],
  },
  gc: {
    about:
      `Gives the space of blocks no snapshot uses back to the disk: deletes packs nothing uses, and
rewrites the packs whose unused share is at least the threshold (used blocks copied into new
packs, each checked against its hash). The new packs are flushed to disk before one index
transaction switches to them; old packs are unlinked only after it, once no reader that started
before is left. A kill -9 at any moment leaves every snapshot as it was; the next gc finishes the
job. Takes the store's write lock (receives wait).`,
    flags: [
      ["-n", "change nothing: say what would be deleted, rewritten and given back"],
      ["-v", "say what was deleted, rewritten and given back"],
      [
        "--threshold PERCENT",
        "rewrite a pack when at least this much of it is unused (default 10)",
      ],
    ],
  },
  redup: {
    about:
      `A dedup stream (plain or compound) as a plain one, as OpenZFS's zstream redup makes it: every
WRITE_BYREF replaced by the data it points at, checksums recomputed. Refuses a terminal as
stdout.`,
    flags: [
      ["-v", "counts on stderr when done; progress as --progress"],
      [
        "--progress",
        "progress on stderr: on a terminal one line redrawn (always); elsewhere a plain line every 5 s and one at the end, only with this flag",
      ],
    ],
  },
  extract: {
    about:
      `A filesystem snapshot as a directory tree in DIR (new or empty), or a volume snapshot as an
image file or onto a block device. Nothing is ever written outside DIR.`,
    flags: [
      [
        "--image PATH|DEVICE",
        "write a volume snapshot there (only the changed blocks when it holds an earlier snapshot of the volume)",
      ],
      [
        "--stream",
        "read stream files (a full stream, then incrementals; or a -R or -I stream) instead of a store; the summary line names the snapshot",
      ],
      [
        "--snapshot NAME",
        "with --stream: the snapshot to extract, as SNAP or @SNAP (of the top dataset of the streams) or as the stream names it (POOL/FS@SNAP); without it, the last snapshot the streams make of their top dataset",
      ],
      ["-q, --quiet", "no summary line"],
      [
        "--progress",
        "progress on stderr: on a terminal one line redrawn (always); elsewhere a plain line every 5 s and one at the end, only with this flag",
      ],
      [
        "--key-file PATH",
        "a raw snapshot's key (32 raw bytes or 64 hex digits, as its keyformat says)",
      ],
      ["--passphrase-file PATH", "a raw snapshot's passphrase (one trailing newline dropped)"],
    ],
  },
  ls: {
    about: `Lists a directory of a stored snapshot like ls -l (PATH defaults to /).`,
    flags: [
      ["-R", "every entry below PATH, recursively"],
      [
        "--key-file PATH",
        "a raw snapshot's key (32 raw bytes or 64 hex digits, as its keyformat says)",
      ],
      ["--passphrase-file PATH", "a raw snapshot's passphrase (one trailing newline dropped)"],
    ],
  },
  cat: {
    about: `Writes one file of a stored snapshot to stdout (holes as zeros).`,
    flags: [
      [
        "--key-file PATH",
        "a raw snapshot's key (32 raw bytes or 64 hex digits, as its keyformat says)",
      ],
      ["--passphrase-file PATH", "a raw snapshot's passphrase (one trailing newline dropped)"],
    ],
  },
  diff: {
    about: `What changed between two stored snapshots of a filesystem (or the latest snapshot of
DATASET), printed as OpenZFS 2.3's zfs diff prints it: M (modified, or "(+1)"/"(-1)" when only
the link count changed), + (added), - (removed), R (renamed, OLD -> NEW), one line per file,
in object order. The earlier snapshot must be of the same filesystem or of one the later one
was cloned from. Read from the stores' object tables: no pool. Paths start at the dataset's
mountpoint (--mountpoint, default /DATASET); bytes that are not printable ASCII, spaces and
backslashes are written \ooo (four octal digits) unless -h is given.`,
    flags: [
      [
        "-F",
        "the file type after the change: F file, / directory, @ symlink, | fifo, = socket, B and C devices",
      ],
      ["-H", "a rename's two paths separated by a tab, not ' -> '"],
      ["-t", "the file's change time (seconds.nanoseconds) first"],
      ["-h", "names as they are, without escapes (not help: use --help)"],
      ["--mountpoint PATH", "what paths start with (zfs diff prints the dataset's mountpoint)"],
      [
        "--key-file PATH",
        "a raw snapshot's key (32 raw bytes or 64 hex digits, as its keyformat says)",
      ],
      ["--passphrase-file PATH", "a raw snapshot's passphrase (one trailing newline dropped)"],
    ],
  },
  send: {
    about:
      `Writes a stored snapshot as a stream that a real zfs receive takes. Refuses a terminal as
stdout. SNAP is @SNAP or SNAP (of the same dataset) or DATASET@SNAP.

With -t TOKEN (a receive_resume_token of a cut zfs receive -s or zsend recv -s), writes the rest as
zfs send -t does: the snapshot the token names (by its guid, and the incremental source by
fromguid) from the token's object and offset on, with RESUMING and resume_object/resume_offset
in the BEGIN and the flags the token's largeblockok/embedok/compressok/rawok ask for; a token the
store cannot answer (no such snapshot or source, rawok for a snapshot that is not raw) is refused.
With --saved, writes what a partial receive of DATASET holds (zfs send --saved): a stream of the
snapshot it receives, from the start, with its token's flags and without END, so that a recv -s
of it elsewhere keeps the same partial receive.`,
    flags: [
      ["-i SNAP", "an incremental from SNAP (a clone stream when SNAP is the clone's origin)"],
      ["-I SNAP", "every snapshot from SNAP to DATASET@SNAP, as a compound stream"],
      ["-D", "WRITE_BYREF for blocks sent before in the same stream (a dedup stream)"],
      [
        "-R",
        "the dataset and its children, with the replication nvlist (raw ones raw, with their " +
        "encryption roots, as zfs send -R -w)",
      ],
      ["-p", "send the properties the store holds"],
      [
        "-v",
        "first zfs send -v's estimate lines (full send of ... estimated size is ..., total estimated size is ...; the sizes are exact), on stderr (stdout with -n); then progress as --progress",
      ],
      [
        "-P",
        "the estimate lines as zfs send -P writes them: full, incremental and size, tab-separated, sizes in bytes",
      ],
      ["-n", "send nothing (with -v or -P: only the estimate lines, on stdout)"],
      [
        "--progress",
        "progress on stderr: on a terminal one line redrawn (always); elsewhere a plain line every 5 s and one at the end, only with this flag",
      ],
      // zfs send's; shown once the usage line names them.
      ["-L, --large-block", "blocks larger than 128 KiB sent whole, as zfs send -L sends them"],
      ["-e, --embed", "embedded blocks sent as WRITE_EMBEDDED, as zfs send -e sends them"],
      ["-c, --compressed", "compressed blocks sent as they are stored, as zfs send -c sends them"],
      [
        "--decrypt",
        "raw (encrypted) snapshots sent as a plain stream (also with -i, -I, -R), decrypted and " +
        "authenticated with the key",
      ],
      ["--key-file PATH", "with --decrypt: the key (raw or hex)"],
      ["--passphrase-file PATH", "with --decrypt: the passphrase"],
      ["-t TOKEN", "the rest of a cut receive from its receive_resume_token (zfs send -t)"],
      ["--saved", "a partial receive's own data, of STORE DATASET (zfs send --saved)"],
    ],
  },
  token: {
    about: `Decodes an OpenZFS receive_resume_token (zfs get receive_resume_token, or verify
--resume-token) and prints its fields as zstream token does. Status 1 when the token is corrupt.`,
    flags: [[
      "--json",
      "one JSON object: the token's header and every field (guids as 0x and 16 hex digits, " +
      "u64 as decimal strings)",
    ]],
  },
  "drop-record": {
    about:
      `Copies the stream on stdin to stdout without the WRITE and WRITE_EMBEDDED records named by
OBJECT,OFFSET (numbers in decimal, 0x hex or 0 octal), every checksum recomputed, as OpenZFS's
zstream drop_record does. Deduplicated streams are refused (zsend redup first).`,
    flags: [["-v", "name each record dropped on stderr"]],
  },
  decompress: {
    about: `Copies the stream on stdin to stdout with the WRITE records named by OBJECT,OFFSET
decompressed with TYPE (off, lz4, lzjb, gzip, zle or zstd; lz4 when absent), their compression
type and compressed size set to 0, every checksum recomputed, as OpenZFS's zstream decompress does.
A block that TYPE does not decode is kept as it is (with -v, a warning says so); off resets the
type of a block stored uncompressed (refused for a block stored in fewer bytes than its size).`,
    flags: [["-v", "say what was done to each record named, on stderr"]],
  },
  recompress: {
    about:
      `Copies the stream on stdin to stdout with every WRITE payload decompressed and compressed
again with ALGO (off, lz4, lzjb, gzip, gzip-1 ... gzip-9, zle; zsend has no zstd compressor),
padded to 512 bytes and stored plain where that saves nothing, as OpenZFS's zstream recompress
does; the BEGIN feature flags are set to match as OpenZFS sets them. zsend's compressors are its
own: the data is the same, the compressed bytes are not OpenZFS's. Raw and deduplicated streams
are refused.`,
    flags: [["-l", "the level of gzip (1-9): -l 9 gzip is gzip-9"]],
  },
};

VERB_HELP.receive = VERB_HELP.recv!;

/** The properties of list -o, for its help. */
function propertyNames(): string {
  return PROPERTIES.map((p) =>
    `${p.name}${p.header.toLowerCase() === p.name ? "" : ` (${p.header.toLowerCase()})`}` +
    (p.own ? " [zsend's]" : "")
  ).join(", ").split(" ").reduce((lines: string[], word) => {
    const last = lines.at(-1);
    if (last !== undefined && last.length + 1 + word.length <= 96) {
      lines[lines.length - 1] += ` ${word}`;
    } else lines.push(word);
    return lines;
  }, []).join("\n");
}

/** The flags a usage line names: `-v`, `--json`, ... */
export function usageFlags(usage: string): Set<string> {
  return new Set(usage.match(/(?<=[\[ |])--?[A-Za-z][A-Za-z-]*/g) ?? []);
}

/**
 * The help text of a verb: `usage: USAGE`, what it does, then each flag the usage names (a
 * flag the verb does not have is not shown, nor said to exist), and `-h, --help`.
 *
 * @param usage the verb's usage line(s), as its module exports them
 * @param help what the verb does and its flags
 * @returns the text, without a final newline
 */
export function formatHelp(usage: string, help: VerbHelp): string {
  const named = usageFlags(usage);
  const rows = help.flags.filter(([spelling]) =>
    spelling.split(", ").some((s) => named.has(s.split(" ")[0]!))
  );
  rows.push([named.has("-h") ? "--help" : "-h, --help", "this help"]);
  const width = Math.max(...rows.map(([s]) => s.length)) + 2;
  const lines = rows.map(([s, t]) =>
    `  ${s.padEnd(width)}${wrap(t, 96 - width).join(`\n  ${" ".repeat(width)}`)}`
  );
  return `usage: ${usage}\n\n${help.about}\n\n${lines.join("\n")}`;
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  lines.push(line);
  return lines;
}
