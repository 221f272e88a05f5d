// Package apperr defines the one error type superapp shows to clients: a
// stable machine code, a human message and, for bad input, the field at
// fault. Codes are a public contract and are never renamed; Status is the
// only place that maps them to HTTP statuses.
package apperr

import (
	"errors"
	"fmt"
	"net/http"
)

// Stable error codes. Feature packages may add their own codes, registered
// with their HTTP status in statusByCode.
const (
	Invalid          = "invalid_field"       // a field failed validation
	Malformed        = "malformed_json"      // the body is not the JSON expected
	UnknownField     = "unknown_field"       // the body names a field the endpoint does not take
	TooLarge         = "body_too_large"      // the body exceeds the endpoint's limit
	Unauthenticated  = "unauthenticated"     // no valid access token
	TokenExpired     = "token_expired"       // the access token has expired
	SessionRevoked   = "session_revoked"     // the session behind a token was revoked
	BadCredentials   = "invalid_credentials" // login or password wrong
	Forbidden        = "forbidden"           // authenticated, but not allowed
	Blocked          = "blocked"             // a block between the users forbids it
	NotFound         = "not_found"           // no such resource (or not yours)
	UserNotFound     = "user_not_found"      // no such user
	Conflict         = "conflict"            // the resource's state forbids it
	LoginTaken       = "login_taken"         // phone or email already registered
	AlreadyFriends   = "already_friends"     // the users are friends already
	WeakPassword     = "weak_password"       // password too short or guessable
	IdemReused       = "idempotency_key_reused"
	RateLimited      = "rate_limited"
	Unavailable      = "unavailable"          // the cluster cannot commit writes right now
	NotCaughtUp      = "position_not_reached" // this node has not applied the requested position
	Isolated         = "dc_isolated"          // this DC is cut off from the majority; use another
	MethodNotAllowed = "method_not_allowed"
	RouteNotFound    = "route_not_found"
	Internal         = "internal"
	Overloaded       = "overloaded" // the feature sheds load; retry after Retry-After
)

var statusByCode = map[string]int{
	Invalid:          http.StatusBadRequest,
	Malformed:        http.StatusBadRequest,
	UnknownField:     http.StatusBadRequest,
	TooLarge:         http.StatusRequestEntityTooLarge,
	Unauthenticated:  http.StatusUnauthorized,
	TokenExpired:     http.StatusUnauthorized,
	SessionRevoked:   http.StatusUnauthorized,
	BadCredentials:   http.StatusUnauthorized,
	Forbidden:        http.StatusForbidden,
	Blocked:          http.StatusForbidden,
	NotFound:         http.StatusNotFound,
	UserNotFound:     http.StatusNotFound,
	RouteNotFound:    http.StatusNotFound,
	Conflict:         http.StatusConflict,
	LoginTaken:       http.StatusConflict,
	AlreadyFriends:   http.StatusConflict,
	WeakPassword:     http.StatusUnprocessableEntity,
	IdemReused:       http.StatusUnprocessableEntity,
	RateLimited:      http.StatusTooManyRequests,
	Unavailable:      http.StatusServiceUnavailable,
	NotCaughtUp:      http.StatusServiceUnavailable,
	Isolated:         http.StatusServiceUnavailable,
	MethodNotAllowed: http.StatusMethodNotAllowed,
	Internal:         http.StatusInternalServerError,
	Overloaded:       http.StatusServiceUnavailable,
}

// Error is an error a client may see. It is JSON-encodable so that outcomes
// decided while applying the log can be stored and replayed verbatim.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// RetryAfter, when set, is sent as the Retry-After header in seconds.
	RetryAfter int `json:"-"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Code, e.Message, e.Field)
	}
	return e.Code + ": " + e.Message
}

// New returns an error with code and message.
func New(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Field returns an invalid_field error naming field.
func Field(field, format string, args ...any) *Error {
	return &Error{Code: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Status maps a code to its HTTP status; unknown codes are 500.
func Status(code string) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// From returns the *Error inside err, or an internal error for anything else.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: Internal, Message: "internal error"}
}

// Register adds a feature's code with its HTTP status. Call it from an
// init function; registering a code twice with another status panics.
func Register(code string, status int) {
	if s, ok := statusByCode[code]; ok && s != status {
		panic("apperr: code " + code + " registered twice")
	}
	statusByCode[code] = status
}
