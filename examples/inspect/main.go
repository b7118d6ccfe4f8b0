// Command inspect prints what ztm writes in a form people read: a manifest
// chain or step, attestation evidence (EAT as CWT or JWT), an attestation
// result (EAR), a signed policy, a lot manifest or a receipt.
//
//	go run ./examples/inspect factoryline-out/sample-evidence.cwt
//	go run ./examples/inspect factoryline-out/chains/ZTM-0000001.chain
//
// CBOR is printed in extended diagnostic notation (RFC 8949 §8), with byte
// strings that hold CBOR (COSE headers and payloads) opened up, followed by
// the names of the registered claim keys it uses. A JWT is printed as its
// header and claims in indented JSON. Nothing is verified: see
// examples/verify for that.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/fxamacker/cbor/v2"

	"github.com/ztmkit/ztm/manifest"
)

// maxInput bounds what inspect reads.
const maxInput = 4 << 20

func main() {
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: inspect FILE...")
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	status := 0
	for _, name := range flag.Args() {
		data, err := readFile(name)
		if err == nil {
			fmt.Printf("== %s\n", name)
			err = inspect(os.Stdout, data)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "inspect: %s: %v\n", name, err)
			status = 1
		}
	}
	os.Exit(status)
}

func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxInput+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxInput {
		return nil, fmt.Errorf("larger than %d bytes", maxInput)
	}
	return data, nil
}

// errUnknown is input that is neither a JWT nor one CBOR data item.
var errUnknown = errors.New("neither a JWT nor a CBOR data item")

// diag is the diagnostic mode: byte strings in hex.
var diag = func() cbor.DiagMode {
	m, err := cbor.DiagOptions{MaxNestedLevels: 64}.DiagMode()
	if err != nil {
		panic(err) // static options
	}
	return m
}()

// sign1 is a COSE_Sign1 (RFC 9052 §4.2) without its tag.
type sign1 struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected cbor.RawMessage
	Payload     []byte
	Signature   []byte
}

// printSign1 prints a COSE_Sign1 with its protected header and payload
// opened; it reports false if data is not one.
func printSign1(w io.Writer, data []byte) bool {
	var tag cbor.RawTag
	if err := cbor.Unmarshal(data, &tag); err != nil {
		return false
	}
	if tag.Number == 61 { // CWT tag around the COSE message
		if err := cbor.Unmarshal(tag.Content, &tag); err != nil {
			return false
		}
	}
	var m sign1
	if tag.Number != 18 || cbor.Unmarshal(tag.Content, &m) != nil {
		return false
	}
	field := func(b []byte) string {
		if len(b) == 0 {
			return "h''"
		}
		if d, err := diag.Diagnose(b); err == nil {
			return "<< " + d + " >>"
		}
		return "h'" + hex.EncodeToString(b) + "'"
	}
	unprot, err := diag.Diagnose(m.Unprotected)
	if err != nil {
		return false
	}
	payload := "nil (detached)"
	if m.Payload != nil {
		payload = field(m.Payload)
	}
	fmt.Fprintf(w, "COSE_Sign1 (RFC 9052, tag 18)\nprotected   %s\nunprotected %s\npayload     %s\nsignature   h'%x'\n",
		field(m.Protected), unprot, payload, m.Signature)
	return true
}

// inspect prints one input.
func inspect(w io.Writer, data []byte) error {
	// Only text is trimmed: a binary item may well end in a byte that
	// reads as white space (a signature's last byte, say).
	if text := bytes.TrimSpace(data); isJWT(text) {
		return inspectJWT(w, text)
	}
	if chain, err := manifest.ParseChain(data); err == nil {
		fmt.Fprintf(w, "manifest chain, %d steps\n", len(chain))
		for i, s := range chain {
			fmt.Fprintf(w, "\n-- step %d\n", i)
			if err := printStep(w, s); err != nil {
				return err
			}
		}
		return nil
	}
	if s, err := manifest.ParseSignedStep(data); err == nil {
		fmt.Fprintln(w, "manifest step")
		return printStep(w, s)
	}
	return printCBOR(w, data, true)
}

func printStep(w io.Writer, s *manifest.SignedStep) error {
	st := s.Step
	fmt.Fprintf(w, "name       %s\nsequence   %d\nsubject    %x\nissuer     %s\ntime       %s\n",
		st.Name, st.Sequence, st.Subject, s.Issuer, st.Time.Format("2006-01-02T15:04:05Z"))
	if st.Lot != "" {
		fmt.Fprintf(w, "lot        %s\n", st.Lot)
	}
	if len(s.KeyID) > 0 {
		fmt.Fprintf(w, "kid        %x\n", s.KeyID)
	}
	names := make([]string, 0, len(st.Artifacts))
	for n := range st.Artifacts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d := st.Artifacts[n]
		fmt.Fprintf(w, "artifact   %-20s %v %x\n", n, d.Alg, d.Value)
	}
	return printCBOR(w, s.Raw, false)
}

// printCBOR prints data in diagnostic notation, and with withLegend the
// meaning of the registered keys it uses (for evidence, results, receipts).
func printCBOR(w io.Writer, data []byte, withLegend bool) error {
	if !printSign1(w, data) {
		text, err := diag.Diagnose(data)
		if err != nil {
			return fmt.Errorf("%w: %v", errUnknown, err)
		}
		fmt.Fprintln(w, kind(data))
		fmt.Fprintln(w, text)
	}
	if !withLegend {
		return nil
	}
	if keys := legend(data); len(keys) > 0 {
		fmt.Fprintf(w, "registered keys used (COSE header labels, CWT/EAT/EAR claims): %s\n", strings.Join(keys, ", "))
	}
	return nil
}

// kind names the outer structure.
func kind(data []byte) string {
	var tag cbor.RawTag
	if err := cbor.Unmarshal(data, &tag); err == nil {
		switch tag.Number {
		case 18:
			return "COSE_Sign1 (RFC 9052, tag 18): [protected, unprotected, payload, signature]"
		case 61:
			return "CWT (RFC 8392, tag 61)"
		}
		return fmt.Sprintf("CBOR tag %d", tag.Number)
	}
	return "CBOR"
}

// claimNames are the registered CWT, EAT and EAR claim keys and COSE header
// labels ztm uses.
var claimNames = map[int64]string{
	1: "alg / iss", 2: "crit / sub", 3: "content type", 4: "kid", 6: "iat", 10: "eat_nonce", 15: "CWT claims",
	33: "x5chain", 256: "ueid", 258: "oemid", 259: "hwmodel", 260: "hwversion", 262: "oemboot", 263: "dbgstat",
	265: "eat_profile", 266: "submods", 270: "swname", 271: "swversion", 273: "measurements", 395: "vds", 396: "vdp",
	1000: "ear.status", 1001: "ear.trustworthiness-vector", 1003: "ear.appraisal-policy-id", 1004: "ear.verifier-id",
	-71000: "ztm.evidence-digest", -71001: "ztm.reasons", -71002: "ztm.ueid",
}

// legend lists the known integer map keys anywhere in data, including in
// embedded CBOR byte strings.
func legend(data []byte) []string {
	seen := map[int64]bool{}
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		if depth > 32 {
			return
		}
		switch x := v.(type) {
		case map[any]any:
			for k, e := range x {
				switch n := k.(type) {
				case int64:
					seen[n] = true
				case uint64:
					if n < 1<<62 {
						seen[int64(n)] = true
					}
				}
				walk(e, depth+1)
			}
		case []any:
			for _, e := range x {
				walk(e, depth+1)
			}
		case cbor.Tag:
			walk(x.Content, depth+1)
		case []byte:
			var inner any
			if err := cbor.Unmarshal(x, &inner); err == nil {
				walk(inner, depth+1)
			}
		}
	}
	var v any
	if err := cbor.Unmarshal(data, &v); err != nil {
		return nil
	}
	walk(v, 0)
	keys := make([]int64, 0, len(seen))
	for k := range seen {
		if _, ok := claimNames[k]; ok {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("%d %s", k, claimNames[k])
	}
	return out
}

func isJWT(data []byte) bool {
	return bytes.HasPrefix(data, []byte("ey")) && bytes.Count(data, []byte(".")) == 2
}

func inspectJWT(w io.Writer, data []byte) error {
	parts := strings.Split(string(data), ".")
	fmt.Fprintln(w, "JWT (RFC 7519, JWS compact serialization)")
	for i, label := range []string{"header", "claims"} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return fmt.Errorf("%w: %s: %v", errUnknown, label, err)
		}
		var out bytes.Buffer
		if err := json.Indent(&out, raw, "", "  "); err != nil {
			return fmt.Errorf("%w: %s: %v", errUnknown, label, err)
		}
		fmt.Fprintf(w, "%s %s\n", label, out.String())
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return fmt.Errorf("%w: signature: %v", errUnknown, err)
	}
	fmt.Fprintf(w, "signature %d bytes: %s…\n", len(sig), hex.EncodeToString(sig[:min(len(sig), 16)]))
	return nil
}
