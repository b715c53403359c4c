package kafkaclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// testPKI is a CA and a certificate it signed, written as PEM files.
type testPKI struct {
	caFile, certFile, keyFile string
	leaf                      *x509.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sshlateral test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker.test"}, DNSNames: []string{"broker.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	p := testPKI{caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "client.pem"), keyFile: filepath.Join(dir, "client-key.pem"), leaf: leaf}
	writePEM(t, p.caFile, "CERTIFICATE", caDER)
	writePEM(t, p.certFile, "CERTIFICATE", leafDER)
	writePEM(t, p.keyFile, "PRIVATE KEY", keyDER)
	return p
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSecurityFlagsTLS(t *testing.T) {
	pki := newTestPKI(t)
	cases := []struct {
		name       string
		flags      securityFlags
		wantTLS    bool
		wantCA     bool
		wantCert   bool
		wantSkip   bool
		serverName string
	}{
		{"nothing", securityFlags{}, false, false, false, false, ""},
		{"tls with the system pool", securityFlags{tls: &TLSFlags{enable: true}}, true, false, false, false, ""},
		{"ca implies tls", securityFlags{tls: &TLSFlags{ca: pki.caFile}}, true, true, false, false, ""},
		{"mutual tls", securityFlags{tls: &TLSFlags{enable: true, ca: pki.caFile, cert: pki.certFile, key: pki.keyFile}}, true, true, true, false, ""},
		{"skip verify", securityFlags{tls: &TLSFlags{insecureSkipVerify: true}}, true, false, false, true, ""},
		{"server name", securityFlags{tls: &TLSFlags{enable: true, serverName: "kafka.internal"}}, true, false, false, false, "kafka.internal"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sec, err := tc.flags.build()
			if err != nil {
				t.Fatal(err)
			}
			if (sec.tls != nil) != tc.wantTLS || sec.sasl != nil {
				t.Fatalf("tls %v sasl %v, want tls %v and no sasl", sec.tls != nil, sec.sasl, tc.wantTLS)
			}
			if !tc.wantTLS {
				if n := len(sec.opts()); n != 0 {
					t.Fatalf("%d client options, want none", n)
				}
				return
			}
			if sec.tls.MinVersion != tls.VersionTLS12 || sec.tls.InsecureSkipVerify != tc.wantSkip || sec.tls.ServerName != tc.serverName {
				t.Fatalf("tls config %+v", sec.tls)
			}
			if tc.wantCA {
				// The pool verifies certificates the CA signed.
				if _, err := pki.leaf.Verify(x509.VerifyOptions{Roots: sec.tls.RootCAs, DNSName: "broker.test"}); err != nil {
					t.Fatalf("leaf does not verify against --tls-ca: %v", err)
				}
			} else if sec.tls.RootCAs != nil {
				t.Fatal("RootCAs set without --tls-ca")
			}
			if got := len(sec.tls.Certificates); got != map[bool]int{true: 1, false: 0}[tc.wantCert] {
				t.Fatalf("%d client certificates", got)
			}
			if tc.wantCert {
				if !sec.tls.Certificates[0].Leaf.Equal(pki.leaf) {
					t.Fatal("client certificate is not --tls-cert")
				}
			}
			assertClientOpt(t, sec, kgo.DialTLSConfig, func(v any) bool { return v.(*tls.Config) == sec.tls })
		})
	}
}

// assertClientOpt builds a franz-go client from the options (it does not
// connect until used) and checks the value it holds for opt.
func assertClientOpt(t *testing.T, sec kafkaSecurity, opt any, ok func(any) bool) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers("127.0.0.1:1")}, sec.opts()...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if v := cl.OptValue(opt); !ok(v) {
		t.Fatalf("client option value %v", v)
	}
}

func TestSecurityFlagsSASL(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		flags     securityFlags
		mechanism string
		firstMsg  string // client's first message contains this
	}{
		{"plain over tls", securityFlags{tls: &TLSFlags{enable: true}, saslMechanism: "PLAIN", saslUsername: "svc", saslPassword: "s3cret"}, "PLAIN", "\x00svc\x00s3cret"},
		{"plain without tls when allowed", securityFlags{saslMechanism: "plain", saslUsername: "svc", saslPassword: "s3cret", plaintextCredentialsAccepted: true}, "PLAIN", "\x00svc\x00s3cret"},
		{"plain with password file", securityFlags{tls: &TLSFlags{enable: true}, saslMechanism: "plain", saslUsername: "svc", saslPasswordFile: pwFile}, "PLAIN", "\x00svc\x00s3cret"},
		{"scram-sha-256 without tls", securityFlags{saslMechanism: "scram-sha-256", saslUsername: "svc", saslPassword: "s3cret"}, "SCRAM-SHA-256", "n=svc,"},
		{"scram-sha-512", securityFlags{tls: &TLSFlags{enable: true}, saslMechanism: "scram-sha-512", saslUsername: "svc", saslPassword: "s3cret"}, "SCRAM-SHA-512", "n=svc,"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sec, err := tc.flags.build()
			if err != nil {
				t.Fatal(err)
			}
			if sec.sasl == nil || sec.sasl.Name() != tc.mechanism {
				t.Fatalf("mechanism %v, want %s", sec.sasl, tc.mechanism)
			}
			_, first, err := sec.sasl.Authenticate(context.Background(), "127.0.0.1:1")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(first), tc.firstMsg) {
				t.Fatalf("first message %q does not contain %q", first, tc.firstMsg)
			}
			wantOpts := 1
			if sec.tls != nil {
				wantOpts = 2
			}
			if n := len(sec.opts()); n != wantOpts {
				t.Fatalf("%d client options, want %d", n, wantOpts)
			}
		})
	}
}

func TestSecurityFlagsErrors(t *testing.T) {
	pki := newTestPKI(t)
	notPEM := filepath.Join(t.TempDir(), "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		flags securityFlags
		want  []string
	}{
		{"cert without key", securityFlags{tls: &TLSFlags{cert: pki.certFile}}, []string{"--tls-cert: needs --tls-key"}},
		{"key without cert", securityFlags{tls: &TLSFlags{key: pki.keyFile}}, []string{"--tls-key: needs --tls-cert"}},
		{"key does not match", securityFlags{tls: &TLSFlags{cert: pki.caFile, key: pki.keyFile}}, []string{"--tls-cert", "--tls-key"}},
		{"missing ca", securityFlags{tls: &TLSFlags{ca: "/nonexistent/ca.pem"}}, []string{"--tls-ca", "/nonexistent/ca.pem"}},
		{"ca not pem", securityFlags{tls: &TLSFlags{ca: notPEM}}, []string{"--tls-ca", "no PEM certificate"}},
		{"unknown mechanism", securityFlags{saslMechanism: "gssapi", saslUsername: "u", saslPassword: "p"}, []string{"--sasl-mechanism", `"gssapi"`}},
		{"user without mechanism", securityFlags{saslUsername: "u"}, []string{"--sasl-mechanism: required"}},
		{"mechanism without user", securityFlags{tls: &TLSFlags{enable: true}, saslMechanism: "plain", saslPassword: "p"}, []string{"--sasl-username: required"}},
		{"mechanism without password", securityFlags{tls: &TLSFlags{enable: true}, saslMechanism: "scram-sha-256", saslUsername: "u"}, []string{"--sasl-password: required"}},
		{"plain in clear", securityFlags{saslMechanism: "plain", saslUsername: "u", saslPassword: "p"}, []string{"--sasl-mechanism plain", "--sasl-allow-plaintext"}},
		{"password twice", securityFlags{tls: &TLSFlags{enable: true}, saslMechanism: "plain", saslUsername: "u", saslPassword: "p", saslPasswordFile: "/nonexistent"},
			[]string{"not both", "--sasl-password-file: open /nonexistent"}},
		{"every error reported", securityFlags{tls: &TLSFlags{cert: pki.certFile}, saslMechanism: "kerberos"}, []string{"--tls-cert", "--sasl-mechanism"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.flags.build()
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
