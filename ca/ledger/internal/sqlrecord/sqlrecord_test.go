package sqlrecord

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/ca"
)

// chained returns an issuance of serial 7 (seq 1) and its revocation
// (seq 2), hashed into one chain.
func chained(t *testing.T) (iss, rev *ca.Record) {
	t.Helper()
	pkh := sha256.Sum256([]byte("key"))
	iss = &ca.Record{
		Seq: 1, Kind: ca.KindIssuance, Serial: big.NewInt(7), Subject: "device", PublicKeyHash: pkh[:],
		Profile: "idevid", Requester: "station", Time: time.Unix(1_800_000_000, 0).UTC(),
		Certificate: []byte{0x30, 0x00}, PrevHash: make([]byte, sha256.Size),
	}
	var err error
	iss.Hash, err = iss.ChainHash(iss.PrevHash)
	require.NoError(t, err)
	rev = &ca.Record{
		Seq: 2, Kind: ca.KindRevocation, Serial: big.NewInt(7), Time: iss.Time.Add(time.Hour),
		Reason: ca.RevocationReason(1), PrevHash: iss.Hash,
	}
	rev.Hash, err = rev.ChainHash(rev.PrevHash)
	require.NoError(t, err)
	return iss, rev
}

// TestLookupStatus: a lookup's records are answered only when each is
// linked into the chain (the next record names its hash, or it is the
// last); anything else is a *ca.ChainError.
func TestLookupStatus(t *testing.T) {
	t.Parallel()
	iss, rev := chained(t)
	// The chain: 1 (iss), 2 (rev), and a record 3 after them.
	third := bytes.Repeat([]byte{3}, sha256.Size)
	chain := map[uint64][]byte{1: rev.PrevHash, 2: rev.Hash}
	next := func(last int64, prevOf map[uint64][]byte) func(uint64) ([]byte, int64, error) {
		return func(seq uint64) ([]byte, int64, error) { return prevOf[seq], last, nil }
	}
	var l Lookup
	require.NoError(t, l.Add(iss))
	require.NoError(t, l.Add(rev))
	st, err := l.Status(big.NewInt(7), nil, next(3, chain))
	require.NoError(t, err)
	require.Equal(t, iss, st.Issuance)
	require.Equal(t, uint64(2), st.Revocation.Seq)

	// Record 2 is the last: linked without a successor.
	st, err = l.Status(big.NewInt(7), nil, next(2, map[uint64][]byte{1: iss.Hash}))
	require.NoError(t, err)
	require.NotNil(t, st)

	var ce *ca.ChainError
	for name, n := range map[string]func(uint64) ([]byte, int64, error){
		"the next record names another hash": next(3, map[uint64][]byte{1: third, 2: rev.Hash}),
		"no successor, yet not the last":     next(5, map[uint64][]byte{1: iss.Hash}),
	} {
		_, err := l.Status(big.NewInt(7), nil, n)
		require.ErrorAs(t, err, &ce, name)
		require.Contains(t, err.Error(), "not linked", name)
	}
	_, err = l.Status(big.NewInt(8), nil, next(3, chain))
	require.ErrorAs(t, err, &ce, "another serial")

	readErr := errors.New("read failed")
	_, err = l.Status(big.NewInt(7), nil, func(uint64) ([]byte, int64, error) { return nil, 0, readErr })
	require.ErrorIs(t, err, readErr)

	require.ErrorAs(t, l.Add(iss), &ce, "a second issuance")
	var alone Lookup
	require.NoError(t, alone.Add(rev))
	_, err = alone.Status(big.NewInt(7), nil, next(3, chain))
	require.ErrorAs(t, err, &ce, "a revocation without its issuance")
	st, err = (&Lookup{}).Status(big.NewInt(7), nil, next(3, chain))
	require.NoError(t, err)
	require.Nil(t, st, "nothing read")
}
