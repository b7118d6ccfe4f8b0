package main

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/ztmkit/ztm/examples/internal/linestats"
)

// ContentType is the Prometheus text exposition format's media type.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Handler serves stats as Prometheus text metrics on GET.
func Handler(stats *linestats.Stats) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", ContentType)
		w.Write(Expose(stats))
	})
}

// Expose renders stats in the Prometheus text format 0.0.4.
func Expose(stats *linestats.Stats) []byte {
	var b bytes.Buffer
	stages := stats.Stages()
	writeFamily(&b, "ztm_stage_duration_seconds", "summary", "Duration of the stages of Station.Provision.")
	for _, st := range stages {
		l := label("stage", st.Stage.String())
		fmt.Fprintf(&b, "ztm_stage_duration_seconds{%s,quantile=\"0.5\"} %s\n", l, num(st.P50.Seconds()))
		fmt.Fprintf(&b, "ztm_stage_duration_seconds{%s,quantile=\"0.99\"} %s\n", l, num(st.P99.Seconds()))
		fmt.Fprintf(&b, "ztm_stage_duration_seconds_sum{%s} %s\n", l, num(st.Sum.Seconds()))
		fmt.Fprintf(&b, "ztm_stage_duration_seconds_count{%s} %d\n", l, st.Count)
	}
	writeFamily(&b, "ztm_stage_failures_total", "counter", "Stages of Station.Provision that ended with an error.")
	for _, st := range stages {
		fmt.Fprintf(&b, "ztm_stage_failures_total{%s} %d\n", label("stage", st.Stage.String()), st.Failures)
	}
	writeFamily(&b, "ztm_stages_running", "gauge", "Stages of Station.Provision started and not ended.")
	for _, st := range stages {
		fmt.Fprintf(&b, "ztm_stages_running{%s} %d\n", label("stage", st.Stage.String()), st.Running)
	}
	writeFamily(&b, "ztm_refusals_total", "counter", "Devices refused, by stage and reason (the CA's enroll reason or the station's attest reason).")
	keys, counts := stats.Refusals()
	for i, k := range keys {
		fmt.Fprintf(&b, "ztm_refusals_total{%s,%s} %d\n", label("stage", k.Stage.String()), label("reason", k.Reason), counts[i])
	}
	return b.Bytes()
}

// writeFamily writes a metric family's HELP and TYPE lines.
func writeFamily(b *bytes.Buffer, name, typ, help string) {
	help = strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(help)
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

// label renders name="value" with the value escaped as the text format
// requires (backslash, double quote, line feed).
func label(name, value string) string {
	return name + `="` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(value) + `"`
}

// num renders a float as the text format reads it (Go's ParseFloat syntax).
func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
