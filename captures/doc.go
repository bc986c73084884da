// Package captures reads and writes recorded event streams: captures of
// subscribeRepos frames, byte for byte as they arrived, with their arrival
// times, their origin hosts, a manifest and the accounts' DID documents. It
// records them from any subscribeRepos endpoint, converts them to and from
// the common length-prefixed raw-frame dump, and inspects them.
//
// It must not know about fleets, relays or schedules: a capture is what
// happened on one or more connections, and what a replay makes of it is the
// replay's business.
//
// # Guarantees
//
//   - Streaming both ways: the Writer holds at most two pending blocks (about
//     1 MiB each), the Reader one decompressed block, whatever the length of
//     the capture. Hours of firehose never sit in memory.
//   - Crash tolerance: the writer flushes a block at least every
//     FlushInterval (1s) and every BlockSize (1 MiB). A file cut off mid-write
//     (Ctrl-C without a clean close, a crash, a full disk) reads up to its
//     last complete block; the reader then returns a *ReadError wrapping
//     ErrTruncated, never a silent short read.
//   - Every error names the file, the number of the frame being read (the
//     first frame is 1) and the byte offset of the block where reading failed.
//     Corrupt bytes are caught by a checksum per block before decompression;
//     no input makes the reader panic (FuzzReader checks it).
//   - Import and Export are all or nothing: their outputs are written beside
//     the targets and renamed into place on success, so a failure leaves no
//     truncated file, no capture that reads as cleanly closed, and no
//     clobbered earlier file. RecordFirehose is the exception on purpose: it
//     keeps what it recorded, cleanly closed, however it stops
//     (RecordResult says how).
//
// # File format, version 1
//
// Integers are little-endian; uvarint is encoding/binary's unsigned varint.
// A file is a header, blocks, and — when the writer closed it — a footer:
//
//	header  16 bytes   "RSOAKCAP" | u32 version (1) | u32 flags (0)
//	block   17 bytes   kind u8 | u32 records | u32 raw length | u32 compressed length
//	                   | u32 CRC-32C (Castagnoli) of the header's first 13 bytes and the payload
//	        payload    one zstd frame holding `raw length` bytes of records
//	footer  16 bytes   "RSOAKEND" | u64 file offset of the manifest block
//
// Block kinds and the records they hold:
//
//	'I' info       first block, written at creation: one record
//	               'i' uvarint length, JSON {"source", "created"}
//	'F' frames     'h' uvarint length, host name — defines the next host id (0, 1, …),
//	                   file-wide, before the first frame that uses it
//	               'f' uvarint zigzag(arrival ns − previous frame's arrival ns in
//	                   this block; the first frame of a block: − 0, i.e. Unix ns),
//	                   uvarint host id, uvarint length, the frame's bytes
//	'D' DID docs   'd' uvarint length, DID, uvarint length, the document's JSON
//	'M' manifest   last block, written at close: one record
//	               'm' uvarint length, JSON Manifest
//
// A frame block's time base restarts in every block, so a block decodes on
// its own given the host table. DID documents get blocks of their own so
// that a reader after frames skips them without decompressing, and one after
// documents skips the frames the same way. The manifest is last because
// only at close is it known; the footer's offset lets ReadManifest seek to
// it without reading the frames. A capture without a footer was not closed:
// ReadManifest then rebuilds the manifest from the frames (the info block
// still gives its source).
//
// A reader rejects versions other than its own and non-zero flags. Block
// kinds it does not know are checksummed and skipped, so a later version may
// add kinds without breaking older readers. 'R' is never a block kind: it
// starts the footer.
//
// Why not one zstd stream: a stream gives no byte offsets to name in an
// error, no way to skip the DID documents, and no checksum until its end;
// independent blocks give all three at the cost of a 17-byte header per
// megabyte.
//
// # The raw-frame dump
//
// Import and Export speak the format other tools and the shared captures use:
// [u32 little-endian length][frame bytes] repeated, zstd-compressed or not
// (detected by the zstd magic; written compressed when the name ends in
// ".zst"), with the DID documents beside it as one JSON object DID →
// document, likewise optionally zstd.
package captures
