package sqlite_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/ledgertest"
	"github.com/ztmkit/ztm/ca/ledger/sqlite"
)

// ExampleOpen opens a ledger file, appends a record, and verifies the
// hash chain after reopening.
func ExampleOpen() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ledger-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "ca-ledger.db")

	l, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	// An Authority appends records; here one made by the conformance kit.
	rec, err := ledgertest.NewIssuance("station-3", time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC))
	if err != nil {
		log.Fatal(err)
	}
	if err := l.Append(ctx, rec, nil); err != nil {
		log.Fatal(err)
	}
	fmt.Println("appended record", rec.Seq)
	l.Close()

	l, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	head, err := l.Verify(ctx)
	fmt.Println("verified", head.Seq, "record(s):", err == nil)
	n, _ := l.NextCRLNumber(ctx)
	fmt.Println("next CRL number:", n)
	// Output:
	// appended record 1
	// verified 1 record(s): true
	// next CRL number: 1
}

// ExampleRestore backs a ledger up while it is in use and restores the
// backup, verified against the CA's newest checkpoint.
func ExampleRestore() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ledger-backup-example")
	defer os.RemoveAll(dir)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // the CA's key
	root, err := ca.NewRoot(ca.RootRequest{Subject: pkix.Name{CommonName: "Example CA"}, Signer: key})
	if err != nil {
		log.Fatal(err)
	}
	// Checkpoints live apart from the ledger (another disk or host).
	opts := sqlite.Options{
		Checkpoints:   ca.NewCheckpointFile(filepath.Join(dir, "checkpoint")),
		CheckpointKey: key.Public(),
	}
	l, err := sqlite.Open(ctx, filepath.Join(dir, "ledger.db"), opts)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	auth, err := ca.New(ca.Config{Signer: key, Chain: []*x509.Certificate{root}, Ledger: l, Checkpoints: opts.Checkpoints.(ca.CheckpointStore)})
	if err != nil {
		log.Fatal(err)
	}
	devKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "sensor-1"}}, devKey)
	if _, err := auth.Issue(ctx, &ca.Request{CSR: csr, Profile: "ldevid", Requester: "line-1"}); err != nil {
		log.Fatal(err)
	}
	if _, err := auth.CRL(ctx); err != nil { // signs a checkpoint too
		log.Fatal(err)
	}
	if err := l.Backup(ctx, filepath.Join(dir, "backup.db")); err != nil {
		log.Fatal(err)
	}
	head, err := sqlite.Restore(ctx, filepath.Join(dir, "backup.db"), filepath.Join(dir, "restored.db"), opts)
	fmt.Println("restored", head.Seq, "records, verified:", err == nil)
	// Output:
	// restored 1 records, verified: true
}

// ExampleOptions_checkpoints opens the ledger checked against the CA's
// signed checkpoints, kept in a file outside it: a ledger whose newest
// records were deleted is refused at Open.
func ExampleOptions_checkpoints() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ztm-checkpoint")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // the CA's key
	root, err := ca.NewRoot(ca.RootRequest{Subject: pkix.Name{CommonName: "Example CA"}, Signer: key})
	if err != nil {
		log.Fatal(err)
	}
	// In production: another disk or host than the ledger's.
	checkpoints := ca.NewCheckpointFile(filepath.Join(dir, "checkpoint"))
	opts := sqlite.Options{Checkpoints: checkpoints, CheckpointKey: key.Public()}
	ledger, err := sqlite.Open(ctx, filepath.Join(dir, "ledger.db"), opts)
	if err != nil {
		log.Fatal(err)
	}
	auth, err := ca.New(ca.Config{Signer: key, Chain: []*x509.Certificate{root}, Ledger: ledger, Checkpoints: checkpoints})
	if err != nil {
		log.Fatal(err)
	}
	devKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "sensor-1"}}, devKey)
	if _, err := auth.Issue(ctx, &ca.Request{CSR: csr, Profile: "ldevid", Requester: "line-1"}); err != nil {
		log.Fatal(err)
	}
	// Also made with every CRL, by RunCheckpoints and by CheckpointHandler.
	cp, err := auth.Checkpoint(ctx)
	if err != nil {
		log.Fatal(err)
	}
	verified, err := ca.ParseCheckpoint(cp.Raw, root.PublicKey)
	fmt.Println("checkpoint of record", verified.Seq, "verifies:", err == nil)
	ledger.Close()

	// An insider deletes the record; the ledger is refused at open.
	removeLastRecord(filepath.Join(dir, "ledger.db"))
	_, err = sqlite.Open(ctx, filepath.Join(dir, "ledger.db"), opts)
	var ce *ca.CheckpointError
	fmt.Println("refused:", errors.As(err, &ce), "ledger head", ce.Ledger.Seq, "checkpoint head", ce.Checkpoint.Seq)
	// Output:
	// checkpoint of record 1 verifies: true
	// refused: true ledger head 0 checkpoint head 1
}

// removeLastRecord deletes the newest record with SQL, behind the
// ledger's back.
func removeLastRecord(path string) {
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("DELETE FROM records WHERE seq = (SELECT max(seq) FROM records)"); err != nil {
		log.Fatal(err)
	}
}
