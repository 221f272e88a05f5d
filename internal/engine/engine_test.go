package engine

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func open(tb testing.TB, cfg Config) *Engine {
	tb.Helper()
	cfg.Logger = quiet()
	if cfg.DataDir == "" {
		cfg.DataDir = tb.TempDir()
	}
	e, err := Open(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(e.Close)
	return e
}

func TestSingleNodeIsR1AndPrivate(t *testing.T) {
	e := open(t, Config{DC: "dc1", ClusterSecret: "s3cret", NATSListen: "127.0.0.1:0"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	for _, spec := range Streams {
		info, err := e.streamInfo(ctx, spec.Name)
		if err != nil || info.Config.Replicas != 1 {
			t.Fatalf("%s: %v replicas %d", spec.Name, err, info.Config.Replicas)
		}
	}
	if err := e.Ready(ctx); err != nil {
		t.Fatalf("ready: %v", err)
	}
	url := "nats://" + e.NATSAddr()
	if nc, err := nats.Connect(url, nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("anonymous connection accepted")
	}
	nc, err := nats.Connect(url, nats.UserInfo(User, "s3cret"))
	if err != nil {
		t.Fatalf("node credentials refused: %v", err)
	}
	nc.Close()
}

func TestAppendIsDurableAndDeduplicated(t *testing.T) {
	e := open(t, Config{DC: "dc1", ClusterSecret: "s"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	s1, err := e.Append(ctx, "identity.test", "id-1", []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := e.Append(ctx, "identity.test", "id-1", []byte("a"))
	if err != nil || s2 != s1 {
		t.Fatalf("retry got seq %d (%v), want %d", s2, err, s1)
	}
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	if _, err := e.Append(short, "nowhere.test", "id-2", []byte("a")); err == nil {
		t.Fatal("append to a subject of no stream succeeded")
	}
	big := make([]byte, 1<<20+1)
	if _, err := e.Append(ctx, "identity.test", "id-3", big); err == nil {
		t.Fatal("oversized entry accepted")
	}
}

// TestTLSCluster: three embedded servers with mutual TLS on routes and TLS
// on client ports form one cluster whose streams are R3, one per DC; a
// plain-text or secret-less client is refused.
func TestTLSCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	dir := t.TempDir()
	ca := writeCerts(t, dir)
	names := []string{"dc1", "dc2", "dc3"}
	routes := make([]string, 3)
	for i := range routes {
		routes[i] = freeAddr(t)
	}
	engines := make([]*Engine, 3)
	var wg sync.WaitGroup
	for i, name := range names {
		var peers []string
		for j, r := range routes {
			if j != i {
				peers = append(peers, r)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := Open(Config{DC: name, DataDir: filepath.Join(dir, name), NATSListen: "127.0.0.1:0",
				ClusterListen: routes[i], Peers: peers, ClusterSecret: "s3cret",
				TLSCert: filepath.Join(dir, "node.pem"), TLSKey: filepath.Join(dir, "node-key.pem"), TLSCA: ca, Logger: quiet()})
			if err != nil {
				t.Error(err)
				return
			}
			engines[i] = e
		}()
	}
	wg.Wait()
	for _, e := range engines {
		if e != nil {
			t.Cleanup(e.Close)
		}
	}
	if t.Failed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, e := range engines {
		if err := e.EnsureStreams(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var info *jetstream.StreamInfo
	for {
		var err error
		info, err = engines[0].streamInfo(ctx, "IDENTITY")
		if err == nil && info.Cluster != nil && info.Cluster.Leader != "" && len(info.Cluster.Replicas) == 2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no R3 stream: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := map[string]bool{info.Cluster.Leader: true}
	for _, r := range info.Cluster.Replicas {
		got[r.Name] = true
	}
	if info.Config.Replicas != 3 || len(got) != 3 {
		t.Fatalf("replicas %d on %v", info.Config.Replicas, got)
	}
	url := "nats://" + engines[1].NATSAddr()
	if nc, err := nats.Connect(url, nats.UserInfo(User, "s3cret"), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("plain-text client accepted on a TLS port")
	}
	if nc, err := nats.Connect(url, nats.RootCAs(ca), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("TLS client without the secret accepted")
	}
	nc, err := nats.Connect(url, nats.RootCAs(ca), nats.UserInfo(User, "s3cret"))
	if err != nil {
		t.Fatalf("TLS client with the secret refused: %v", err)
	}
	nc.Close()
}

func freeAddr(tb testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeCerts writes a CA and a node certificate for 127.0.0.1 (for both
// server and client use) and returns the CA file.
func writeCerts(tb testing.TB, dir string) string {
	tb.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "superapp test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "superapp node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	write := func(name, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	write("ca.pem", "CERTIFICATE", caDER)
	write("node.pem", "CERTIFICATE", der)
	write("node-key.pem", "EC PRIVATE KEY", keyDER)
	return filepath.Join(dir, "ca.pem")
}

// TestExternalNATS: a node given --nats-url uses that server, with the
// cluster secret, instead of embedding one.
func TestExternalNATS(t *testing.T) {
	ext := open(t, Config{DC: "nats", ClusterSecret: "s3cret", NATSListen: "127.0.0.1:0"})
	e := open(t, Config{DC: "dc1", NATSURL: "nats://" + ext.NATSAddr(), ClusterSecret: "s3cret", Replicas: 1})
	if e.srv != nil {
		t.Fatal("embedded a server despite NATSURL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	seq, err := e.Append(ctx, "social.test", "x", []byte("{}"))
	if err != nil || seq != 1 {
		t.Fatalf("append via external nats: %d %v", seq, err)
	}
	if err := e.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{DC: "dc2", NATSURL: "nats://" + ext.NATSAddr(), ClusterSecret: "wrong", Logger: quiet()}); err == nil {
		t.Fatal("connected to external nats with a wrong secret")
	}
}

// TestTrimKeepsWhatNoCheckpointHolds: entries leave the log only when they
// are older than the retention and at or below a checkpoint's position.
func TestTrimKeepsWhatNoCheckpointHolds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := open(t, Config{DC: "dc1", ClusterSecret: "s", LogRetention: time.Hour})
	if err := e.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := e.Append(ctx, "chat.test", fmt.Sprint("m", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	first := func() uint64 {
		fs, err := e.FirstSeqs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return fs["CHAT"]
	}
	// Young entries stay, whatever the checkpoint holds.
	if _, err := e.Trim(ctx, map[string]uint64{"CHAT": 10}, time.Hour); err != nil || first() != 1 {
		t.Fatalf("young entries trimmed: first %d, %v", first(), err)
	}
	// Old entries go only as far as the checkpoint holds them.
	time.Sleep(20 * time.Millisecond)
	dropped, err := e.Trim(ctx, map[string]uint64{"CHAT": 4}, time.Millisecond)
	if err != nil || first() != 5 || dropped["CHAT"] != 4 {
		t.Fatalf("trim to the checkpoint: first %d, dropped %v, %v", first(), dropped, err)
	}
	// A stream no checkpoint holds anything of keeps everything.
	if _, err := e.Trim(ctx, map[string]uint64{}, time.Millisecond); err != nil || first() != 5 {
		t.Fatalf("trimmed without a checkpoint: first %d, %v", first(), err)
	}
	// Without a retention the streams refuse purges altogether.
	e2 := open(t, Config{DC: "dc1", ClusterSecret: "s"})
	if err := e2.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e2.Append(ctx, "chat.test", "a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if _, err := e2.Trim(ctx, map[string]uint64{"CHAT": 1}, time.Millisecond); err == nil {
		t.Fatal("a stream kept forever accepted a purge")
	}
}
