package fakepds

import (
	"testing"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The direct record encoder must give the bytes indigo's generic DAG-CBOR
// encoder gives, or record CIDs would differ from a real PDS's.
func TestRecordEncodingMatchesIndigo(t *testing.T) {
	for _, path := range []string{"app.bsky.feed.post/3lbsaaaaaaaa2", "app.bsky.feed.like/3lbsaaaaaaaa2", "app.bsky.graph.follow/3lbsaaaaaaaa2", "app.bsky.feed.repost/3lbsaaaaaaaa2"} {
		ours := recordBytes(1, "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", path)
		m, err := atdata.UnmarshalCBOR(ours)
		require.NoError(t, err, path)
		theirs, err := atdata.MarshalCBOR(m)
		require.NoError(t, err, path)
		assert.Equal(t, theirs, ours, path)
	}
	prof := profileRecord(1, "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "3lbsaaaaaaaa2")
	m, err := atdata.UnmarshalCBOR(prof)
	require.NoError(t, err)
	theirs, err := atdata.MarshalCBOR(m)
	require.NoError(t, err)
	assert.Equal(t, theirs, prof)
}
