package sqlite_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/sqlite"
)

// dump is a ledger file's logical content: schema, header fields the
// package reads, every column of every row (with its storage class).
func dump(t *testing.T, path string) (string, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return "", err
	}
	defer db.Close()
	var b strings.Builder
	for _, q := range []string{
		"SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name",
		"PRAGMA application_id",
		"PRAGMA user_version",
		"SELECT seq, typeof(kind), kind, hex(serial), typeof(serial), subject, typeof(subject), hex(pubkey_hash), typeof(pubkey_hash), profile, requester, " +
			"hex(evidence), hex(step), time_ns, hex(cert), typeof(cert), reason, hex(prev_hash), hex(hash), hex(idem_key), typeof(idem_key), hex(requester_serial) FROM records ORDER BY seq",
		"SELECT id, n FROM crl_number",
	} {
		rows, err := db.Query(q)
		if err != nil {
			return "", err
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return "", err
			}
			fmt.Fprintf(&b, "%q\n", vals)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

// campaignLedger is the ledger the bit flips damage: a station, four
// devices (two requested by the station), a device and then the station
// revoked, a CRL and its checkpoint.
type campaignLedger struct {
	f       *fixture
	station *x509.Certificate
	devices []*x509.Certificate
	revoked map[string]bool
	// repeatCSR was issued as devices[2]; asking again returns that
	// certificate.
	repeatCSR []byte
	pristine  []byte
	dump      string
}

func newCampaignLedger(t *testing.T) *campaignLedger {
	ctx := context.Background()
	c := &campaignLedger{f: newFixture(t), revoked: map[string]bool{}}
	c.station = c.f.station(t)
	for i := range 4 {
		var st *x509.Certificate
		if i%2 == 1 {
			st = c.station
		}
		csr := ldevidCSR(t, fmt.Sprintf("device %d", i))
		cert, err := c.f.issueCSR(t, csr, st)
		if err != nil {
			t.Fatal(err)
		}
		c.devices = append(c.devices, cert)
		if i == 2 {
			c.repeatCSR = csr
		}
	}
	for _, s := range []*big.Int{c.devices[0].SerialNumber, c.station.SerialNumber} {
		if err := c.f.auth.Revoke(ctx, s, ca.ReasonKeyCompromise, "security"); err != nil {
			t.Fatal(err)
		}
		c.revoked[s.Text(16)] = true
	}
	if _, err := c.f.auth.CRL(ctx); err != nil {
		t.Fatal(err)
	}
	c.f.close(t)
	if _, err := os.Stat(c.f.path + "-wal"); err == nil {
		t.Fatal("WAL left after Close")
	}
	var err error
	if c.pristine, err = os.ReadFile(c.f.path); err != nil {
		t.Fatal(err)
	}
	if c.dump, err = dump(t, c.f.path); err != nil {
		t.Fatal(err)
	}
	return c
}

// flipOutcome is what one bit flip led to.
type flipOutcome int

const (
	refusedAtOpen flipOutcome = iota // Open found the damage
	noChange                         // the bit was in unused space: same content, same answers
	crlCounterUp                     // the CRL counter went up: numbers skip, never repeat
)

// TestBitFlipCampaign flips random bits of a small ledger file, one at a
// time on a fresh copy, and opens it with its checkpoints. Every flip must
// be refused at open, or change nothing the CA decides on: the same
// content, and the same answers to lookups, repeats, revocations and a
// revoked station's request. Zero undetected changes, zero wrong answers.
func TestBitFlipCampaign(t *testing.T) {
	t.Parallel()
	flips := 400
	if testing.Short() {
		flips = 100
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x5a544d4c))
	c := newCampaignLedger(t)
	path := filepath.Join(t.TempDir(), "flipped.db")
	counts := map[flipOutcome]int{}
	// Half the flips hit any byte, half only bytes that are not zero: in a
	// file this small most bytes are unused page space, zero-filled.
	var used []int
	for i, b := range c.pristine {
		if b != 0 {
			used = append(used, i)
		}
	}
	for i := range flips {
		bit := rng.IntN(len(c.pristine) * 8)
		if i%2 == 1 {
			bit = used[rng.IntN(len(used))]*8 + rng.IntN(8)
		}
		data := bytes.Clone(c.pristine)
		data[bit/8] ^= 1 << (bit % 8)
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			os.Remove(p)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := c.try(t, path)
		if err != nil {
			t.Errorf("flip %d (byte %d bit %d): %v", i, bit/8, bit%8, err)
			continue
		}
		counts[out]++
	}
	t.Logf("%d flips: %d refused at open, %d in unused space (no change), %d raised the CRL counter",
		flips, counts[refusedAtOpen], counts[noChange], counts[crlCounterUp])
	if counts[refusedAtOpen] == 0 || counts[noChange] == 0 {
		t.Errorf("campaign hit no damage or no unused space: %v", counts)
	}
}

// try opens the flipped ledger at path and, if it opens, checks that
// nothing changed and every decision is the pristine ledger's.
func (c *campaignLedger) try(t *testing.T, path string) (flipOutcome, error) {
	ctx := context.Background()
	l, err := sqlite.Open(ctx, path, c.f.opts())
	if err != nil {
		return refusedAtOpen, nil
	}
	defer l.Close()
	out := noChange
	d, err := dump(t, path)
	if err != nil {
		return 0, fmt.Errorf("opened, but the dump fails: %v", err)
	}
	if d != c.dump {
		if !crlCounterRaised(c.dump, d) {
			return 0, fmt.Errorf("undetected change:\n%s", diff(c.dump, d))
		}
		out = crlCounterUp
	}
	return out, c.decide(t, l)
}

// decide checks the answers the CA's decisions rest on.
func (c *campaignLedger) decide(t *testing.T, l *sqlite.Ledger) error {
	ctx := context.Background()
	for _, cert := range append([]*x509.Certificate{c.station}, c.devices...) {
		st, err := l.Lookup(ctx, cert.SerialNumber)
		if err != nil {
			return fmt.Errorf("Lookup %x: %v", cert.SerialNumber, err)
		}
		if !bytes.Equal(st.Issuance.Certificate, cert.Raw) || (st.Revocation != nil) != c.revoked[cert.SerialNumber.Text(16)] {
			return fmt.Errorf("Lookup %x: wrong answer", cert.SerialNumber)
		}
	}
	auth, err := ca.New(ca.Config{Signer: c.f.key, Chain: c.f.chain, Ledger: l, Checkpoints: c.f.store})
	if err != nil {
		return err
	}
	// The revoked station gets nothing; a revoked certificate is not
	// revoked twice; a repeated request gets its certificate back, and
	// nothing is recorded.
	if _, err := auth.Issue(ctx, &ca.Request{CSR: ldevidCSR(t, "again"), Profile: "ldevid", RequesterCertificate: c.station}); !errors.Is(err, ca.ErrNotAuthorized) {
		return fmt.Errorf("revoked station's request: %v", err)
	}
	if err := auth.Revoke(ctx, c.devices[0].SerialNumber, ca.ReasonSuperseded, "x"); !errors.Is(err, ca.ErrAlreadyRevoked) {
		return fmt.Errorf("second revocation: %v", err)
	}
	c.f.auth = auth
	if again, err := c.f.issueCSR(t, c.repeatCSR, nil); err != nil || !bytes.Equal(again.Raw, c.devices[2].Raw) {
		return fmt.Errorf("repeated request: %v", err)
	}
	h, _ := l.Head(ctx)
	if h.Seq != 7 {
		return fmt.Errorf("head %d after refusals and a repeat", h.Seq)
	}
	return nil
}

func crlCounterRaised(before, after string) bool {
	b, a := strings.Split(before, "\n"), strings.Split(after, "\n")
	if len(a) != len(b) {
		return false
	}
	for i := range b {
		if b[i] == a[i] {
			continue
		}
		var id, nb, na int64
		if _, err := fmt.Sscanf(b[i], "[%d %d]", &id, &nb); err != nil {
			return false
		}
		if _, err := fmt.Sscanf(a[i], "[%d %d]", &id, &na); err != nil || na <= nb {
			return false
		}
	}
	return true
}

func diff(before, after string) string {
	b, a := strings.Split(before, "\n"), strings.Split(after, "\n")
	var out strings.Builder
	for i := 0; i < max(len(a), len(b)); i++ {
		var x, y string
		if i < len(b) {
			x = b[i]
		}
		if i < len(a) {
			y = a[i]
		}
		if x != y {
			fmt.Fprintf(&out, "- %s\n+ %s\n", x, y)
		}
	}
	return out.String()
}

// TestFileFormatVersionFlip: a flip in the header's file format versions
// (byte 18, the write version: 2 becomes 18) leaves a file SQLite opens
// read-only. Open refuses it as storage damage, where it used to open and
// the CA failed at its first append ("attempt to write a readonly
// database"), a flip TestBitFlipCampaign hit by chance.
func TestFileFormatVersionFlip(t *testing.T) {
	t.Parallel()
	c := newCampaignLedger(t)
	for _, flip := range []struct{ byte, bit int }{{18, 4}, {19, 0}, {18, 1}} {
		data := bytes.Clone(c.pristine)
		data[flip.byte] ^= 1 << flip.bit
		path := filepath.Join(t.TempDir(), "flipped.db")
		require.NoError(t, os.WriteFile(path, data, 0o600))
		_, err := sqlite.Open(context.Background(), path, c.f.opts())
		var se *ca.StorageError
		require.ErrorAs(t, err, &se, "byte %d bit %d", flip.byte, flip.bit)
		require.ErrorIs(t, err, ca.ErrLedgerCorrupt)
		require.Equal(t, "file header", se.Check)
	}
}
