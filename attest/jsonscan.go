package attest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// jsonMember is one member of a JSON object: its name and the exact bytes of
// its value.
type jsonMember struct {
	name  []byte // unescaped
	value []byte
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isJSONSpace(b[i]) {
		i++
	}
	return i
}

// scanString returns the end (one past the closing quote) of the JSON
// string starting at b[i] == '"', and whether it contains escapes.
func scanString(b []byte, i int) (end int, escaped bool, err error) {
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, escaped, nil
		case c == '\\':
			escaped = true
			j++
		case c < 0x20:
			return 0, false, errors.New("control character in string")
		}
	}
	return 0, false, errors.New("unterminated string")
}

// skipValue returns the end of the JSON value starting at b[i]. It checks
// only the nesting; the caller validates the value's bytes when it decodes
// them.
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errors.New("missing value")
	}
	switch b[i] {
	case '"':
		end, _, err := scanString(b, i)
		return end, err
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, _, err := scanString(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
				if depth > 64 {
					return 0, errors.New("nested too deeply")
				}
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errors.New("unterminated object or array")
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && !isJSONSpace(b[j]) {
		j++
	}
	if j == i {
		return 0, errors.New("missing value")
	}
	return j, nil
}

// scanObject splits one JSON object into its members, refusing duplicate
// names (RFC 7519 §4 lets a JWT parser reject them; ztm does) and trailing
// data. Member values are checked as they are decoded.
func scanObject(b []byte) ([]jsonMember, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, errors.New("want a JSON object")
	}
	i = skipSpace(b, i+1)
	var out []jsonMember
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		out = make([]jsonMember, 0, 16)
		for {
			if i >= len(b) || b[i] != '"' {
				return nil, errors.New("want a member name")
			}
			end, escaped, err := scanString(b, i)
			if err != nil {
				return nil, err
			}
			var name []byte
			if escaped {
				var s string
				if err := json.Unmarshal(b[i:end], &s); err != nil {
					return nil, err
				}
				name = []byte(s)
			} else {
				if !utf8.Valid(b[i+1 : end-1]) {
					return nil, errors.New("invalid UTF-8 in member name")
				}
				name = b[i+1 : end-1]
			}
			for _, m := range out {
				if bytes.Equal(m.name, name) {
					return nil, fmt.Errorf("duplicate member %q", name)
				}
			}
			i = skipSpace(b, end)
			if i >= len(b) || b[i] != ':' {
				return nil, errors.New("want ':'")
			}
			i = skipSpace(b, i+1)
			vend, err := skipValue(b, i)
			if err != nil {
				return nil, err
			}
			out = append(out, jsonMember{name: name, value: b[i:vend]})
			i = skipSpace(b, vend)
			if i < len(b) && b[i] == ',' {
				i = skipSpace(b, i+1)
				continue
			}
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			return nil, errors.New("want ',' or '}'")
		}
	}
	if skipSpace(b, i) != len(b) {
		return nil, errors.New("trailing data after the JSON object")
	}
	return out, nil
}

// jsonString decodes a JSON string value, with a fast path for strings
// without escapes.
func jsonString(v []byte) (string, error) {
	if len(v) >= 2 && v[0] == '"' {
		end, escaped, err := scanString(v, 0)
		if err == nil && !escaped && end == len(v) {
			if !utf8.Valid(v[1 : end-1]) {
				return "", errors.New("invalid UTF-8 in string")
			}
			return string(v[1 : end-1]), nil
		}
	}
	var s string
	err := json.Unmarshal(v, &s)
	return s, err
}

// jsonInt decodes a JSON integer.
func jsonInt(v []byte) (int64, error) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || (len(v) > 1 && v[0] == '0') || (len(v) > 2 && v[0] == '-' && v[1] == '0') {
		return 0, fmt.Errorf("not a JSON integer: %.20q", v)
	}
	return n, nil
}

// jsonBool decodes a JSON boolean.
func jsonBool(v []byte) (bool, error) {
	switch string(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("not a JSON boolean: %.20q", v)
}

// scanArray splits one JSON array into the exact bytes of its elements.
// Elements are checked as they are decoded.
func scanArray(b []byte) ([][]byte, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, errors.New("want a JSON array")
	}
	i = skipSpace(b, i+1)
	var out [][]byte
	if i < len(b) && b[i] == ']' {
		i++
	} else {
		for {
			end, err := skipValue(b, i)
			if err != nil {
				return nil, err
			}
			out = append(out, b[i:end])
			i = skipSpace(b, end)
			if i < len(b) && b[i] == ',' {
				i = skipSpace(b, i+1)
				continue
			}
			if i < len(b) && b[i] == ']' {
				i++
				break
			}
			return nil, errors.New("want ',' or ']'")
		}
	}
	if skipSpace(b, i) != len(b) {
		return nil, errors.New("trailing data after the JSON array")
	}
	return out, nil
}

// jsonNumericDate decodes a NumericDate (RFC 7519 §2): seconds since the
// epoch, possibly with a fraction, which is dropped.
func jsonNumericDate(v []byte) (int64, error) {
	if n, err := jsonInt(v); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || f != f || f < -1<<62 || f > 1<<62 || !json.Valid(v) {
		return 0, fmt.Errorf("not a NumericDate: %.20q", v)
	}
	return int64(f), nil
}
