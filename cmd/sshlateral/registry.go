package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sshlateral/sshlateral/cmd/internal/kafkaclient"
	"github.com/sshlateral/sshlateral/consumer"
	"github.com/sshlateral/sshlateral/producer"
)

// registryFlags are the --schema-registry* flags of run and alerts.
type registryFlags struct {
	url                string
	strategy           string
	username, password string
	timeout            time.Duration
	tls                *kafkaclient.TLSFlags
}

func addRegistryFlags(fs *flag.FlagSet) *registryFlags {
	d := producer.DefaultRegistryConfig()
	rf := &registryFlags{}
	fs.StringVar(&rf.url, "schema-registry", "", "Confluent-compatible schema registry `URL` (Apicurio: …/apis/ccompat/v7); run registers the risk-record schema and writes the id it gets; alerts decodes by the id in each record (default: none, see --schema-id)")
	fs.StringVar(&rf.strategy, "schema-registry-subject-strategy", d.Strategy.String(), "subject name strategy: topic (<output-topic>-value) or record (io.sshlateral.v1.RiskRecord)")
	fs.StringVar(&rf.username, "schema-registry-username", "", "schema registry basic-auth user")
	fs.StringVar(&rf.password, "schema-registry-password", "", "schema registry basic-auth password (prefer SSHLATERAL_SCHEMA_REGISTRY_PASSWORD)")
	fs.DurationVar(&rf.timeout, "schema-registry-timeout", d.RequestTimeout, "bound on each schema registry request (failed requests are retried with back-off)")
	rf.tls = kafkaclient.AddTLSFlags(fs, "schema-registry-", "the schema registry")
	return rf
}

// config returns the registry config, or ok=false without --schema-registry.
func (rf *registryFlags) config(logger *slog.Logger) (cfg producer.RegistryConfig, ok bool, err error) {
	if rf.url == "" {
		return cfg, false, nil
	}
	cfg = producer.DefaultRegistryConfig()
	cfg.URL, cfg.Username, cfg.Password, cfg.RequestTimeout, cfg.Logger = rf.url, rf.username, rf.password, rf.timeout, logger
	var errs []error
	if cfg.Strategy, err = producer.ParseSubjectStrategy(rf.strategy); err != nil {
		errs = append(errs, fmt.Errorf("--schema-registry-subject-strategy: %w", err))
	}
	if strings.HasPrefix(rf.url, "https://") {
		rf.tls.Enable()
	}
	if cfg.TLS, err = rf.tls.Build(); err != nil {
		errs = append(errs, err)
	}
	if err := cfg.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--schema-registry: %w", err))
	}
	return cfg, true, errors.Join(errs...)
}

// registerSchema registers the risk-record schema for topic and returns the
// id the registry assigned. It retries an unreachable registry until ctx
// ends, telling readiness why it waits; an incompatible schema is final.
func registerSchema(ctx context.Context, cfg producer.RegistryConfig, topic string, src *pendingPipeline, logger *slog.Logger) (int32, error) {
	reg, err := producer.NewRegistry(cfg)
	if err != nil {
		return 0, err
	}
	src.setReason("registering the risk-record schema with " + cfg.URL)
	r, err := reg.RegisterRiskRecord(ctx, topic)
	var incompatible *producer.IncompatibleError
	switch {
	case errors.As(err, &incompatible):
		return 0, fmt.Errorf("schema registry %s refused the risk-record schema for subject %s as incompatible: %s",
			cfg.URL, incompatible.Subject, incompatible.Message)
	case err != nil:
		return 0, fmt.Errorf("register the risk-record schema with %s: %w", cfg.URL, err)
	}
	logger.Info("risk-record schema registered", "registry", cfg.URL, "subject", r.Subject, "schema_id", r.ID, "version", r.Version)
	return r.ID, nil
}

// pendingPipeline is what metrics and /readyz read: a reason while the
// pipeline does not exist yet (the schema is being registered), then the
// pipeline itself.
type pendingPipeline struct {
	mu     sync.Mutex
	p      *consumer.Pipeline
	reason string
}

func (s *pendingPipeline) setReason(why string) {
	s.mu.Lock()
	s.reason = why
	s.mu.Unlock()
}

func (s *pendingPipeline) set(p *consumer.Pipeline) {
	s.mu.Lock()
	s.p = p
	s.mu.Unlock()
}

func (s *pendingPipeline) get() (*consumer.Pipeline, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p, s.reason
}

func (s *pendingPipeline) Stats() consumer.Stats {
	if p, _ := s.get(); p != nil {
		return p.Stats()
	}
	return consumer.Stats{}
}

func (s *pendingPipeline) Partitions() []consumer.PartitionStat {
	if p, _ := s.get(); p != nil {
		return p.Partitions()
	}
	return nil
}

func (s *pendingPipeline) NotReady() string {
	p, why := s.get()
	if p != nil {
		return p.NotReady()
	}
	if why == "" {
		return "starting"
	}
	return why
}
