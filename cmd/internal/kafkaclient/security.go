package kafkaclient

import (
	"crypto/tls"
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
	tls                          *TLSFlags
	saslMechanism                string
	saslUsername, saslPassword   string
	saslPasswordFile             string
	plaintextCredentialsAccepted bool
}

func addSecurityFlags(fs *flag.FlagSet) *securityFlags {
	sf := &securityFlags{tls: AddTLSFlags(fs, "", "the brokers")}
	fs.BoolVar(&sf.tls.enable, "tls", false, "connect to the brokers with TLS (implied by any other --tls-* flag)")
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

	tlsCfg, err := sf.tls.Build()
	if err != nil {
		errs = append(errs, err)
	}
	sec.tls = tlsCfg

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
		if mechanism == "plain" && !sf.tls.Requested() && !sf.plaintextCredentialsAccepted {
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
