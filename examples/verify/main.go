// Command verify checks a device's chain of supply-chain steps against the
// OEM's signed policy and prints the report: one line per check.
//
//	go run ./examples/verify factoryline-out/chains/ZTM-0000001.chain
//	go run ./examples/verify -v -policy p.cose -oem oem.pem -receipt r.receipt dev.chain
//
// The policy is the COSE_Sign1 that manifest.SignPolicy wrote (checked
// against the OEM's public key in PEM), the chain what manifest.Chain.Marshal
// wrote. With -receipt, the chain's last step must also be in the lot the
// receipt proves (signed by the same OEM key). The exit status is 0 if
// every check passed, 1 if any failed, 2 for unusable input.
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

	"github.com/ztmkit/ztm/manifest"
)

type config struct {
	Policy, OEM, Receipt, Chain string
	Partial, Verbose            bool
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
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: verify [flags] CHAIN")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	cfg.Chain = flag.Arg(0)
	err := run(context.Background(), cfg, os.Stdout)
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
