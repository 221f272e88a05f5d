package oidcop

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"superapp/internal/apperr"
	"superapp/internal/identity"
	"superapp/internal/oauth"
)

// storage is op.Storage on the oauth service: reads come from this node's
// read model (waiting for the position an id carries), decisions are OAUTH
// commands.
type storage struct {
	oauth      *oauth.Service
	users      Users
	crypto     op.Crypto
	consent    func(requestID string) string
	log        *slog.Logger
	authorizes *identity.Throttle // authorize requests per client address
}

var _ op.Storage = (*storage)(nil)
var _ op.CanSetUserinfoFromRequest = (*storage)(nil)

// retryable reports whether err is worth retrying (here or on another DC).
func retryable(err error) bool {
	switch apperr.From(err).Code {
	case apperr.Unavailable, apperr.NotCaughtUp, apperr.Isolated, apperr.Overloaded:
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// tokenError maps a service error met on the token, userinfo or
// revocation path to an OAuth error; a retryable one marks the request so
// ServeHTTP answers 503.
func (s *storage) tokenError(ctx context.Context, err error) *oidc.Error {
	if retryable(err) {
		infoOf(ctx).markRetry(apperr.From(err).Message)
		return oidc.ErrServerError().WithDescription("try again")
	}
	var ae *apperr.Error
	if errors.As(err, &ae) {
		if ae.Field == "scope" {
			return oidc.ErrInvalidScope().WithDescription("%s", ae.Message)
		}
		return oidc.ErrInvalidGrant().WithDescription("%s", ae.Message)
	}
	s.log.Error("oidc storage", "err", err)
	return oidc.ErrServerError().WithDescription("internal error")
}

// CreateAuthRequest records a validated /authorize request. Its errors are
// redirected to the mini-app (the library has checked the redirect URI).
func (s *storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if ok, _ := s.authorizes.Allow(infoOf(ctx).addr); !ok {
		return nil, &oidc.Error{ErrorType: "temporarily_unavailable", Description: "too many login requests from this address; retry shortly"}
	}
	if slices.Contains(req.Prompt, oidc.PromptNone) {
		// There is no session cookie to log in silently with.
		return nil, oidc.ErrLoginRequired().WithDescription("superapp always asks the user")
	}
	r, err := s.oauth.CreateRequest(ctx, oauth.NewRequest{
		ClientID: req.ClientID, RedirectURI: req.RedirectURI, Scopes: req.Scopes, State: req.State,
		Nonce: req.Nonce, CodeChallenge: req.CodeChallenge, CodeChallengeMethod: string(req.CodeChallengeMethod),
		ResponseMode: string(req.ResponseMode),
	})
	if err != nil {
		ae := apperr.From(err)
		switch {
		case retryable(err):
			return nil, &oidc.Error{ErrorType: "temporarily_unavailable", Description: ae.Message}
		case ae.Code == apperr.Internal:
			s.log.Error("create auth request", "err", err)
			return nil, oidc.ErrServerError().WithDescription("internal error")
		case ae.Field == "scope":
			return nil, oidc.ErrInvalidScope().WithDescription("%s", ae.Message)
		}
		return nil, oidc.ErrInvalidRequest().WithDescription("%s", ae.Message)
	}
	return &authRequest{r: r, id: r.ID}, nil
}

// AuthRequestByID serves only the library's callback, which the gateway
// does not route; it is here for the interface.
func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	r, err := s.oauth.Request(ctx, id)
	if err != nil {
		return nil, s.tokenError(ctx, err)
	}
	return &authRequest{r: r, id: id}, nil
}

// AuthRequestByCode opens a code: it is the approved request id encrypted
// with the cluster-wide key. Whether it was used already is decided when
// it is redeemed (CreateAccess*), in the log.
func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	if len(code) > maxTokenLen {
		return nil, errors.New("code too long")
	}
	id, err := s.crypto.Decrypt(code)
	if err != nil {
		return nil, errors.New("not a code of this provider")
	}
	r, err := s.oauth.Request(ctx, id)
	if err != nil {
		return nil, s.tokenError(ctx, err)
	}
	if !r.Approved || id != r.ApprovedID {
		return nil, errors.New("the request was not approved")
	}
	return &authRequest{r: r, id: id, code: code}, nil
}

// SaveAuthCode keeps nothing: a code is an authenticated encryption of the
// approved request's id, and its single use is decided at redemption.
func (s *storage) SaveAuthCode(context.Context, string, string) error { return nil }

// DeleteAuthRequest keeps nothing either: redemption consumed the request.
func (s *storage) DeleteAuthRequest(context.Context, string) error { return nil }

// CreateAccessToken redeems a code for a grant without refresh tokens.
func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	ar, ok := req.(*authRequest)
	if !ok {
		return "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	g, err := s.oauth.Redeem(ctx, ar.id, ar.code)
	if err != nil {
		return "", time.Time{}, s.tokenError(ctx, err)
	}
	id, exp := s.oauth.AccessTokenID(g)
	return id, exp, nil
}

// CreateAccessAndRefreshTokens redeems a code (offline_access) or rotates
// a refresh token.
func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, currentRT string) (string, string, time.Time, error) {
	var g oauth.Grant
	var err error
	switch r := req.(type) {
	case *authRequest:
		g, err = s.oauth.Redeem(ctx, r.id, r.code)
	case *refreshRequest:
		var narrow []string
		if r.narrowed {
			narrow = r.scopes
		}
		g, err = s.oauth.Refresh(ctx, r.g.ID, r.gen, currentRT, narrow)
	default:
		return "", "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	if err != nil {
		return "", "", time.Time{}, s.tokenError(ctx, err)
	}
	rt, err := s.oauth.RefreshToken(g)
	if err != nil {
		return "", "", time.Time{}, s.tokenError(ctx, err)
	}
	id, exp := s.oauth.AccessTokenID(g)
	return id, rt, exp, nil
}

// TokenRequestByRefreshToken checks a refresh token's MAC and loads its
// grant; whether its generation is current is decided by the rotation.
func (s *storage) TokenRequestByRefreshToken(ctx context.Context, rt string) (op.RefreshTokenRequest, error) {
	gid, gen, ok := s.oauth.ParseRefreshToken(rt)
	if !ok {
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
	}
	g, err := s.oauth.Grant(ctx, gid)
	if err != nil {
		return nil, s.tokenError(ctx, err)
	}
	if g.RevokedAt != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("the grant was revoked")
	}
	return &refreshRequest{g: g, gen: gen, scopes: slices.Clone(g.Scopes)}, nil
}

// TerminateSession ends every grant of the user for the client.
func (s *storage) TerminateSession(ctx context.Context, userID, clientID string) error {
	if err := s.oauth.RevokeAll(ctx, userID, clientID); err != nil {
		return s.tokenError(ctx, err)
	}
	return nil
}

// RevokeToken revokes the grant behind a refresh token (its grant id) or an
// access token (its token id). A token that is unknown, or not the
// client's, is answered as revoked (RFC 7009 §2.2).
func (s *storage) RevokeToken(ctx context.Context, tokenOrID, _, clientID string) *oidc.Error {
	gid := tokenOrID
	if g, ok := oauth.GrantOfTokenID(tokenOrID); ok {
		gid = g
	}
	err := s.oauth.RevokeForClient(ctx, clientID, gid)
	if err == nil || apperr.From(err).Code == apperr.NotFound {
		return nil
	}
	return s.tokenError(ctx, err)
}

// GetRefreshTokenInfo tells the revocation endpoint whether token is one of
// our refresh tokens.
func (s *storage) GetRefreshTokenInfo(ctx context.Context, _, token string) (string, string, error) {
	gid, _, ok := s.oauth.ParseRefreshToken(token)
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	g, err := s.oauth.Grant(ctx, gid)
	if err != nil {
		if retryable(err) {
			return "", "", s.tokenError(ctx, err)
		}
		return "", "", op.ErrInvalidRefreshToken
	}
	return g.UserID, g.ID, nil
}

// SigningKey is the Ed25519 ID-token key from the OAUTH stream.
func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	priv, kid, err := s.oauth.SigningKey()
	if err != nil {
		return nil, oidc.ErrServerError().WithDescription("signing key not loaded yet")
	}
	return signingKey{priv: priv, kid: kid}, nil
}

// SignatureAlgorithms is EdDSA only.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.EdDSA}, nil
}

// KeySet is the public half of the signing key.
func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	priv, kid, err := s.oauth.SigningKey()
	if err != nil {
		return nil, oidc.ErrServerError().WithDescription("signing key not loaded yet")
	}
	return []op.Key{publicKey{pub: priv.Public().(ed25519.PublicKey), kid: kid}}, nil
}

// GetClientByClientID loads a mini-app; an unknown one is a plain error.
func (s *storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.oauth.ClientByID(ctx, id)
	if err != nil {
		if retryable(err) {
			return nil, s.tokenError(ctx, err)
		}
		return nil, errors.New("unknown client")
	}
	return &client{c: c, loginURL: s.consent}, nil
}

// AuthorizeClientIDSecret checks a mini-app's secret.
func (s *storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	if err := s.oauth.CheckSecret(ctx, id, secret); err != nil {
		if retryable(err) {
			return s.tokenError(ctx, err)
		}
		return errors.New("wrong client_id or client_secret")
	}
	return nil
}

// SetUserinfoFromScopes is deprecated in the library; see
// SetUserinfoFromRequest.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's user claims. The subject must
// be set: the library copies the whole struct over the token's claims.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	s.fill(info, req.GetSubject(), scopes)
	return nil
}

// fill sets the claims the scopes allow: profile gives the name.
func (s *storage) fill(info *oidc.UserInfo, subject string, scopes []string) {
	info.Subject = subject
	if slices.Contains(scopes, oauth.ScopeProfile) {
		if u, ok := s.users.User(subject); ok {
			info.Name = u.Name
		}
	}
}

// SetUserinfoFromToken serves /userinfo. The library checks nothing about
// opaque tokens: expiry, revocation and the user are checked here.
func (s *storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	a, err := s.oauth.CheckAccess(ctx, tokenID, subject)
	if err != nil {
		if retryable(err) {
			return s.tokenError(ctx, err)
		}
		return &oidc.Error{ErrorType: "invalid_token", Description: apperr.From(err).Message}
	}
	if _, ok := s.users.User(a.UserID); !ok {
		return &oidc.Error{ErrorType: "invalid_token", Description: "no such user"}
	}
	s.fill(info, a.UserID, a.Scopes)
	return nil
}

// SetIntrospectionFromToken serves /oauth/introspect for the token's own
// mini-app; any other answer is "inactive".
func (s *storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	a, err := s.oauth.CheckAccess(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	if a.ClientID != clientID {
		return errors.New("not this client's token")
	}
	resp.Scope = a.Scopes
	resp.ClientID = a.ClientID
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(a.ExpiresAt)
	resp.AuthTime = oidc.FromTime(a.AuthTime)
	resp.Subject = a.UserID
	resp.Audience = []string{a.ClientID}
	resp.Issuer = op.IssuerFromContext(ctx)
	return nil
}

// GetPrivateClaimsFromScopes adds no private claims.
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetKeyByIDAndClientID refuses: mini-apps authenticate with secrets, so
// the JWT-bearer grant the library always offers finds no key.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("jwt profile is not supported")
}

// ValidateJWTProfileScopes refuses, as GetKeyByIDAndClientID.
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("jwt profile is not supported")
}

// Health reports whether the keys are loaded.
func (s *storage) Health(context.Context) error {
	if !s.oauth.KeysReady() {
		return errors.New("oauth keys not loaded")
	}
	return nil
}
