package stack

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hookline/hookline/pkg/freeport"
)

// Config says which services a stack runs and the settings they share.
// The services read their environment, so a Config is turned into
// environment variables (Settings, Instance); a setting with no field
// here goes into Env as NAME=value.
type Config struct {
	// Bin is the folder of the binaries (Build). Programs overrides it per
	// service, e.g. with a test binary that runs the service's main.
	Bin      string
	Programs map[string]string
	// Services are the services Start runs, in this order; empty: all of
	// Services (but logs without Postgres).
	Services []string

	Brokers string // KAFKA_BROKERS
	Redis   string // REDIS_ADDR
	// Prefix is HOOKLINE_TOPIC_PREFIX. A stack with a prefix is an
	// installation of its own on a shared cluster: its consumer groups
	// and transactional ids are named under the prefix too. Empty: the
	// services' own defaults (devstack).
	Prefix     string
	Partitions int    // HOOKLINE_TOPIC_PARTITIONS; 0: the services' default
	Schedule   string // HOOKLINE_RETRY_SCHEDULE
	// Keys are the API keys by tenant (HOOKLINE_API_KEYS).
	Keys map[string]string
	// SecretKey is HOOKLINE_SECRET_KEY; New makes a random one when empty.
	SecretKey  string
	AllowHosts string // HOOKLINE_ALLOW_HOSTS
	CAFile     string // HOOKLINE_SENDER_CA_FILE: the receivers' CA
	SMTPURL    string // HOOKLINE_SMTP_URL
	AlertFrom  string // HOOKLINE_ALERT_FROM
	LogLevel   string // HOOKLINE_LOG_LEVEL
	// Postgres is the delivery history's database (HOOKLINE_POSTGRES_URL):
	// the logs service writes it and ingest serves the history API.
	Postgres string
	// HTTPAddr is where ingest serves the API; New picks a free port when
	// empty. Notify's console links (HOOKLINE_CONSOLE_URL) point at it.
	HTTPAddr string
	// OpsBasePort, when set, puts each service's ops endpoints on this
	// port plus its place in Services (devstack: 9101 to 9105); else each
	// instance gets a free port.
	OpsBasePort int
	// Env holds more settings, NAME=value, after (so winning over) those
	// made from the fields above, which come after BaseEnv; an instance's
	// own (Instance, Stack.Add) come last.
	Env []string
	// BaseEnv is what the services' environment starts from; nil: this
	// process's environment, so that any setting in it reaches them
	// (devstack, hookstack). A test that wants nothing of its shell to
	// leak in gives only PATH and HOME.
	BaseEnv []string

	// LogDir gets one <instance>.log per instance; without it, every
	// instance writes to Output (nowhere when nil).
	LogDir string
	Output io.Writer
	// StaticMembers gives each service's first instance a group instance
	// id (HOOKLINE_INSTANCE_ID=<prefix><service>), so that a killed instance that
	// restarts gets its partitions back at once. Instances added later
	// stay dynamic, as autoscaled ones would.
	StaticMembers bool
	// Supervise starts an instance that exited by itself again a second
	// later, as Kubernetes would; Restarts counts these. Without it, such
	// an instance stays down and Exited names it.
	Supervise bool
	// ReadyTimeout bounds Start's wait for each service's /readyz
	// (default 90 s); StopTimeout the wait after SIGTERM before SIGKILL
	// (default 20 s).
	ReadyTimeout, StopTimeout time.Duration
}

// ServicesToRun is Services, or when empty every service (but logs
// without Postgres): what the stack starts, for a caller that needs the
// names before it does (to build them, or to name their addresses).
func (c Config) ServicesToRun() []string {
	if len(c.Services) > 0 {
		return c.Services
	}
	names := ServiceNames()
	if c.Postgres == "" {
		names = slices.DeleteFunc(names, func(s string) bool { return s == "logs" })
	}
	return names
}

// withDefaults fills what a stack needs and the caller left out.
func (c Config) withDefaults() (Config, error) {
	c.Services = c.ServicesToRun()
	for _, name := range c.Services {
		if _, _, err := lookup(name); err != nil {
			return c, err
		}
	}
	if c.SecretKey == "" {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		c.SecretKey = base64.StdEncoding.EncodeToString(key)
	}
	if c.HTTPAddr == "" {
		addr, err := freeport.Addr()
		if err != nil {
			return c, err
		}
		c.HTTPAddr = addr
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 90 * time.Second
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = 20 * time.Second
	}
	return c, nil
}

// API is ingest's base URL, http://<HTTPAddr>.
func (c Config) API() string { return "http://" + c.HTTPAddr }

// Settings are the settings every service of the stack gets, NAME=value,
// the fields' first and Config.Env last; each instance adds its own
// (Instance). Fields left empty set nothing: the services' defaults hold.
func (c Config) Settings() []string {
	var env []string
	set := func(name, value string) {
		if value != "" {
			env = append(env, name+"="+value)
		}
	}
	set("KAFKA_BROKERS", c.Brokers)
	set("REDIS_ADDR", c.Redis)
	set("HOOKLINE_TOPIC_PREFIX", c.Prefix)
	if c.Prefix != "" {
		for _, s := range Services {
			set(s.GroupEnv, c.Prefix+s.Name)
		}
	}
	if c.Partitions > 0 {
		set("HOOKLINE_TOPIC_PARTITIONS", strconv.Itoa(c.Partitions))
	}
	set("HOOKLINE_RETRY_SCHEDULE", c.Schedule)
	if len(c.Keys) > 0 {
		keys := make([]string, 0, len(c.Keys))
		for _, tenant := range slices.Sorted(maps.Keys(c.Keys)) {
			keys = append(keys, tenant+"="+c.Keys[tenant])
		}
		set("HOOKLINE_API_KEYS", strings.Join(keys, ","))
	}
	set("HOOKLINE_SECRET_KEY", c.SecretKey)
	set("HOOKLINE_ALLOW_HOSTS", c.AllowHosts)
	set("HOOKLINE_SENDER_CA_FILE", c.CAFile)
	set("HOOKLINE_SMTP_URL", c.SMTPURL)
	set("HOOKLINE_ALERT_FROM", c.AlertFrom)
	set("HOOKLINE_LOG_LEVEL", c.LogLevel)
	// Always set, empty for a stack without the history: one inherited
	// from the caller's environment (make test exports the test server's)
	// would give ingest a history the stack has no logs service writing.
	env = append(env, "HOOKLINE_POSTGRES_URL="+c.Postgres)
	if c.HTTPAddr != "" {
		set("HOOKLINE_HTTP_ADDR", c.HTTPAddr)
		set("HOOKLINE_CONSOLE_URL", c.API()+"/console/")
	}
	return append(env, c.Env...)
}

// Instance is the settings of one instance of service beyond Settings:
// its ops address, and under a prefix its transactional id and, with
// StaticMembers for the service's first instance, its group instance id.
func (c Config) Instance(name, service string, opsAddr string) []string {
	env := []string{"HOOKLINE_OPS_ADDR=" + opsAddr}
	s, _, _ := lookup(service)
	if c.Prefix != "" && s.TransactionEnv != "" {
		env = append(env, s.TransactionEnv+"="+c.Prefix+name)
	}
	if c.StaticMembers && name == service {
		// Under the prefix: two stacks on one cluster never claim the
		// same member.
		env = append(env, "HOOKLINE_INSTANCE_ID="+c.Prefix+name)
	}
	return env
}

// opsAddr is where an instance's ops endpoints go: under OpsBasePort for
// a service's first instance, else a free port.
func (c Config) opsAddr(name, service string) (string, error) {
	if c.OpsBasePort > 0 && name == service {
		_, i, err := lookup(service)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("127.0.0.1:%d", c.OpsBasePort+i), nil
	}
	return freeport.Addr()
}
