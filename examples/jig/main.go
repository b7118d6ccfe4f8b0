// Command jig is a reference provisioning jig: the program an OEM test
// engineer copies and adapts. It provisions a batch of devices on one
// station and records each one's final test as a signed step:
//
//   - the station key comes from a key store named by URI (-key-store:
//     "mem:", "file:/var/lib/jig/keys?…", "pkcs11:…", "tpm:…");
//
//   - the CA is set up here, in process (a root, a SQLite ledger, the
//     registration authority enroll.Service), as a line's CA would be
//     elsewhere; with -est the station enrolls over EST (mutual TLS on
//     127.0.0.1) instead of in process;
//
//   - each device is reached through the jig's own ztm.Device
//     implementation (type device) over a link (type link); here the link
//     leads to a simulated board, on a real jig to the device's test port;
//
//   - after Provision, the jig signs a "final-test" step with
//     Station.Record.
//
//     go run ./examples/jig                   # 5 devices, in-memory station key
//     go run ./examples/jig -devices 20 -est  # over EST
//     go run ./examples/jig -key-store 'file:/tmp/jig-keys?passphrase-file=/tmp/pass'
package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/identity/keystore"
	_ "github.com/ztmkit/ztm/identity/keystore/file" // "file:" key store URIs
	"github.com/ztmkit/ztm/manifest"
	"github.com/ztmkit/ztm/transport/est"
)

// config is what the flags set.
type config struct {
	Devices  int
	KeyStore string // URI of the station key's store
	EST      bool   // enroll over EST instead of in process
	Dir      string // where the ledger and chain store go; "" is a temporary directory
}

func main() {
	var cfg config
	flag.IntVar(&cfg.Devices, "devices", 5, "number of devices to provision")
	flag.StringVar(&cfg.KeyStore, "key-store", "mem:", `key store URI of the station key (label "station", created if missing)`)
	flag.BoolVar(&cfg.EST, "est", false, "enroll over EST (mutual TLS on 127.0.0.1) instead of in process")
	flag.StringVar(&cfg.Dir, "dir", "", "directory for ledger.db and chains.db (default: a temporary directory, removed at exit)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "jig:", err)
		os.Exit(1)
	}
}

// run provisions cfg.Devices devices and writes one line per device to w.
func run(ctx context.Context, cfg config, w io.Writer) error {
	if cfg.Devices < 1 {
		return errors.New("-devices must be at least 1")
	}
	dir := cfg.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "ztm-jig")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	store, err := keystore.Open(ctx, cfg.KeyStore)
	if err != nil {
		return err
	}
	defer store.Close()
	stationKey, err := stationKey(ctx, store)
	if err != nil {
		return err
	}
	plant, err := newCA(ctx, dir)
	if err != nil {
		return err
	}
	defer plant.Close()

	// The boards on the jig. Each device's attestation key is registered
	// in the plant's key set by key ID (keys may be added while the line runs).
	boards := make([]*board, cfg.Devices)
	for i := range boards {
		if boards[i], err = newBoard(uint32(i + 1)); err != nil {
			return err
		}
		if err := plant.register(boards[i]); err != nil {
			return err
		}
	}
	stationCert, err := plant.certifyStation(ctx, stationKey)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "station   %s (key from %s, certificate serial %x)\n", stationName, keystore.RedactURI(cfg.KeyStore), stationCert.SerialNumber)

	enroller, closeEnroller, err := plant.enroller(ctx, cfg.EST, stationKey, stationCert)
	if err != nil {
		return err
	}
	defer closeEnroller()
	return provisionAll(ctx, w, boards, stationKey, stationCert, enroller, plant)
}

// stationName names the station in its steps and certificate.
const stationName = "jig-station-1"

// stationKey returns the key labelled "station" in store, created on first
// use. On a real line the key is made once, in the HSM or TPM, at the
// station's commissioning.
func stationKey(ctx context.Context, store keystore.Store) (keystore.Key, error) {
	key, err := store.Get(ctx, "station")
	if errors.Is(err, keystore.ErrNotFound) {
		key, err = store.Create(ctx, keystore.CreateRequest{Label: "station", Algorithm: keystore.ES256})
	}
	return key, err
}

// provisionAll provisions every board and records its final test.
func provisionAll(ctx context.Context, w io.Writer, boards []*board, stationKey crypto.Signer, stationCert *x509.Certificate, enroller enroll.Enroller, plant *plantCA) error {
	// README:begin
	station, err := ztm.NewStation(ztm.StationConfig{
		Name:      stationName,
		Key:       stationKey,                       // from keystore.Open(ctx, uri): mem, file, pkcs11, tpm
		CertChain: []*x509.Certificate{stationCert}, // its Station certificate: which steps and profiles
		Enroller:  enroller,                         // enroll.Local in process, or an *est.Client
		Verifier:  plant.verifier,                   // appraises evidence before anything is enrolled
		StepStore: plant.chains,                     // manifest/chainstore: every device's signed steps
		Revoker:   plant.authority,                  // revokes a certificate a device failed to install
	})
	if err != nil {
		return err
	}
	for _, b := range boards {
		dev := &device{link: b} // the jig's ztm.Device, over its link to the board
		res, err := station.Provision(ctx, dev)
		var pe *ztm.ProvisionError
		if errors.As(err, &pe) {
			return fmt.Errorf("device %s refused at %s: %w", b.serial, pe.Stage, pe.Err)
		} else if err != nil {
			return err
		}
		report := finalTest(dev) // the jig's own test of the provisioned device
		step, err := station.Record(ctx, res.Device.UEID.Bytes(), "final-test",
			map[string]manifest.Digest{"report": manifest.Sum(manifest.SHA256, report)},
			manifest.Claims{"result": "pass"})
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "device    %s  %s  certificate %x  steps %d  final-test step %d\n",
			res.Device.SerialNumber, res.Attestation.Status(), res.CertChain[0].SerialNumber, len(res.Steps)+1, step.Step.Sequence)
	}
	// README:end
	fmt.Fprintf(w, "OK        %d devices provisioned and final-tested\n", len(boards))
	return nil
}

// finalTest stands for the jig's functional test: here it checks that the
// device answers with the certificate it installed.
func finalTest(dev *device) []byte {
	sum := sha256.Sum256(dev.cert.Raw)
	return fmt.Appendf(nil, "final-test pass cert-sha256=%x", sum)
}

// estServer serves svc over EST with mutual TLS on 127.0.0.1 and returns
// its URL, the trust anchor of its TLS certificate and a stop function.
func estServer(svc *enroll.Service) (string, *x509.CertPool, func() error, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "est.jig.test"},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return "", nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", nil, nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	handler, err := est.NewServer(est.ServerConfig{Service: svc})
	if err != nil {
		return "", nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	srv := est.NewHTTPServer(ln.Addr().String(), handler, est.ServerTLSConfig(tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}))
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "jig: EST server:", err)
		}
	}()
	return "https://" + ln.Addr().String(), roots, srv.Close, nil
}
