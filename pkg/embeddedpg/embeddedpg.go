// Package embeddedpg runs a private PostgreSQL server for `make run`, so
// that the delivery history works with nothing installed but Go: the
// server binaries come from Maven Central (zonky's
// embedded-postgres-binaries, the builds fergusstrange/embedded-postgres
// uses), are verified and cached, and the server keeps its data in a
// folder of the caller's, on 127.0.0.1 only.
//
// It does what fergusstrange/embedded-postgres does, and one thing that
// library cannot: PostgreSQL refuses to run as root, and that library
// starts initdb and pg_ctl as the calling user, with no way to name
// another. Run as root (as `make run` and CI are on the project's
// machines), this package runs the server as an unprivileged user, as
// deploy/scripts/postgres.sh does (docs/decisions.md).
package embeddedpg

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ulikunitz/xz"

	"github.com/hookline/hookline/pkg/freeport"
)

// Defaults of Config.
const (
	// DefaultVersion is the PostgreSQL build fetched: the newest 17.x
	// that fergusstrange/embedded-postgres also pins.
	DefaultVersion = "17.5.0"
	// DefaultRepository is Maven Central.
	DefaultRepository = "https://repo1.maven.org/maven2"
	// Database is the database created for Hookline.
	Database = "hookline"
)

// Config says where the server lives.
type Config struct {
	// DataDir holds the database cluster (created on first start, kept
	// after). Required.
	DataDir string
	// CacheDir holds the downloaded binaries, shared by every data
	// folder; DataDir/../postgres-bin when empty. As root, it and every
	// folder above it must be readable by other users.
	CacheDir string
	// Port on 127.0.0.1; a free one when 0.
	Port int
	// Version of the binaries (DefaultVersion when empty) and the
	// repository they come from (DefaultRepository when empty).
	Version    string
	Repository string
}

// Server is a running PostgreSQL.
type Server struct {
	// URL connects to the hookline database.
	URL string

	bin, data string
	owner     *syscall.Credential // nil: the calling user
}

// Start fetches the binaries if needed, creates the cluster if needed and
// starts the server, ready for connections when it returns. The server's
// log is the file postgres.log beside DataDir.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("embeddedpg: DataDir is required")
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	if cfg.Repository == "" {
		cfg.Repository = DefaultRepository
	}
	data, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = filepath.Join(filepath.Dir(data), "postgres-bin")
	}
	cache, err := filepath.Abs(cfg.CacheDir)
	if err != nil {
		return nil, err
	}
	s := &Server{data: data}
	if s.owner, err = serverUser(); err != nil {
		return nil, err
	}
	if s.bin, err = fetch(ctx, cache, cfg.Version, cfg.Repository); err != nil {
		return nil, err
	}
	if cfg.Port == 0 {
		if cfg.Port, err = freeport.Port(); err != nil {
			return nil, err
		}
	}
	logPath := filepath.Join(filepath.Dir(data), "postgres.log")
	if err := s.initdb(ctx, logPath); err != nil {
		return nil, err
	}
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=''", cfg.Port)
	if err := s.run(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", data, "-l", logPath, "-o", opts); err != nil {
		return nil, fmt.Errorf("embeddedpg: start: %w (log: %s)", err, logPath)
	}
	s.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", cfg.Port, Database)
	if err := s.createDatabase(ctx, cfg.Port); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// Stop shuts the server down (fast: open transactions are rolled back),
// waiting until it has.
func (s *Server) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.run(ctx, "pg_ctl", "stop", "-w", "-m", "fast", "-D", s.data); err != nil {
		return fmt.Errorf("embeddedpg: stop: %w", err)
	}
	return nil
}

func (s *Server) initdb(ctx context.Context, logPath string) error {
	if err := os.MkdirAll(s.data, 0o700); err != nil {
		return err
	}
	if err := s.reachable(filepath.Dir(s.data)); err != nil {
		return err
	}
	if err := s.reachable(s.bin); err != nil {
		return err
	}
	if err := s.own(s.data, logPath); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(s.data, "PG_VERSION")); err == nil {
		return nil
	}
	// Trust on 127.0.0.1: a developer's own server, reachable from this
	// machine only.
	if err := s.run(ctx, "initdb", "-D", s.data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C"); err != nil {
		return fmt.Errorf("embeddedpg: initdb: %w", err)
	}
	return nil
}

// reachable checks that the server's user can pass through dir and every
// folder above it, so that a folder under /root fails with a message
// saying so, not with initdb's "permission denied".
func (s *Server) reachable(dir string) error {
	if s.owner == nil {
		return nil
	}
	for p := dir; ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if st.Mode().Perm()&0o001 == 0 && !(ok && sys.Uid == s.owner.Uid) {
			return fmt.Errorf("embeddedpg: the server runs as uid %d (PostgreSQL refuses root), which cannot enter %s; use folders other users can reach", s.owner.Uid, p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// own gives the data folder and the log file to the server's user.
func (s *Server) own(data, logPath string) error {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	f.Close()
	if s.owner == nil {
		return nil
	}
	for _, p := range []string{data, logPath} {
		if err := os.Chown(p, int(s.owner.Uid), int(s.owner.Gid)); err != nil {
			return err
		}
	}
	return os.Chmod(data, 0o700)
}

func (s *Server) createDatabase(ctx context.Context, port int) error {
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port))
	if err != nil {
		return fmt.Errorf("embeddedpg: connect: %w", err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", Database).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+Database); err != nil {
			return fmt.Errorf("embeddedpg: create database: %w", err)
		}
	}
	return nil
}

// run runs one of the server's programs as its user, with its output in
// the error when it fails.
func (s *Server) run(ctx context.Context, prog string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "bin", prog), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own session: the server outlives pg_ctl and ignores the
	// terminal's Ctrl-C, so that Stop shuts it down in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: s.owner}
	cmd.Dir = s.bin
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", prog, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// serverUser is nil unless we are root, and then the system user
// "postgres" if there is one, else "nobody": PostgreSQL will not run as
// root.
func serverUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 == nil && err2 == nil {
			// No supplementary groups: none of root's.
			return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
		}
	}
	return nil, errors.New("embeddedpg: running as root, and neither a postgres nor a nobody user exists to run the server")
}

// fetch returns the folder of the binaries of version, downloading and
// unpacking them into cache the first time. The archive is checked
// against the checksum Maven Central publishes beside it; the folder
// appears whole or not at all.
func fetch(ctx context.Context, cache, version, repo string) (string, error) {
	platform, err := platform()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, version+"-"+platform)
	if _, err := os.Stat(filepath.Join(dir, "bin", "pg_ctl")); err == nil {
		return dir, nil
	}
	artifact := "embedded-postgres-binaries-" + platform
	url := fmt.Sprintf("%s/io/zonky/test/postgres/%s/%s/%s-%s.jar", repo, artifact, version, artifact, version)
	jar, err := download(ctx, url)
	if err != nil {
		return "", err
	}
	if err := verify(ctx, url, jar); err != nil {
		return "", err
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(cache, ".unpack-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := unpack(jar, tmp); err != nil {
		return "", fmt.Errorf("embeddedpg: unpack %s: %w", url, err)
	}
	// Readable and runnable by the server's user, whoever it is.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, os.ErrExist) {
		if _, statErr := os.Stat(filepath.Join(dir, "bin", "pg_ctl")); statErr != nil {
			return "", err
		}
	}
	return dir, nil
}

// platform names zonky's build for this machine.
func platform() (string, error) {
	arch := map[string]string{"amd64": "amd64", "arm64": "arm64v8"}[runtime.GOARCH]
	if arch == "" || (runtime.GOOS != "linux" && runtime.GOOS != "darwin") {
		return "", fmt.Errorf("embeddedpg: no PostgreSQL build for %s/%s; set HOOKLINE_POSTGRES_URL to a server", runtime.GOOS, runtime.GOARCH)
	}
	if _, err := os.Stat("/etc/alpine-release"); err == nil {
		arch += "-alpine"
	}
	return runtime.GOOS + "-" + arch, nil
}

// maxArchive bounds a download: the builds are ~15 MB.
const maxArchive = 200 << 20

func download(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("embeddedpg: download %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("embeddedpg: download %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxArchive+1))
	if err != nil {
		return nil, fmt.Errorf("embeddedpg: download %s: %w", url, err)
	}
	if len(body) > maxArchive {
		return nil, fmt.Errorf("embeddedpg: download %s: larger than %d bytes", url, maxArchive)
	}
	return body, nil
}

// verify checks jar against the .sha256 file beside it, or the .sha1
// file every Maven Central artifact has.
func verify(ctx context.Context, url string, jar []byte) error {
	sums := []struct {
		ext string
		sum func([]byte) string
	}{
		{".sha256", func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }},
		{".sha1", func(b []byte) string { s := sha1.Sum(b); return hex.EncodeToString(s[:]) }},
	}
	for _, c := range sums {
		want, err := download(ctx, url+c.ext)
		if err != nil {
			continue
		}
		fields := strings.Fields(string(want))
		if len(fields) == 0 || !strings.EqualFold(fields[0], c.sum(jar)) {
			return fmt.Errorf("embeddedpg: %s does not match its %s checksum", url, c.ext)
		}
		return nil
	}
	return fmt.Errorf("embeddedpg: no checksum published for %s", url)
}

// unpack extracts the .txz inside the jar into dir.
func unpack(jar []byte, dir string) error {
	zr, err := zip.NewReader(bytes.NewReader(jar), int64(len(jar)))
	if err != nil {
		return err
	}
	for _, f := range zr.File {
		if !strings.HasSuffix(f.Name, ".txz") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return err
		}
		defer rc.Close()
		xr, err := xz.NewReader(rc)
		if err != nil {
			return err
		}
		return untar(tar.NewReader(xr), dir)
	}
	return errors.New("no .txz archive in the jar")
}

func untar(tr *tar.Reader, dir string) error {
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		// Refuse names that would land outside dir.
		target := filepath.Join(dir, h.Name)
		if !strings.HasPrefix(target, dir+string(filepath.Separator)) && target != dir {
			return fmt.Errorf("entry %q escapes the folder", h.Name)
		}
		mode := os.FileMode(h.Mode).Perm() | 0o444 // readable by the server's user
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, mode|0o111); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if filepath.IsAbs(h.Linkname) || strings.Contains(h.Linkname, "..") {
				return fmt.Errorf("symlink %q -> %q leaves the folder", h.Name, h.Linkname)
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		}
	}
}
