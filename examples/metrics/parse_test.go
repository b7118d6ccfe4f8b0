package main

// A strict parser of the Prometheus text exposition format 0.0.4, after
// the format's specification ("Exposition formats", prometheus.io) and
// the checks promtool's "check metrics" makes of its structure, written
// here so that the module takes no Prometheus dependency: the metric and
// label name grammars, quoted label values with only \\ \" \n escapes,
// Go float values (NaN, +Inf, -Inf), optional integer timestamps, HELP
// and TYPE at most once per family and before its samples, a family's
// samples contiguous, no repeated series, summary and histogram suffixes
// and quantile/le labels, and a final line feed.

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// sample is one parsed sample line.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// family is a parsed metric family.
type family struct {
	name, typ, help string
	samples         []sample
}

// parseExposition parses text strictly and returns its families by name.
func parseExposition(text string) (map[string]*family, error) {
	if text != "" && !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("no line feed after the last line")
	}
	fams := map[string]*family{}
	var order []string // families in the order their samples appear
	seen := map[string]bool{}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if err := parseLine(line, fams, &order, seen); err != nil {
			return nil, fmt.Errorf("line %d %q: %w", i+1, line, err)
		}
	}
	for _, f := range fams {
		if err := checkFamily(f); err != nil {
			return nil, fmt.Errorf("family %s: %w", f.name, err)
		}
	}
	return fams, nil
}

func parseLine(line string, fams map[string]*family, order *[]string, seen map[string]bool) error {
	switch {
	case strings.TrimSpace(line) == "":
		return nil
	case strings.HasPrefix(line, "#"):
		return parseComment(line, fams, *order)
	}
	s, err := parseSample(line)
	if err != nil {
		return err
	}
	fname := familyOf(s.name, fams)
	if n := len(*order); n == 0 || (*order)[n-1] != fname {
		if slices.Contains(*order, fname) {
			return fmt.Errorf("samples of %s are not contiguous", fname)
		}
		*order = append(*order, fname)
	}
	key := seriesKey(s)
	if seen[key] {
		return fmt.Errorf("repeated series %s", key)
	}
	seen[key] = true
	f := fams[fname]
	if f == nil {
		f = &family{name: fname, typ: "untyped"}
		fams[fname] = f
	}
	f.samples = append(f.samples, s)
	return nil
}

func parseComment(line string, fams map[string]*family, order []string) error {
	fields := strings.SplitN(strings.TrimPrefix(line, "#"), " ", 4)
	if len(fields) < 3 || fields[0] != "" || (fields[1] != "HELP" && fields[1] != "TYPE") {
		return nil // an ordinary comment
	}
	name := fields[2]
	if !metricName.MatchString(name) {
		return fmt.Errorf("bad metric name %q", name)
	}
	rest := ""
	if len(fields) == 4 {
		rest = fields[3]
	}
	f := fams[name]
	if f == nil {
		f = &family{name: name}
		fams[name] = f
	}
	switch fields[1] {
	case "HELP":
		if f.help != "" {
			return fmt.Errorf("second HELP for %s", name)
		}
		if strings.Contains(strings.ReplaceAll(strings.ReplaceAll(rest, `\\`, ""), `\n`, ""), `\`) {
			return fmt.Errorf("bad escape in HELP")
		}
		f.help = rest
	case "TYPE":
		if f.typ != "" {
			return fmt.Errorf("second TYPE for %s", name)
		}
		if slices.Contains(order, name) {
			return fmt.Errorf("TYPE for %s after its samples", name)
		}
		if !slices.Contains([]string{"counter", "gauge", "histogram", "summary", "untyped"}, rest) {
			return fmt.Errorf("unknown type %q", rest)
		}
		f.typ = rest
	}
	return nil
}

// parseSample parses name{labels} value [timestamp].
func parseSample(line string) (sample, error) {
	s := sample{labels: map[string]string{}}
	end := strings.IndexAny(line, "{ ")
	if end < 0 {
		return s, fmt.Errorf("no value")
	}
	s.name = line[:end]
	if !metricName.MatchString(s.name) {
		return s, fmt.Errorf("bad metric name %q", s.name)
	}
	rest := line[end:]
	if strings.HasPrefix(rest, "{") {
		var err error
		if rest, err = parseLabels(rest[1:], s.labels); err != nil {
			return s, err
		}
	}
	fields := strings.Fields(rest)
	if !strings.HasPrefix(rest, " ") || len(fields) < 1 || len(fields) > 2 {
		return s, fmt.Errorf("want a value and an optional timestamp after the name and labels")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil && !isRangeErr(err) {
		return s, fmt.Errorf("bad value %q", fields[0])
	}
	s.value = v
	if len(fields) == 2 {
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			return s, fmt.Errorf("bad timestamp %q", fields[1])
		}
	}
	return s, nil
}

// isRangeErr reports a float out of range, which ParseFloat still
// answers (±Inf) and the format allows.
func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// parseLabels parses label pairs up to the closing brace and returns what
// follows it.
func parseLabels(s string, out map[string]string) (string, error) {
	for {
		if strings.HasPrefix(s, "}") {
			return s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return "", fmt.Errorf("label without =")
		}
		name := s[:eq]
		if !labelName.MatchString(name) || strings.HasPrefix(name, "__") {
			return "", fmt.Errorf("bad label name %q", name)
		}
		if _, dup := out[name]; dup {
			return "", fmt.Errorf("repeated label %q", name)
		}
		s = s[eq+1:]
		if !strings.HasPrefix(s, `"`) {
			return "", fmt.Errorf("label %s: value not quoted", name)
		}
		var v strings.Builder
		i := 1
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' {
				if i+1 >= len(s) {
					return "", fmt.Errorf("label %s: unterminated escape", name)
				}
				switch s[i+1] {
				case '\\', '"':
					v.WriteByte(s[i+1])
				case 'n':
					v.WriteByte('\n')
				default:
					return "", fmt.Errorf("label %s: bad escape \\%c", name, s[i+1])
				}
				i++
				continue
			}
			v.WriteByte(s[i])
		}
		if i >= len(s) {
			return "", fmt.Errorf("label %s: unterminated value", name)
		}
		out[name] = v.String()
		s = s[i+1:]
		switch {
		case strings.HasPrefix(s, ","):
			s = s[1:]
		case strings.HasPrefix(s, "}"):
		default:
			return "", fmt.Errorf("after label %s: want , or }", name)
		}
	}
}

// familyOf maps a sample name to its family: a summary's or histogram's
// _sum, _count and _bucket samples belong to the base name.
func familyOf(name string, fams map[string]*family) string {
	for _, suf := range []string{"_sum", "_count", "_bucket"} {
		base, ok := strings.CutSuffix(name, suf)
		if f := fams[base]; ok && f != nil && (f.typ == "summary" || f.typ == "histogram") {
			return base
		}
	}
	return name
}

func seriesKey(s sample) string {
	keys := make([]string, 0, len(s.labels))
	for k, v := range s.labels {
		keys = append(keys, k+"="+strconv.Quote(v))
	}
	slices.Sort(keys)
	return s.name + "{" + strings.Join(keys, ",") + "}"
}

// checkFamily checks a family's samples against its type.
func checkFamily(f *family) error {
	for _, s := range f.samples {
		switch f.typ {
		case "counter":
			if s.name != f.name || s.value < 0 || math.IsNaN(s.value) {
				return fmt.Errorf("bad counter sample %s %v", s.name, s.value)
			}
		case "gauge", "untyped":
			if s.name != f.name {
				return fmt.Errorf("sample %s in family %s", s.name, f.name)
			}
		case "summary":
			q, hasQ := s.labels["quantile"]
			switch s.name {
			case f.name:
				v, err := strconv.ParseFloat(q, 64)
				if !hasQ || err != nil || v < 0 || v > 1 {
					return fmt.Errorf("summary sample without a quantile in [0, 1]: %q", q)
				}
			case f.name + "_sum", f.name + "_count":
				if hasQ {
					return fmt.Errorf("%s with a quantile label", s.name)
				}
			default:
				return fmt.Errorf("sample %s in summary %s", s.name, f.name)
			}
		case "histogram":
			if _, hasLE := s.labels["le"]; (s.name == f.name+"_bucket") != hasLE {
				return fmt.Errorf("histogram sample %s and its le label", s.name)
			}
		}
	}
	return nil
}
