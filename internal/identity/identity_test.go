package identity

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/store/storetest"
)

func TestPasswordPolicy(t *testing.T) {
	weak := []string{"short1!", "password123", "qwertyuiop", "1234567890", "aaaaaaaaaaaa",
		"iloveyou2024", "kimminji1995", "Minji!Minji!"}
	for _, p := range weak {
		if err := checkPassword(p, "Kim Minji", "minji@example.com"); err == nil || err.Field != "password" {
			t.Errorf("%q accepted (%v)", p, err)
		}
	}
	for _, p := range []string{"violet-harbor-tangent-91", "correct horse battery staple", "x7#Lq9!vR2@m"} {
		if err := checkPassword(p, "Kim Minji", "minji@example.com"); err != nil {
			t.Errorf("%q refused: %v", p, err)
		}
	}
	if err := checkPassword(strings.Repeat("ab1!", 100)); err == nil || err.Code != apperr.Invalid {
		t.Errorf("over-long password: %v", err)
	}
}

func TestPasswordHash(t *testing.T) {
	h, err := hashPassword("violet-harbor-tangent-91")
	if err != nil || !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q: %v", h, err)
	}
	h2, _ := hashPassword("violet-harbor-tangent-91")
	if h == h2 {
		t.Fatal("same hash twice: salt not random")
	}
	if ok, err := verifyPassword(h, "violet-harbor-tangent-91"); !ok || err != nil {
		t.Fatalf("right password: %v %v", ok, err)
	}
	if ok, _ := verifyPassword(h, "violet-harbor-tangent-92"); ok {
		t.Fatal("wrong password accepted")
	}
	if _, err := verifyPassword("$2a$10$bcrypt", "x"); err == nil {
		t.Fatal("non-argon2 hash accepted")
	}
}

func TestTokens(t *testing.T) {
	k, err := newKeyBundle()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := k.signAccess("u1", "s1", 7, now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c, err := k.parseAccess(tok, now.Add(30*time.Second))
	if err != nil || c.Subject != "u1" || c.SessionID != "s1" || c.Pos != 7 {
		t.Fatalf("parse: %v %+v", err, c)
	}
	if _, err := k.parseAccess(tok, now.Add(2*time.Minute)); err != errTokenExpired {
		t.Fatalf("expired: %v", err)
	}
	other, _ := newKeyBundle()
	if _, err := other.parseAccess(tok, now); err == nil {
		t.Fatal("token of another key accepted")
	}
	parts := strings.Split(tok, ".")
	if _, err := k.parseAccess(parts[0]+"."+parts[1]+"x."+parts[2], now); err == nil {
		t.Fatal("tampered token accepted")
	}
	// Keys survive sealing with the secret and nothing else.
	sealed, err := k.seal([]byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openKeys(sealed, []byte("other")); err == nil {
		t.Fatal("opened with the wrong secret")
	}
	k2, err := openKeys(sealed, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k2.parseAccess(tok, now); err != nil {
		t.Fatalf("token under unsealed key: %v", err)
	}
	rt := k.refreshToken("s1", 3)
	if sid, gen, ok := k2.parseRefresh(rt); !ok || sid != "s1" || gen != 3 {
		t.Fatalf("refresh: %s %d %v", sid, gen, ok)
	}
	if _, _, ok := k.parseRefresh(strings.Replace(rt, ".3.", ".4.", 1)); ok {
		t.Fatal("forged generation accepted")
	}
}

func TestApplyDeterministic(t *testing.T) {
	// The same commands in the same order give the same state on two nodes.
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cmds := []cmdlog.Envelope{
		env("account.create", "", at, createAccount{UserID: "u1", Email: "a@x.io", Name: "A", PasswordHash: "h"}),
		env("account.create", "", at, createAccount{UserID: "u2", Email: "a@x.io", Name: "B", PasswordHash: "h"}),
		env("session.create", "u1", at, createSession{SessionID: "s1", Device: "phone"}),
		env("session.refresh", "", at, refreshSession{SessionID: "s1", Gen: 0}),
		env("session.refresh", "", at.Add(2*time.Minute), refreshSession{SessionID: "s1", Gen: 0}),
	}
	var outs [2][]string
	for n := range 2 {
		space := storetest.Space(t, Stream)
		st := NewState(space)
		for i := range cmds {
			tx := space.Begin()
			cmds[i].Cursor = cmdlog.CursorOf(uint64(i+1), 0)
			v, err := st.Apply(uint64(i+1), &cmds[i])
			tx.Commit()
			b, _ := json.Marshal(struct {
				V any
				E *apperr.Error
			}{v, err})
			outs[n] = append(outs[n], string(b))
		}
	}
	if strings.Join(outs[0], "\n") != strings.Join(outs[1], "\n") {
		t.Fatalf("nodes differ:\n%v\n%v", outs[0], outs[1])
	}
	if !strings.Contains(outs[0][1], "login_taken") || !strings.Contains(outs[0][4], "session_revoked") {
		t.Fatalf("outcomes: %v", outs[0])
	}
}

func env(kind, actor string, at time.Time, data any) cmdlog.Envelope {
	b, _ := json.Marshal(data)
	return cmdlog.Envelope{ID: cmdlog.NewID(), Kind: kind, Actor: actor, At: at, Data: b}
}

func TestThrottle(t *testing.T) {
	now := time.Unix(0, 0)
	th := NewThrottle(time.Minute, 2, func() time.Time { return now })
	if ok, _ := th.Allow("k"); !ok {
		t.Fatal("first")
	}
	if ok, _ := th.Allow("k"); !ok {
		t.Fatal("second")
	}
	ok, wait := th.Allow("k")
	if ok || wait <= 0 || wait > time.Minute {
		t.Fatalf("third: %v %v", ok, wait)
	}
	if ok, _ := th.Allow("other"); !ok {
		t.Fatal("keys share a bucket")
	}
	now = now.Add(time.Minute)
	if ok, _ := th.Allow("k"); !ok {
		t.Fatal("not refilled")
	}
}
