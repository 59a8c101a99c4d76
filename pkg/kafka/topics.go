package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/hookline/hookline/pkg/wire"
)

// EnsureTopics creates the topics that do not exist yet. Existing topics
// keep their partitions and settings, an operator's call, with one
// exception: see RaiseRecordLimit.
func EnsureTopics(ctx context.Context, adm *kadm.Client, topics []wire.Topic, partitions int32, replication int16) error {
	var errs []error
	for _, s := range topics {
		// CreateTopic reports the topic's own error as its error too.
		_, err := adm.CreateTopic(ctx, partitions, replication, s.Configs(), s.Name)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create topic %s: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// RaiseRecordLimit sets max.message.bytes to wire.MaxRecordBytes on each topic
// whose limit is lower, such as a topic created by an older Hookline with
// the broker's default of about 1 MB: without it, the largest events and
// deliveries Hookline accepts would be refused by the broker. It only ever
// raises the limit, and reports the topics it changed. It needs the
// ALTER_CONFIGS permission on the topics; without it, an operator sets the
// limit by hand (docs/operations.md).
func RaiseRecordLimit(ctx context.Context, adm *kadm.Client, topics ...string) ([]string, error) {
	described, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("describe topic configs: %w", err)
	}
	var low []string
	for _, rc := range described {
		if rc.Err != nil {
			return nil, fmt.Errorf("describe topic %s: %w", rc.Name, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Key != wire.MaxMessageBytes || c.Value == nil {
				continue
			}
			if n, err := strconv.Atoi(*c.Value); err == nil && n < wire.MaxRecordBytes {
				low = append(low, rc.Name)
			}
		}
	}
	if len(low) == 0 {
		return nil, nil
	}
	alter := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: wire.MaxMessageBytes, Value: new(strconv.Itoa(wire.MaxRecordBytes))}}
	res, err := adm.AlterTopicConfigs(ctx, alter, low...)
	if err == nil {
		for _, r := range res {
			if r.Err != nil {
				err = errors.Join(err, fmt.Errorf("topic %s: %w", r.Name, r.Err))
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("raise %s to %d: %w", wire.MaxMessageBytes, wire.MaxRecordBytes, err)
	}
	return low, nil
}

// TopicsUnder lists the cluster's topics whose names start with prefix:
// one Hookline stack's (wire.Topics.Prefix), including those its services
// made themselves, such as the retry tiers of their schedule.
func TopicsUnder(ctx context.Context, adm *kadm.Client, prefix string) ([]string, error) {
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, err
	}
	var mine []string
	for _, name := range topics.Names() {
		if strings.HasPrefix(name, prefix) {
			mine = append(mine, name)
		}
	}
	return mine, nil
}
