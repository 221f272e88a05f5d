package chat

import (
	"encoding/binary"
	"strings"

	"superapp/internal/store"
)

// The CHAT space's layout (keys relative to "CHAT/"). Ids never hold "/"
// (users are UUIDs or "app:<slug>", conversations and attachments hex,
// client ids [A-Za-z0-9._:-]); a seq or cursor is store.Seq (8 bytes,
// big-endian) and is always a key's last part, so keys sort the way they
// are paged.
//
//	conv/<conv>                           convRec: kind, title, times, last seq, counters (and
//	                                      the members and their receipts, if the members never
//	                                      change: not a group)
//	roster/<conv>                         roster: a group's members, in join order, with their roles
//	member/<conv>/<user>                  memberRec: one member's roster entry, for point reads
//	receipt/<conv>/<user>                 receiptRec: a group member's read and delivered seqs,
//	                                      unread baseline
//	joined/<user>/<conv>                  "": the user's conversations (Conversations)
//	msg/<conv>/<seq>                      Message, as it is now (a deleted one says so)
//	client/<conv>/<sender>/<client id>    seq of the message the sender sent with that id, by a
//	                                      send not named after it (a named one: see State.sent)
//	att/<conv>/<attachment>               Attachment registered for the conversation
//	attmsg/<conv>/<attachment>/<seq>      "": the live message at seq carries the attachment
//	feed/<user>/<cursor>                  []feedEvent: what the command at cursor told the user
//	                                      (a message event by reference)
//
// What changes with every message (the conversation's record, the
// sender's receipts) is kept apart from what changes when members come and
// go (a group's roster and the member records). A command reads its
// conversation's record and roster, two reads whatever the conversation's
// size (one for a one-to-one conversation, whose two members and their
// receipts live in its record: a send to it reads nothing and writes the
// record, the message and two feed entries); queries about one member
// read that member's record.

// Keys are built by plain concatenation: one allocation each, where
// store.Key's join costs two, and a send builds half a dozen.

// convKey is a conversation's record.
func convKey(conv string) string { return "conv/" + conv }

// rosterKey is a conversation's members.
func rosterKey(conv string) string { return "roster/" + conv }

// memberKey is one member's record.
func memberKey(conv, user string) string { return "member/" + conv + "/" + user }

// receiptKey is one member's read and delivered positions.
func receiptKey(conv, user string) string { return "receipt/" + conv + "/" + user }

// joinedPrefix holds the ids of a user's conversations.
func joinedPrefix(user string) string { return "joined/" + user + "/" }

// joinedKey marks user as a member of conv.
func joinedKey(user, conv string) string { return "joined/" + user + "/" + conv }

// msgPrefix holds a conversation's messages in sequence order.
func msgPrefix(conv string) string { return "msg/" + conv + "/" }

// msgKey is one message.
func msgKey(conv string, seq uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq) // store.Seq, without its own allocation
	return "msg/" + conv + "/" + string(b[:])
}

// clientKey makes sends not named after their client id idempotent per
// sender and client id, forever (named ones are: see State.sent).
func clientKey(conv, sender, id string) string { return "client/" + conv + "/" + sender + "/" + id }

// attKey is an attachment's metadata.
func attKey(conv, id string) string { return "att/" + conv + "/" + id }

// attMsgPrefix holds the live messages that carry an attachment, in
// sequence order: who may download it, and whether it is still shared.
func attMsgPrefix(conv, id string) string { return "attmsg/" + conv + "/" + id + "/" }

// attMsgKey marks the message at seq as carrying the attachment.
func attMsgKey(conv, id string, seq uint64) string { return attMsgPrefix(conv, id) + store.Seq(seq) }

// feedPrefix holds a user's events in cursor order.
func feedPrefix(user string) string { return "feed/" + user + "/" }

// feedKey is the user's events of the command at cursor.
func feedKey(user string, cursor uint64) string { return feedPrefix(user) + store.Seq(cursor) }

// feedKeys is feedKey of every user at one cursor (already store.Seq),
// built in one buffer: a group's message goes to a hundred feeds.
func feedKeys(users []string, cursor string) []string {
	n := 0
	for _, u := range users {
		n += len("feed/") + len(u) + 1 + len(cursor)
	}
	var b strings.Builder
	b.Grow(n)
	for _, u := range users {
		b.WriteString("feed/")
		b.WriteString(u)
		b.WriteByte('/')
		b.WriteString(cursor)
	}
	all, keys := b.String(), make([]string, len(users))
	for i, u := range users {
		keys[i], all = all[:len("feed/")+len(u)+1+len(cursor)], all[len("feed/")+len(u)+1+len(cursor):]
	}
	return keys
}
