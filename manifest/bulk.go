package manifest

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"slices"
	"sync"
	"time"
)

// CheckDecode names the check, in a [ChainResult]'s report, that the chain
// decodes ([ParseChain]). Only [VerifyAll] runs it: [Verify] takes a
// decoded chain.
const CheckDecode = "decode"

// MaxWorkers bounds [BulkOptions.Workers]: verification is bound by the
// CPU, so more workers than cores only add goroutines.
const MaxWorkers = 1024

// Bounds of the caches one [VerifyAll] call shares among its workers. A
// lot's steps are signed by a handful of stations, so a few entries
// serve it; the bounds only keep hostile input from growing the caches.
const (
	maxCertEntries  = 1024
	maxCertBytes    = 4 << 20
	maxTrustEntries = 1024
)

// ChainInput is one device's chain for [VerifyAll]: its encoding (what
// [Chain.Marshal] writes), or the chain already decoded.
type ChainInput struct {
	// ID names the chain in its result: a file name, a serial number.
	// VerifyAll does not interpret it.
	ID string
	// Raw is the chain as [Chain.Marshal] encodes it. It is decoded, by
	// the worker that verifies it, if Chain is nil.
	Raw []byte
	// Chain is the chain, already decoded (by [ParseChain], or a chain
	// store).
	Chain Chain
}

// ChainResult is the outcome of one chain of [VerifyAll].
type ChainResult struct {
	// Index is the chain's position in the input, from 0.
	Index int
	// ID is the input's ID.
	ID string
	// Chain is the decoded chain; nil if it did not decode.
	Chain Chain
	// Report lists every check run, as [Verify] gives it. A chain that did
	// not decode has one failed check, [CheckDecode], whose error wraps
	// [ErrMalformed] or [ErrTooLarge].
	Report *Report
}

// BulkOptions tunes [VerifyAll]. The zero value verifies complete chains at
// the current time, on every core.
type BulkOptions struct {
	// VerifyOptions apply to every chain, as [Verify] takes them.
	VerifyOptions
	// Workers bounds the number of chains verified at once. If zero or
	// negative, runtime.GOMAXPROCS(0) is used; at most MaxWorkers are.
	Workers int
	// Result, if not nil, is called with each chain's result as soon as it
	// is verified: in completion order, not input order, and one call at a
	// time, from a goroutine VerifyAll starts. VerifyAll returns after the
	// last call has returned. Result may keep what it is given; it must
	// not modify it.
	Result func(*ChainResult)
}

// Summary counts the outcomes of a [VerifyAll] call.
type Summary struct {
	// Policy is the name of the policy the chains were checked against.
	Policy string
	// Chains is the number of chains verified; Passed of them passed every
	// check and Refused did not.
	Chains, Passed, Refused int
	// Reasons counts the refused chains by the reasons of their failed
	// checks. A chain counts once under each distinct reason it failed
	// for, so the counts may add up to more than Refused.
	Reasons map[Reason]int
}

func (s *Summary) add(rep *Report) {
	s.Chains++
	if rep.OK() {
		s.Passed++
		return
	}
	s.Refused++
	var seen [maxReason]bool
	for _, c := range rep.Checks {
		var ve *VerificationError
		if c.OK || !errors.As(c.Err, &ve) {
			continue
		}
		if r := ve.Reason; r > 0 && r < maxReason && !seen[r] {
			seen[r] = true
			s.Reasons[r]++
		}
	}
}

// VerifyAll verifies many devices' chains against one policy, as [Verify]
// verifies each, on a bounded pool of workers (BulkOptions.Workers) that
// share one compilation of the policy, the certificates decoded from the
// steps' x5chain headers, and the trust decisions made about them: a
// station certificate chain that verified once is not built again for a
// step signed while every certificate of its path is valid.
//
// It reads chains from the iterator until it ends or ctx is done, hands
// each chain's [ChainResult] to opts.Result, and returns the counts. A
// chain that does not decode is refused ([CheckDecode]); VerifyAll never
// stops for a bad chain. It returns an error wrapping [ErrInvalidPolicy]
// for an unusable policy, before reading any chain; and ctx.Err() if ctx
// is done before every chain was verified, with the summary of the chains
// verified until then (chains abandoned midway are neither counted nor
// reported). Every goroutine it starts has ended when it returns.
//
// The iterator is called from the goroutine that called VerifyAll; a nil
// iterator is an empty one. opts may be nil. VerifyAll is safe for concurrent use; the policy must not be
// modified while it runs.
func VerifyAll(ctx context.Context, chains iter.Seq[ChainInput], policy *Policy, opts *BulkOptions) (*Summary, error) {
	if opts == nil {
		opts = &BulkOptions{}
	}
	if policy == nil {
		return nil, fmt.Errorf("%w: no policy", ErrInvalidPolicy)
	}
	v, err := newVerifier(policy, &opts.VerifyOptions)
	if err != nil {
		return nil, err
	}
	if chains == nil {
		chains = func(func(ChainInput) bool) {}
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, MaxWorkers)
	b := &bulk{v: v, certs: newCertCache()}
	type job struct {
		n  int
		in ChainInput
	}
	jobs := make(chan job, workers)
	results := make(chan *ChainResult, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				if r := b.one(ctx, j.n, j.in); r != nil {
					results <- r
				}
			}
		})
	}
	sum := &Summary{Policy: policy.Name, Reasons: map[Reason]int{}}
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for r := range results {
			sum.add(r.Report)
			if opts.Result != nil {
				opts.Result(r)
			}
		}
	}()
	// Stop the workers and the collector however the feeding ends, even
	// by a panic of the iterator.
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			close(jobs)
			wg.Wait()
			close(results)
			<-collected
		}
	}
	defer stop()
	n, cut := 0, false
feed:
	for in := range chains {
		select {
		case <-ctx.Done():
			cut = true
			break feed
		default:
		}
		select {
		case jobs <- job{n, in}:
			n++
		case <-ctx.Done():
			cut = true
			break feed
		}
	}
	stop()
	if err := ctx.Err(); err != nil && (cut || sum.Chains < n) {
		return sum, err
	}
	return sum, nil
}

// bulk is the state one VerifyAll call shares among its workers.
type bulk struct {
	v     *verifier
	certs *certCache
}

// one decodes (if need be) and verifies one chain. It returns nil if ctx
// was done before the chain was verified in full.
func (b *bulk) one(ctx context.Context, n int, in ChainInput) *ChainResult {
	if ctx.Err() != nil {
		return nil
	}
	r := &ChainResult{Index: n, ID: in.ID, Chain: in.Chain}
	if r.Chain == nil {
		c, err := parseChain(in.Raw, b.certs)
		if err != nil {
			r.Report = &Report{Policy: b.v.cp.p.Name}
			r.Report.fail(CheckDecode, -1, ReasonMalformed, err, "the chain does not decode")
			return r
		}
		r.Chain = c
	}
	r.Report = b.v.verify(ctx, r.Chain)
	if slices.ContainsFunc(r.Report.Checks, func(c CheckResult) bool { return c.Check == CheckContext }) {
		return nil
	}
	return r
}

// certCache holds certificates decoded from x5chain headers, by their DER
// bytes, so that the certificate a station sends with every step is
// decoded once. It is safe for concurrent use. A nil *certCache decodes
// every time.
type certCache struct {
	mu    sync.RWMutex
	m     map[string]*x509.Certificate
	bytes int
}

func newCertCache() *certCache {
	return &certCache{m: map[string]*x509.Certificate{}}
}

// parse returns the certificate der encodes, decoding it if c does not
// hold it yet.
func (c *certCache) parse(der []byte) (*x509.Certificate, error) {
	if c == nil {
		return x509.ParseCertificate(der)
	}
	c.mu.RLock()
	cert := c.m[string(der)]
	c.mu.RUnlock()
	if cert != nil {
		return cert, nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.m) < maxCertEntries && c.bytes+len(der) <= maxCertBytes {
		if _, ok := c.m[string(der)]; !ok {
			c.m[string(der)] = cert
			c.bytes += len(der)
		}
	}
	c.mu.Unlock()
	return cert, nil
}

// trustCache remembers the certificate signers that verified under the
// policy's roots: for each (leaf, intermediates) sent, the signer learned
// and the span of time in which every certificate of the path found is
// valid. A step signed within that span is signed by a trusted
// certificate: x509 path building depends on the time only through the
// certificates' validity. It is safe for concurrent use.
type trustCache struct {
	mu sync.RWMutex
	m  map[[sha256.Size]byte]*trustEntry
}

type trustEntry struct {
	sg       signer // a template: copied for each step
	from, to time.Time
}

// newTrustCache returns an empty cache; its map is made at the first put,
// which a chain signed by kid alone never reaches.
func newTrustCache() *trustCache { return &trustCache{} }

// trustKey names a leaf and the intermediates sent with it.
func trustKey(leaf *x509.Certificate, intermediates []*x509.Certificate) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, c := range append([]*x509.Certificate{leaf}, intermediates...) {
		binary.BigEndian.PutUint64(n[:], uint64(len(c.Raw)))
		h.Write(n[:])
		h.Write(c.Raw)
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// get returns a copy of the signer key names, if a path of it verified
// and is valid at t; nil otherwise.
func (c *trustCache) get(key [sha256.Size]byte, t time.Time) *signer {
	c.mu.RLock()
	e := c.m[key]
	c.mu.RUnlock()
	if e == nil || t.Before(e.from) || t.After(e.to) {
		return nil
	}
	sg := e.sg
	return &sg
}

// put remembers sg, trusted through paths (as x509.Certificate.Verify
// returns them), for the validity span of the first path.
func (c *trustCache) put(key [sha256.Size]byte, sg *signer, paths [][]*x509.Certificate) {
	if len(paths) == 0 || len(paths[0]) == 0 {
		return
	}
	e := &trustEntry{sg: *sg}
	e.sg.valid = false
	for i, cert := range paths[0] {
		if i == 0 || cert.NotBefore.After(e.from) {
			e.from = cert.NotBefore
		}
		if i == 0 || cert.NotAfter.Before(e.to) {
			e.to = cert.NotAfter
		}
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[[sha256.Size]byte]*trustEntry{}
	}
	if len(c.m) < maxTrustEntries {
		c.m[key] = e
	}
	c.mu.Unlock()
}
