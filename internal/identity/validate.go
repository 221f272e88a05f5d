package identity

import (
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"superapp/internal/apperr"
)

var phoneRE = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// NormalizePhone returns the E.164 form of a phone number written with
// optional spaces, dots, dashes or parentheses.
func NormalizePhone(s string) (string, bool) {
	p := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '.', '(', ')':
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	return p, phoneRE.MatchString(p)
}

// NormalizeEmail returns a plain address, lowercased.
func NormalizeEmail(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) > 254 || !strings.Contains(s, "@") {
		return "", false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", false
	}
	_, domain, _ := strings.Cut(a.Address, "@")
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", false
	}
	return strings.ToLower(a.Address), true
}

// loginKeyFor classifies and normalizes a login (phone or email).
func loginKeyFor(login string) (string, bool) {
	if strings.Contains(login, "@") {
		e, ok := NormalizeEmail(login)
		return loginKey("email", e), ok
	}
	p, ok := NormalizePhone(login)
	return loginKey("phone", p), ok
}

// cleanText trims s and checks it is 1..max (or 0..max when optional)
// printable characters.
func cleanText(field, s string, max int, optional bool) (string, *apperr.Error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", apperr.Field(field, "%s must be valid UTF-8", field)
	}
	n := utf8.RuneCountInString(s)
	if n == 0 && !optional {
		return "", apperr.Field(field, "%s is required", field)
	}
	if n > max {
		return "", apperr.Field(field, "%s must be at most %d characters", field, max)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", apperr.Field(field, "%s must not contain control characters", field)
		}
	}
	return s, nil
}
