package captures

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// The layout constants of format version 1; doc.go is the prose spec.
const (
	// Version is the format version this package writes and the newest it reads.
	Version = 1

	magic       = "RSOAKCAP"
	footerMagic = "RSOAKEND"
	headerLen   = 16 // magic, u32 version, u32 flags
	footerLen   = 16 // footer magic, u64 offset of the manifest block
	blockHdrLen = 17 // kind, u32 records, u32 raw length, u32 compressed length, u32 CRC-32C

	blockFrames   = 'F'
	blockDIDDocs  = 'D'
	blockManifest = 'M'
	blockInfo     = 'I'
	footerKind    = 'R' // first byte of footerMagic: a block kind no block may take

	recHost    = 'h'
	recFrame   = 'f'
	recDIDDoc  = 'd'
	recManifst = 'm'
	recInfo    = 'i'

	// MaxFrameSize is the largest frame a capture holds. Real firehose frames
	// stay far below it (a relay caps commits at a few MiB); the cap exists so
	// that a corrupt length can never make a reader allocate gigabytes.
	MaxFrameSize = 32 << 20
	// maxBlockRaw bounds one block's uncompressed size: the writer cuts blocks
	// at BlockSize (1 MiB by default), so only a single huge frame comes near it.
	maxBlockRaw = MaxFrameSize + 1<<20
	// maxBlockComp bounds a block's compressed size; zstd never expands by more
	// than a small fraction.
	maxBlockComp = maxBlockRaw + maxBlockRaw/64 + 1<<10
)

// ErrTruncated marks a capture that ends before its closing manifest and
// footer: the writer was killed or crashed, or the copy was cut short. Every
// frame before the reported offset was read intact; callers that can use a
// partial capture test for it with errors.Is and carry on with what they got.
var ErrTruncated = errors.New("capture cut off: it ends before its closing manifest (the writer crashed or was killed, or the file was cut short)")

// ErrCorrupt marks bytes that are not what a writer of this format wrote.
var ErrCorrupt = errors.New("capture corrupt")

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// decoder is shared: DecodeAll is safe for concurrent use, and one decoder per
// Reader would cost a few hundred KiB of tables each.
var decoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(2),
		zstd.WithDecoderMaxMemory(maxBlockRaw),
	)
})

func putBlockHeader(dst []byte, kind byte, records, rawLen, compLen uint32) {
	dst[0] = kind
	binary.LittleEndian.PutUint32(dst[1:], records)
	binary.LittleEndian.PutUint32(dst[5:], rawLen)
	binary.LittleEndian.PutUint32(dst[9:], compLen)
}

// blockCRC covers the header's first 13 bytes and the compressed payload, so
// a flipped bit anywhere in a block is caught before zstd sees it.
func blockCRC(hdr []byte, comp []byte) uint32 {
	c := crc32.Update(0, crcTable, hdr[:13])
	return crc32.Update(c, crcTable, comp)
}

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }
