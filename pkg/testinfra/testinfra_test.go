package testinfra

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestTopicsReady: Kafka returns only once the broker's metadata has
// every topic with a leader for each partition, so that a test's first
// produce does not meet UNKNOWN_TOPIC_OR_PARTITION.
func TestTopicsReady(t *testing.T) {
	led := func(n int32) kadm.PartitionDetails {
		ps := kadm.PartitionDetails{}
		for p := range n {
			ps[p] = kadm.PartitionDetail{Partition: p, Leader: 1}
		}
		return ps
	}
	noLeader := led(3)
	noLeader[2] = kadm.PartitionDetail{Partition: 2, Leader: -1, Err: kerr.LeaderNotAvailable}
	tests := []struct {
		name    string
		topics  kadm.TopicDetails
		wantErr string
	}{
		{"all there", kadm.TopicDetails{"a": {Partitions: led(3)}, "b": {Partitions: led(3)}}, ""},
		{"one missing", kadm.TopicDetails{"a": {Partitions: led(3)}}, "topic b not in the metadata"},
		{"unknown to the broker yet", kadm.TopicDetails{"a": {Partitions: led(3)}, "b": {Err: kerr.UnknownTopicOrPartition}}, "UNKNOWN_TOPIC_OR_PARTITION"},
		{"partitions still coming", kadm.TopicDetails{"a": {Partitions: led(3)}, "b": {Partitions: led(1)}}, "1 of 3 partitions"},
		{"a partition without a leader", kadm.TopicDetails{"a": {Partitions: led(3)}, "b": {Partitions: noLeader}}, "partition 2 has no leader"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := topicsReady(kadm.Metadata{Topics: tc.topics}, 3, []string{"a", "b"})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("topicsReady = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
