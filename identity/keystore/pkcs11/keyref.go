//go:build cgo

package pkcs11

import (
	"strings"

	p11 "github.com/miekg/pkcs11"

	"github.com/ztmkit/ztm/identity/keystore"
)

// keyRef says which private key object a name given to Get or Delete
// selects: by CKA_LABEL, by CKA_ID, or by both.
type keyRef struct {
	name    string // as given
	label   string
	id      []byte
	byLabel bool
	byID    bool
}

// template returns the search template of the private key objects r
// selects.
func (r keyRef) template() []*p11.Attribute {
	tmpl := []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY)}
	if r.byLabel {
		tmpl = append(tmpl, p11.NewAttribute(p11.CKA_LABEL, r.label))
	}
	if r.byID {
		tmpl = append(tmpl, p11.NewAttribute(p11.CKA_ID, r.id))
	}
	return tmpl
}

// resolve turns a name given to Get or Delete into a keyRef: a label that
// [keystore.ValidateLabel] accepts, or a PKCS#11 URI with object, id or
// both. A URI's token attributes, if any, must describe the store's token;
// its query attributes are ignored, so that the URI a store was opened
// with also names its key.
func (s *Store) resolve(name string) (keyRef, error) {
	lerr := keystore.ValidateLabel(name)
	if lerr == nil {
		return keyRef{name: name, label: name, byLabel: true}, nil
	}
	scheme, _, ok := strings.Cut(name, ":")
	if !ok || !strings.EqualFold(scheme, Scheme) {
		return keyRef{}, lerr
	}
	cfg, err := parseURI(name, false)
	if err != nil {
		return keyRef{}, err
	}
	fail := func(part, reason string) (keyRef, error) {
		return keyRef{}, &keystore.URIError{URI: keystore.RedactURI(name), Part: part, Reason: reason}
	}
	if cfg.Object == "" && len(cfg.ID) == 0 {
		return fail("object", "a key URI needs object=, id= or both")
	}
	info := s.tok.info
	switch {
	case cfg.TokenLabel != "" && cfg.TokenLabel != info.Label:
		return fail("token", "names another token than the store's")
	case cfg.TokenSerial != "" && cfg.TokenSerial != info.SerialNumber:
		return fail("serial", "names another token than the store's")
	case cfg.TokenManufacturer != "" && cfg.TokenManufacturer != info.ManufacturerID:
		return fail("manufacturer", "names another token than the store's")
	case cfg.TokenModel != "" && cfg.TokenModel != info.Model:
		return fail("model", "names another token than the store's")
	case cfg.HasSlotID && cfg.SlotID != s.tok.slot:
		return fail("slot-id", "names another slot than the store's")
	}
	return keyRef{name: name, label: cfg.Object, id: cfg.ID, byLabel: cfg.Object != "", byID: len(cfg.ID) > 0}, nil
}

// keyName returns the name under which List shows, and Key.Label
// returns, the private key with CKA_LABEL label and CKA_ID id: the label
// itself when [keystore.ValidateLabel] accepts it and unique is true (no
// other private key has it), and otherwise a PKCS#11 URI with the label
// and id, percent-encoded, which Get and Delete accept. It returns "" for
// a key with neither, which no URI can name.
func keyName(label string, id []byte, unique bool) string {
	if unique && keystore.ValidateLabel(label) == nil {
		return label
	}
	if label == "" && len(id) == 0 {
		return ""
	}
	var parts []string
	if label != "" {
		parts = append(parts, "object="+escapeValue(label))
	}
	if len(id) > 0 {
		parts = append(parts, "id="+escapeBytes(id))
	}
	return Scheme + ":" + strings.Join(parts, ";")
}

// errAmbiguous is the error for a name that several private keys match.
func (s *Store) errAmbiguous(r keyRef) error {
	if r.byID {
		return errorf("pkcs11: several private keys on token %q match %q", s.tok.info.Label, r.name)
	}
	return errorf("pkcs11: several private keys on token %q have the label %q: name one with a URI with its id (List gives them)", s.tok.info.Label, r.label)
}
