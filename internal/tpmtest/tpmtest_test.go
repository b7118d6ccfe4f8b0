package tpmtest

import (
	"errors"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

// TestFreshPerTest checks that each test gets a newly manufactured TPM
// (objects and NV of the previous holder are gone) and that a released TPM
// refuses commands.
func TestFreshPerTest(t *testing.T) {
	var first *TPM
	var handle tpm2.TPMHandle
	var ekName []byte
	t.Run("first", func(t *testing.T) {
		first = Open(t)
		rsp, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHEndorsement, InPublic: tpm2.New2B(tpm2.ECCEKTemplate)}.Execute(first)
		if err != nil {
			t.Fatal(err)
		}
		handle, ekName = rsp.ObjectHandle, rsp.Name.Buffer
	})
	if _, err := first.Send([]byte{0x80, 0x01}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after the test ended: err = %v, want ErrClosed", err)
	}
	t.Run("second", func(t *testing.T) {
		tpm := Open(t)
		if _, err := (tpm2.ReadPublic{ObjectHandle: handle}).Execute(tpm); err == nil {
			t.Fatal("the previous test's object is still loaded")
		}
		rsp, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHEndorsement, InPublic: tpm2.New2B(tpm2.ECCEKTemplate)}.Execute(tpm)
		if err != nil {
			t.Fatal(err)
		}
		if string(rsp.Name.Buffer) == string(ekName) {
			t.Fatal("the endorsement seed survived: not a fresh TPM")
		}
	})
}

func TestSwtpm(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts swtpm")
	}
	sw := StartSwtpm(t)
	if sw.Port == 0 || sw.CtrlPort == 0 || sw.Port == sw.CtrlPort {
		t.Fatalf("ports %d, %d", sw.Port, sw.CtrlPort)
	}
}
