package oauth

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"superapp/internal/keyseal"
)

// keyBundle is the secret material every node shares: the Ed25519 key that
// signs ID tokens, the MAC key of refresh tokens and the key client secrets
// are derived with. It lives in the OAUTH stream sealed with a key derived
// from the cluster secret (as identity's token keys do), so a burnt data
// center takes no key with it and a stolen disk reveals none.
type keyBundle struct {
	Kid        string `json:"kid"`
	SigningKey []byte `json:"signing_key"` // ed25519 seed
	RefreshKey []byte `json:"refresh_key"`
	SecretKey  []byte `json:"secret_key"`

	priv ed25519.PrivateKey
}

func newKeyBundle() (*keyBundle, error) {
	seed := make([]byte, ed25519.SeedSize)
	rk, sk := make([]byte, 32), make([]byte, 32)
	kid := make([]byte, 8)
	for _, b := range [][]byte{seed, rk, sk, kid} {
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
	}
	k := &keyBundle{Kid: "oidc-" + base64.RawURLEncoding.EncodeToString(kid), SigningKey: seed, RefreshKey: rk, SecretKey: sk}
	k.priv = ed25519.NewKeyFromSeed(seed)
	return k, nil
}

func (k *keyBundle) seal(secret []byte) (sealedKeys, error) {
	plain, err := json.Marshal(k)
	if err != nil {
		return sealedKeys{}, err
	}
	sealed, err := keyseal.Seal(secret, "superapp oauth keys v1", k.Kid, plain)
	return sealedKeys{Kid: k.Kid, Sealed: sealed}, err
}

func openKeys(s sealedKeys, secret []byte) (*keyBundle, error) {
	plain, err := keyseal.Open(secret, "superapp oauth keys v1", s.Kid, s.Sealed)
	if errors.Is(err, keyseal.ErrTooShort) {
		return nil, errors.New("sealed oauth keys too short")
	}
	if err != nil {
		return nil, errors.New("cannot open oauth keys: is the cluster secret the same on every node?")
	}
	var k keyBundle
	if err := json.Unmarshal(plain, &k); err != nil {
		return nil, fmt.Errorf("decode oauth keys: %w", err)
	}
	if len(k.SigningKey) != ed25519.SeedSize || len(k.RefreshKey) == 0 || len(k.SecretKey) == 0 {
		return nil, errors.New("bad oauth keys")
	}
	k.priv = ed25519.NewKeyFromSeed(k.SigningKey)
	return &k, nil
}

func (k *keyBundle) mac(key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		fmt.Fprintf(m, "%d:%s", len(p), p)
	}
	return m.Sum(nil)
}

// clientSecret derives the secret of one version of a mini-app's secret.
// Any node can derive it again, so a registration retried on another DC
// returns the same secret; the log keeps only its hash.
func (k *keyBundle) clientSecret(clientNonce string, version uint64) string {
	return "sas1_" + base64.RawURLEncoding.EncodeToString(k.mac(k.SecretKey, "client-secret", clientNonce, strconv.FormatUint(version, 10)))
}

func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Refresh tokens are "ort1.<grant id>.<generation>.<mac>": only the current
// generation of a grant is accepted, and every node can mint the token of a
// generation, so a retried rotation gets the same answer anywhere.
func (k *keyBundle) refreshToken(grantID string, gen uint64) string {
	g := strconv.FormatUint(gen, 10)
	return "ort1." + grantID + "." + g + "." + base64.RawURLEncoding.EncodeToString(k.mac(k.RefreshKey, "refresh", grantID, g))
}

func (k *keyBundle) parseRefresh(tok string) (grantID string, gen uint64, ok bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 5 || parts[0] != "ort1" {
		return "", 0, false
	}
	grantID = parts[1] + "." + parts[2]
	g, err := strconv.ParseUint(parts[3], 10, 64)
	if err != nil {
		return "", 0, false
	}
	want := base64.RawURLEncoding.EncodeToString(k.mac(k.RefreshKey, "refresh", grantID, parts[3]))
	if !hmac.Equal([]byte(want), []byte(parts[4])) {
		return "", 0, false
	}
	return grantID, g, true
}

// webhookSecret derives one version of a mini-app's webhook signing
// secret, as clientSecret does: any node derives it again, none stores it.
func (k *keyBundle) webhookSecret(clientNonce string, version uint64) string {
	return "whsec_" + base64.RawURLEncoding.EncodeToString(k.mac(k.SecretKey, "webhook-secret", clientNonce, strconv.FormatUint(version, 10)))
}
