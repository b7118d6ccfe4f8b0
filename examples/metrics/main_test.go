package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ztmkit/ztm/examples/internal/linestats"
)

// TestMetricsOverHTTP provisions a small line, serves its metrics on
// 127.0.0.1 and parses the answer strictly.
func TestMetricsOverHTTP(t *testing.T) {
	t.Parallel()
	var stats linestats.Stats
	if err := provision(context.Background(), t.TempDir(), &stats, 4, 5); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(&stats)) // listens on 127.0.0.1
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ContentType {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	fams, err := parseExposition(string(body))
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	get := func(fam, name string, labels map[string]string) (float64, bool) {
		f := fams[fam]
		if f == nil {
			return 0, false
		}
	next:
		for _, s := range f.samples {
			if s.name != name || len(s.labels) != len(labels) {
				continue
			}
			for k, v := range labels {
				if s.labels[k] != v {
					continue next
				}
			}
			return s.value, true
		}
		return 0, false
	}
	for fam, typ := range map[string]string{"ztm_stage_duration_seconds": "summary", "ztm_stage_failures_total": "counter",
		"ztm_stages_running": "gauge", "ztm_refusals_total": "counter"} {
		if f := fams[fam]; f == nil || f.typ != typ || f.help == "" {
			t.Errorf("family %s: %+v, want type %s with help", fam, f, typ)
		}
	}
	// 9 devices: 4 honest, one of each of the 5 kinds of bad device.
	if v, ok := get("ztm_stage_duration_seconds", "ztm_stage_duration_seconds_count", map[string]string{"stage": "info"}); !ok || v != 9 {
		t.Errorf("info count %v %v, want 9", v, ok)
	}
	if v, ok := get("ztm_stage_duration_seconds", "ztm_stage_duration_seconds_count", map[string]string{"stage": "record"}); !ok || v != 4 {
		t.Errorf("record count %v %v, want 4", v, ok)
	}
	p50, ok1 := get("ztm_stage_duration_seconds", "ztm_stage_duration_seconds", map[string]string{"stage": "enroll", "quantile": "0.5"})
	p99, ok2 := get("ztm_stage_duration_seconds", "ztm_stage_duration_seconds", map[string]string{"stage": "enroll", "quantile": "0.99"})
	if !ok1 || !ok2 || p50 <= 0 || p99 < p50 {
		t.Errorf("enroll p50 %v p99 %v", p50, p99)
	}
	for _, r := range []struct{ stage, reason string }{
		{"appraisal", "debug-enabled"}, {"appraisal", "nonce-unknown"}, {"appraisal", "measurement-mismatch"},
		{"enroll", "not-authorized"}, {"enroll", "key-binding"},
	} {
		if v, ok := get("ztm_refusals_total", "ztm_refusals_total", map[string]string{"stage": r.stage, "reason": r.reason}); !ok || v != 1 {
			t.Errorf("refusals %s/%s: %v %v, want 1", r.stage, r.reason, v, ok)
		}
	}
	if v, ok := get("ztm_stage_failures_total", "ztm_stage_failures_total", map[string]string{"stage": "appraisal"}); !ok || v != 3 {
		t.Errorf("appraisal failures %v %v, want 3", v, ok)
	}

	resp2, err := http.Post(srv.URL+"/metrics", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp2.StatusCode)
	}
}

// TestParserRefuses checks that the parser the test relies on refuses
// what the text format does not allow.
func TestParserRefuses(t *testing.T) {
	t.Parallel()
	good := "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 2\n"
	if _, err := parseExposition(good); err != nil {
		t.Fatalf("good exposition refused: %v", err)
	}
	for name, bad := range map[string]string{
		"no final LF":       strings.TrimSuffix(good, "\n"),
		"bad name":          "1a 2\n",
		"unquoted label":    "a{x=1} 2\n",
		"bad escape":        "a{x=\"\\t\"} 2\n",
		"unterminated":      "a{x=\"1} 2\n",
		"bad value":         "a 2x\n",
		"no value":          "a{x=\"1\"}\n",
		"bad timestamp":     "a 2 1.5\n",
		"repeated series":   "a 1\na 2\n",
		"repeated label":    "a{x=\"1\",x=\"2\"} 1\n",
		"TYPE after sample": "a 1\n# TYPE a gauge\n",
		"second TYPE":       "# TYPE a gauge\n# TYPE a gauge\na 1\n",
		"unknown type":      "# TYPE a meter\na 1\n",
		"not contiguous":    "a 1\nb 1\na{x=\"1\"} 1\n",
		"negative counter":  "# TYPE a_total counter\na_total -1\n",
		"summary no q":      "# TYPE s summary\ns 1\n",
		"summary bad q":     "# TYPE s summary\ns{quantile=\"2\"} 1\n",
		"reserved label":    "a{__x=\"1\"} 1\n",
		"trailing garbage":  "a 1 2 3\n",
	} {
		if _, err := parseExposition(bad); err == nil {
			t.Errorf("%s: accepted %q", name, bad)
		}
	}
}
