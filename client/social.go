package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Friend is a friend with their profile.
type Friend struct {
	Profile
	Since time.Time `json:"since"`
}

// FriendRequest is a pending request, with the other user's profile.
type FriendRequest struct {
	Profile
	CreatedAt time.Time `json:"created_at"`
}

// Relation is the outcome of a social change.
type Relation struct {
	Status string `json:"status"`
	UserID string `json:"user_id"`
}

func (c *Client) relate(ctx context.Context, method, path string, body any) (Relation, error) {
	var r Relation
	err := c.Do(ctx, Request{Method: method, Path: path, Body: body}, &r)
	return r, err
}

// RequestFriend asks userID to be friends (status "requested", or "friends"
// if they had asked too).
func (c *Client) RequestFriend(ctx context.Context, userID string) (Relation, error) {
	return c.relate(ctx, http.MethodPost, "/v1/friends/requests", map[string]string{"user_id": userID})
}

// AcceptFriend accepts userID's request.
func (c *Client) AcceptFriend(ctx context.Context, userID string) (Relation, error) {
	return c.relate(ctx, http.MethodPost, "/v1/friends/requests/"+url.PathEscape(userID)+"/accept", nil)
}

// DeclineFriend declines userID's request.
func (c *Client) DeclineFriend(ctx context.Context, userID string) (Relation, error) {
	return c.relate(ctx, http.MethodPost, "/v1/friends/requests/"+url.PathEscape(userID)+"/decline", nil)
}

// CancelFriendRequest withdraws the request to userID.
func (c *Client) CancelFriendRequest(ctx context.Context, userID string) (Relation, error) {
	return c.relate(ctx, http.MethodDelete, "/v1/friends/requests/"+url.PathEscape(userID), nil)
}

// RemoveFriend ends a friendship.
func (c *Client) RemoveFriend(ctx context.Context, userID string) (Relation, error) {
	return c.relate(ctx, http.MethodDelete, "/v1/friends/"+url.PathEscape(userID), nil)
}

// Block blocks userID.
func (c *Client) Block(ctx context.Context, userID string) (Relation, error) {
	return c.relate(ctx, http.MethodPost, "/v1/blocks", map[string]string{"user_id": userID})
}

// Unblock lifts a block.
func (c *Client) Unblock(ctx context.Context, userID string) (Relation, error) {
	return c.relate(ctx, http.MethodDelete, "/v1/blocks/"+url.PathEscape(userID), nil)
}

// Friends lists the user's friends.
func (c *Client) Friends(ctx context.Context) ([]Friend, error) {
	var out struct {
		Friends []Friend `json:"friends"`
	}
	err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/friends"}, &out)
	return out.Friends, err
}

// FriendRequests lists incoming and outgoing requests.
func (c *Client) FriendRequests(ctx context.Context) (incoming, outgoing []FriendRequest, err error) {
	var out struct {
		Incoming []FriendRequest `json:"incoming"`
		Outgoing []FriendRequest `json:"outgoing"`
	}
	err = c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/friends/requests"}, &out)
	return out.Incoming, out.Outgoing, err
}

// Blocks lists whom the user blocked.
func (c *Client) Blocks(ctx context.Context) ([]Friend, error) {
	var out struct {
		Blocks []Friend `json:"blocks"`
	}
	err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/blocks"}, &out)
	return out.Blocks, err
}
