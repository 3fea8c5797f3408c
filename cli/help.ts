/**
 * What `zsend help VERB`, `zsend VERB -h` and `zsend VERB --help` print: the usage, what the
 * verb does, and every flag. Kept apart from the verbs so that `--help` loads none of them.
 *
 * @module
 */

/** The help of each verb, by the name it is called by. */
export const VERB_HELP: Record<string, string> = {
  dump: `usage: zsend dump [-v] [-vv] [-C] [-d] [--json] [FILE|-]

Prints the records of a stream as OpenZFS's zstream dump does (BEGIN, END, the nvlist of a
compound stream, the SUMMARY). Reads stdin when FILE is - or absent. A damaged stream ends with a
message on stderr and status 1.

  -v        every record, not only BEGIN and END
  -vv       every record and its checksum
  -C        do not verify checksums
  -d        every record, its checksum and its payload in hex
  --json    one JSON object per record, then a summary object
  -h, --help  this help`,

  verify: `usage: zsend verify [--quiet] [--json] [FILE|-]

Proves a stream intact: every record checksum and END checksum, the BEGIN/END structure, every
length and size limit, the receiver's field rules, the sender's ordering, every WRITE_BYREF.
Status 0 when intact, 1 when not, 2 on a usage error. Reads stdin when FILE is - or absent.

  -q, --quiet  print nothing; the status says it
  --json       one JSON object: ok, and where and why a damaged stream fails
  -h, --help   this help`,

  recv: `usage: zsend recv [-F] [-d | -e] [-n] [-v] [--progress] STORE TARGET [FILE|-]

Receives a stream (full, incremental, clone, dedup, -R, -I) into STORE, as zfs receive TARGET
does into a pool. STORE is made on first use: a new or empty directory (a directory holding
anything else is refused); a first receive that fails leaves no store behind. TARGET is a
dataset (or DATASET@SNAP for a single snapshot), named as ZFS names them. Each snapshot commits
only after its END checksum: a damaged stream leaves the store as it was.

  -F          roll an incremental's dataset back to the stream's source snapshot first,
              destroying the snapshots after it
  -d          name datasets TARGET + the sent name without its pool
  -e          name datasets TARGET + the last component of the sent name
  -n          receive nothing, touch nothing: say what would be received (and destroyed)
  -v          one line per snapshot received (and per snapshot -F destroys)
  --progress  bytes and records so far on stderr (always on a terminal)
  -h, --help  this help`,

  list: `usage: zsend list [--json] [--space] STORE

The datasets and snapshots in STORE: name, type, guid, creation time, origin of clones.

  --json      one JSON object with every snapshot (guids in hex)
  --space     what each snapshot refers to and holds alone, and the store's totals
  -h, --help  this help`,

  redup: `usage: zsend redup [-v] [FILE|-] > PLAIN_STREAM

A dedup stream (plain or compound) as a plain one, as OpenZFS's zstream redup makes it: every
WRITE_BYREF replaced by the data it points at, checksums recomputed. Refuses a terminal as
stdout.

  -v          counts on stderr when done
  -h, --help  this help`,

  extract: `usage: zsend extract [-q] STORE DATASET@SNAP DIR
       zsend extract [-q] STORE VOL@SNAP --image PATH|DEVICE
       zsend extract [-q] --stream [--snapshot NAME] FILE... DIR
       zsend extract [-q] --stream [--snapshot NAME] FILE... --image PATH|DEVICE

A filesystem snapshot as a directory tree in DIR (new or empty), or a volume snapshot as an
image file or onto a block device. Nothing is ever written outside DIR.

  --image PATH|DEVICE  write a volume snapshot there (only the changed blocks when it holds
                       an earlier snapshot of the volume)
  --stream             read stream files (a full stream, then incrementals; or a -R or -I
                       stream) instead of a store; the summary line names the snapshot
  --snapshot NAME      with --stream: the snapshot to extract, as SNAP or @SNAP (of the top
                       dataset of the streams) or as the stream names it (POOL/FS@SNAP);
                       without it, the last snapshot the streams make of their top dataset
  -q, --quiet          no summary line
  -h, --help           this help`,

  ls: `usage: zsend ls [-R] STORE DATASET@SNAP [PATH]

Lists a directory of a stored snapshot like ls -l (PATH defaults to /).

  -R          every entry below PATH, recursively
  -h, --help  this help`,

  cat: `usage: zsend cat STORE DATASET@SNAP PATH

Writes one file of a stored snapshot to stdout (holes as zeros).

  -h, --help  this help`,

  send: `usage: zsend send [-i SNAP | -I SNAP] [-D] [-R] [-p] [-v] [-n] STORE DATASET@SNAP > STREAM

Writes a stored snapshot as a stream that a real zfs receive takes. Refuses a terminal as
stdout. SNAP is @SNAP or SNAP (of the same dataset) or DATASET@SNAP.

  -i SNAP     an incremental from SNAP (a clone stream when SNAP is the clone's origin)
  -I SNAP     every snapshot from SNAP to DATASET@SNAP, as a compound stream
  -D          WRITE_BYREF for blocks sent before in the same stream (a dedup stream)
  -R          the dataset and its children, with the replication nvlist
  -p          send the properties the store holds
  -v          what is sent, on stderr
  -n          send nothing: say what would be sent and its size
  -h, --help  this help`,
};

VERB_HELP.receive = VERB_HELP.recv!;
