package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testinfra"
)

// runMainEnv makes the test binary run notify itself, so that tests start,
// stop and SIGKILL real notify processes without a separate build.
const runMainEnv = "HOOKLINE_NOTIFY_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type proc struct {
	cmd  *exec.Cmd
	out  *testinfra.SyncBuffer
	done chan struct{}
}

// start runs notify with env (and only that from the test's environment
// that names no Hookline setting, so a developer's shell cannot leak in).
func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(os.Args[0], args...), out: &testinfra.SyncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = append(append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...), runMainEnv+"=1")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("notify output:\n%s", p.out.String())
		}
	})
	return p
}

func (p *proc) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("notify still runs after %s", within)
		return -1
	}
}

func TestSettings(t *testing.T) {
	t.Run("-h lists the settings", func(t *testing.T) {
		p := start(t, nil, "-h")
		if code := p.wait(t, 10*time.Second); code != 0 {
			t.Fatalf("exit %d", code)
		}
		for _, s := range []string{"HOOKLINE_SMTP_URL", "HOOKLINE_ALERT_FROM", "HOOKLINE_CONSOLE_URL", "HOOKLINE_ALERT_DEFAULT_EMAILS",
			"HOOKLINE_ALERT_DIGEST_WINDOW", "HOOKLINE_ALERT_HOURLY_CAP", "HOOKLINE_NOTIFY_GROUP", "REDIS_ADDR"} {
			if !strings.Contains(p.out.String(), s) {
				t.Errorf("-h does not list %s", s)
			}
		}
	})
	t.Run("every bad setting is named at once", func(t *testing.T) {
		p := start(t, []string{
			"HOOKLINE_SMTP_URL=http://mail.example.com",
			"HOOKLINE_CONSOLE_URL=console",
			"HOOKLINE_ALERT_DEFAULT_EMAILS=acme=ops@example.com\r\nBcc: evil@example.net",
			"HOOKLINE_ALERT_HOURLY_CAP=0",
		})
		if code := p.wait(t, 10*time.Second); code != 2 {
			t.Fatalf("exit %d, want 2", code)
		}
		for _, s := range []string{"HOOKLINE_SMTP_URL", "HOOKLINE_ALERT_FROM", "HOOKLINE_CONSOLE_URL", "HOOKLINE_ALERT_DEFAULT_EMAILS", "HOOKLINE_ALERT_HOURLY_CAP"} {
			if !strings.Contains(p.out.String(), s) {
				t.Errorf("the error does not name %s:\n%s", s, p.out.String())
			}
		}
	})
	t.Run("a sender with CR/LF is refused", func(t *testing.T) {
		p := start(t, []string{"HOOKLINE_SMTP_URL=smtp://127.0.0.1:1", "HOOKLINE_ALERT_FROM=Hook\r\nBcc: evil@example.net <alerts@example.com>"})
		if code := p.wait(t, 10*time.Second); code != 2 || !strings.Contains(p.out.String(), "HOOKLINE_ALERT_FROM") {
			t.Fatalf("exit %d:\n%s", code, p.out.String())
		}
	})
}

func produce(t *testing.T, cl *kgo.Client, r *kgo.Record) {
	t.Helper()
	if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestNotifyProcess runs the notify binary against real Kafka, Redis and
// mailpit: a subscription's alert_emails come from the subscriptions topic,
// an email arrives, a SIGKILLed process restarted in the same group sends
// nothing twice, and SIGTERM stops it cleanly.
func TestNotifyProcess(t *testing.T) {
	cfg := testinfra.Kafka(t)
	testinfra.Redis(t)
	mp := testinfra.MailpitServer(t)
	codecs, err := record.LoadCodecs()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kafka.NewClient(cfg, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	owner, ops := testinfra.Address("owner"), testinfra.Address("ops")
	now := time.Now()
	sub := record.Subscription{ID: id.New("sub"), Tenant: "acme", Name: "Orders", URL: "https://shop.example.com/hooks", EventTypes: []string{"*"},
		Payload: "full", Enabled: true, Headers: map[string]string{}, Metadata: map[string]string{}, Routes: []record.Route{},
		AllowedHosts: []string{}, Derive: []record.Derive{}, Secrets: []record.Secret{}, AlertEmails: []string{owner}, CreatedAt: now, UpdatedAt: now}
	v, err := codecs.Subscription.Marshal(&sub)
	if err != nil {
		t.Fatal(err)
	}
	produce(t, cl, &kgo.Record{Topic: cfg.Topics.Subscriptions, Key: []byte(sub.ID), Value: v})
	event := func(typ string, failures int64) record.Event {
		data, _ := json.Marshal(health.EndpointAlert{SubscriptionID: sub.ID, URL: sub.URL, ConsecutiveFailures: failures, FailingSince: now, LastStatus: 502})
		ev := record.Event{ID: id.New("evt"), Tenant: "acme", Type: typ, Subject: sub.ID, Source: "hookline",
			OccurredAt: time.Now(), ReceivedAt: time.Now(), Data: string(data), Changed: []string{}}
		return ev
	}
	publish := func(ev record.Event) {
		v, err := codecs.Event.Marshal(&ev)
		if err != nil {
			t.Fatal(err)
		}
		produce(t, cl, &kgo.Record{Topic: cfg.Topics.Events, Key: []byte(ev.Subject), Value: v})
	}
	scfg := testinfra.StackConfig(t, cfg)
	scfg.Programs = map[string]string{"notify": os.Args[0]}
	// Nothing of the shell's settings leaks in.
	scfg.BaseEnv = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	scfg.SMTPURL, scfg.AlertFrom, scfg.LogLevel = mp.SMTPURL(), "Hookline <alerts@hookline.example>", "info"
	// Static membership: the restarted process gets the partitions back
	// at once instead of after the killed one's session timeout.
	scfg.StaticMembers = true
	scfg.Env = []string{runMainEnv + "=1", "HOOKLINE_ALERT_DEFAULT_EMAILS=acme=" + ops, "HOOKLINE_CONSOLE_URL=https://hooks.example.com/console/"}
	st := testinfra.Stack(t, scfg)
	ctx := context.Background()
	if err := st.Start("notify"); err != nil {
		t.Fatal(err)
	}
	if err := st.WaitReady(ctx, "notify", time.Minute); err != nil {
		t.Fatal(err)
	}
	opsAddr := st.OpsAddr("notify")
	failing := event(health.Failing, 5)
	publish(failing)
	got := mp.WaitTo(t, owner, 1, 30*time.Second)
	mp.WaitTo(t, ops, 1, 10*time.Second)
	msg := mp.Message(t, got[0].ID)
	if msg.Subject != "[Hookline] Webhook endpoint failing: Orders (5 failures in a row)" || msg.From.Address != "alerts@hookline.example" ||
		!strings.Contains(msg.Text, "https://hooks.example.com/console/#/subscriptions/"+sub.ID+"/logs") {
		t.Errorf("arrived %q from %s:\n%s", msg.Subject, msg.From.Address, msg.Text)
	}
	if _, metrics := get(t, "http://"+opsAddr+"/metrics"); !strings.Contains(metrics, `hookline_notify_sent_total{kind="failing"} 2`) {
		t.Errorf("metrics lack the two sent emails:\n%s", grep(metrics, "hookline_notify"))
	}

	// SIGKILL, the same event again, a new event: one more email each.
	st.Kill("notify")
	publish(failing)
	if err := st.Start("notify"); err != nil {
		t.Fatal(err)
	}
	if err := st.WaitReady(ctx, "notify", time.Minute); err != nil {
		t.Fatal(err)
	}
	publish(event(health.Recovered, 5))
	mp.WaitTo(t, owner, 2, 30*time.Second)
	time.Sleep(2 * time.Second) // a resend would come with it
	if n := len(mp.To(t, owner)); n != 2 {
		t.Fatalf("%d emails to the owner after a restart, want 2", n)
	}

	if err := st.Term("notify"); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	if !strings.Contains(st.LogTail("notify", 1<<20), `"message":"stopped"`) {
		t.Errorf("no clean stop in the log")
	}
}

func grep(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
