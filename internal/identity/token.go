package identity

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"superapp/internal/keyseal"
)

// keyBundle is the secret material every node shares: the Ed25519 key that
// signs access tokens and the MAC key of refresh tokens. It lives in the
// IDENTITY stream sealed with a key derived from the cluster secret, so a
// burnt data center takes no key with it and a stolen disk reveals none.
type keyBundle struct {
	Kid        string `json:"kid"`
	SigningKey []byte `json:"signing_key"` // ed25519 seed
	RefreshKey []byte `json:"refresh_key"`

	priv ed25519.PrivateKey
}

func newKeyBundle() (*keyBundle, error) {
	seed := make([]byte, ed25519.SeedSize)
	rk := make([]byte, 32)
	kid := make([]byte, 8)
	for _, b := range [][]byte{seed, rk, kid} {
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
	}
	k := &keyBundle{Kid: base64.RawURLEncoding.EncodeToString(kid), SigningKey: seed, RefreshKey: rk}
	k.priv = ed25519.NewKeyFromSeed(seed)
	return k, nil
}

func (k *keyBundle) seal(secret []byte) (sealedKeys, error) {
	plain, err := json.Marshal(k)
	if err != nil {
		return sealedKeys{}, err
	}
	sealed, err := keyseal.Seal(secret, "superapp identity keys v1", k.Kid, plain)
	return sealedKeys{Kid: k.Kid, Sealed: sealed}, err
}

func openKeys(s sealedKeys, secret []byte) (*keyBundle, error) {
	plain, err := keyseal.Open(secret, "superapp identity keys v1", s.Kid, s.Sealed)
	if errors.Is(err, keyseal.ErrTooShort) {
		return nil, errors.New("sealed keys too short")
	}
	if err != nil {
		return nil, errors.New("cannot open token keys: is the cluster secret the same on every node?")
	}
	var k keyBundle
	if err := json.Unmarshal(plain, &k); err != nil {
		return nil, fmt.Errorf("decode token keys: %w", err)
	}
	if len(k.SigningKey) != ed25519.SeedSize {
		return nil, errors.New("bad signing key")
	}
	k.priv = ed25519.NewKeyFromSeed(k.SigningKey)
	return &k, nil
}

// claims are an access token's claims.
type claims struct {
	jwt.RegisteredClaims
	SessionID string `json:"sid"`
	// Pos is the IDENTITY position that created the session.
	Pos uint64 `json:"pos"`
}

const issuer = "superapp"

func (k *keyBundle) signAccess(userID, sessionID string, pos uint64, now time.Time, ttl time.Duration) (string, error) {
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   userID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		SessionID: sessionID,
		Pos:       pos,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = k.Kid
	return t.SignedString(k.priv)
}

var errTokenExpired = errors.New("token expired")

func (k *keyBundle) parseAccess(token string, now time.Time) (*claims, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != k.Kid {
			return nil, errors.New("unknown key id")
		}
		return k.priv.Public(), nil
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer(issuer), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }))
	if errors.Is(err, jwt.ErrTokenExpired) {
		return nil, errTokenExpired
	}
	if err != nil {
		return nil, err
	}
	if c.Subject == "" || c.SessionID == "" {
		return nil, errors.New("token lacks subject or session")
	}
	return &c, nil
}

// Refresh tokens are "rt1.<session>.<generation>.<mac>": only the current
// generation of a session is accepted, and every node can mint the token
// of a generation, so a retried rotation gets the same answer anywhere.
func (k *keyBundle) refreshToken(sessionID string, gen uint64) string {
	return fmt.Sprintf("rt1.%s.%d.%s", sessionID, gen, k.refreshMAC(sessionID, gen))
}

func (k *keyBundle) refreshMAC(sessionID string, gen uint64) string {
	m := hmac.New(sha256.New, k.RefreshKey)
	fmt.Fprintf(m, "%s.%d", sessionID, gen)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (k *keyBundle) parseRefresh(tok string) (sessionID string, gen uint64, ok bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 4 || parts[0] != "rt1" {
		return "", 0, false
	}
	g, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil {
		return "", 0, false
	}
	want := k.refreshMAC(parts[1], g)
	if !hmac.Equal([]byte(want), []byte(parts[3])) {
		return "", 0, false
	}
	return parts[1], g, true
}
