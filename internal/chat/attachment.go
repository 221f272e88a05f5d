package chat

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
)

// Attachments are stored in the replicated object store first, then
// registered in the CHAT stream; a message refers to a registered one.

// MaxAttachment is the largest attachment.
const MaxAttachment = 10 << 20

// AttachmentBucket is the object store of attachments.
const AttachmentBucket = "ATTACHMENTS"

// UnsupportedMedia is the error code of a refused content type.
const UnsupportedMedia = "unsupported_media_type"

func init() { apperr.Register(UnsupportedMedia, http.StatusUnsupportedMediaType) }

// allowedTypes are the content types an attachment may have, as sniffed
// from its bytes. Anything a browser would run (HTML, SVG, scripts) is
// refused.
var allowedTypes = map[string]bool{
	"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true,
	"application/pdf": true, "text/plain": true, "application/zip": true,
	"application/x-gzip": true, "audio/mpeg": true, "audio/wave": true,
	"video/mp4": true, "video/webm": true, "application/octet-stream": true,
}

// Attachment is a file or image of a conversation.
type Attachment struct {
	ID          string    `json:"attachment_id"`
	Name        string    `json:"name"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	Uploader    string    `json:"uploader"`
	UploadedAt  time.Time `json:"uploaded_at"`
}

// Blobs stores attachment bytes (the engine's object store).
type Blobs interface {
	PutObject(ctx context.Context, bucket, name, contentType string, r io.Reader) error
	GetObject(ctx context.Context, bucket, name string) (io.ReadCloser, error)
}

func objectName(convID, id string) string { return convID + "/" + id }

// sniff returns the content type of data, checked against the declared
// one: a declared image must be that image, and only allowed types pass.
func sniff(declared string, data []byte) (string, *apperr.Error) {
	got, _, _ := mime.ParseMediaType(http.DetectContentType(data))
	if got == "text/plain" && !utf8.Valid(data) {
		got = "application/octet-stream"
	}
	if !allowedTypes[got] {
		return "", apperr.New(UnsupportedMedia, "files of type %s are not accepted", got)
	}
	want, _, err := mime.ParseMediaType(declared)
	if declared != "" && err != nil {
		return "", &apperr.Error{Code: apperr.Invalid, Field: "Content-Type", Message: "Content-Type is not a media type"}
	}
	if strings.HasPrefix(want, "image/") && want != got {
		return "", apperr.New(UnsupportedMedia, "declared %s but the content is %s", want, got)
	}
	return got, nil
}

func cleanName(name string) (string, *apperr.Error) {
	name = strings.TrimSpace(name)
	if name == "" {
		name = "file"
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > 255 ||
		strings.ContainsAny(name, "/\\") || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return "", apperr.Field("name", "name must be a file name of at most 255 characters, without / or \\")
	}
	return name, nil
}

type attachCmd struct {
	ConversationID string     `json:"conversation_id"`
	Attachment     Attachment `json:"attachment"`
}

func (s *State) attach(tx *batch, e *cmdlog.Envelope, c attachCmd) (any, *apperr.Error) {
	conv, _, _, err := s.forMember(tx, c.ConversationID, e.Actor)
	if err != nil {
		return nil, err
	}
	a := c.Attachment
	a.Uploader, a.UploadedAt = e.Actor, e.At
	var old Attachment
	if tx.GetJSON(attKey(conv.ID, a.ID), &old) {
		return old, nil
	}
	tx.SetJSON(attKey(conv.ID, a.ID), &a)
	return a, nil
}

// Upload stores an attachment for a conversation the actor is a member of.
// Errors: not_member, conversation_not_found, body_too_large,
// unsupported_media_type, invalid_field, unavailable.
func (s *Service) Upload(ctx context.Context, w cmdlog.Write, actor, convID, name, declared string, data []byte) (Attachment, cmdlog.Result, error) {
	fail := func(err error) (Attachment, cmdlog.Result, error) { return Attachment{}, cmdlog.Result{}, err }
	if err := s.precheck(convID, actor); err != nil {
		return fail(err)
	}
	if len(data) == 0 {
		return fail(apperr.Field("body", "the attachment is empty"))
	}
	if len(data) > MaxAttachment {
		return fail(apperr.New(apperr.TooLarge, "attachments are at most 10 MB"))
	}
	ct, aerr := sniff(declared, data)
	if aerr != nil {
		return fail(aerr)
	}
	fname, aerr := cleanName(name)
	if aerr != nil {
		return fail(aerr)
	}
	sum := sha256.Sum256(data)
	// Same bytes, same conversation, same uploader: one attachment.
	idSum := sha256.Sum256(append([]byte(actor+"\x00"), sum[:]...))
	id := "a" + hex.EncodeToString(idSum[:12])
	if s.blobs == nil {
		return fail(apperr.New(apperr.Unavailable, "attachments are not available on this node"))
	}
	if err := s.blobs.PutObject(ctx, AttachmentBucket, objectName(convID, id), ct, bytes.NewReader(data)); err != nil {
		return fail(&apperr.Error{Code: apperr.Unavailable, Message: "the attachment could not be stored; retry", RetryAfter: 1})
	}
	a := Attachment{ID: id, Name: fname, ContentType: ct, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
	if w.ID == "" {
		w.ID = "attach/" + convID + "/" + actor + "/" + id + "/" + fname
	}
	res, err := s.sub.Submit(ctx, w, kindAttach, actor, attachCmd{ConversationID: convID, Attachment: a})
	if err != nil {
		return Attachment{}, res, err
	}
	var out Attachment
	err = json.Unmarshal(res.Value, &out)
	return out, res, err
}

// Open returns an attachment's metadata and bytes, for members only.
// Errors: conversation_not_found, not_member, not_found.
func (s *Service) Open(ctx context.Context, actor, convID, id string) (Attachment, io.ReadCloser, error) {
	r := s.state.snapshot()
	defer r.Close()
	_, me, err := forMember(r, convID, actor)
	var a *Attachment
	if err == nil {
		var got Attachment
		// Members see what was shared while they were members; the
		// uploader sees their upload.
		if r.GetJSON(attKey(convID, id), &got) && (got.Uploader == actor || sharedAfter(r, convID, id, me.From)) {
			a = &got
		}
	}
	if err != nil {
		return Attachment{}, nil, err
	}
	if a == nil {
		return Attachment{}, nil, apperr.New(apperr.NotFound, "no such attachment in this conversation")
	}
	if s.blobs == nil {
		return Attachment{}, nil, apperr.New(apperr.Unavailable, "attachments are not available on this node")
	}
	rc, gerr := s.blobs.GetObject(ctx, AttachmentBucket, objectName(convID, id))
	if gerr != nil {
		return Attachment{}, nil, &apperr.Error{Code: apperr.Unavailable, Message: "the attachment cannot be read right now; retry", RetryAfter: 1}
	}
	return *a, rc, nil
}
