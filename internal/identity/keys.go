package identity

import "superapp/internal/store"

// The IDENTITY space's key layout (every key is under "IDENTITY/"). Ids are
// hex made by cmdlog.NewID, so they hold no "/".
const (
	// user/<user id> → storedUser: the account with its password hash.
	userPrefix = "user/"
	// login/<kind>:<value> → the user id of a normalized login
	// ("phone:+821012345678", "email:a@x.io"). Only ever read whole (an
	// address may hold "/"), never scanned.
	loginPrefix = "login/"
	// session/<session id> → storedSession: one device, revoked or not,
	// with its refresh generation.
	sessionPrefix = "session/"
	// usersession/<user id>/<Seq(cursor)> → session id: a user's sessions
	// in the order they were made (newest last).
	userSessionPrefix = "usersession/"
	// tokenkeys/<Seq(n)> → sealedKeys: the n-th token key set (first
	// writer wins, so one).
	tokenKeysPrefix = "tokenkeys/"
	// counts → counts: the number of users and of live sessions.
	countsKey = "counts"
)

func userKey(id string) string      { return userPrefix + id }
func loginStoreKey(l string) string { return loginPrefix + l }
func sessionKey(id string) string   { return sessionPrefix + id }

func userSessionsOf(user string) string { return userSessionPrefix + user + "/" }

func userSessionKey(user string, cursor uint64) string {
	return userSessionsOf(user) + store.Seq(cursor)
}

func tokenKeysKey(n int) string { return tokenKeysPrefix + store.Seq(uint64(n)) }
