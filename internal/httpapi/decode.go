package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"superapp/internal/apperr"
)

// decodeJSON decodes one JSON object into v, strictly: unknown fields,
// trailing data, wrong types and non-objects are refused with the field at
// fault. It never panics, whatever the input.
func decodeJSON(body []byte, v any) *apperr.Error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return apperr.New(apperr.Malformed, "request body is required")
	}
	if trimmed[0] != '{' {
		return apperr.New(apperr.Malformed, "request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apperr.New(apperr.Malformed, "request body has data after the JSON object")
	}
	return nil
}

func decodeError(err error) *apperr.Error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return apperr.New(apperr.Malformed, "malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return &apperr.Error{Code: apperr.Invalid, Field: field, Message: fmt.Sprintf("%s must be %s", field, jsonKind(typ.Type.Kind().String()))}
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return apperr.New(apperr.Malformed, "request body ends early")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return &apperr.Error{Code: apperr.UnknownField, Field: name, Message: fmt.Sprintf("unknown field %q", name)}
	}
	// A field's own decoder refused its value (an id that is not hex...).
	return apperr.New(apperr.Malformed, "malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	}
	return "a number"
}
