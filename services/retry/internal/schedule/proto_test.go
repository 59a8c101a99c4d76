package schedule

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/testinfra"
)

func TestProtoTxn(t *testing.T) {
	cfg := testinfra.Kafka(t, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	tier := cfg.Topics.Retry(time.Second)
	plain, _ := kafka.NewClient(cfg, testinfra.Logger())
	defer plain.Close()
	for i := 0; i < 10; i++ {
		if err := plain.ProduceSync(ctx, &kgo.Record{Topic: tier, Partition: 0, Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	group := cfg.Topics.Prefix + "g"
	c, _ := kafka.NewClient(cfg, testinfra.Logger(), kgo.ConsumerGroup(group), kgo.ConsumeTopics(tier), kgo.AutoCommitMarks(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer c.Close()
	p, _ := kafka.NewClient(cfg, testinfra.Logger(), kgo.TransactionalID(cfg.Topics.Prefix+"txn"), kgo.TransactionTimeout(10*time.Second))
	defer p.Close()
	var got []*kgo.Record
	for len(got) < 10 {
		f := c.PollFetches(ctx)
		if err := f.Err(); err != nil {
			t.Fatal(err)
		}
		got = append(got, f.Records()...)
	}
	for round, commit := range []kgo.TransactionEndTry{kgo.TryAbort, kgo.TryCommit} {
		upto := got[4+round]
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(ctx, &kgo.Record{Topic: cfg.Topics.Deliveries, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		id, epoch, err := p.ProducerID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("pid %d epoch %d", id, epoch)
		add := kmsg.NewPtrAddOffsetsToTxnRequest()
		add.TransactionalID = cfg.Topics.Prefix + "txn"
		add.ProducerID, add.ProducerEpoch, add.Group = id, epoch, group
		aresp, err := add.RequestWith(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("add offsets v%d: %v", aresp.Version, kerr.ErrorForCode(aresp.ErrorCode))
		member, gen := c.GroupMetadata()
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.TransactionalID = cfg.Topics.Prefix + "txn"
		req.Group, req.ProducerID, req.ProducerEpoch, req.Generation, req.MemberID = group, id, epoch, gen, member
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = tier
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = 0, upto.Offset+1, upto.LeaderEpoch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("txn offset commit v%d: %v", resp.Version, kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode))
		if err := p.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
		os, err := kadm.NewClient(plain).FetchOffsets(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		o, ok := os.Lookup(tier, 0)
		t.Logf("after commit=%v committed offset %d ok=%v err=%v", commit, o.At, ok, o.Err)
		time.Sleep(time.Second)
		os, _ = kadm.NewClient(plain).FetchOffsets(ctx, group)
		o, ok = os.Lookup(tier, 0)
		t.Logf("1s later: committed offset %d ok=%v err=%v", o.At, ok, o.Err)
	}
}
