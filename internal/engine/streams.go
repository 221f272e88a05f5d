package engine

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamSpec declares one stream the project uses.
type StreamSpec struct {
	Name     string
	Subjects []string
	// MaxMsgSize bounds one entry (a command or a batch).
	MaxMsgSize int32
	// Duplicates is JetStream's dedupe window for Nats-Msg-Id. The read
	// models keep the id index forever; this window only saves log space.
	Duplicates time.Duration
}

// Streams is every stream superapp uses: one table, one place. Each feature
// owns its streams, so one feature's backlog never blocks another's writes.
var Streams = []StreamSpec{
	{Name: "IDENTITY", Subjects: []string{"identity.>"}, MaxMsgSize: 1 << 20, Duplicates: 2 * time.Minute},
	{Name: "SOCIAL", Subjects: []string{"social.>"}, MaxMsgSize: 1 << 20, Duplicates: 2 * time.Minute},
	{Name: "CHAT", Subjects: []string{"chat.>"}, MaxMsgSize: 1 << 20, Duplicates: 2 * time.Minute},
	{Name: "OAUTH", Subjects: []string{"oauth.>"}, MaxMsgSize: 1 << 20, Duplicates: 2 * time.Minute},
	// Ledger entries are batches of up to 8,190 transfers.
	{Name: "LEDGER", Subjects: []string{"ledger.>"}, MaxMsgSize: 4 << 20, Duplicates: 2 * time.Minute},
	{Name: "RIDES", Subjects: []string{"rides.>"}, MaxMsgSize: 1 << 20, Duplicates: 2 * time.Minute},
	{Name: "FOOD", Subjects: []string{"food.>"}, MaxMsgSize: 1 << 20, Duplicates: 2 * time.Minute},
	{Name: "MINIAPP", Subjects: []string{"miniapp.>"}, MaxMsgSize: 1 << 20, Duplicates: 2 * time.Minute},
}

// ObjectStoreSpec declares one object store (a stream underneath).
type ObjectStoreSpec struct {
	Bucket   string
	MaxBytes int64
}

// ObjectStores is every object store superapp uses.
var ObjectStores = []ObjectStoreSpec{
	{Bucket: "ATTACHMENTS", MaxBytes: -1},
	// Each DC keeps its newest state-store checkpoint here, one object per
	// DC: a DC rebuilt on an empty disk loads one instead of the whole log.
	{Bucket: CheckpointBucket, MaxBytes: -1},
}

// CheckpointBucket is the object store of state-store checkpoints.
const CheckpointBucket = "CHECKPOINTS"

func (s ObjectStoreSpec) config(replicas int) jetstream.ObjectStoreConfig {
	return jetstream.ObjectStoreConfig{Bucket: s.Bucket, Storage: jetstream.FileStorage, Replicas: replicas, MaxBytes: s.MaxBytes}
}

// config is the stream's configuration. With a retention the stream
// accepts purges: Trim removes entries older than the retention that a
// stored checkpoint holds (never by age alone, which would drop entries no
// DC has applied yet). Without one, nothing may ever remove an entry.
func (s StreamSpec) config(replicas int, retention time.Duration) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        s.Name,
		Subjects:    s.Subjects,
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		MaxMsgSize:  s.MaxMsgSize,
		Duplicates:  s.Duplicates,
		Discard:     jetstream.DiscardNew,
		AllowDirect: true,
		DenyDelete:  true,
		DenyPurge:   retention == 0,
	}
}
