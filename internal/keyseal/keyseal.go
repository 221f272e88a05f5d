// Package keyseal seals a feature's own keys (token signing keys, OAuth
// keys) with the cluster secret, so that they can travel in a replicated
// stream and only nodes of the cluster can read them: AES-GCM under a key
// derived from the secret for one purpose (HKDF-SHA256), bound to the
// sealed keys' id.
package keyseal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
)

// ErrTooShort is what Open says of a sealed box too short to hold a nonce.
var ErrTooShort = errors.New("sealed box too short")

// Seal encrypts plain for purpose, bound to kid, under a fresh nonce.
func Seal(secret []byte, purpose, kid string, plain []byte) ([]byte, error) {
	aead, err := newAEAD(secret, purpose)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, plain, []byte(kid)), nil
}

// Open decrypts what Seal sealed with the same secret, purpose and kid.
func Open(secret []byte, purpose, kid string, sealed []byte) ([]byte, error) {
	aead, err := newAEAD(secret, purpose)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, ErrTooShort
	}
	return aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(kid))
}

func newAEAD(secret []byte, purpose string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, secret, nil, purpose, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
