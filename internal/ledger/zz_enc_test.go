package ledger

import (
	"bytes"
	"testing"

	"pgregory.net/rapid"
)

func oldAppendStoredTransfer(dst []byte, r *record) []byte {
	t := r.transfer()
	long := !fitsRecord(t.UserData)
	if long {
		t.UserData = ""
	}
	var rec [RecordSize]byte
	appendTransfer(rec[:0], &t)
	dst = packRecord(dst, rec[:])
	dst = append(dst, byte(r.state))
	if long {
		dst = append(dst, r.userData...)
	}
	return dst
}

func TestZZEnc(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		tr := genTransfer(t)
		if rapid.Bool().Draw(t, "long") {
			tr.UserData += rapid.String().Draw(t, "x")
		}
		r := recordOf(&tr)
		r.state = PendingState(rapid.IntRange(0, 4).Draw(t, "state"))
		pre := []byte(rapid.String().Draw(t, "pre"))
		a := oldAppendStoredTransfer(bytes.Clone(pre), &r)
		b := appendStoredTransfer(bytes.Clone(pre), &r)
		if !bytes.Equal(a, b) {
			t.Fatalf("%+v\n%x\n%x", tr, a, b)
		}
	})
}
