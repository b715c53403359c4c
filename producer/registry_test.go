package producer

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/sshlateral/sshlateral/processor"
	"github.com/sshlateral/sshlateral/schemas"
)

func TestRegistryConfigValidate(t *testing.T) {
	valid := DefaultRegistryConfig()
	valid.URL = "http://127.0.0.1:8081"
	tests := []struct {
		name    string
		modify  func(*RegistryConfig)
		wantErr string // "" means valid
	}{
		{name: "defaults with a URL", modify: func(*RegistryConfig) {}},
		{name: "https with TLS and basic auth", modify: func(c *RegistryConfig) {
			c.URL, c.TLS, c.Username, c.Password = "https://registry:8081/apis/ccompat/v7", &tls.Config{}, "u", "p"
		}},
		{name: "record strategy", modify: func(c *RegistryConfig) { c.Strategy = SubjectRecordName }},
		{name: "no URL", modify: func(c *RegistryConfig) { c.URL = "" }, wantErr: "URL is required"},
		{name: "no scheme", modify: func(c *RegistryConfig) { c.URL = "registry:8081" }, wantErr: "scheme must be http or https"},
		{name: "no host", modify: func(c *RegistryConfig) { c.URL = "http:///x" }, wantErr: "no host"},
		{name: "credentials in URL", modify: func(c *RegistryConfig) { c.URL = "http://u:secret@r:8081" }, wantErr: "not the URL"},
		{name: "TLS over http", modify: func(c *RegistryConfig) { c.TLS = &tls.Config{} }, wantErr: "not https"},
		{name: "user without password", modify: func(c *RegistryConfig) { c.Username = "u" }, wantErr: "set both or neither"},
		{name: "password without user", modify: func(c *RegistryConfig) { c.Password = "p" }, wantErr: "set both or neither"},
		{name: "unknown strategy", modify: func(c *RegistryConfig) { c.Strategy = 9 }, wantErr: "unknown subject strategy"},
		{name: "zero timeout", modify: func(c *RegistryConfig) { c.RequestTimeout = 0 }, wantErr: "RequestTimeout"},
		{name: "backoff above its maximum", modify: func(c *RegistryConfig) { c.RetryBackoff = time.Minute }, wantErr: "RetryBackoff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.modify(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.wantErr)
			}
			if strings.Contains(tt.name, "credentials") && strings.Contains(err.Error(), "secret") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

func TestParseSubjectStrategy(t *testing.T) {
	tests := []struct {
		in, subject string
		wantErr     bool
	}{
		{in: "topic", subject: "risk-value"},
		{in: "record", subject: schemas.RiskRecordFullName},
		{in: "Topic", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := ParseSubjectStrategy(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseSubjectStrategy(%q) = %v, want an error", tt.in, s)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSubjectStrategy(%q): %v", tt.in, err)
			}
			if got := s.Subject("risk", schemas.RiskRecordFullName); got != tt.subject || s.String() != tt.in {
				t.Fatalf("subject %q, String %q; want %q, %q", got, s.String(), tt.subject, tt.in)
			}
		})
	}
}

// newTestRegistry returns a client for url with fast retries.
func newTestRegistry(t testing.TB, url string, modify ...func(*RegistryConfig)) *Registry {
	t.Helper()
	cfg := DefaultRegistryConfig()
	cfg.URL = url
	cfg.RequestTimeout = 2 * time.Second
	cfg.RetryBackoff, cfg.MaxRetryBackoff = 10*time.Millisecond, 50*time.Millisecond
	for _, m := range modify {
		m(&cfg)
	}
	reg, err := NewRegistry(cfg)
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	return reg
}

func TestRegisterRiskRecord(t *testing.T) {
	tests := []struct {
		name     string
		strategy SubjectStrategy
		subject  string
	}{
		{name: "topic name strategy", strategy: SubjectTopicName, subject: "risk-value"},
		{name: "record name strategy", strategy: SubjectRecordName, subject: schemas.RiskRecordFullName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := srfake.New()
			t.Cleanup(fake.Close)
			// Another subject first, so the id we get is not simply 1.
			if _, _, err := fake.RegisterSchema("other-value", sr.Schema{Schema: `"string"`}); err != nil {
				t.Fatal(err)
			}
			reg := newTestRegistry(t, fake.URL(), func(c *RegistryConfig) { c.Strategy = tt.strategy })
			got, err := reg.RegisterRiskRecord(t.Context(), "risk")
			if err != nil {
				t.Fatalf("RegisterRiskRecord: %v", err)
			}
			stored, ok := fake.GetSchema(tt.subject, 1)
			if !ok {
				t.Fatalf("registry holds no version 1 of subject %q", tt.subject)
			}
			want := Registration{Subject: tt.subject, ID: int32(stored.ID), Version: 1}
			if got != want || got.ID == 1 {
				t.Fatalf("registration %+v, want %+v (id other than the first subject's 1)", got, want)
			}
			again, err := reg.RegisterRiskRecord(t.Context(), "risk")
			if err != nil || again != want {
				t.Fatalf("second registration = %+v, %v; want the same %+v", again, err, want)
			}
		})
	}
}

func TestRegisterIncompatibleIsNotRetried(t *testing.T) {
	fake := srfake.New()
	t.Cleanup(fake.Close)
	var posts atomic.Int32
	const message = "Incompatible artifact: risk-value [AVRO], num of incompatible diffs: {1}"
	fake.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost {
			return false
		}
		posts.Add(1)
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(map[string]any{"error_code": 409, "message": message})
		return true
	})
	reg := newTestRegistry(t, fake.URL())
	got, err := reg.RegisterRiskRecord(t.Context(), "risk")
	var incompatible *IncompatibleError
	if !errors.As(err, &incompatible) {
		t.Fatalf("RegisterRiskRecord = %+v, %v; want an *IncompatibleError", got, err)
	}
	if incompatible.Subject != "risk-value" || incompatible.Message != message || !strings.Contains(err.Error(), message) {
		t.Fatalf("error %q (subject %q, message %q), want subject risk-value and the registry's message", err, incompatible.Subject, incompatible.Message)
	}
	if n := posts.Load(); n != 1 {
		t.Fatalf("%d POSTs, want 1: an incompatible schema stays incompatible", n)
	}
}

func TestRegisterRetriesUntilTheRegistryAnswers(t *testing.T) {
	t.Run("server errors", func(t *testing.T) {
		fake := srfake.New()
		t.Cleanup(fake.Close)
		var failures atomic.Int32
		fake.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
			if failures.Add(1) > 3 {
				return false
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		})
		reg := newTestRegistry(t, fake.URL())
		got, err := reg.RegisterRiskRecord(t.Context(), "risk")
		if err != nil || got.ID <= 0 || got.Version != 1 {
			t.Fatalf("RegisterRiskRecord = %+v, %v; want a registration after the 503s", got, err)
		}
	})

	t.Run("nothing listening yet", func(t *testing.T) {
		// Reserve a port, close it, and only serve on it after a while.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		fake := srfake.NewRegistry()
		go func() {
			time.Sleep(300 * time.Millisecond)
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Errorf("listen again on %s: %v", addr, err)
				return
			}
			srv := &http.Server{Handler: fake.Handler()}
			t.Cleanup(func() { srv.Close() })
			_ = srv.Serve(ln)
		}()
		reg := newTestRegistry(t, "http://"+addr)
		start := time.Now()
		got, err := reg.RegisterRiskRecord(t.Context(), "risk")
		if err != nil || got.ID <= 0 {
			t.Fatalf("RegisterRiskRecord = %+v, %v; want a registration once the registry listens", got, err)
		}
		if waited := time.Since(start); waited < 300*time.Millisecond {
			t.Fatalf("registered after %s, before the registry listened", waited)
		}
	})

	t.Run("gives up with the context, without an id", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		reg := newTestRegistry(t, "http://"+addr)
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		got, err := reg.RegisterRiskRecord(ctx, "risk")
		if err == nil || got != (Registration{}) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("RegisterRiskRecord = %+v, %v; want no registration and the deadline", got, err)
		}
	})

	t.Run("client errors are not retried", func(t *testing.T) {
		fake := srfake.New()
		t.Cleanup(fake.Close)
		var requests atomic.Int32
		fake.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
			requests.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return true
		})
		reg := newTestRegistry(t, fake.URL())
		if _, err := reg.RegisterRiskRecord(t.Context(), "risk"); err == nil || requests.Load() != 1 {
			t.Fatalf("RegisterRiskRecord: err %v after %d requests; want an error after 1", err, requests.Load())
		}
	})
}

func TestRegisterSendsBasicAuth(t *testing.T) {
	fake := srfake.New()
	t.Cleanup(fake.Close)
	var bad atomic.Int32
	fake.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "s3cret" {
			bad.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return true
		}
		return false
	})
	reg := newTestRegistry(t, fake.URL(), func(c *RegistryConfig) { c.Username, c.Password = "alice", "s3cret" })
	if _, err := reg.RegisterRiskRecord(t.Context(), "risk"); err != nil || bad.Load() != 0 {
		t.Fatalf("RegisterRiskRecord: %v (%d requests without the credentials)", err, bad.Load())
	}
}

// riskRecordV2 is RiskRecord with one more optional field, tenant: the
// backward-compatible change a later version may make.
func riskRecordV2(t testing.TB) string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(schemas.RiskRecordSchema), &doc); err != nil {
		t.Fatal(err)
	}
	doc["fields"] = append(doc["fields"].([]any), map[string]any{"name": "tenant", "type": []any{"null", "string"}, "default": nil})
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// registryFixture is a fake registry holding v1 (today's schema) and v2 of
// the risk-record subject, and one v1 and one v2 value of the same record.
type registryFixture struct {
	reg              *Registry
	v1ID, v2ID       int32
	v1Value, v2Value []byte
	native           map[string]any // the v1 record as Decoder returns it
}

func newRegistryFixture(t testing.TB) registryFixture {
	t.Helper()
	fake := srfake.New()
	t.Cleanup(fake.Close)
	reg := newTestRegistry(t, fake.URL())
	v1, err := reg.RegisterRiskRecord(t.Context(), "risk")
	if err != nil {
		t.Fatalf("register v1: %v", err)
	}
	v2Schema := riskRecordV2(t)
	v2, err := reg.RegisterSchema(t.Context(), "risk", schemas.RiskRecordFullName, v2Schema)
	if err != nil {
		t.Fatalf("register v2: %v", err)
	}
	if v2.Version != 2 || v2.ID == v1.ID {
		t.Fatalf("v2 registered as %+v after v1 %+v, want version 2 with a new id", v2, v1)
	}

	recs, err := newTestEncoder(t, WireConfluent, v1.ID).Records([]processor.Result{fullResult()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	native, err := newTestDecoder(t).Decode(recs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := goavro.NewCodec(v2Schema)
	if err != nil {
		t.Fatal(err)
	}
	withTenant := make(map[string]any, len(native)+1)
	for k, v := range native {
		withTenant[k] = v
	}
	withTenant["tenant"] = goavro.Union("string", "acme")
	v2Value, err := codec.BinaryFromNative(AppendConfluentHeader(nil, v2.ID), withTenant)
	if err != nil {
		t.Fatal(err)
	}
	return registryFixture{reg: reg, v1ID: v1.ID, v2ID: v2.ID, v1Value: recs[0].Value, v2Value: v2Value, native: native}
}

func TestRegistryDecoderResolvesSchemaVersions(t *testing.T) {
	fx := newRegistryFixture(t)
	withTenant := func(tenant any) map[string]any {
		m := make(map[string]any, len(fx.native)+1)
		for k, v := range fx.native {
			m[k] = v
		}
		m["tenant"] = tenant
		return m
	}
	tests := []struct {
		name   string
		reader string // "" is today's schema
		value  []byte
		want   map[string]any
	}{
		{name: "v1 value, v1 reader", value: fx.v1Value, want: fx.native},
		{name: "v2 value, v1 reader drops the new field", value: fx.v2Value, want: fx.native},
		{name: "v1 value, v2 reader fills the default", reader: riskRecordV2(t), value: fx.v1Value, want: withTenant(nil)},
		{name: "v2 value, v2 reader", reader: riskRecordV2(t), value: fx.v2Value, want: withTenant(map[string]any{"string": "acme"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec, err := fx.reg.NewDecoder(tt.reader)
			if err != nil {
				t.Fatalf("NewDecoder: %v", err)
			}
			for range 2 { // the second pass uses the cached writer schema
				got, err := dec.Decode(t.Context(), tt.value)
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("Decode =\n%v\nwant\n%v", got, tt.want)
				}
			}
		})
	}
}

func TestRegistryDecoderErrors(t *testing.T) {
	fake := srfake.New()
	t.Cleanup(fake.Close)
	reg := newTestRegistry(t, fake.URL())
	// A writer schema today's reader cannot read: alert_id has no default.
	noAlertID, _, err := fake.RegisterSchema("risk-value", sr.Schema{Schema: `{"type":"record","name":"RiskRecord","namespace":"io.sshlateral.v1","fields":[{"name":"x","type":"string"}]}`})
	if err != nil {
		t.Fatal(err)
	}
	protobuf, _, err := fake.RegisterSchema("proto-value", sr.Schema{Type: sr.TypeProtobuf, Schema: `syntax = "proto3"; message M { string a = 1; }`})
	if err != nil {
		t.Fatal(err)
	}
	v1, err := reg.RegisterRiskRecord(t.Context(), "risk2")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := newTestEncoder(t, WireConfluent, v1.ID).Records([]processor.Result{fullResult()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	good := recs[0].Value
	tests := []struct {
		name    string
		value   []byte
		wantErr string
	}{
		{name: "not framed", value: []byte("plain"), wantErr: "not confluent-framed"},
		{name: "unknown id", value: AppendConfluentHeader(nil, 4242), wantErr: "schema id 4242"},
		{name: "unreadable writer schema", value: AppendConfluentHeader([]byte(nil), int32(noAlertID)), wantErr: "cannot be read as the reader schema"},
		{name: "not Avro", value: AppendConfluentHeader(nil, int32(protobuf)), wantErr: "not Avro"},
		{name: "truncated", value: good[:len(good)-3], wantErr: "remaining bytes"},
		{name: "trailing bytes", value: append(append([]byte(nil), good...), 1), wantErr: "trailing bytes"},
	}
	dec, err := reg.NewDecoder("")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dec.Decode(t.Context(), tt.value)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Decode = %v, %v; want an error containing %q", got, err, tt.wantErr)
			}
		})
	}
}

// FuzzRegistryDecoderResolve feeds arbitrary payloads through the resolving
// path (a v2 writer read as v1): errors are fine, panics and results that do
// not re-encode are not.
func FuzzRegistryDecoderResolve(f *testing.F) {
	fx := newRegistryFixture(f)
	_, payload, _ := SplitConfluent(fx.v2Value)
	f.Add(payload)
	f.Add(payload[:len(payload)/2])
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	dec, err := fx.reg.NewDecoder("")
	if err != nil {
		f.Fatal(err)
	}
	codec := newTestCodec(f)
	f.Fuzz(func(t *testing.T, payload []byte) {
		native, err := dec.Decode(context.Background(), append(AppendConfluentHeader(nil, fx.v2ID), payload...))
		if err != nil {
			return
		}
		if _, err := codec.BinaryFromNative(nil, native); err != nil {
			t.Fatalf("re-encode a decoded record: %v", err)
		}
	})
}

// BenchmarkRegistryDecode compares a value written under the reader schema
// (goavro only) with one written under v2 (hamba resolution, re-encode, then
// goavro).
func BenchmarkRegistryDecode(b *testing.B) {
	fx := newRegistryFixture(b)
	dec, err := fx.reg.NewDecoder("")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		value []byte
	}{{name: "same schema", value: fx.v1Value}, {name: "resolved", value: fx.v2Value}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := dec.Decode(b.Context(), bc.value); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRegistryDecoderRejectsHugeArrayCount sends a v2 value (the resolving
// path) whose first annotations array claims billions of items: it must fail
// without allocating for them.
func TestRegistryDecoderRejectsHugeArrayCount(t *testing.T) {
	fx := newRegistryFixture(t)
	codec, err := goavro.NewCodec(riskRecordV2(t))
	if err != nil {
		t.Fatal(err)
	}
	native := RiskRecords(fullResult())[0]
	native["annotations"] = map[string]any{
		"mitre_attack": []any{}, "tactic": []any{}, "kill_chain_phases": []any{}, "nist": []any{},
		"cis20": []any{}, "analytic_story": []any{}, "type": "",
	}
	native["tenant"] = nil
	value, err := codec.BinaryFromNative(AppendConfluentHeader(nil, fx.v2ID), native)
	if err != nil {
		t.Fatal(err)
	}
	// The value ends with the annotations (six empty arrays and "", 7 bytes)
	// and the null tenant (1 byte).
	prefix := value[:len(value)-8]
	dec, err := fx.reg.NewDecoder("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Decode(t.Context(), value); err != nil {
		t.Fatalf("the well-formed value does not decode: %v", err)
	}
	for _, count := range []int64{1<<31 - 1, -(1<<31 - 1), 1 << 40} {
		hostile := binary.AppendVarint(bytes.Clone(prefix), count)
		hostile = append(hostile, 2, 2, 'x')
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := dec.Decode(t.Context(), hostile)
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("count %d: decoded, want an error", count)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
			t.Errorf("count %d: allocated %d bytes", count, grew)
		}
	}
}
