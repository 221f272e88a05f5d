package identity

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
	"golang.org/x/crypto/argon2"

	"superapp/internal/apperr"
)

// argon2id parameters: OWASP's recommended minimum (19 MiB, 2 passes, 1 lane).
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16

	minPasswordLen   = 10
	maxPasswordBytes = 256
	// minPasswordScore is zxcvbn's "safely unguessable" level (0..4).
	minPasswordScore = 3
)

var b64 = base64.RawStdEncoding

// hashPassword returns an argon2id hash in PHC string form.
func hashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// verifyPassword checks password against a PHC argon2id hash in constant time.
func verifyPassword(encoded, password string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("not an argon2id hash")
	}
	var version int
	var mem, iters uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errors.New("unsupported argon2 version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &iters, &threads); err != nil {
		return false, fmt.Errorf("argon2 params: %w", err)
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, fmt.Errorf("argon2 salt: %w", err)
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil {
		return false, fmt.Errorf("argon2 key: %w", err)
	}
	got := argon2.IDKey([]byte(password), salt, iters, mem, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// checkPassword refuses short, over-long and guessable passwords. The
// strength estimate (zxcvbn) knows common and breached passwords, keyboard
// patterns, dates, l33t substitutions and the user's own name and login.
func checkPassword(password string, userInputs ...string) *apperr.Error {
	switch {
	case !utf8.ValidString(password):
		return apperr.Field("password", "password must be valid UTF-8")
	case len(password) > maxPasswordBytes:
		return apperr.Field("password", "password must be at most %d bytes", maxPasswordBytes)
	case utf8.RuneCountInString(password) < minPasswordLen:
		return &apperr.Error{Code: apperr.WeakPassword, Field: "password", Message: fmt.Sprintf("password must be at least %d characters", minPasswordLen)}
	}
	var inputs []string
	for _, in := range userInputs {
		if in == "" {
			continue
		}
		inputs = append(inputs, in)
		if local, _, ok := strings.Cut(in, "@"); ok {
			inputs = append(inputs, local)
		}
		inputs = append(inputs, strings.Fields(in)...)
		inputs = append(inputs, strings.Join(strings.Fields(in), ""))
	}
	// The estimate's cost grows fast with length; past 64 characters a
	// password is strong for its length alone unless its start is weak.
	scored := password
	if rs := []rune(password); len(rs) > 64 {
		scored = string(rs[:64])
	}
	if r := zxcvbn.PasswordStrength(scored, inputs); r.Score < minPasswordScore {
		return &apperr.Error{Code: apperr.WeakPassword, Field: "password", Message: "password is too easy to guess: avoid common words, patterns and your own name"}
	}
	return nil
}
