// Package ledgertest is the conformance kit every [ca.Ledger]
// implementation runs, the way keystoretest serves key stores: append and
// chain verification, unique serials, quotas decided atomically under
// concurrency, revocation, one live issuance per device, the key
// provenance of each issuance (stored, read back and under the record's
// hash), monotonic CRL numbers, the closed state, and,
// when the ledger has them, ca.RecordReader and lookups that refuse a
// record changed behind the ledger's back.
//
// A backend's test calls [Run] with a constructor for an empty ledger:
//
//	func TestConformance(t *testing.T) {
//		ledgertest.Run(t, func(t *testing.T) ca.Ledger {
//			l, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "l.db"), sqlite.Options{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return l
//		}, ledgertest.Config{Tamper: tamper})
//	}
//
// Tampering with stored records is backend-specific, so [Config] takes
// hooks for it: Tamper must change a field the record's hash covers,
// TamperProvenance the stored key provenance. The kit's assertions use
// testify's require.
package ledgertest
