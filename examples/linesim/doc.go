// Package linesim is the simulated production line that examples/factoryline
// and the ztm tests run: simulated devices that implement ztm.Device with
// real keys and real attestation evidence, the PKI of a line (an IDevID CA,
// a chip vendor's attestation CA, partner stations with station
// certificates), and an in-process or EST enroller.
//
// The line's stores are the caller's choice (Config.OpenLedger,
// Config.OpenStepStore). Left nil they are in memory
// (ca/ledger/memledger, manifest/memchain), so that the tests of the ztm
// packages a jig imports, which run this line, link no database;
// examples/factoryline keeps them in SQLite files (ca/ledger/sqlite,
// manifest/chainstore), as a real line does.
package linesim
