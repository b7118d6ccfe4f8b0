package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ztmkit/ztm/examples/internal/progress"
	"github.com/ztmkit/ztm/manifest"
	"github.com/ztmkit/ztm/manifest/chainstore"
)

// source is where the chains of a bulk run come from: the files of a
// directory or the devices of a lot in a chain store.
type source struct {
	what  string
	total int
	// chains yields each chain; it stops at the first read error, kept in
	// err.
	chains iter.Seq[manifest.ChainInput]
	err    error
	close  func() error
}

// dirSource reads every *.chain file of dir, in name order.
func dirSource(dir string) (*source, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.chain"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no *.chain files", dir)
	}
	s := &source{what: fmt.Sprintf("%d chains in %s", len(files), dir), total: len(files), close: func() error { return nil }}
	s.chains = func(yield func(manifest.ChainInput) bool) {
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				s.err = err
				return
			}
			if !yield(manifest.ChainInput{ID: filepath.Base(f), Raw: raw}) {
				return
			}
		}
	}
	return s, nil
}

// storeSource reads the chains of every device of lot from the chain store
// at path. A step the store cannot read back is an input error.
func storeSource(ctx context.Context, path, lot string) (*source, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	st, err := chainstore.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	subjects, err := st.Devices(ctx, lot)
	if err == nil && len(subjects) == 0 {
		err = fmt.Errorf("%s: no device of lot %q", path, lot)
	}
	if err != nil {
		st.Close()
		return nil, err
	}
	s := &source{what: fmt.Sprintf("%d devices of lot %q in %s", len(subjects), lot, path), total: len(subjects), close: st.Close}
	s.chains = func(yield func(manifest.ChainInput) bool) {
		for _, sub := range subjects {
			c, err := st.Chain(ctx, sub)
			if err != nil {
				s.err = err
				return
			}
			if !yield(manifest.ChainInput{ID: hex.EncodeToString(sub), Chain: c}) {
				return
			}
		}
	}
	return s, nil
}

// tally is what a bulk run found, chain by chain.
type tally struct {
	lot             *manifest.LotManifest
	passed, refused int
	// reasons counts the refused devices by reason; a device counts once
	// under each of its reasons.
	reasons  map[string]int
	failures []string
	leaves   []leaf
}

// leaf is a device's last step, as a lot manifest covers it.
type leaf struct{ subject, hash []byte }

// otherLot is the reason of a device whose chain ends in another lot.
const otherLot = "other lot"

func (t *tally) add(r *manifest.ChainResult) {
	var why []string
	var first error
	for _, c := range r.Report.Failed() {
		var ve *manifest.VerificationError
		reason := "unknown"
		if errors.As(c.Err, &ve) {
			reason = ve.Reason.String()
		}
		if !slices.Contains(why, reason) {
			why = append(why, reason)
		}
		if first == nil {
			first = c.Err
		}
	}
	if t.lot != nil && len(r.Chain) > 0 && r.Chain[len(r.Chain)-1] != nil && r.Chain[len(r.Chain)-1].Step != nil {
		last := r.Chain[len(r.Chain)-1]
		t.leaves = append(t.leaves, leaf{last.Step.Subject, manifest.LeafHash(last.Raw)})
		if last.Step.Lot != t.lot.Lot {
			why = append(why, otherLot)
			if first == nil {
				first = fmt.Errorf("last step %q names lot %q, not %q", last.Step.Name, last.Step.Lot, t.lot.Lot)
			}
		}
	}
	if len(why) == 0 {
		t.passed++
		return
	}
	t.refused++
	for _, reason := range why {
		t.reasons[reason]++
	}
	more := ""
	if n := len(r.Report.Failed()); n > 1 {
		more = fmt.Sprintf(" (and %d more failed checks)", n-1)
	}
	t.failures = append(t.failures, fmt.Sprintf("FAIL %s: %v%s", r.ID, first, more))
}

// lotMatches reports whether the devices' last steps, in subject order
// (the order of chainstore.Store.Lot, which factoryline signs), make up
// the signed lot's Merkle root.
func (t *tally) lotMatches() (bool, error) {
	slices.SortFunc(t.leaves, func(a, b leaf) int { return bytes.Compare(a.subject, b.subject) })
	l, err := manifest.NewLot(t.lot.Lot, manifest.LotOptions{})
	if err != nil {
		return false, err
	}
	for _, lf := range t.leaves {
		if _, err := l.AddLeafHash(lf.hash); err != nil {
			return false, err
		}
	}
	sizeOK := t.lot.TreeSize == 0 || t.lot.TreeSize == l.Len()
	return sizeOK && bytes.Equal(l.Root(), t.lot.Root), nil
}

// runBulk verifies every chain of a directory or of a lot in a chain store.
func runBulk(ctx context.Context, cfg config, w io.Writer, policy *manifest.Policy, pub crypto.PublicKey) error {
	t := &tally{reasons: map[string]int{}}
	if cfg.Lot != "" {
		raw, err := os.ReadFile(cfg.Lot)
		if err != nil {
			return err
		}
		if t.lot, err = manifest.VerifyLotManifest(raw, pub); err != nil {
			return fmt.Errorf("lot manifest %s: %w", cfg.Lot, err)
		}
	}
	var src *source
	var err error
	if cfg.Store != "" && t.lot == nil {
		return errors.New("a chain store is read by lot: -store needs -lot")
	}
	if cfg.Store != "" {
		src, err = storeSource(ctx, cfg.Store, t.lot.Lot)
	} else {
		src, err = dirSource(cfg.Chain)
	}
	if err != nil {
		return err
	}
	defer src.close()
	fmt.Fprintf(w, "verify: %s against policy %q v%d by %s\n", src.what, policy.Name, policy.Version, policy.Issuer)
	bar := progress.New(w, src.total, "verified", cfg.Progress)
	start := time.Now()
	sum, err := manifest.VerifyAll(ctx, src.chains, policy, &manifest.BulkOptions{
		VerifyOptions: manifest.VerifyOptions{Partial: cfg.Partial},
		Workers:       cfg.Workers,
		Result:        func(r *manifest.ChainResult) { t.add(r); bar.Tick() },
	})
	bar.Done()
	elapsed := time.Since(start)
	if err == nil {
		err = src.err
	}
	if err != nil {
		return err
	}
	return printBulk(w, t, sum.Chains, elapsed)
}

// printBulk prints the outcome of a bulk run; it returns errRefused if a
// device was refused or the lot does not match.
func printBulk(w io.Writer, t *tally, chains int, elapsed time.Duration) error {
	fmt.Fprintf(w, "verified    %d chains in %v: %.0f chains/s\n", chains, elapsed.Round(time.Millisecond), float64(chains)/elapsed.Seconds())
	fmt.Fprintf(w, "passed      %d\n", t.passed)
	fmt.Fprintf(w, "refused     %d", t.refused)
	if len(t.reasons) > 0 {
		reasons := slices.Collect(maps.Keys(t.reasons))
		// Most frequent first.
		slices.SortFunc(reasons, func(a, b string) int {
			return cmp.Or(cmp.Compare(t.reasons[b], t.reasons[a]), strings.Compare(a, b))
		})
		kinds := make([]string, len(reasons))
		for i, k := range reasons {
			kinds[i] = fmt.Sprintf("%d %s", t.reasons[k], k)
		}
		fmt.Fprintf(w, " (by reason: %s)", strings.Join(kinds, ", "))
	}
	fmt.Fprintln(w)
	ok := t.refused == 0
	if t.lot != nil {
		match, err := t.lotMatches()
		switch {
		case err != nil:
			return err
		case match:
			fmt.Fprintf(w, "lot         %q: the %d devices' last steps make up the signed lot manifest (root %x…)\n", t.lot.Lot, len(t.leaves), t.lot.Root[:min(8, len(t.lot.Root))])
		default:
			fmt.Fprintf(w, "FAIL lot    %q: the %d devices' last steps do not make up the signed lot manifest of %d devices: devices missing, added or changed\n", t.lot.Lot, len(t.leaves), t.lot.TreeSize)
			ok = false
		}
	}
	slices.Sort(t.failures)
	for _, f := range t.failures {
		fmt.Fprintln(w, f)
	}
	if !ok {
		fmt.Fprintln(w, "REFUSED")
		return errRefused
	}
	fmt.Fprintln(w, "OK")
	return nil
}
