package kafkaclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
)

// TLSFlags are the --<prefix>tls-* flags of one TLS client: the Kafka
// brokers (no prefix) or the schema registry ("schema-registry-").
type TLSFlags struct {
	prefix             string
	enable             bool
	ca, cert, key      string
	serverName         string
	insecureSkipVerify bool
}

// AddTLSFlags registers --<prefix>tls-ca, -cert, -key, -server-name and
// -insecure-skip-verify; peer names the servers in the help texts.
func AddTLSFlags(fs *flag.FlagSet, prefix, peer string) *TLSFlags {
	f := &TLSFlags{prefix: prefix}
	fs.StringVar(&f.ca, prefix+"tls-ca", "", "PEM file of CA certificates to verify "+peer+" with (default: the system pool)")
	fs.StringVar(&f.cert, prefix+"tls-cert", "", "PEM client certificate for mutual TLS with "+peer+" (needs --"+prefix+"tls-key)")
	fs.StringVar(&f.key, prefix+"tls-key", "", "PEM private key of --"+prefix+"tls-cert")
	fs.StringVar(&f.serverName, prefix+"tls-server-name", "", "server name to verify instead of the host name of "+peer)
	fs.BoolVar(&f.insecureSkipVerify, prefix+"tls-insecure-skip-verify", false, "do not verify the certificates of "+peer+" (testing only)")
	return f
}

// Enable turns TLS on even without other TLS flags (e.g. an https URL).
func (f *TLSFlags) Enable() { f.enable = true }

// Requested reports whether any flag (or Enable) asks for TLS.
func (f *TLSFlags) Requested() bool {
	return f != nil && (f.enable || f.ca != "" || f.cert != "" || f.key != "" || f.serverName != "" || f.insecureSkipVerify)
}

// Build loads the files the flags name and returns the TLS config, or nil
// when no TLS flag is set. Every problem is reported, each naming its flag.
func (f *TLSFlags) Build() (*tls.Config, error) {
	if !f.Requested() {
		return nil, nil
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.serverName, InsecureSkipVerify: f.insecureSkipVerify}
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		switch {
		case err != nil:
			bad("--%stls-ca: %w", f.prefix, err)
		default:
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				bad("--%stls-ca %s: no PEM certificate found", f.prefix, f.ca)
			}
			cfg.RootCAs = pool
		}
	}
	switch {
	case f.cert != "" && f.key == "":
		bad("--%stls-cert: needs --%stls-key", f.prefix, f.prefix)
	case f.key != "" && f.cert == "":
		bad("--%stls-key: needs --%stls-cert", f.prefix, f.prefix)
	case f.cert != "":
		pair, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			bad("--%stls-cert %s / --%stls-key %s: %w", f.prefix, f.cert, f.prefix, f.key, err)
		} else {
			cfg.Certificates = []tls.Certificate{pair}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return cfg, nil
}
