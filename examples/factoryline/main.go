// Command factoryline runs a simulated production line end to end: N
// simulated devices, each with a real attestation key certified by a chip
// vendor, go through three partner stations — the chip vendor (die-sort),
// the contract manufacturer (firmware-load, then ztm.Station.Provision:
// evidence, local appraisal, on-device key or HPKE-sealed key injection,
// enrollment over EST, install: key-generation or key-injection and
// key-destroyed, then enrollment) and the OEM (final-test, pack) — each
// signing its own steps. The CA runs in process with a SQLite ledger and
// serves EST over TLS on 127.0.0.1 with mutual TLS by station
// certificate. Then every device's chain is verified against the OEM's
// policy and a lot manifest with per-device receipts is signed. The summary
// shows each Provision stage's latency (p50, p99) and the refusals by
// stage and reason, from the stations' ztm.Observer.
//
//	go run ./examples/factoryline                 # 1,000 devices into ./factoryline-out
//	go run ./examples/factoryline -tamper 10      # and 10 bad devices, each refused
//
// Bad devices (-tamper N) cycle through: debug port enabled, replayed
// nonce, tampered firmware, an honest device taken to an unauthorized
// station, and an honest device at a compromised station that swaps in a
// key of its own (key-substitution: the CA refuses it, the device's
// evidence confirming another key). Every one must be refused; the program exits non-zero on
// anything unexpected (a bad device accepted, an honest one refused, a
// chain that does not verify).
//
// Outputs, in -out: ledger.db (the CA's hash-chained ledger), chains.db
// (every device's steps), policy.cose (the OEM's signed policy) and oem.pem (its public key), lot.cose (the
// signed lot manifest), chains/<serial>.chain and receipts/<serial>.receipt
// per device, and sample-evidence.cwt and sample-ear.cwt, which
// examples/inspect prints. examples/verify checks a chain, or the whole
// lot (chains/ or chains.db against lot.cose).
package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/ca/ledger/sqlite"
	"github.com/ztmkit/ztm/examples/internal/linestats"
	"github.com/ztmkit/ztm/examples/internal/progress"
	"github.com/ztmkit/ztm/examples/linesim"
	"github.com/ztmkit/ztm/manifest"
	"github.com/ztmkit/ztm/manifest/chainstore"
)

// config is what the flags set.
type config struct {
	Devices     int
	Workers     int
	Out         string
	Tamper      int
	InjectEvery int
	// Progress forces the progress bar (true) or plain lines (false); nil
	// decides by whether stdout is a terminal.
	Progress *bool
}

func main() {
	var cfg config
	flag.IntVar(&cfg.Devices, "devices", 1000, "number of honest devices to provision")
	flag.IntVar(&cfg.Workers, "workers", 4*runtime.GOMAXPROCS(0), "devices provisioned at once")
	flag.StringVar(&cfg.Out, "out", "factoryline-out", "output directory (its line files are replaced)")
	flag.IntVar(&cfg.Tamper, "tamper", 0, "number of bad devices to send as well; each must be refused")
	flag.IntVar(&cfg.InjectEvery, "inject-every", 10, "every n-th honest device cannot make keys and gets an injected key (0: none)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "factoryline:", err)
		os.Exit(1)
	}
}

// summary is what a run did.
type summary struct {
	Devices, Accepted, Refused, Injected int
	RefusedBy                            map[string]int
	Elapsed                              time.Duration
	// Stages is each Provision stage's latency and counts, and
	// RefusedFor the refusals by "stage: reason", as the stations'
	// ztm.Observer saw them.
	Stages     []linestats.StageSummary
	RefusedFor map[string]int
}

// job is one device to run through the line.
type job struct {
	n      uint32
	tamper linesim.Tamper
	inject bool
}

// outcome is what happened to one device.
type outcome struct {
	job
	dev      *linesim.Device
	res      *ztm.Result
	err      error
	stage    ztm.Stage
	accepted bool
}

func run(ctx context.Context, cfg config, w io.Writer) (*summary, error) {
	if cfg.Devices < 0 || cfg.Tamper < 0 || cfg.Devices+cfg.Tamper < 1 {
		return nil, errors.New("-devices and -tamper must not be negative, and at least one device is needed")
	}
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if err := prepareOut(cfg.Out); err != nil {
		return nil, err
	}
	start := time.Now()
	lot := "lot-" + start.UTC().Format("20060102-150405")
	stats := &linestats.Stats{}
	line, err := openLine(ctx, cfg.Out, lot, stats)
	if err != nil {
		return nil, err
	}
	defer line.Close()
	fmt.Fprintf(w, "factoryline: CA with SQLite ledger, EST at %s (mTLS by station certificate), 3 partner stations, lot %s\n", line.ESTURL, lot)

	jobs := plan(cfg)
	total := len(jobs)
	prog := progress.New(w, total, "provisioned", cfg.Progress)
	sum, accepted, unexpected, sample := tally(provisionAll(ctx, line, jobs, cfg.Workers), total, prog)
	prog.Done()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	provisioned := time.Since(start)

	// The OEM checks every accepted device's chain against its policy.
	policy := line.Policy()
	refused, err := checkChains(ctx, line, policy, cfg.Out, accepted)
	if err != nil {
		return nil, err
	}
	unexpected = append(unexpected, refused...)
	if err := writeLot(ctx, line, cfg.Out, accepted); err != nil {
		return nil, err
	}
	if err := writePolicy(line, cfg.Out, policy); err != nil {
		return nil, err
	}
	if sample != nil {
		if err := os.WriteFile(filepath.Join(cfg.Out, "sample-evidence.cwt"), sample.res.Evidence, 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(cfg.Out, "sample-ear.cwt"), sample.res.AttestationToken, 0o644); err != nil {
			return nil, err
		}
	}
	head, err := line.Ledger.Verify(ctx)
	if err != nil {
		return nil, fmt.Errorf("CA ledger: %w", err)
	}
	sum.Elapsed = time.Since(start)

	sum.Stages = stats.Stages()
	sum.RefusedFor = map[string]int{}
	keys, counts := stats.Refusals()
	for i, k := range keys {
		sum.RefusedFor[k.Stage.String()+": "+k.Reason] = counts[i]
	}
	printSummary(w, cfg, sum, policy.Name, total, provisioned)
	printStages(w, sum.Stages, keys, counts)
	fmt.Fprintf(w, "CA ledger   %d records, hash chain verified\n", head.Seq)
	fmt.Fprintf(w, "outputs     %s: ledger.db chains.db policy.cose oem.pem lot.cose chains/ receipts/\n", cfg.Out)
	if len(unexpected) > 0 {
		for _, u := range unexpected {
			fmt.Fprintln(w, "UNEXPECTED:", u)
		}
		return sum, fmt.Errorf("%d unexpected outcomes", len(unexpected))
	}
	return sum, nil
}

// openLine sets up the simulated line, with its CA's ledger and the
// stations' steps durable, in SQLite files in out.
func openLine(ctx context.Context, out, lot string, stats *linestats.Stats) (*linesim.Line, error) {
	return linesim.NewLine(ctx, linesim.Config{
		Lot: lot, EST: true, Observer: stats,
		OpenLedger: func(ctx context.Context) (ca.Ledger, error) {
			return sqlite.Open(ctx, filepath.Join(out, "ledger.db"), sqlite.Options{})
		},
		OpenStepStore: func(ctx context.Context) (linesim.StepStore, error) {
			return chainstore.Open(ctx, filepath.Join(out, "chains.db"))
		},
	})
}

// provisionAll runs jobs through the line on workers goroutines and sends
// each outcome as it comes; the channel is closed after the last one, or
// early if ctx ends.
func provisionAll(ctx context.Context, line *linesim.Line, jobs []job, workers int) <-chan outcome {
	queue := make(chan job)
	results := make(chan outcome)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range queue {
				results <- runDevice(ctx, line, j)
			}
		}()
	}
	go func() {
		defer close(queue)
		for _, j := range jobs {
			select {
			case queue <- j:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()
	return results
}

// tally counts the outcomes as they come: accepted honest devices (kept
// for the OEM's check), refusals of the bad ones by kind and stage, and
// anything unexpected; sample is the first accepted device.
func tally(results <-chan outcome, total int, prog *progress.Bar) (sum *summary, accepted []outcome, unexpected []string, sample *outcome) {
	sum = &summary{Devices: total, RefusedBy: map[string]int{}}
	for o := range results {
		prog.Tick()
		switch {
		case o.accepted && o.tamper == linesim.Honest:
			sum.Accepted++
			if o.inject {
				sum.Injected++
			}
			accepted = append(accepted, o)
			if sample == nil {
				sample = &o
			}
		case o.tamper == linesim.KeySubstitution && !keyBindingRefusal(o.err):
			unexpected = append(unexpected, fmt.Sprintf("device %d (%v) not refused for its key binding: %v", o.n, o.tamper, o.err))
		case !o.accepted && o.tamper != linesim.Honest && errors.Is(o.err, ztm.ErrRefused):
			sum.Refused++
			sum.RefusedBy[fmt.Sprintf("%v at %v", o.tamper, o.stage)]++
		case o.accepted:
			unexpected = append(unexpected, fmt.Sprintf("device %d (%v) was accepted", o.n, o.tamper))
		default:
			unexpected = append(unexpected, fmt.Sprintf("device %d (%v): %v", o.n, o.tamper, o.err))
		}
	}
	return sum, accepted, unexpected, sample
}

// checkChains verifies each accepted device's chain against the policy,
// as the OEM does, and writes those that pass to out/chains. It returns a
// line for each chain the policy refuses.
func checkChains(ctx context.Context, line *linesim.Line, policy *manifest.Policy, out string, accepted []outcome) ([]string, error) {
	var refused []string
	for _, o := range accepted {
		chain, err := line.Chains.Chain(ctx, o.dev.UEID())
		if err != nil {
			return nil, err
		}
		if rep := manifest.Verify(ctx, chain, policy, nil); !rep.OK() {
			refused = append(refused, fmt.Sprintf("device %s: chain refused by the policy:\n%s", o.dev.Serial(), rep))
			continue
		}
		raw, err := chain.Marshal()
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(out, "chains", o.dev.Serial()+".chain"), raw, 0o644); err != nil {
			return nil, err
		}
	}
	return refused, nil
}

// printSummary prints the line's outcome: devices, accepted, refused by
// kind, throughput.
func printSummary(w io.Writer, cfg config, sum *summary, policy string, total int, provisioned time.Duration) {
	fmt.Fprintf(w, "\ndevices     %d (%d honest, %d bad)\n", total, cfg.Devices, cfg.Tamper)
	fmt.Fprintf(w, "accepted    %d (%d with an injected key), every chain verified against policy %q\n", sum.Accepted, sum.Injected, policy)
	fmt.Fprintf(w, "refused     %d", sum.Refused)
	if len(sum.RefusedBy) > 0 {
		var kinds []string
		for k, n := range sum.RefusedBy {
			kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
		}
		fmt.Fprintf(w, " (%s)", strings.Join(sortStrings(kinds), ", "))
	}
	fmt.Fprintf(w, "\nthroughput  %.0f devices/s (%v provisioning, %v in all, %d workers)\n",
		float64(total)/provisioned.Seconds(), provisioned.Round(time.Millisecond), sum.Elapsed.Round(time.Millisecond), cfg.Workers)
}

// keyBindingRefusal reports whether err is the CA's refusal of a request
// for a key the device's evidence does not confirm.
func keyBindingRefusal(err error) bool {
	var re *enroll.RefusalError
	return errors.As(err, &re) && re.Reason == enroll.ReasonKeyBinding
}

// plan spreads the bad devices among the honest ones.
func plan(cfg config) []job {
	total := cfg.Devices + cfg.Tamper
	jobs := make([]job, 0, total)
	kinds := linesim.TamperKinds()
	bad, honest := 0, 0
	for i := range total {
		// Bad device number k goes at about position (k+1)*total/(Tamper+1).
		if bad < cfg.Tamper && i+1 >= (bad+1)*total/(cfg.Tamper+1) {
			jobs = append(jobs, job{n: uint32(i + 1), tamper: kinds[bad%len(kinds)]})
			bad++
			continue
		}
		honest++
		jobs = append(jobs, job{n: uint32(i + 1), inject: cfg.InjectEvery > 0 && honest%cfg.InjectEvery == 0})
	}
	return jobs
}

// runDevice takes one device through every station.
func runDevice(ctx context.Context, line *linesim.Line, j job) outcome {
	o := outcome{job: j}
	dev, err := line.NewDevice(j.n, linesim.DeviceOptions{Tamper: j.tamper, NoKeyGeneration: j.inject})
	if err != nil {
		o.err = err
		return o
	}
	o.dev = dev
	chip := line.Partners[linesim.ChipVendor].Station
	cm := line.Partners[linesim.ContractManufacturer].Station
	oem := line.Partners[linesim.OEM].Station
	if _, err := chip.Record(ctx, dev.UEID(), manifest.StepDieSort, nil, manifest.Claims{"bin": 1, "wafer": "W0421"}); err != nil {
		o.err = err
		return o
	}
	fw := map[string]manifest.Digest{"firmware": manifest.Sum(manifest.SHA256, linesim.Firmware())}
	if _, err := cm.Record(ctx, dev.UEID(), manifest.StepFirmwareLoad, fw, nil); err != nil {
		o.err = err
		return o
	}
	st := cm
	if j.tamper == linesim.UnauthorizedStation {
		st = line.Partners[linesim.Rogue].Station
	}
	var target ztm.Device = dev
	if j.tamper == linesim.KeySubstitution {
		target = linesim.SubstituteKey(dev)
	}
	o.res, o.err = st.Provision(ctx, target)
	if o.err != nil {
		var pe *ztm.ProvisionError
		if errors.As(o.err, &pe) {
			o.stage = pe.Stage
		}
		return o
	}
	if _, err := oem.Record(ctx, dev.UEID(), manifest.StepFinalTest, nil, manifest.Claims{"result": "pass"}); err != nil {
		o.err = err
		return o
	}
	if _, err := oem.Record(ctx, dev.UEID(), manifest.StepPack, nil, manifest.Claims{"carton": fmt.Sprintf("C%05d", j.n/50)}); err != nil {
		o.err = err
		return o
	}
	o.accepted = true
	return o
}

// writeLot signs the lot manifest over every packed device's last step and
// writes each device's receipt, checking it.
func writeLot(ctx context.Context, line *linesim.Line, out string, accepted []outcome) error {
	serials := make(map[string]string, len(accepted))
	for _, o := range accepted {
		serials[string(o.dev.UEID())] = o.dev.Serial()
	}
	lot, err := manifest.NewLot(line.Lot, manifest.LotOptions{KeepProofs: true})
	if err != nil {
		return err
	}
	type leaf struct {
		serial string
		step   []byte
	}
	var leaves []leaf
	err = line.Chains.Lot(ctx, line.Lot, func(subject, latest []byte) error {
		if _, err := lot.Add(latest); err != nil {
			return err
		}
		leaves = append(leaves, leaf{serials[string(subject)], append([]byte(nil), latest...)})
		return nil
	})
	if err != nil {
		return err
	}
	if len(leaves) != len(accepted) {
		return fmt.Errorf("the lot holds %d devices, %d were packed", len(leaves), len(accepted))
	}
	signer, err := manifest.NewStepSigner(line.OEMKey, manifest.SignOptions{Issuer: "ZTM Widgets"})
	if err != nil {
		return err
	}
	m, err := lot.Sign(nil, signer, time.Now())
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "lot.cose"), m.Raw, 0o644); err != nil {
		return err
	}
	for i, lf := range leaves {
		r, err := m.Receipt(uint64(i))
		if err != nil {
			return err
		}
		if _, err := manifest.VerifyReceipt(r, lf.step, line.OEMKey.Public()); err != nil {
			return fmt.Errorf("receipt of %s: %w", lf.serial, err)
		}
		if err := os.WriteFile(filepath.Join(out, "receipts", lf.serial+".receipt"), r, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writePolicy writes the OEM's signed policy and public key.
func writePolicy(line *linesim.Line, out string, p *manifest.Policy) error {
	signed, err := manifest.SignPolicy(nil, p, line.OEMKey, manifest.SignOptions{Issuer: p.Issuer})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "policy.cose"), signed, 0o644); err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(line.OEMKey.Public())
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "oem.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
}

// prepareOut creates out and removes what an earlier run left there.
func prepareOut(out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, pattern := range []string{"ledger.db*", "chains.db*", "*.cose", "*.cwt", "oem.pem"} {
		matches, _ := filepath.Glob(filepath.Join(out, pattern))
		for _, m := range matches {
			if err := os.Remove(m); err != nil {
				return err
			}
		}
	}
	for _, dir := range []string{"chains", "receipts"} {
		if err := os.RemoveAll(filepath.Join(out, dir)); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(out, dir), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// printStages prints each Provision stage's latency (p50, p99) and the
// refusals by stage and reason, as the stations' Observer saw them.
func printStages(w io.Writer, stages []linestats.StageSummary, keys []linestats.Refusal, counts []int) {
	fmt.Fprintf(w, "stages      %-10s %7s %10s %10s %8s\n", "", "count", "p50", "p99", "failed")
	for _, st := range stages {
		fmt.Fprintf(w, "            %-10s %7d %10v %10v %8d\n", st.Stage, st.Count,
			st.P50.Round(time.Microsecond), st.P99.Round(time.Microsecond), st.Failures)
	}
	var parts []string
	for i, k := range keys {
		parts = append(parts, fmt.Sprintf("%d at %s: %s", counts[i], k.Stage, k.Reason))
	}
	if len(parts) > 0 {
		fmt.Fprintf(w, "refusals    %s\n", strings.Join(parts, ", "))
	}
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}
