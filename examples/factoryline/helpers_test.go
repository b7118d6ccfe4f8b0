package main

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"testing"
)

func parsePEMPublicKey(t *testing.T, b []byte) crypto.PublicKey {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM block")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}
