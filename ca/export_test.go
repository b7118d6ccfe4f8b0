package ca

// IssuedParsed returns how many issued certificates were parsed in full
// rather than built from what was signed.
func IssuedParsed() int64 { return issuedParsed.Load() }
