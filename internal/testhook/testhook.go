// Package testhook holds counters that the SDK's own tests read to check
// how often an expensive step runs (for example, that an enrollment parses
// its certificate request once). Nothing else reads them; incrementing one
// costs an atomic add.
package testhook

import "sync/atomic"

// CSRParsed counts the certificate requests package ca has parsed (and
// whose signature it checked), over the life of the process.
var CSRParsed atomic.Int64
