// Command verify checks devices' chains of supply-chain steps against the
// OEM's signed policy: one chain, with a line per check, or a whole lot at
// once, the incoming-goods check of an OEM.
//
//	go run ./examples/verify factoryline-out/chains/ZTM-0000001.chain
//	go run ./examples/verify -v -policy p.cose -oem oem.pem -receipt r.receipt dev.chain
//	go run ./examples/verify -lot factoryline-out/lot.cose factoryline-out/chains
//	go run ./examples/verify -lot factoryline-out/lot.cose -store factoryline-out/chains.db
//
// The policy is the COSE_Sign1 that manifest.SignPolicy wrote (checked
// against the OEM's public key in PEM), a chain what manifest.Chain.Marshal
// wrote. With -receipt, the chain's last step must also be in the lot the
// receipt proves (signed by the same OEM key).
//
// Given a directory, verify checks every *.chain file in it; given -store,
// every device of the lot in a chain store (manifest/chainstore). Chains
// are verified on every core (manifest.VerifyAll), with a progress bar on
// a terminal and a line per tenth otherwise; then verify prints the number
// of refused devices by reason, each refused chain and why, and the chains
// verified per second. With -lot, the signed lot manifest (lot.cose) is
// checked against the OEM key, every device's last step must name its lot,
// and the devices' last steps must make up exactly the signed Merkle root:
// no device of the lot missing, none added.
//
// The exit status is 0 if every check passed, 1 if any failed, 2 for
// unusable input.
package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"

	"github.com/ztmkit/ztm/manifest"
)

type config struct {
	Policy, OEM, Receipt string
	// Chain is a chain file, or a directory of them.
	Chain string
	// Store is a chain store to read the lot's devices from (with Lot).
	Store string
	// Lot is the signed lot manifest.
	Lot              string
	Workers          int
	Partial, Verbose bool
	// Progress forces the progress bar (true) or plain lines (false); nil
	// decides by whether the output is a terminal.
	Progress *bool
}

// errRefused is a chain that did not pass.
var errRefused = errors.New("verify: chain refused")

func main() {
	var cfg config
	flag.StringVar(&cfg.Policy, "policy", "factoryline-out/policy.cose", "the OEM's signed policy")
	flag.StringVar(&cfg.OEM, "oem", "factoryline-out/oem.pem", "the OEM's public key (PEM)")
	flag.StringVar(&cfg.Receipt, "receipt", "", "a lot receipt for the chain's last step (optional)")
	flag.BoolVar(&cfg.Verbose, "v", false, "print every check, not only the failed ones")
	flag.BoolVar(&cfg.Partial, "partial", false, "accept a chain that stops before the policy's last steps (a device still on the line)")
	flag.StringVar(&cfg.Lot, "lot", "", "the signed lot manifest (lot.cose) the chains of a directory or store must make up")
	flag.StringVar(&cfg.Store, "store", "", "a chain store (chains.db) to read the lot's devices from; needs -lot")
	flag.IntVar(&cfg.Workers, "workers", runtime.GOMAXPROCS(0), "chains verified at once")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: verify [flags] CHAIN | DIR | -store DB -lot LOT")
		flag.PrintDefaults()
	}
	flag.Parse()
	if n := flag.NArg(); cfg.Store == "" && n != 1 || cfg.Store != "" && (n != 0 || cfg.Lot == "") {
		flag.Usage()
		os.Exit(2)
	}
	cfg.Chain = flag.Arg(0)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := run(ctx, cfg, os.Stdout)
	switch {
	case errors.Is(err, errRefused):
		os.Exit(1)
	case err != nil:
		fmt.Fprintln(os.Stderr, "verify:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, cfg config, w io.Writer) error {
	pub, err := readPublicKey(cfg.OEM)
	if err != nil {
		return err
	}
	signed, err := os.ReadFile(cfg.Policy)
	if err != nil {
		return err
	}
	policy, err := manifest.VerifyPolicy(signed, pub)
	if err != nil {
		return fmt.Errorf("policy %s: %w", cfg.Policy, err)
	}
	if cfg.Store != "" {
		return runBulk(ctx, cfg, w, policy, pub)
	}
	if fi, err := os.Stat(cfg.Chain); err == nil && fi.IsDir() {
		return runBulk(ctx, cfg, w, policy, pub)
	}
	return runOne(ctx, cfg, w, policy, pub)
}

// runOne verifies one chain file and prints its report.
func runOne(ctx context.Context, cfg config, w io.Writer, policy *manifest.Policy, pub crypto.PublicKey) error {
	raw, err := os.ReadFile(cfg.Chain)
	if err != nil {
		return err
	}
	chain, err := manifest.ParseChain(raw)
	if err != nil {
		fmt.Fprintf(w, "FAIL %s: %v\n", cfg.Chain, err)
		return errRefused
	}
	rep := manifest.Verify(ctx, chain, policy, &manifest.VerifyOptions{Partial: cfg.Partial})
	fmt.Fprintf(w, "chain %s: %d steps, device %x, policy %q v%d by %s\n", cfg.Chain, len(chain), rep.Subject, policy.Name, policy.Version, policy.Issuer)
	for i, s := range chain {
		signer := ""
		if i < len(rep.Signers) {
			signer = rep.Signers[i]
		}
		fmt.Fprintf(w, "  step %d  %-16s signed by %-22s at %s\n", i, s.Step.Name, signer, s.Step.Time.Format("2006-01-02T15:04:05Z"))
	}
	ok := rep.OK()
	if cfg.Verbose || !ok {
		fmt.Fprint(w, rep.String())
	} else {
		fmt.Fprintf(w, "ok   %d checks passed (signer trust, algorithm, signature, subject, sequence, link, fork, authorization, threshold, layout)\n", len(rep.Checks))
	}
	if cfg.Receipt != "" && len(chain) > 0 {
		r, err := os.ReadFile(cfg.Receipt)
		if err != nil {
			return err
		}
		rc, err := manifest.VerifyReceipt(r, chain[len(chain)-1].Raw, pub)
		if err != nil {
			fmt.Fprintf(w, "FAIL receipt: %v\n", err)
			ok = false
		} else {
			fmt.Fprintf(w, "ok   receipt: leaf %d of %d in lot %q signed by %s\n", rc.Index, rc.TreeSize, rc.Lot, rc.Issuer)
		}
	}
	if !ok {
		fmt.Fprintln(w, "REFUSED")
		return errRefused
	}
	fmt.Fprintln(w, "OK")
	return nil
}

func readPublicKey(path string) (crypto.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%s: no PEM PUBLIC KEY block", path)
	}
	return x509.ParsePKIXPublicKey(blk.Bytes)
}
