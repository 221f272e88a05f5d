package pay

import (
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
)

func scratchBatch(n, accounts int, seq *int) Batch {
	var b Batch
	for i := 0; i < n; i++ {
		*seq++
		var id ledger.ID
		id[0] = 0xbe
		for k := 0; k < 8; k++ {
			id[15-k] = byte(*seq >> (8 * k))
		}
		dr := i % accounts
		cr := (dr + 1 + i*7%(accounts-1)) % accounts
		b.Transfers = append(b.Transfers, ledger.Transfer{ID: id, DebitAccountID: ledger.IDFrom("a" + strconv.Itoa(dr)), CreditAccountID: ledger.IDFrom("a" + strconv.Itoa(cr)), Amount: 1, Currency: "KRW"})
	}
	return b
}

func BenchmarkScratchStages(b *testing.B) {
	st := NewState()
	var accs []ledger.Account
	for i := 0; i < 10000; i++ {
		accs = append(accs, ledger.Account{ID: ledger.IDFrom("a" + strconv.Itoa(i)), Currency: "KRW"})
	}
	st.l.CreateAccounts(1, accs[:8190])
	st.l.CreateAccounts(1, accs[8190:])
	seq := 0
	body, _ := json.Marshal(scratchBatch(ledger.MaxBatch, 10000, &seq))
	b.Logf("body %d bytes", len(body))
	b.Run("decodeBody", func(b *testing.B) {
		for b.Loop() {
			var x Batch
			json.Unmarshal(body, &x)
		}
	})
	var x Batch
	json.Unmarshal(body, &x)
	var env []byte
	b.Run("encodeEnvelope", func(b *testing.B) {
		for b.Loop() {
			raw, _ := json.Marshal(x)
			e := cmdlog.Envelope{ID: "x", Kind: kindBatch, At: time.Now(), Data: raw}
			env, _ = json.Marshal(&e)
		}
	})
	b.Run("decodeEnvelope", func(b *testing.B) {
		for b.Loop() {
			var e cmdlog.Envelope
			json.Unmarshal(env, &e)
		}
	})
	b.Run("decodeData", func(b *testing.B) {
		var e cmdlog.Envelope
		json.Unmarshal(env, &e)
		for b.Loop() {
			var y Batch
			json.Unmarshal(e.Data, &y)
		}
	})
	b.Run("ledgerApply", func(b *testing.B) {
		var ys []Batch
		for i := 0; i < 40; i++ {
			ys = append(ys, scratchBatch(ledger.MaxBatch, 10000, &seq))
		}
		i := 0
		for b.Loop() {
			st.l.CreateTransfers(2, ys[i%40].Transfers)
			i++
		}
	})
	b.Run("machineApply", func(b *testing.B) {
		m := cmdlog.NewMachine("L", st.Apply, slog.New(slog.NewTextHandler(io.Discard, nil)))
		s := uint64(0)
		for b.Loop() {
			b.StopTimer()
			y := scratchBatch(ledger.MaxBatch, 10000, &seq)
			raw, _ := json.Marshal(y)
			e := cmdlog.Envelope{ID: cmdlog.NewID(), Kind: kindBatch, At: time.Now(), Data: raw}
			data, _ := json.Marshal(&e)
			b.StartTimer()
			s++
			m.Apply(s, data, 0)
		}
	})
}

func BenchmarkScratchB64(b *testing.B) {
	rec := make([]byte, 8+128*8190)
	for i := range rec {
		rec[i] = byte(i * 7)
	}
	var env []byte
	b.Run("encodeEnvelope", func(b *testing.B) {
		for b.Loop() {
			raw, _ := json.Marshal(rec)
			e := cmdlog.Envelope{ID: "x", Kind: kindBatch, At: time.Now(), Data: raw}
			env, _ = json.Marshal(&e)
		}
	})
	b.Run("decodeEnvelope", func(b *testing.B) {
		for b.Loop() {
			var e cmdlog.Envelope
			json.Unmarshal(env, &e)
		}
	})
	b.Run("unmarshalBytes", func(b *testing.B) {
		var e cmdlog.Envelope
		json.Unmarshal(env, &e)
		for b.Loop() {
			var y []byte
			json.Unmarshal(e.Data, &y)
		}
	})
}

func BenchmarkScratchBinary(b *testing.B) {
	st := NewState()
	var accs []ledger.Account
	for i := 0; i < 10000; i++ {
		accs = append(accs, ledger.Account{ID: ledger.IDFrom("a" + strconv.Itoa(i)), Currency: "KRW"})
	}
	st.l.CreateAccounts(1, accs[:8190])
	st.l.CreateAccounts(1, accs[8190:])
	seq := 0
	var envs [][]byte
	for i := 0; i < 60; i++ {
		y := scratchBatch(ledger.MaxBatch, 10000, &seq)
		body, _ := ledger.EncodeBatch(nil, y.Transfers)
		p, _ := ledger.PackBatch(body)
		raw, _ := json.Marshal(p)
		e := cmdlog.Envelope{ID: cmdlog.NewID(), Kind: kindBatch, At: time.Now(), Data: raw}
		data, _ := json.Marshal(&e)
		envs = append(envs, data)
	}
	b.Logf("entry %d bytes", len(envs[0]))
	body, _ := ledger.EncodeBatch(nil, scratchBatch(ledger.MaxBatch, 10000, &seq).Transfers)
	b.Run("receive", func(b *testing.B) {
		for b.Loop() {
			ledger.CheckBatch(body)
			p, _ := ledger.PackBatch(body)
			raw, _ := json.Marshal(p)
			e := cmdlog.Envelope{ID: "x", Kind: kindBatch, At: time.Now(), Data: raw}
			json.Marshal(&e)
		}
	})
	b.Run("machineApply", func(b *testing.B) {
		m := cmdlog.NewMachine("L", st.Apply, slog.New(slog.NewTextHandler(io.Discard, nil)))
		s := uint64(0)
		for b.Loop() {
			s++
			m.Apply(s, envs[int(s-1)%len(envs)], 0)
		}
	})
}
