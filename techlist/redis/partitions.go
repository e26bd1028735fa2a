package redis

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// MaxPartitions bounds STREAM_PARTITIONS: more streams than a cluster has
// masters buy nothing, and each is one more read per turn of a worker.
const MaxPartitions = 64

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// PartitionStreams names the streams of channel in streams mode with n
// partitions. One partition is today's single stream, named channel, with
// its keys as before. With n > 1 partition p is the stream "{<tag>}", so
// its every key (the stream, "<stream>:dead", ":errors", ":attempts", the
// append markers) carries the tag and lives in one cluster slot. The tag is
// "<channel>:p<p>", or the first of "<channel>:p<p>.1", ".2", … whose slot
// lies in the middle half of the p-th n-th of the slot range: a cluster
// whose masters hold equal runs of slots (as redis-cli --cluster create
// makes them) puts the n partitions on n different masters while n is at
// most the number of masters. The names depend on n, which is why the
// partitions in use are registered (see PartitionsKey).
func PartitionStreams(channel string, n int) []string {
	if n <= 1 {
		return []string{channel}
	}
	// Braces in the channel would end the tag early: escaped, and '%' too,
	// so that two channels never share a partition's name.
	base := strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D").Replace(channel) + ":p"
	out := make([]string, n)
	for p := range n {
		width := clusterSlots / n
		lo := p*clusterSlots/n + width/4
		hi := lo + max(width/2, 1)
		tag := base + strconv.Itoa(p)
		for k := 1; k <= 1<<20; k++ {
			if s := keySlot(tag); s >= lo && s < hi {
				break
			}
			tag = base + strconv.Itoa(p) + "." + strconv.Itoa(k)
		}
		out[p] = "{" + tag + "}"
	}
	return out
}

// PartitionOf returns the partition, of n, that the tech id goes to: an
// FNV-1a hash of the whole id (a UUIDv7's leading bits are its time, the
// same for a burst) modulo n.
func PartitionOf(id string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(n))
}

// PartitionsKey is the set of the partition streams an api-server has
// written to with STREAM_PARTITIONS above 1, so that workers drain them
// whatever their own setting (the names depend on the count).
func PartitionsKey(channel string) string { return channel + ":partitions" }

// KnownStreams returns the streams a worker of channel with n partitions
// drains: the single stream of one partition (what an api-server with
// STREAM_PARTITIONS=1 writes, and what every version before partitions
// wrote), its own n partitions, and every partition stream registered,
// in that order, without repeats.
func KnownStreams(ctx context.Context, rdb goredis.UniversalClient, channel string, n int) ([]string, error) {
	registered, err := rdb.SMembers(ctx, PartitionsKey(channel)).Result()
	if err != nil {
		return nil, fmt.Errorf("read the registered partitions %s: %w", PartitionsKey(channel), err)
	}
	slices.Sort(registered)
	streams := []string{channel}
	for _, s := range append(PartitionStreams(channel, n), registered...) {
		if !slices.Contains(streams, s) {
			streams = append(streams, s)
		}
	}
	return streams, nil
}

// keySlot is Redis Cluster's slot of key: CRC16 (XMODEM) of its hash tag
// (what lies between the first '{' and the next '}', when not empty), or
// of the whole key, modulo 16384.
func keySlot(key string) int {
	if tag, ok := hashTag(key); ok {
		key = tag
	}
	return int(crc16(key) % clusterSlots)
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial 0), the checksum of
// Redis Cluster's key slots.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// PartitionedPublisher appends each envelope to one of its partitions'
// streams, chosen by PartitionOf its id. With one partition it is a
// StreamPublisher of channel. With more, the publishes also register the
// partitions (PartitionsKey): the first ones until a registration has
// succeeded, then one every RegisterEvery, so a registry lost meanwhile
// (deleted, or a Redis restarted without persistence) is written again
// and the workers find the partitions this api-server writes to.
type PartitionedPublisher struct {
	rdb     goredis.UniversalClient
	channel string
	parts   []*StreamPublisher
	// nextRegister is when a publish should next carry the registration,
	// in Unix nanoseconds; math.MaxInt64 with one partition.
	nextRegister atomic.Int64
	now          func() time.Time
}

// RegisterEvery is how often the partitions are registered again while
// publishes go on.
const RegisterEvery = 10 * time.Second

// NewPartitionedPublisher returns a publisher to the n partition streams
// of channel (see PartitionStreams), holding at most maxLen entries in all:
// each partition holds at most maxLen/n (rounded up).
func NewPartitionedPublisher(rdb goredis.UniversalClient, channel string, n int, maxLen int64, markerTTL time.Duration) *PartitionedPublisher {
	streams := PartitionStreams(channel, n)
	each := PartitionMaxLen(maxLen, len(streams))
	p := &PartitionedPublisher{rdb: rdb, channel: channel, now: time.Now}
	for _, s := range streams {
		p.parts = append(p.parts, NewStreamPublisher(rdb, s, each, markerTTL))
	}
	if len(streams) == 1 {
		p.nextRegister.Store(math.MaxInt64)
	}
	return p
}

// PartitionMaxLen is one partition's share of STREAM_MAX_LEN over n.
func PartitionMaxLen(maxLen int64, n int) int64 {
	n = max(n, 1)
	return (maxLen + int64(n) - 1) / int64(n)
}

// Streams returns the names of the partitions' streams, by partition.
func (p *PartitionedPublisher) Streams() []string {
	out := make([]string, len(p.parts))
	for i, s := range p.parts {
		out[i] = s.stream
	}
	return out
}

func (p *PartitionedPublisher) publishCmd(ctx context.Context, id string, payload []byte) *goredis.Cmd {
	return p.parts[PartitionOf(id, len(p.parts))].publishCmd(ctx, id, payload)
}

// published reads the outcome of a publishCmd; the stream is the script's
// first key (after EVALSHA, its hash and the key count).
func (p *PartitionedPublisher) published(cmd *goredis.Cmd) error {
	stream, _ := cmd.Args()[3].(string)
	return appendOutcome(stream, cmd)
}

// registerCmd returns the registration of the partitions to send with a
// publish when one is due, else nil (always with one partition). Of the
// publishes that find it due at once, one carries it.
func (p *PartitionedPublisher) registerCmd(ctx context.Context) goredis.Cmder {
	next, now := p.nextRegister.Load(), p.now().UnixNano()
	if now < next || !p.nextRegister.CompareAndSwap(next, now+int64(RegisterEvery)) {
		return nil
	}
	members := make([]any, len(p.parts))
	for i, s := range p.parts {
		members[i] = s.stream
	}
	return goredis.NewIntCmd(ctx, append([]any{"sadd", PartitionsKey(p.channel)}, members...)...)
}

// registeredBy records the outcome of a registerCmd, sent with sendErr: a
// failed one is due again at once.
func (p *PartitionedPublisher) registeredBy(cmd goredis.Cmder, sendErr error) {
	if sendErr != nil || cmd.Err() != nil {
		p.nextRegister.Store(0)
	}
}

// Backlog returns how many entries wait in the partitions' streams, and in
// every other stream a worker drains (see KnownStreams): after a change of
// STREAM_PARTITIONS the old ones' entries wait too.
func (p *PartitionedPublisher) Backlog(ctx context.Context) (int64, error) {
	return KnownBacklog(ctx, p.rdb, p.channel, len(p.parts))
}

// KnownBacklog returns how many entries wait in every stream a worker of
// channel with n partitions drains (see KnownStreams).
func KnownBacklog(ctx context.Context, rdb goredis.UniversalClient, channel string, n int) (int64, error) {
	streams, err := KnownStreams(ctx, rdb, channel, n)
	if err != nil {
		return 0, err
	}
	lens, err := StreamLengths(ctx, rdb, streams)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, l := range lens {
		sum += l
	}
	return sum, nil
}

// StreamLengths returns the length of each stream, in one pipeline (on a
// cluster, one per node, sent side by side).
func StreamLengths(ctx context.Context, rdb goredis.UniversalClient, streams []string) ([]int64, error) {
	cmds := make([]*goredis.IntCmd, len(streams))
	rdb.Pipelined(ctx, func(pipe goredis.Pipeliner) error { // errors are read per command below
		for i, s := range streams {
			cmds[i] = pipe.XLen(ctx, s)
		}
		return nil
	})
	out := make([]int64, len(streams))
	for i, c := range cmds {
		// A registered name that holds no stream (written by hand: a
		// worker never registers one) has nothing waiting; the others
		// still count. A failed send fails every command.
		if err := c.Err(); err != nil && !strings.HasPrefix(err.Error(), "WRONGTYPE") {
			return nil, fmt.Errorf("length of the streams %s: %w", strings.Join(streams, ", "), err)
		}
		out[i] = c.Val()
	}
	return out, nil
}
