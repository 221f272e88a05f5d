package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The baseline ledger: the textbook double-entry schema a team would write
// first. One transaction per transfer locks both accounts (in id order, so
// concurrent transfers cannot deadlock), checks the debit account's flag,
// records the transfer under its unique id and moves the balances.
const pgSchema = `
DROP TABLE IF EXISTS bench_transfers;
DROP TABLE IF EXISTS bench_accounts;
CREATE TABLE bench_accounts (
	id bytea PRIMARY KEY,
	currency text NOT NULL,
	debits_must_not_exceed_credits boolean NOT NULL DEFAULT false,
	debits_posted bigint NOT NULL DEFAULT 0,
	credits_posted bigint NOT NULL DEFAULT 0
);
CREATE TABLE bench_transfers (
	id bytea PRIMARY KEY,
	debit_account_id bytea NOT NULL REFERENCES bench_accounts(id),
	credit_account_id bytea NOT NULL REFERENCES bench_accounts(id),
	amount bigint NOT NULL CHECK (amount > 0),
	currency text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);`

// pgBaseline runs the same random transfers between the same number of
// accounts on PostgreSQL with synchronous commit and returns transfers/s.
func pgBaseline(ctx context.Context, dsn string, o PayOptions, out io.Writer) (float64, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return 0, fmt.Errorf("postgres address: %w", err)
	}
	cfg.MaxConns = int32(o.PGConns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer pool.Close()
	var fsync, syncCommit string
	if err := pool.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil {
		return 0, err
	}
	if err := pool.QueryRow(ctx, "SHOW synchronous_commit").Scan(&syncCommit); err != nil {
		return 0, err
	}
	if fsync != "on" || syncCommit != "on" {
		return 0, fmt.Errorf("postgres must run with fsync=on and synchronous_commit=on for a fair baseline (have %s, %s)", fsync, syncCommit)
	}
	if _, err := pool.Exec(ctx, pgSchema); err != nil {
		return 0, err
	}
	ids := make([][]byte, o.Accounts)
	rows := make([][]any, o.Accounts)
	for i := range ids {
		ids[i] = []byte("bench-account-" + strconv.Itoa(i))
		rows[i] = []any{ids[i], "KRW"}
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"bench_accounts"}, []string{"id", "currency"}, pgx.CopyFromRows(rows)); err != nil {
		return 0, err
	}
	transfer := func(dr, cr []byte) error {
		id := make([]byte, 16)
		rand.Read(id)
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			lo, hi := dr, cr
			if string(hi) < string(lo) {
				lo, hi = hi, lo
			}
			var n int
			var refused bool
			err := tx.QueryRow(ctx, `SELECT count(*), bool_or(id = $3 AND debits_must_not_exceed_credits AND debits_posted + $4 > credits_posted)
				FROM (SELECT * FROM bench_accounts WHERE id IN ($1, $2) ORDER BY id FOR UPDATE) a`, lo, hi, dr, int64(1)).Scan(&n, &refused)
			if err != nil {
				return err
			}
			if n != 2 || refused {
				return fmt.Errorf("transfer refused")
			}
			if _, err := tx.Exec(ctx, `INSERT INTO bench_transfers (id, debit_account_id, credit_account_id, amount, currency) VALUES ($1, $2, $3, 1, 'KRW')`, id, dr, cr); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE bench_accounts SET debits_posted = debits_posted + 1 WHERE id = $1`, dr); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `UPDATE bench_accounts SET credits_posted = credits_posted + 1 WHERE id = $1`, cr)
			return err
		})
	}
	var okN, failN atomic.Int64
	stop := time.Now().Add(o.Duration)
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < o.PGConns; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := mrand.New(mrand.NewPCG(uint64(g), 4))
			for time.Now().Before(stop) && ctx.Err() == nil {
				dr := r.IntN(len(ids))
				cr := (dr + 1 + r.IntN(len(ids)-1)) % len(ids)
				if transfer(ids[dr], ids[cr]) != nil {
					failN.Add(1)
				} else {
					okN.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	rate := float64(okN.Load()) / time.Since(start).Seconds()
	var debits, credits int64
	if err := pool.QueryRow(ctx, "SELECT sum(debits_posted), sum(credits_posted) FROM bench_accounts").Scan(&debits, &credits); err != nil {
		return 0, err
	}
	if debits != credits || debits != okN.Load() {
		return 0, fmt.Errorf("postgres baseline broke its books: debits %d credits %d committed %d", debits, credits, okN.Load())
	}
	fmt.Fprintf(out, "PostgreSQL baseline, %d connections, one transaction per transfer (both accounts locked, fsync=%s, synchronous_commit=%s), %d accounts, %v: %d ok = %.0f transfers/s (%d failed)\n",
		o.PGConns, fsync, syncCommit, len(ids), o.Duration, okN.Load(), rate, failN.Load())
	return rate, nil
}
