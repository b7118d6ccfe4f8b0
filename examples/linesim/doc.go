// Package linesim is the simulated production line that examples/factoryline
// and the ztm tests run: simulated devices that implement ztm.Device with
// real keys and real attestation evidence, the PKI of a line (an IDevID CA
// with a SQLite ledger, a chip vendor's attestation CA, partner stations
// with station certificates), and an in-process enroller.
package linesim
