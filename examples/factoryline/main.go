// Command factoryline runs a simulated production line: it gives each of N
// simulated devices an identity — a key generated inside the chosen key
// store and a PKCS#10 request carrying the IEEE 802.1AR IDevID fields — and
// checks each request the way the CA will before it issues anything.
//
//	go run ./examples/factoryline                     # 10 devices, keys in memory
//	go run ./examples/factoryline -devices 100 -out out \
//	    -store 'file:out/keys?passphrase-source=env:ZTM_PASSPHRASE'
//
// With -out, each device's request is written as out/<serial>.csr.pem, which
// `openssl req -verify -noout -text -in` reads. The program exits non-zero on
// anything unexpected.
package main

import (
	"context"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keystore"
	_ "github.com/ztmkit/ztm/identity/keystore/file"
	_ "github.com/ztmkit/ztm/identity/keystore/mem"
)

// config is what the flags set.
type config struct {
	Devices   int
	Store     string
	Algorithm string
	Out       string
}

// modelOID names the simulated hardware model: an arc under IANA PEN 32473,
// which RFC 5612 reserves for documentation.
var modelOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1, 1}

func main() {
	var cfg config
	flag.IntVar(&cfg.Devices, "devices", 10, "number of devices to provision")
	flag.StringVar(&cfg.Store, "store", "mem:", "key store URI (mem:, file:DIR?passphrase-source=…, pkcs11:…, tpm:…)")
	flag.StringVar(&cfg.Algorithm, "alg", "ES256", "device key algorithm: ES256, ES384, EdDSA or PS256")
	flag.StringVar(&cfg.Out, "out", "", "directory to write each device's CSR to (none if empty)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "factoryline:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, w io.Writer) error {
	if cfg.Devices < 1 {
		return errors.New("-devices must be at least 1")
	}
	alg, err := keystore.ParseAlgorithm(cfg.Algorithm)
	if err != nil {
		return err
	}
	if cfg.Out != "" {
		if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
			return err
		}
	}
	store, err := keystore.Open(ctx, cfg.Store)
	if err != nil {
		return err
	}
	defer store.Close()

	fmt.Fprintf(w, "factoryline: %d devices, %v keys in %s\n", cfg.Devices, alg, keystore.RedactURI(cfg.Store))
	fmt.Fprintf(w, "%-10s  %-34s  %-6s  %s\n", "SERIAL", "UEID", "ALG", "CSR")
	start := time.Now()
	for i := range cfg.Devices {
		if err := ctx.Err(); err != nil {
			return err
		}
		serial := fmt.Sprintf("SN%08d", i+1)
		ueid, err := identity.NewRandomUEID(nil, 16)
		if err != nil {
			return err
		}
		dev := identity.DeviceInfo{
			UEID:           ueid,
			SerialNumber:   serial,
			HardwareModule: identity.HardwareModuleName{Type: modelOID, SerialNumber: []byte(serial)},
			OEMID:          identity.NewPENOEMID(32473),
			HardwareModel:  []byte("ztm-sim-1"),
			CommonName:     "ztm simulated device " + serial,
		}
		id, err := identity.Create(ctx, store, identity.CreateRequest{
			Label:     "device-" + serial,
			Algorithm: alg,
			Device:    dev,
		})
		if err != nil {
			return fmt.Errorf("device %s: %w", serial, err)
		}
		// The CA checks the request against what the line says the device
		// is; do the same here, so a bad request never leaves the station.
		if _, err := identity.CheckCSR(id.CSR, identity.CSRPolicy{
			SerialNumber:          serial,
			HardwareModule:        dev.HardwareModule,
			RequireHardwareModule: true,
		}); err != nil {
			return fmt.Errorf("device %s: own request refused: %w", serial, err)
		}
		where := fmt.Sprintf("%d bytes", len(id.CSR))
		if cfg.Out != "" {
			path := filepath.Join(cfg.Out, serial+".csr.pem")
			data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: id.CSR})
			if err := os.WriteFile(path, data, 0o644); err != nil {
				return err
			}
			where = path
		}
		fmt.Fprintf(w, "%-10s  %-34s  %-6v  %s\n", serial, ueid, id.Key.Algorithm(), where)
	}
	elapsed := time.Since(start)
	labels, err := store.List(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "factoryline: %d identities in %v (%.0f devices/s); the store holds %d keys\n",
		cfg.Devices, elapsed.Round(time.Millisecond), float64(cfg.Devices)/elapsed.Seconds(), len(labels))
	return nil
}
