package kafkaclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// securityFlags are the Kafka TLS and SASL flags.
type securityFlags struct {
	tls                          bool
	tlsCA, tlsCert, tlsKey       string
	tlsServerName                string
	tlsInsecureSkipVerify        bool
	saslMechanism                string
	saslUsername, saslPassword   string
	saslPasswordFile             string
	plaintextCredentialsAccepted bool
}

func addSecurityFlags(fs *flag.FlagSet) *securityFlags {
	sf := &securityFlags{}
	fs.BoolVar(&sf.tls, "tls", false, "connect to the brokers with TLS (implied by any other --tls-* flag)")
	fs.StringVar(&sf.tlsCA, "tls-ca", "", "PEM file of CA certificates to verify the brokers with (default: the system pool)")
	fs.StringVar(&sf.tlsCert, "tls-cert", "", "PEM client certificate for mutual TLS (needs --tls-key)")
	fs.StringVar(&sf.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&sf.tlsServerName, "tls-server-name", "", "server name to verify instead of each broker's host name")
	fs.BoolVar(&sf.tlsInsecureSkipVerify, "tls-insecure-skip-verify", false, "do not verify the brokers' certificates (testing only)")
	fs.StringVar(&sf.saslMechanism, "sasl-mechanism", "", "SASL mechanism: plain, scram-sha-256 or scram-sha-512 (default none)")
	fs.StringVar(&sf.saslUsername, "sasl-username", "", "SASL user name")
	fs.StringVar(&sf.saslPassword, "sasl-password", "", "SASL password (prefer SSHLATERAL_SASL_PASSWORD or --sasl-password-file)")
	fs.StringVar(&sf.saslPasswordFile, "sasl-password-file", "", "file holding the SASL password (trailing newline ignored)")
	fs.BoolVar(&sf.plaintextCredentialsAccepted, "sasl-allow-plaintext", false, "allow --sasl-mechanism plain without TLS (the password travels in clear)")
	return sf
}

// kafkaSecurity is the TLS and SASL configuration built from the flags.
type kafkaSecurity struct {
	tls  *tls.Config    // nil: no TLS
	sasl sasl.Mechanism // nil: no SASL
}

// build validates the flags and loads the files they name. Every problem is
// reported, each naming its flag.
func (sf *securityFlags) build() (kafkaSecurity, error) {
	var sec kafkaSecurity
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	useTLS := sf.tls || sf.tlsCA != "" || sf.tlsCert != "" || sf.tlsKey != "" || sf.tlsServerName != "" || sf.tlsInsecureSkipVerify
	if useTLS {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: sf.tlsServerName, InsecureSkipVerify: sf.tlsInsecureSkipVerify}
		if sf.tlsCA != "" {
			pem, err := os.ReadFile(sf.tlsCA)
			switch {
			case err != nil:
				bad("--tls-ca: %w", err)
			default:
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					bad("--tls-ca %s: no PEM certificate found", sf.tlsCA)
				}
				cfg.RootCAs = pool
			}
		}
		switch {
		case sf.tlsCert != "" && sf.tlsKey == "":
			bad("--tls-cert: needs --tls-key")
		case sf.tlsKey != "" && sf.tlsCert == "":
			bad("--tls-key: needs --tls-cert")
		case sf.tlsCert != "":
			pair, err := tls.LoadX509KeyPair(sf.tlsCert, sf.tlsKey)
			if err != nil {
				bad("--tls-cert %s / --tls-key %s: %w", sf.tlsCert, sf.tlsKey, err)
			} else {
				cfg.Certificates = []tls.Certificate{pair}
			}
		}
		sec.tls = cfg
	}

	password := sf.saslPassword
	if sf.saslPasswordFile != "" {
		if sf.saslPassword != "" {
			bad("--sasl-password-file: give either --sasl-password or --sasl-password-file, not both")
		}
		b, err := os.ReadFile(sf.saslPasswordFile)
		if err != nil {
			bad("--sasl-password-file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	mechanism := strings.ToLower(strings.TrimSpace(sf.saslMechanism))
	switch mechanism {
	case "", "none":
		if sf.saslUsername != "" || password != "" {
			bad("--sasl-mechanism: required when --sasl-username or a password is set (plain, scram-sha-256, scram-sha-512)")
		}
	case "plain", "scram-sha-256", "scram-sha-512":
		if sf.saslUsername == "" {
			bad("--sasl-username: required with --sasl-mechanism %s", mechanism)
		}
		if password == "" {
			bad("--sasl-password: required with --sasl-mechanism %s (or --sasl-password-file)", mechanism)
		}
		// SCRAM never sends the password; PLAIN sends it as is.
		if mechanism == "plain" && !useTLS && !sf.plaintextCredentialsAccepted {
			bad("--sasl-mechanism plain: without --tls the password travels in clear; add --tls, or --sasl-allow-plaintext to accept that")
		}
		switch mechanism {
		case "plain":
			sec.sasl = plain.Auth{User: sf.saslUsername, Pass: password}.AsMechanism()
		case "scram-sha-256":
			sec.sasl = scram.Auth{User: sf.saslUsername, Pass: password}.AsSha256Mechanism()
		case "scram-sha-512":
			sec.sasl = scram.Auth{User: sf.saslUsername, Pass: password}.AsSha512Mechanism()
		}
	default:
		bad("--sasl-mechanism: want plain, scram-sha-256 or scram-sha-512, got %q", sf.saslMechanism)
	}
	if len(errs) > 0 {
		return kafkaSecurity{}, errors.Join(errs...)
	}
	return sec, nil
}

// opts returns the franz-go options; franz-go sets each broker's host as
// the TLS server name unless --tls-server-name is given.
func (s kafkaSecurity) opts() []kgo.Opt {
	var opts []kgo.Opt
	if s.tls != nil {
		opts = append(opts, kgo.DialTLSConfig(s.tls))
	}
	if s.sasl != nil {
		opts = append(opts, kgo.SASL(s.sasl))
	}
	return opts
}
