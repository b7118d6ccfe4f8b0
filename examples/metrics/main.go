// Command metrics serves a provisioning line's statistics as Prometheus
// text metrics over HTTP: the per-stage latency and counts, and the
// refusals by stage and reason, that the line's stations report through
// their ztm.Observer (StationConfig.Observer). It runs a simulated line
// (examples/linesim) with honest and bad devices, then keeps serving.
//
//	go run ./examples/metrics -devices 200 -tamper 20
//	curl -s http://127.0.0.1:9464/metrics
//
// The exposition is the Prometheus text format 0.0.4: a summary
// ztm_stage_duration_seconds{stage} with quantiles 0.5 and 0.99, counters
// ztm_stage_failures_total{stage} and ztm_refusals_total{stage,reason},
// and a gauge ztm_stages_running{stage}. The ztm library itself has no
// metrics dependency: this is the Observer an OEM writes (see
// examples/internal/linestats).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/sqlite"
	"github.com/ztmkit/ztm/examples/internal/linestats"
	"github.com/ztmkit/ztm/examples/linesim"
	"github.com/ztmkit/ztm/manifest"
	"github.com/ztmkit/ztm/manifest/chainstore"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9464", "address to serve /metrics on")
	devices := flag.Int("devices", 100, "honest devices to provision")
	tamper := flag.Int("tamper", 10, "bad devices to send as well (each is refused)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := serve(ctx, *addr, *devices, *tamper, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "metrics:", err)
		os.Exit(1)
	}
}

// serve runs the line and serves its metrics on addr until ctx ends.
func serve(ctx context.Context, addr string, devices, tamper int, w io.Writer) error {
	dir, err := os.MkdirTemp("", "ztm-metrics")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	stats := &linestats.Stats{}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: Handler(stats), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	fmt.Fprintf(w, "metrics: serving http://%s/metrics\n", ln.Addr())
	if err := provision(ctx, dir, stats, devices, tamper); err != nil {
		return err
	}
	fmt.Fprintf(w, "metrics: %d devices through the line; serving until interrupted\n", devices+tamper)
	<-ctx.Done()
	return nil
}

// provision runs devices honest and tamper bad devices through a simulated
// line whose stations report to obs. The line's ledger and steps are in
// SQLite files in dir, as a real line's are, so that the stages' latencies
// include their durable commits.
func provision(ctx context.Context, dir string, obs ztm.Observer, devices, tamper int) error {
	line, err := linesim.NewLine(ctx, linesim.Config{
		Observer: obs,
		OpenLedger: func(ctx context.Context) (ca.Ledger, error) {
			return sqlite.Open(ctx, filepath.Join(dir, "ledger.db"), sqlite.Options{})
		},
		OpenStepStore: func(ctx context.Context) (linesim.StepStore, error) {
			return chainstore.Open(ctx, filepath.Join(dir, "chains.db"))
		},
	})
	if err != nil {
		return err
	}
	defer line.Close()
	kinds := linesim.TamperKinds()
	for i := range devices + tamper {
		opts := linesim.DeviceOptions{}
		if i < tamper {
			opts.Tamper = kinds[i%len(kinds)]
		}
		dev, err := line.NewDevice(uint32(i+1), opts)
		if err != nil {
			return err
		}
		fw := map[string]manifest.Digest{"firmware": manifest.Sum(manifest.SHA256, linesim.Firmware())}
		cm := line.Partners[linesim.ContractManufacturer].Station
		if _, err := cm.Record(ctx, dev.UEID(), manifest.StepFirmwareLoad, fw, nil); err != nil {
			return err
		}
		st := cm
		var target ztm.Device = dev
		switch opts.Tamper {
		case linesim.UnauthorizedStation:
			st = line.Partners[linesim.Rogue].Station
		case linesim.KeySubstitution:
			target = linesim.SubstituteKey(dev)
		}
		_, err = st.Provision(ctx, target)
		if (err == nil) != (opts.Tamper == linesim.Honest) {
			return fmt.Errorf("device %d (%v): unexpected outcome: %v", i+1, opts.Tamper, err)
		}
		if err != nil && !errors.Is(err, ztm.ErrRefused) {
			return err
		}
	}
	return nil
}
