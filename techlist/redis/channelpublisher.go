package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
)

// Publisher puts envelopes on the work channel (pub/sub), for a
// ChannelConsumer to read.
type Publisher struct {
	rdb     goredis.UniversalClient
	channel string
}

// NewPublisher returns a Publisher for channel.
func NewPublisher(rdb goredis.UniversalClient, channel string) *Publisher {
	return &Publisher{rdb: rdb, channel: channel}
}

// publishToWorker publishes ARGV[2] on channel ARGV[1] only when a worker's
// lease in KEYS[1] is live and the channel has an exact subscriber
// (pattern subscribers are not counted by NUMSUB); it returns how many
// received it, 0 when it was not published. ARGV[3] is "1" on a cluster,
// where the channel is sharded.
var publishToWorker = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) == 0 then return 0 end
local sharded = ARGV[3] == '1'
local numsub = redis.call('PUBSUB', sharded and 'SHARDNUMSUB' or 'NUMSUB', ARGV[1])
if tonumber(numsub[2]) == 0 then return 0 end
return redis.call(sharded and 'SPUBLISH' or 'PUBLISH', ARGV[1], ARGV[2])
`)

// Publish sends env, and returns techlist.ErrNoSubscribers when no worker
// was there to receive it: no live lease in the register of workers (see
// Presence), or no exact subscriber on the channel. Both are checked and
// the message published in one script, so nothing changes between the
// check and the PUBLISH.
func (p *Publisher) Publish(ctx context.Context, env techlist.Envelope) error {
	b, err := env.Encode()
	if err != nil {
		return err
	}
	cmd := p.publishCmd(ctx, env.ID, b)
	processScript(ctx, p.rdb, cmd)
	return p.published(cmd)
}

// publishCmd is the publish script's call for payload, to send alone or in
// a pipeline (see Intake); published reads its outcome.
func (p *Publisher) publishCmd(ctx context.Context, _ string, payload []byte) *goredis.Cmd {
	sharded := "0"
	if isCluster(p.rdb) {
		sharded = "1"
	}
	return evalSha(ctx, publishToWorker, []string{WorkersKey(p.channel)}, p.channel, payload, sharded)
}

// published returns techlist.ErrNoSubscribers when the script published
// to nobody.
func (p *Publisher) published(cmd *goredis.Cmd) error {
	n, err := cmd.Int64()
	if err != nil {
		return fmt.Errorf("publish to %s: %w", p.channel, err)
	}
	if n == 0 {
		return techlist.ErrNoSubscribers
	}
	return nil
}
