package social

// The SOCIAL space's key layout (every key is under "SOCIAL/"). User ids
// are hex made by cmdlog.NewID, so they hold no "/"; <lo> and <hi> are a
// pair's two ids in byte order.
const (
	// rel/<lo>/<hi> → relation: everything between two users (friends
	// since, the request and the block each way), so a check or a
	// command reads one record. Absent when there is nothing.
	relPrefix = "rel/"
	// friend/<user>/<other> → since (JSON time): a user's friends, one
	// key per side of a friendship.
	friendPrefix = "friend/"
	// in/<user>/<from> → created (JSON time): requests a user received.
	inPrefix = "in/"
	// out/<user>/<to> → created (JSON time): requests a user sent.
	outPrefix = "out/"
	// block/<blocker>/<blocked> → since (JSON time): whom a user blocked.
	blockPrefix = "block/"
)

func relKey(p pair) string                      { return relPrefix + p.a + "/" + p.b }
func userKeys(prefix, user string) string       { return prefix + user + "/" }
func edgeKey(prefix, user, other string) string { return prefix + user + "/" + other }
