package redis

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
)

// Idempotency binds each Idempotency-Key to the request it first came with
// (a fingerprint of it) and to the id that request was given, for a day by
// default, following the IETF httpapi draft "The Idempotency-Key HTTP
// Header Field" and Stripe's API.
//
// A key's record is a hash: fp (the fingerprint), id, state (inflight,
// done or unknown), and while in flight a lease (Redis TIME, unix ms) and
// the token of the request holding it. The lease is short, so a request
// that crashed or lost Redis's reply locks its key for seconds, not a day.
type Idempotency struct {
	rdb    goredis.UniversalClient
	prefix string
	ttl    time.Duration
	lease  time.Duration
}

// NewIdempotency returns the store under prefix (REDIS_CACHE), keeping keys
// for ttl. A request in flight holds its key for lease at most; lease must
// outlast the slowest answer, or a retry may publish the same id while the
// first request still does (harmless, but it answers 202 twice).
func NewIdempotency(rdb goredis.UniversalClient, prefix string, ttl, lease time.Duration) *Idempotency {
	return &Idempotency{rdb: rdb, prefix: prefix, ttl: ttl, lease: lease}
}

var outcomes = map[string]techlist.KeyOutcome{
	"reserved": techlist.KeyReserved, "retaken": techlist.KeyRetaken, "replay": techlist.KeyReplay,
	"busy": techlist.KeyBusy, "mismatch": techlist.KeyMismatch,
}

// The client's key is hashed: any printable text is a valid key, and the
// Redis key stays short.
func (i *Idempotency) key(k string) string {
	sum := sha256.Sum256([]byte(k))
	return i.prefix + ":idem:" + hex.EncodeToString(sum[:])
}

// reserveKey decides on Redis's clock, in one round trip. The client
// resends a script whose connection broke before the answer came back, so
// one request may run it twice: a lease holding the request's own token is
// its own, and the answer is the first run's again (reserved when the
// record holds the request's own new id, else retaken). A plain string
// under the key is a record of the previous version: "pending:<id>" (in
// flight, no lease: its outcome is unknown) or "<id>" (answered; its
// request's fingerprint is unknown, so any request replays it).
var reserveKey = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local leaseUntil = now + tonumber(ARGV[4])
if redis.call('TYPE', KEYS[1]).ok == 'string' then
  local v = redis.call('GET', KEYS[1])
  if string.sub(v, 1, 8) ~= 'pending:' then return {'replay', v} end
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'id', string.sub(v, 9), 'state', 'unknown')
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
local r = redis.call('HMGET', KEYS[1], 'fp', 'id', 'state', 'lease', 'token')
if not r[1] then
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'id', ARGV[2], 'state', 'inflight', 'lease', leaseUntil, 'token', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return {'reserved', ARGV[2]}
end
if r[1] ~= ARGV[1] then return {'mismatch', ''} end
if r[3] == 'done' then return {'replay', r[2]} end
if r[3] == 'inflight' and r[5] == ARGV[3] then
  if r[2] == ARGV[2] then return {'reserved', r[2]} end
  return {'retaken', r[2]}
end
if r[3] == 'inflight' and tonumber(r[4]) > now then return {'busy', r[2]} end
redis.call('HSET', KEYS[1], 'state', 'inflight', 'lease', leaseUntil, 'token', ARGV[3])
return {'retaken', r[2]}
`)

// Reserve looks key up for a request with the given fingerprint. A new key
// is reserved for id; see techlist.KeyOutcome for the other answers.
func (i *Idempotency) Reserve(ctx context.Context, key, fingerprint, id string) (techlist.KeyReservation, error) {
	token, err := newToken()
	if err != nil {
		return techlist.KeyReservation{}, err
	}
	return i.reserve(ctx, key, fingerprint, id, token)
}

// reserve runs reserveKey for the request holding token.
func (i *Idempotency) reserve(ctx context.Context, key, fingerprint, id, token string) (techlist.KeyReservation, error) {
	args := []any{fingerprint, id, token, i.lease.Milliseconds(), i.ttl.Milliseconds()}
	v, err := reserveKey.Run(ctx, i.rdb, []string{i.key(key)}, args...).StringSlice()
	if err != nil {
		return techlist.KeyReservation{}, fmt.Errorf("reserve idempotency key: %w", err)
	}
	if len(v) != 2 || outcomes[v[0]] == 0 {
		return techlist.KeyReservation{}, fmt.Errorf("reserve idempotency key: unexpected answer %q", v)
	}
	return techlist.KeyReservation{Outcome: outcomes[v[0]], ID: v[1], Key: key, Fingerprint: fingerprint, Token: token}, nil
}

func newToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("idempotency lease token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// settleKey ends a lease with a state: done always wins; unknown never
// overwrites done. A record that holds another id is left alone (it
// cannot happen while ids are kept per key, but a record is never
// rebound). A record that expired meanwhile is written again.
var settleKey = goredis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'id', 'state')
if r[1] and r[1] ~= ARGV[1] then return 0 end
if r[2] == 'done' and ARGV[3] ~= 'done' then return 0 end
redis.call('HSET', KEYS[1], 'fp', ARGV[2], 'id', ARGV[1], 'state', ARGV[3])
redis.call('HDEL', KEYS[1], 'lease', 'token')
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

func (i *Idempotency) settle(ctx context.Context, res techlist.KeyReservation, state string) error {
	args := []any{res.ID, res.Fingerprint, state, i.ttl.Milliseconds()}
	if err := settleKey.Run(ctx, i.rdb, []string{i.key(res.Key)}, args...).Err(); err != nil {
		return fmt.Errorf("record idempotency key as %s: %w", state, err)
	}
	return nil
}

// Confirm records that res's request was accepted: from now on its key
// replays res.ID.
func (i *Idempotency) Confirm(ctx context.Context, res techlist.KeyReservation) error {
	return i.settle(ctx, res, "done")
}

// Unknown records that it is unknown whether res's request was queued: the
// key keeps res.ID, and the next request with it publishes res.ID again
// (harmless: an id is stored once) instead of waiting for the lease.
func (i *Idempotency) Unknown(ctx context.Context, res techlist.KeyReservation) error {
	return i.settle(ctx, res, "unknown")
}

var releaseKey = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// Release forgets res's key after its request was clearly refused, so a
// retry starts afresh. Only the reservation still holding the lease is
// deleted: once another request has retaken the key, it is that one's.
// Release only a KeyReserved reservation: a KeyRetaken id may have been queued
// by the earlier request, so it is kept (see Unknown).
func (i *Idempotency) Release(ctx context.Context, res techlist.KeyReservation) error {
	if err := releaseKey.Run(ctx, i.rdb, []string{i.key(res.Key)}, res.Token).Err(); err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}
