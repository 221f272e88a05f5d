package oauth

import "superapp/internal/store"

// The OAUTH space's key layout (every key is under "OAUTH/"). User ids,
// client ids ("<hex>.<position>") and grant ids hold no "/"; ids a client
// presents are only ever read whole, never scanned by.
const (
	// client/<client id> → storedClient: a mini-app with its secret's hash.
	clientPrefix = "client/"
	// owner/<owner id>/<client id> → nothing: a developer's mini-apps.
	ownerPrefix = "owner/"
	// req/<random part of the request id> → Request: one authorization
	// request, from /authorize until it is purged (requestKeep after it
	// was made).
	requestPrefix = "req/"
	// reqqueue/<Seq(cursor)> → queued: requests in the order made, so the
	// oldest are purged first (the same ones at the same command on every
	// node).
	queuePrefix = "reqqueue/"
	// grant/<grant id> → Grant, revoked or not.
	grantPrefix = "grant/"
	// usergrant/<user id>/<grant id> → the grant's client id: a user's
	// grants.
	userGrantPrefix = "usergrant/"
	// revoked/<Seq(n)> → grant id: the n-th revocation (from 0), in the
	// order they happened, for followers that read only what is new.
	revokedPrefix = "revoked/"
	// idkeys/<Seq(n)> → sealedKeys: the n-th ID-token key set (first
	// writer wins, so one).
	keysPrefix = "idkeys/"
)

func clientKey(id string) string             { return clientPrefix + id }
func ownerKeys(owner string) string          { return ownerPrefix + owner + "/" }
func ownerKey(owner, client string) string   { return ownerKeys(owner) + client }
func requestKey(nonce string) string         { return requestPrefix + nonce }
func queueKey(cursor uint64) string          { return queuePrefix + store.Seq(cursor) }
func grantKey(id string) string              { return grantPrefix + id }
func userGrants(user string) string          { return userGrantPrefix + user + "/" }
func userGrantKey(user, grant string) string { return userGrants(user) + grant }
func revokedKey(n uint64) string             { return revokedPrefix + store.Seq(n) }
func keysKey(n int) string                   { return keysPrefix + store.Seq(uint64(n)) }
