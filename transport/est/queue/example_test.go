package queue_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/ca/ledger/memledger"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/transport/est/queue"
)

func must[T any](v T, err error) T {
	if err != nil {
		log.Fatal(err)
	}
	return v
}

// A station queues a request durably, then sends it when the CA is there
// (here an in-process Local enroller; over the network, an est.Client).
// The example's CA keeps its ledger in memory; a line's CA keeps it in
// ca/ledger/sqlite or ca/ledger/postgres.
func Example() {
	ctx := context.Background()
	dir := must(os.MkdirTemp("", "queue-example"))
	defer os.RemoveAll(dir)

	q := must(queue.Open(ctx, filepath.Join(dir, "queue.db"), queue.Options{}))
	defer q.Close()
	deviceKey := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	csr := must(identity.CreateCSR(nil, deviceKey, identity.DeviceInfo{SerialNumber: "SN-42",
		HardwareModule: identity.HardwareModuleName{Type: []int{1, 3, 6, 1, 4, 1, 55555, 1}, SerialNumber: []byte{1, 2, 3, 4, 5, 6, 7}}}))
	key := must(q.Add(ctx, &enroll.Request{CSR: csr, Profile: "idevid"}))
	it := must(q.Get(ctx, key))
	fmt.Println(it.State)

	// The CA side comes up.
	caKey := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	root := must(ca.NewRoot(ca.RootRequest{Subject: pkix.Name{CommonName: "Example Root"}, Signer: caKey}))
	ledger := memledger.New()
	defer ledger.Close()
	auth := must(ca.New(ca.Config{Signer: caKey, Chain: []*x509.Certificate{root}, Ledger: ledger}))
	// WARNING: AllowNoEvidence only to keep the example short.
	gate := must(enroll.New(enroll.Config{Authority: auth, AllowNoEvidence: true}))
	enroller := gate.Local(enroll.Requester{Name: "station-7", Profiles: []string{"idevid"}})

	st := must(q.Flush(ctx, enroller))
	fmt.Printf("done %d, pending %d\n", st.Done, st.Pending)
	chain := must(q.Wait(ctx, key, 0))
	fmt.Println(chain[0].Subject)
	// Output:
	// pending
	// done 1, pending 0
	// SERIALNUMBER=SN-42
}
