package httpapi

import (
	"testing"

	"superapp/internal/apperr"
	"superapp/internal/identity"
)

// FuzzDecodeJSON: whatever the body, decoding never panics, and a refusal
// is always a client error with a code that maps to a 4xx.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `null`, `[]`, `{"email":"a@b.co","password":"p","name":"n"}`,
		`{"email":1}`, `{"x":1}`, `{"name":"\u0000"}`, `{"phone":"+8210"} trailing`,
		`{"name":{"nested":[1,2,{"a":null}]}}`, `{"status_message":null}`, "\xff\xfe{",
		`{"email":"a","email":"b"}`, `{"password":"` + string(make([]byte, 300)) + `"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var in identity.SignUp
		if err := decodeJSON(body, &in); err != nil {
			if s := apperr.Status(err.Code); s < 400 || s >= 500 {
				t.Fatalf("decode %q: %v maps to %d", body, err, s)
			}
			if err.Message == "" {
				t.Fatalf("decode %q: empty message", body)
			}
		}
		var up identity.ProfileUpdate
		if err := decodeJSON(body, &up); err != nil {
			if s := apperr.Status(err.Code); s < 400 || s >= 500 {
				t.Fatalf("decode %q: %v maps to %d", body, err, s)
			}
		}
	})
}

func TestDecodeJSONFields(t *testing.T) {
	var in identity.SignUp
	cases := map[string]struct{ code, field string }{
		`{"email":true}`:                {apperr.Invalid, "email"},
		`{"bogus":1}`:                   {apperr.UnknownField, "bogus"},
		`{"email":"a"`:                  {apperr.Malformed, ""},
		`{"email":"a"}{"email":"b"}`:    {apperr.Malformed, ""},
		`"just a string"`:               {apperr.Malformed, ""},
		`{"name":"x","password":[1,2]}`: {apperr.Invalid, "password"},
	}
	for body, want := range cases {
		err := decodeJSON([]byte(body), &in)
		if err == nil || err.Code != want.code || err.Field != want.field {
			t.Errorf("%s: got %v, want %s/%s", body, err, want.code, want.field)
		}
	}
}
