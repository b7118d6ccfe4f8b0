package tpm

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2/transport"
)

// mssimTPM is a TPM reached over TCP with the Microsoft TPM 2.0
// simulator's command protocol, which swtpm and the reference simulator
// serve. Only the command channel is used: the store needs no platform
// (power, physical presence) commands.
type mssimTPM struct {
	mu   sync.Mutex
	conn net.Conn
}

var _ transport.TPMCloser = (*mssimTPM)(nil)

const (
	mssimSendCommand = 8  // TPM_SEND_COMMAND
	mssimSessionEnd  = 20 // TPM_SESSION_END
	// mssimMaxResponse bounds a response; TPM responses are at most a
	// few kilobytes (MAX_RESPONSE_SIZE is 4096 in the reference code).
	mssimMaxResponse = 64 << 10
	// mssimTimeout bounds one command: RSA key generation in a software
	// TPM can take seconds, never minutes.
	mssimTimeout = 2 * time.Minute
)

// dialMSSim connects to the command port at addr.
func dialMSSim(addr string) (*mssimTPM, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return &mssimTPM{conn: conn}, nil
}

// Send sends one command and reads the whole response: the length-prefixed
// response followed by a 4-byte acknowledgement.
func (t *mssimTPM) Send(cmd []byte) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn == nil {
		return nil, errConnClosed
	}
	t.conn.SetDeadline(time.Now().Add(mssimTimeout))
	msg := make([]byte, 0, 9+len(cmd))
	msg = binary.BigEndian.AppendUint32(msg, mssimSendCommand)
	msg = append(msg, 0) // locality
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(cmd)))
	msg = append(msg, cmd...)
	if _, err := t.conn.Write(msg); err != nil {
		return nil, errorf("tpm: send to TCP TPM: %w", err)
	}
	var hdr [4]byte
	if _, err := io.ReadFull(t.conn, hdr[:]); err != nil {
		return nil, errorf("tpm: read from TCP TPM: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > mssimMaxResponse {
		return nil, errorf("tpm: TCP TPM sent a response of %d bytes", n)
	}
	rsp := make([]byte, n+4)
	if _, err := io.ReadFull(t.conn, rsp); err != nil {
		return nil, errorf("tpm: read from TCP TPM: %w", err)
	}
	if ack := binary.BigEndian.Uint32(rsp[n:]); ack != 0 {
		return nil, errorf("tpm: TCP TPM acknowledged with %d", ack)
	}
	return rsp[:n], nil
}

// Close ends the session and closes the connection.
func (t *mssimTPM) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn == nil {
		return nil
	}
	t.conn.SetDeadline(time.Now().Add(time.Second))
	t.conn.Write(binary.BigEndian.AppendUint32(nil, mssimSessionEnd))
	err := t.conn.Close()
	t.conn = nil
	return err
}
