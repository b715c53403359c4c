package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readiness decides /readyz: ready when the instance owns at least one input
// partition and every owned partition's lag is within maxLag records.
type readiness struct {
	src      pipelineStats
	maxLag   int64
	draining atomic.Bool // set at shutdown: stop receiving traffic first
}

type readyReport struct {
	Ready      bool              `json:"ready"`
	Reason     string            `json:"reason,omitempty"`
	MaxLag     int64             `json:"max_lag"`
	Partitions []partitionReport `json:"partitions"`
}

type partitionReport struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Lag       int64  `json:"lag"`
}

func (r *readiness) check() readyReport {
	rep := readyReport{MaxLag: r.maxLag, Partitions: []partitionReport{}}
	parts := r.src.Partitions()
	lagging := 0
	for _, ps := range parts {
		lag := partitionLag(ps)
		rep.Partitions = append(rep.Partitions, partitionReport{Topic: ps.Topic, Partition: ps.Partition, Lag: lag})
		if lag > r.maxLag {
			lagging++
		}
	}
	switch {
	case r.draining.Load():
		rep.Reason = "shutting down"
	case len(parts) == 0:
		rep.Reason = "no input partition assigned"
	case lagging > 0:
		rep.Reason = fmt.Sprintf("%d of %d partitions lag more than %d records (--ready-max-lag)", lagging, len(parts), r.maxLag)
	default:
		rep.Ready = true
	}
	return rep
}

// httpOptions configure the operations endpoint.
type httpOptions struct {
	pprof bool
}

// newOpsHandler serves /metrics, /healthz, /readyz and, with pprof,
// /debug/pprof/.
func newOpsHandler(reg *prometheus.Registry, ready *readiness, opts httpOptions) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		rep := ready.check()
		body, err := json.Marshal(rep)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
		if !rep.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		w.Write(append(body, '\n'))
	})
	if opts.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// opsServer is the running operations endpoint.
type opsServer struct {
	srv  *http.Server
	addr net.Addr
	done chan error
}

// startOpsServer listens at once, so that a bad or busy --http-addr fails
// the start, then serves in the background.
func startOpsServer(addr string, h http.Handler, logger *slog.Logger) (*opsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--http-addr %q: %w", addr, err)
	}
	s := &opsServer{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			// pprof's profile and trace stream for up to their seconds parameter.
			WriteTimeout: 2 * time.Minute,
			IdleTimeout:  2 * time.Minute,
			ErrorLog:     slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		addr: ln.Addr(),
		done: make(chan error, 1),
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	logger.Info("operations endpoint listening", "addr", s.addr.String())
	return s, nil
}

// shutdown stops accepting connections and waits for requests in flight
// until ctx ends.
func (s *opsServer) shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	return errors.Join(err, <-s.done)
}

// opsFlags are the operations flags of run: allowlist, metrics, health.
type opsFlags struct {
	filter      string
	filterPoll  time.Duration
	httpAddr    string
	readyMaxLag int64
	pprof       bool
}

// defaultHTTPAddr is the operations endpoint's default listen address.
const defaultHTTPAddr = ":9090"

func addOpsFlags(fs *flag.FlagSet) *opsFlags {
	of := &opsFlags{}
	fs.StringVar(&of.filter, "filter", "", "allowlist file (.yaml, .yml or .json): ESCU's filter macro, applied after aggregation; reloaded on change and on SIGHUP")
	fs.DurationVar(&of.filterPoll, "filter-poll-interval", 5*time.Second, "how often --filter is checked for changes (0: only on SIGHUP)")
	fs.StringVar(&of.httpAddr, "http-addr", defaultHTTPAddr, "listen address of /metrics, /healthz and /readyz (empty disables)")
	fs.Int64Var(&of.readyMaxLag, "ready-max-lag", 10000, "/readyz fails while any owned partition lags more than this many records")
	fs.BoolVar(&of.pprof, "pprof", false, "serve /debug/pprof/ on --http-addr")
	return of
}

func (of *opsFlags) validate() error {
	var errs []error
	if of.filterPoll < 0 {
		errs = append(errs, fmt.Errorf("--filter-poll-interval: must not be negative (0 disables polling), got %s", of.filterPoll))
	}
	if of.readyMaxLag < 0 {
		errs = append(errs, fmt.Errorf("--ready-max-lag: must not be negative, got %d", of.readyMaxLag))
	}
	if of.pprof && of.httpAddr == "" {
		errs = append(errs, errors.New("--pprof: needs --http-addr"))
	}
	if of.httpAddr != "" {
		if _, _, err := net.SplitHostPort(of.httpAddr); err != nil {
			errs = append(errs, fmt.Errorf("--http-addr: want host:port or :port, got %q: %w", of.httpAddr, err))
		}
	}
	return errors.Join(errs...)
}
