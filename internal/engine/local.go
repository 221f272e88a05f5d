package engine

import (
	_ "unsafe" // go:linkname: a read of the local replica has no API

	"github.com/nats-io/nats-server/v2/server" // the functions below live there
)

// Reads of this DC's own replica. A direct get sent over NATS
// ($JS.API.DIRECT.GET.<stream>) is a queue-group request, and a request
// from a client goes to any member of the group at random: the local
// replica or another DC's, weighted by their number (two times in three,
// another DC). So a node applied most entries with a round trip to
// another DC, and when that DC went silent each such request waited out
// fetchGap, again and again: writes whose outcome the node awaited
// stalled for a second after a blackout, long after the new leader
// answered.
//
// The embedded server can be asked directly: localGet hands the request to
// the local replica, which answers on reply exactly as it answers a
// direct get (the same headers, the same end-of-batch status), so
// nothing else changes. nats-server has no exported way to do that, so
// two of its unexported functions are reached by go:linkname. A
// nats-server that drops or renames them fails the build; one that
// changes their signatures fails TestLocalGet.

// natsStream stands for nats-server's unexported stream type: only
// pointers to it pass through here.
type natsStream struct{}

//go:linkname lookupStream github.com/nats-io/nats-server/v2/server.(*Account).lookupStream
func lookupStream(a *server.Account, name string) (*natsStream, error)

//go:linkname directGetRequest github.com/nats-io/nats-server/v2/server.(*stream).getDirectRequest
func directGetRequest(mset *natsStream, req *server.JSApiMsgGetRequest, reply string)

// localGet asks this node's replica of stream for req and has the answer
// sent to reply. It reports false when the node holds no replica of the
// stream (then the caller asks over NATS).
func (e *Engine) localGet(stream string, req *server.JSApiMsgGetRequest, reply string) bool {
	if e.srv == nil {
		return false
	}
	acc := e.srv.GlobalAccount()
	if acc == nil {
		return false
	}
	mset, err := lookupStream(acc, stream)
	if err != nil || mset == nil {
		return false
	}
	directGetRequest(mset, req, reply)
	return true
}
