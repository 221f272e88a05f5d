package miniapp

import "superapp/internal/store"

// The MINIAPP stream's read model in the state store, under "MINIAPP/".
// Everything lives here; the deliveries still pending are also held in
// memory (state.go), written through in the same batch and loaded back
// from the due/ index.
//
//	request/<pay request id>                   reqRec (codec.go): every pay request, with the
//	                                           position of its creation
//	undecided/<user id>/<Seq(cursor)>          pay request id: a user's requests not yet
//	                                           approved or declined (expired ones too), oldest first
//	delivery/<delivery id>                     Delivery (codec.go): every webhook delivery, its attempts
//	                                           and the node instance holding its lease
//	client-delivery/<client id>/<Seq(cursor)>  delivery id: a mini-app's deliveries, oldest first
//	due/<delivery id>                          "": deliveries not yet delivered or failed
//	secret/<client id>                         Seq(version): a mini-app's webhook secret
//	                                           version (absent: 1)
//	revoked/<grant id>                         "": grants whose revocation was announced
//	revocations-checked                        Seq(n): the OAuth revocations before n were all
//	                                           announced (or needed no announcement)

func requestKey(id string) string { return store.Key("request", id) }
func undecidedPrefix(user string) string {
	return store.Key("undecided", user) + "/"
}
func undecidedKey(user string, cursor uint64) string {
	return undecidedPrefix(user) + store.Seq(cursor)
}
func deliveryKey(id string) string { return store.Key("delivery", id) }
func clientDeliveriesPrefix(client string) string {
	return store.Key("client-delivery", client) + "/"
}
func clientDeliveryKey(client string, cursor uint64) string {
	return clientDeliveriesPrefix(client) + store.Seq(cursor)
}
func dueKey(id string) string        { return store.Key("due", id) }
func secretKey(client string) string { return store.Key("secret", client) }
func revokedKey(grant string) string { return store.Key("revoked", grant) }

const (
	duePrefix  = "due/"
	checkedKey = "revocations-checked"
)
