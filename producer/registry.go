package producer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/sshlateral/sshlateral/schemas"
)

// SubjectStrategy names the registry subject a schema is registered under.
type SubjectStrategy uint8

const (
	// SubjectTopicName is Confluent's TopicNameStrategy: "<topic>-value". It
	// is the serializers' default, so registry-aware readers find the schema
	// without configuration.
	SubjectTopicName SubjectStrategy = iota
	// SubjectRecordName is Confluent's RecordNameStrategy: the record's full
	// name, io.sshlateral.v1.RiskRecord, shared by every topic carrying it.
	SubjectRecordName
)

// String returns the flag spelling: "topic" or "record".
func (s SubjectStrategy) String() string {
	switch s {
	case SubjectTopicName:
		return "topic"
	case SubjectRecordName:
		return "record"
	}
	return fmt.Sprintf("SubjectStrategy(%d)", uint8(s))
}

// ParseSubjectStrategy parses the subject strategy flag: "topic" or "record".
func ParseSubjectStrategy(s string) (SubjectStrategy, error) {
	switch s {
	case "topic":
		return SubjectTopicName, nil
	case "record":
		return SubjectRecordName, nil
	}
	return 0, fmt.Errorf("unknown subject strategy %q (want topic or record)", s)
}

// Subject returns the subject for a record named recordFullName on topic.
func (s SubjectStrategy) Subject(topic, recordFullName string) string {
	if s == SubjectRecordName {
		return recordFullName
	}
	return topic + "-value"
}

// RegistryConfig configures the schema-registry client.
type RegistryConfig struct {
	// URL is the base of the Confluent-compatible REST API, such as
	// https://registry:8081 or, for Apicurio Registry,
	// http://apicurio:8080/apis/ccompat/v7. Required; http or https.
	URL string
	// Username and Password enable HTTP basic auth. Both or neither; default
	// neither.
	Username, Password string
	// TLS is used for an https URL. Default nil: the system roots, TLS 1.2 or
	// later. Setting it with an http URL is an error, so a forgotten scheme
	// cannot silently drop the encryption.
	TLS *tls.Config
	// Strategy picks the subject. Default SubjectTopicName.
	Strategy SubjectStrategy
	// RequestTimeout bounds each HTTP request. A request that times out is
	// retried; some registries leave a request on a reused connection
	// unanswered. Default 10s.
	RequestTimeout time.Duration
	// RetryBackoff is the wait after the first failed attempt; it doubles up
	// to MaxRetryBackoff. Defaults 250ms and 10s.
	RetryBackoff, MaxRetryBackoff time.Duration
	// Logger receives one warning per retry. Default nil: no logging.
	Logger *slog.Logger
}

// DefaultRegistryConfig returns the defaults; the caller must set URL.
func DefaultRegistryConfig() RegistryConfig {
	return RegistryConfig{
		Strategy:        SubjectTopicName,
		RequestTimeout:  10 * time.Second,
		RetryBackoff:    250 * time.Millisecond,
		MaxRetryBackoff: 10 * time.Second,
	}
}

// Validate reports every invalid field. It reads no files and opens no
// connections.
func (c RegistryConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("registry config: "+format, args...)) }
	if c.URL == "" {
		bad("URL is required")
	} else if u, err := url.Parse(c.URL); err != nil {
		bad("URL: %w", err)
	} else {
		switch {
		case u.Scheme != "http" && u.Scheme != "https":
			bad("URL %q: scheme must be http or https", c.URL)
		case u.Host == "":
			bad("URL %q: no host", c.URL)
		case u.User != nil:
			bad("URL %q: put credentials in Username and Password, not the URL", u.Redacted())
		case c.TLS != nil && u.Scheme != "https":
			bad("TLS is set but URL %q is not https", c.URL)
		}
	}
	if (c.Username == "") != (c.Password == "") {
		bad("Username and Password: set both or neither")
	}
	if c.Strategy != SubjectTopicName && c.Strategy != SubjectRecordName {
		bad("Strategy: unknown subject strategy %d", uint8(c.Strategy))
	}
	if c.RequestTimeout <= 0 {
		bad("RequestTimeout must be > 0, got %s", c.RequestTimeout)
	}
	if c.RetryBackoff <= 0 || c.MaxRetryBackoff < c.RetryBackoff {
		bad("want 0 < RetryBackoff <= MaxRetryBackoff, got %s and %s", c.RetryBackoff, c.MaxRetryBackoff)
	}
	return errors.Join(errs...)
}

// Registry is a schema-registry client that retries transient failures. It
// is safe for concurrent use.
type Registry struct {
	cfg RegistryConfig
	cl  *sr.Client
}

// NewRegistry validates cfg and returns a client; it does not contact the
// registry.
func NewRegistry(cfg RegistryConfig) (*Registry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	tlsCfg := cfg.TLS
	if tlsCfg == nil {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	transport.TLSClientConfig = tlsCfg.Clone()
	opts := []sr.ClientOpt{
		sr.URLs(cfg.URL),
		sr.HTTPClient(&http.Client{Timeout: cfg.RequestTimeout, Transport: transport}),
		sr.UserAgent("sshlateral"),
	}
	if cfg.Username != "" {
		opts = append(opts, sr.BasicAuth(cfg.Username, cfg.Password))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("schema registry %s: %w", cfg.URL, err)
	}
	return &Registry{cfg: cfg, cl: cl}, nil
}

// Registration is where a schema was registered.
type Registration struct {
	Subject string
	ID      int32
	Version int
}

// IncompatibleError is returned when the registry refuses a schema under its
// compatibility rule (HTTP 409). Message is the registry's own explanation.
type IncompatibleError struct {
	Subject string
	Message string
}

func (e *IncompatibleError) Error() string {
	return fmt.Sprintf("schema registry refused the schema for subject %q as incompatible: %s", e.Subject, e.Message)
}

// RegisterRiskRecord registers schemas.RiskRecordSchema for topic under the
// configured subject strategy; see RegisterSchema.
func (r *Registry) RegisterRiskRecord(ctx context.Context, topic string) (Registration, error) {
	return r.RegisterSchema(ctx, topic, schemas.RiskRecordFullName, schemas.RiskRecordSchema)
}

// RegisterSchema registers the Avro schema of the record recordFullName
// under the subject for topic and returns the id the registry assigned;
// registering a schema the subject already holds returns its existing id.
// Unreachable registries, timeouts and 5xx answers are retried with back-off
// until ctx ends, so the caller reports itself not ready meanwhile. A
// refusal as incompatible is an *IncompatibleError; it and other 4xx answers
// are not retried.
func (r *Registry) RegisterSchema(ctx context.Context, topic, recordFullName, schema string) (Registration, error) {
	subject := r.cfg.Strategy.Subject(topic, recordFullName)
	reg := Registration{Subject: subject}
	s := sr.Schema{Schema: schema, Type: sr.TypeAvro}
	err := r.retry(ctx, "register schema for subject "+subject, func(ctx context.Context) error {
		id, err := r.cl.RegisterSchema(ctx, subject, s, -1, -1)
		if err != nil {
			return err
		}
		// Apicurio and older registries answer the POST with the id only;
		// the lookup adds the version.
		ss, err := r.cl.LookupSchema(ctx, subject, s)
		if err != nil {
			return err
		}
		if ss.ID != id {
			return fmt.Errorf("registered id %d but lookup answers id %d", id, ss.ID)
		}
		reg.ID, reg.Version = int32(id), ss.Version
		return nil
	})
	var re *sr.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusConflict {
		return Registration{}, &IncompatibleError{Subject: subject, Message: responseMessage(re)}
	}
	if err != nil {
		return Registration{}, err
	}
	return reg, nil
}

// schemaByID fetches the schema text registered under id.
func (r *Registry) schemaByID(ctx context.Context, id int32) (string, error) {
	var text string
	err := r.retry(ctx, fmt.Sprintf("fetch schema id %d", id), func(ctx context.Context) error {
		s, err := r.cl.SchemaByID(ctx, int(id))
		if err != nil {
			return err
		}
		if s.Type != sr.TypeAvro {
			return permanent(fmt.Errorf("schema id %d is %s, not Avro", id, s.Type))
		}
		text = s.Schema
		return nil
	})
	return text, err
}

// permanentError marks an error retry must not retry.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return permanentError{err} }

// retry runs attempt until it succeeds, fails permanently or ctx ends,
// doubling the wait between attempts.
func (r *Registry) retry(ctx context.Context, what string, attempt func(context.Context) error) error {
	wait := r.cfg.RetryBackoff
	for n := 1; ; n++ {
		err := attempt(ctx)
		if err == nil {
			return nil
		}
		if !transient(err) || ctx.Err() != nil {
			return fmt.Errorf("schema registry %s: %s: %w", r.cfg.URL, what, err)
		}
		if r.cfg.Logger != nil {
			r.cfg.Logger.WarnContext(ctx, "schema registry not answering, retrying",
				"url", r.cfg.URL, "action", what, "attempt", n, "retry_in", wait, "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("schema registry %s: %s: gave up after %d attempts: %w", r.cfg.URL, what, n, errors.Join(err, context.Cause(ctx)))
		case <-time.After(wait):
		}
		wait = min(2*wait, r.cfg.MaxRetryBackoff)
	}
}

// transient reports whether err may go away by itself: no answer at all,
// a timeout, or a 5xx, 408 or 429 answer.
func transient(err error) bool {
	var pe permanentError
	if errors.As(err, &pe) {
		return false
	}
	var re *sr.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode >= 500 || re.StatusCode == http.StatusRequestTimeout || re.StatusCode == http.StatusTooManyRequests
	}
	// No answer: refused, reset, timed out. An answer that did not parse is
	// not transient: a wrong URL would otherwise be retried for ever.
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne)
}

// responseMessage returns the registry's message, or its raw body when the
// body was not the usual JSON error.
func responseMessage(re *sr.ResponseError) string {
	if re.Message != "" {
		return re.Message
	}
	return string(re.Raw)
}
