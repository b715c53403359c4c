// Package httpserver serves the operations endpoint: /metrics, /healthz,
// /readyz and, on request, /debug/pprof/.
package httpserver

import (
	"context"
	"encoding/json"
	"errors"
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
	"github.com/sshlateral/sshlateral/cmd/sshlateral/internal/metrics"
	"github.com/sshlateral/sshlateral/consumer"
)

// Readiness decides /readyz: ready when the instance owns at least one input
// partition and every owned partition's lag is within maxLag records.
type Readiness struct {
	Src      metrics.PipelineStats
	MaxLag   int64
	Draining atomic.Bool // set at shutdown: stop receiving traffic first
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
	State     string `json:"state"` // restoring or running
	Lag       int64  `json:"lag"`
}

func (r *Readiness) Check() readyReport {
	rep := readyReport{MaxLag: r.MaxLag, Partitions: []partitionReport{}}
	parts := r.Src.Partitions()
	lagging, restoring := 0, 0
	for _, ps := range parts {
		lag := metrics.PartitionLag(ps)
		rep.Partitions = append(rep.Partitions, partitionReport{Topic: ps.Topic, Partition: ps.Partition, State: ps.State.String(), Lag: lag})
		if ps.State == consumer.StateRestoring {
			restoring++
		}
		if lag > r.MaxLag {
			lagging++
		}
	}
	switch why := r.Src.NotReady(); {
	case r.Draining.Load():
		rep.Reason = "shutting down"
	case why != "":
		rep.Reason = why
	case restoring > 0:
		rep.Reason = fmt.Sprintf("%d of %d partitions restoring state from the changelog", restoring, len(parts))
	case len(parts) == 0:
		rep.Reason = "no input partition assigned"
	case lagging > 0:
		rep.Reason = fmt.Sprintf("%d of %d partitions lag more than %d records (--ready-max-lag)", lagging, len(parts), r.MaxLag)
	default:
		rep.Ready = true
	}
	return rep
}

// Options configure the operations endpoint.
type Options struct {
	Pprof bool
}

// NewHandler serves /metrics, /healthz, /readyz and, with pprof,
// /debug/pprof/.
func NewHandler(reg *prometheus.Registry, ready *Readiness, opts Options) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		rep := ready.Check()
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
	if opts.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// Server is the running operations endpoint.
type Server struct {
	srv  *http.Server
	addr net.Addr
	done chan error
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.addr }

// Start listens at once, so that a bad or busy --http-addr fails
// the start, then serves in the background.
func Start(addr string, h http.Handler, logger *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--http-addr %q: %w", addr, err)
	}
	s := &Server{
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

// Shutdown stops accepting connections and waits for requests in flight
// until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	return errors.Join(err, <-s.done)
}
