package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
)

// An api-server and its workers must run one QUEUE_MODE. The reverse
// mismatch shows at once (a pub/sub publish with no pub/sub worker is
// refused), but an api-server in streams mode accepts writes whoever
// runs, since its stream keeps them for a worker started later: with only
// pub/sub workers live, nobody will. Workers keep a lease in the register
// of their mode (Presence), so either side can tell.

// StreamsModeProblem is the api-server's check in streams mode: a
// description of the mismatch when pub/sub workers are live on channel and
// no streams worker is, else "". No worker at all is no problem: the
// stream keeps what is accepted until one starts.
func StreamsModeProblem(ctx context.Context, rdb goredis.UniversalClient, channel string) (string, error) {
	n, err := CountWorkers(ctx, rdb, channel)
	if err != nil || n.Streams > 0 || n.PubSub == 0 {
		return "", err
	}
	return fmt.Sprintf("QUEUE_MODE differs: this api-server runs streams, but the %d live worker(s) on %s run pubsub, so nothing it accepts is stored until a worker with QUEUE_MODE=streams runs (the stream keeps it)",
		n.PubSub, channel), nil
}

// PubSubModeProblem is a pub/sub worker's check: a description of the
// mismatch when channel's stream holds entries (backlog) and no streams
// worker is live to read them, else "".
func PubSubModeProblem(ctx context.Context, rdb goredis.UniversalClient, channel string, backlog func(context.Context) (int64, error)) (string, error) {
	waiting, err := backlog(ctx)
	if err != nil || waiting == 0 {
		return "", err
	}
	n, err := CountWorkers(ctx, rdb, channel)
	if err != nil || n.Streams > 0 {
		return "", err
	}
	return fmt.Sprintf("QUEUE_MODE differs: this worker runs pubsub, but the stream %s holds %d entries that no worker reads: an api-server runs QUEUE_MODE=streams; run the workers with QUEUE_MODE=streams (or the api-server with pubsub)",
		channel, waiting), nil
}
