package manifest

import (
	"bytes"
	"errors"
	"fmt"
)

// CheckAppend checks that steps, consecutive steps of one device in order,
// may be appended to that device's stored chain, of which stored is the
// number of steps and last the exact bytes of the last one (nil when stored
// is 0). The first step must follow the stored chain and each next one the
// step before it: sequence number stored (0 for a device's first step), then
// stored+1, …, and, after the first step of the chain, a previous-step digest
// equal to the digest of its predecessor's exact bytes.
//
// It returns nil if all of them may be appended, or an [*AppendError] for
// the first that may not (wrapping [ErrFork], [ErrOutOfOrder] or
// [ErrBrokenLink]). It returns another error, a misuse of the function,
// for no step, a nil step, steps of more than one subject, or a stored
// count above 0 without the last step's bytes.
//
// CheckAppend is the rule every step store applies, inside its
// transaction, before it writes anything, so that a fork or a broken link
// cannot be stored: package chainstore and package memchain call it. It
// checks neither signatures nor policy; that is [Verify]'s job, on the chain
// read back. It is pure: it reads its arguments only.
func CheckAppend(stored uint64, last []byte, steps ...*SignedStep) error {
	if err := checkOneAppend(steps); err != nil {
		return err
	}
	if stored > 0 && len(last) == 0 {
		return fmt.Errorf("manifest: %d steps stored but no bytes of the last one", stored)
	}
	n := stored
	for _, ss := range steps {
		st := ss.Step
		var err error
		switch {
		case st.Sequence < n:
			err = ErrFork
		case st.Sequence > n:
			err = ErrOutOfOrder
		case n > 0 && (st.Prev == nil || !st.Prev.Matches(last)):
			err = ErrBrokenLink
		}
		if err != nil {
			return &AppendError{Subject: bytes.Clone(st.Subject), Sequence: st.Sequence, Stored: n, Err: err}
		}
		n, last = n+1, ss.Raw
	}
	return nil
}

// ParseAppend parses the signed steps of one append to a step store (their
// exact COSE_Sign1 bytes, with [ParseSignedStep]): at least one, all of one
// subject. The parsed steps share memory with raws. Step stores call it
// before they take their lock or start their transaction, so that a
// malformed append is refused alone; [CheckAppend] then checks the steps
// against the stored chain.
func ParseAppend(raws ...[]byte) ([]*SignedStep, error) {
	if len(raws) == 0 {
		return nil, errNoStepToAppend
	}
	steps := make([]*SignedStep, len(raws))
	for i, raw := range raws {
		ss, err := ParseSignedStep(raw)
		if err != nil {
			return nil, err
		}
		steps[i] = ss
	}
	if err := checkOneAppend(steps); err != nil {
		return nil, err
	}
	return steps, nil
}

var errNoStepToAppend = errors.New("manifest: no step to append")

// checkOneAppend returns the misuse of an append: no step, a nil step, or
// steps of more than one subject.
func checkOneAppend(steps []*SignedStep) error {
	if len(steps) == 0 {
		return errNoStepToAppend
	}
	for i, ss := range steps {
		if ss == nil || ss.Step == nil {
			return fmt.Errorf("manifest: step %d of the append is nil", i)
		}
		if !bytes.Equal(ss.Step.Subject, steps[0].Step.Subject) {
			return fmt.Errorf("manifest: steps of devices %x and %x in one append", steps[0].Step.Subject, ss.Step.Subject)
		}
	}
	return nil
}
