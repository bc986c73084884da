package relay

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The pinned image gets its hosts before its first start (one boot): the
// schema from that version's models, the rows Onboard would add. Any other
// image is left to Onboard, which lets the relay make its own schema.
func TestIndigoPreparesOnlyThePinnedImage(t *testing.T) {
	ctx := context.Background()
	v, err := IndigoVersion(ctx, ".")
	require.NoError(t, err)
	hosts := []Host{{Name: "pds0001.test"}, {Name: "PDS0002.test"}}

	other := t.TempDir()
	done, err := (&Indigo{}).PrepareData(ctx, "myrelay:dev", other, hosts)
	require.NoError(t, err)
	assert.False(t, done, "another image may be another version: Onboard's two boots")
	assert.NoFileExists(t, filepath.Join(other, "relay.sqlite"))

	pinned := t.TempDir()
	done, err = (&Indigo{AccountLimit: 7}).PrepareData(ctx, IndigoImageTag(v), pinned, hosts)
	require.NoError(t, err)
	require.True(t, done, "the pinned image boots once")
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(pinned, "relay.sqlite")+"?mode=ro")
	require.NoError(t, err)
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT hostname, no_ssl, account_limit, trusted, status FROM host ORDER BY hostname`)
	require.NoError(t, err)
	defer rows.Close()
	var got []string
	for rows.Next() {
		var name, status string
		var noSSL, trusted bool
		var limit int64
		require.NoError(t, rows.Scan(&name, &noSSL, &limit, &trusted, &status))
		assert.True(t, noSSL && trusted, "%s: a trusted ws:// host", name)
		assert.EqualValues(t, 7, limit)
		assert.Equal(t, "active", status)
		got = append(got, name)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []string{"pds0001.test", "pds0002.test"}, got)

	_, err = (&Indigo{}).PrepareData(ctx, IndigoImageTag(v), t.TempDir(), []Host{{Name: "pds0001.test", TLS: true}})
	assert.ErrorContains(t, err, "wss://", "a TLS host is refused before anything starts")
}
