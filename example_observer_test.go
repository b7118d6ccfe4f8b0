package ztm_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"sync"
	"time"

	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/examples/linesim"
)

// latency is an Observer: it keeps each stage's durations and counts the
// CA's refusals by reason. A line exports such numbers to its metrics
// system (examples/metrics serves them as Prometheus text).
type latency struct {
	mu        sync.Mutex
	durations map[ztm.Stage][]time.Duration
	refusals  map[string]int
}

func (l *latency) StageStart(ctx context.Context, stage ztm.Stage) {}

func (l *latency) StageEnd(ctx context.Context, stage ztm.Stage, d time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.durations[stage] = append(l.durations[stage], d)
	var re *enroll.RefusalError
	if errors.As(err, &re) {
		l.refusals[stage.String()+": "+re.Reason.String()]++
	}
}

// A station reports its stages to an Observer (StationConfig.Observer);
// here the stations of a simulated line (examples/linesim) do. The line's
// CA ledger and steps are in memory; a real line keeps them in
// ca/ledger/sqlite and manifest/chainstore.
func ExampleObserver() {
	ctx := context.Background()
	obs := &latency{durations: map[ztm.Stage][]time.Duration{}, refusals: map[string]int{}}
	line, err := linesim.NewLine(ctx, linesim.Config{Observer: obs})
	if err != nil {
		log.Fatal(err)
	}
	defer line.Close()

	dev, err := line.NewDevice(1, linesim.DeviceOptions{})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := line.Partners[linesim.ContractManufacturer].Station.Provision(ctx, dev); err != nil {
		log.Fatal(err)
	}
	// The rogue station's certificate does not allow the idevid profile.
	other, err := line.NewDevice(2, linesim.DeviceOptions{})
	if err != nil {
		log.Fatal(err)
	}
	_, err = line.Partners[linesim.Rogue].Station.Provision(ctx, other)
	fmt.Println("refused:", errors.Is(err, ztm.ErrRefused))

	var stages []string
	for s := ztm.StageInfo; s <= ztm.StageRecord; s++ {
		stages = append(stages, fmt.Sprintf("%s×%d", s, len(obs.durations[s])))
	}
	fmt.Println(strings.Join(stages, " "))
	fmt.Println(obs.refusals)
	// Output:
	// refused: true
	// info×2 nonce×2 evidence×2 appraisal×2 key×2 csr×2 enroll×2 install×1 record×1
	// map[enroll: not-authorized:1]
}
