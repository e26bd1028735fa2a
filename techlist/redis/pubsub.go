package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
)

// Publisher puts envelopes on a pub/sub channel.
type Publisher struct {
	rdb     goredis.UniversalClient
	channel string
}

// NewPublisher returns a Publisher for channel.
func NewPublisher(rdb goredis.UniversalClient, channel string) *Publisher {
	return &Publisher{rdb: rdb, channel: channel}
}

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
	sharded := "0"
	if isCluster(p.rdb) {
		sharded = "1"
	}
	n, err := publishToWorker.Run(ctx, p.rdb, []string{WorkersKey(p.channel)}, p.channel, b, sharded).Int64()
	if err != nil {
		return fmt.Errorf("publish to %s: %w", p.channel, err)
	}
	if n == 0 {
		return techlist.ErrNoSubscribers
	}
	return nil
}
