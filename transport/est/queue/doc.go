// Package queue is a station's durable store-and-forward queue of
// enrollment requests, for factory links that drop: a request is written
// to a SQLite file (WAL, synchronous=FULL) before Add returns, sent when
// the CA can be reached, retried with exponential backoff while it cannot,
// and its certificate chain is kept with it once issued.
//
// # Sections
//
//   - Open and Options: the queue file and its retry policy.
//   - Queue.Add: store a request (idempotent by [KeyOf], the SHA-256 of the
//     CSR DER).
//   - Queue.Flush, Queue.Run: send what is due through any
//     [github.com/ztmkit/ztm/transport/enroll.Enroller] (an EST Client, or a
//     Local enroller in process).
//   - Queue.Get, Queue.Wait, Queue.List: read outcomes.
//
// # Semantics
//
// At least once on the wire, exactly once in effect: a request is marked
// done only after its chain is durably stored, so a crash at any point
// leaves it pending and it is sent again after restart. The EST server
// answers a repeated CSR with the certificate it already issued (the CA
// ledger records each request's SHA-256 as its idempotency key), so no
// device gets two identities for one request.
//
// Refusals that a retry cannot cure (400, 401, 403, 409, and their typed
// errors) end a request as Failed; network errors, 5xx, 202/503 with
// Retry-After (the longer of it and the backoff is waited) and quota
// refusals (429) are retried. Evidence carries a nonce with a limited life
// (5 minutes by default in package attest): a request queued for longer is
// refused as Failed and the device must attest again with a fresh nonce.
package queue
