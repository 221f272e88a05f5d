package chat

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
)

// Official is the kind of a conversation between a user and a mini-app's
// official account.
const Official = "official"

// OfficialID is the conversation of user with app's official account: the
// same on every DC, so the first notification anywhere creates it once.
func OfficialID(user, app string) string {
	h := sha256.Sum256([]byte("official\x00" + user + "\x00" + app))
	return "o" + hex.EncodeToString(h[:16])
}

// OfficialSender is the sender of a mini-app's official-account messages.
func OfficialSender(app string) string { return "app:" + app }

// PostOfficial posts a mini-app's message to user's conversation with its
// official account, creating the conversation on first use. The client id
// makes it idempotent forever. The caller has checked that user granted
// the mini-app chat notifications. Errors: invalid_field.
func (s *Service) PostOfficial(ctx context.Context, app, title, user, id, text string) (Message, cmdlog.Result, error) {
	if !clientIDRE.MatchString(id) {
		return Message{}, cmdlog.Result{}, apperr.Field("id", "id must be 1-64 characters of letters, digits and . _ : -")
	}
	if err := checkText(text); err != nil {
		return Message{}, cmdlog.Result{}, err
	}
	if t, err := cleanTitle(title); err == nil {
		title = t
	} else {
		title = "Mini-app"
	}
	conv, sender := OfficialID(user, app), OfficialSender(app)
	if _, err := s.sub.Submit(ctx, cmdlog.Write{ID: "official/" + conv}, kindCreate, sender,
		createConv{ConversationID: conv, Kind: Official, Title: title, Members: []string{user}}); err != nil {
		return Message{}, cmdlog.Result{}, err
	}
	res, err := s.sub.Submit(ctx, cmdlog.Write{ID: sendID(conv, sender, id)}, kindSend, sender, sendCmd{ConversationID: conv, ID: id, Text: text})
	if err != nil {
		return Message{}, res, err
	}
	m, err := s.sentMessage(res)
	return m, res, err
}
