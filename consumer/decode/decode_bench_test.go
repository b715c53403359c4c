package decode

import (
	"bytes"
	"testing"
	"time"

	"github.com/sshlateral/sshlateral/processor"
)

// benchLine returns the first line of path that contains every one of subs.
func benchLine(b *testing.B, path string, subs ...string) []byte {
	b.Helper()
	for _, line := range readLines(b, path) {
		ok := true
		for _, s := range subs {
			ok = ok && bytes.Contains(line, []byte(s))
		}
		if ok {
			return line
		}
	}
	b.Fatalf("%s: no line with %q", path, subs)
	return nil
}

// The benchmark records: a matching synthetic ssh event and a real
// non-ssh EventID 1 (sigma regression), both v1.1 layout behind a syslog
// header.
func sysmonBenchLines(b *testing.B) (match, nomatch []byte) {
	match = benchLine(b, "../../testdata/synthetic/positives.log", "<EventID>1<", "/usr/bin/ssh<", "oBatchMode", "http:")
	nomatch = readLines(b, "../../testdata/real/sigma_regression/gh_auth_token_sysmon_linux.log")[0]
	return match, nomatch
}

func benchDecode(b *testing.B, line []byte, format Format, full bool, want Outcome) {
	d := newTestDecoder(b, format)
	var ev processor.Event
	decode := d.Decode
	if full {
		decode = d.DecodeFull
	}
	if out, err := decode(line, &ev); err != nil || out != want {
		b.Fatalf("got %v %v, want %v", out, err, want)
	}
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, _ = decode(line, &ev)
	}
}

func BenchmarkSysmonFast(b *testing.B) {
	match, nomatch := sysmonBenchLines(b)
	b.Run("match", func(b *testing.B) { benchDecode(b, match, FormatAuto, false, OutcomeEvent) })
	// The matching event without the prefilter's look first: the decode alone.
	b.Run("match_full", func(b *testing.B) { benchDecode(b, match, FormatAuto, true, OutcomeEvent) })
	b.Run("nomatch", func(b *testing.B) { benchDecode(b, nomatch, FormatAuto, false, OutcomeNoMatch) })
	b.Run("full", func(b *testing.B) { benchDecode(b, nomatch, FormatAuto, true, OutcomeEvent) })
	skip := readLines(b, "../../testdata/real/zircolite_sysmon_linux/sysmon_linux_sample.log")[0]
	b.Run("skip", func(b *testing.B) { benchDecode(b, skip, FormatAuto, false, OutcomeSkip) })
}

// BenchmarkSysmonEncodingXML is the reference decoder on the same matching
// event as BenchmarkSysmonFast/match.
func BenchmarkSysmonEncodingXML(b *testing.B) {
	match, _ := sysmonBenchLines(b)
	if r := refDecodeSysmon(match, fixedNow); !r.ok || r.eventID != 1 {
		b.Fatalf("reference: %+v", r)
	}
	b.SetBytes(int64(len(match)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = refDecodeSysmon(match, fixedNow)
	}
}

func BenchmarkCIM(b *testing.B) {
	path := "../../testdata/synthetic/positives_cim.json"
	match := benchLine(b, path, `process_name":"ssh"`, "oBatchMode", "http:")
	nomatch := benchLine(b, path, `process_name":"systemctl"`)
	b.Run("match", func(b *testing.B) { benchDecode(b, match, FormatAuto, false, OutcomeEvent) })
	// The matching event without the prefilter's look first: the decode alone.
	b.Run("match_full", func(b *testing.B) { benchDecode(b, match, FormatAuto, true, OutcomeEvent) })
	b.Run("nomatch", func(b *testing.B) { benchDecode(b, nomatch, FormatAuto, false, OutcomeNoMatch) })
	b.Run("full", func(b *testing.B) { benchDecode(b, nomatch, FormatAuto, true, OutcomeEvent) })
	b.Run("encoding_json", func(b *testing.B) {
		b.SetBytes(int64(len(match)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := refDecodeCIM(match); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// shapeLines returns, of the lines of path holding sub, the first that
// the prefilter rejects and the first that matches the detection.
func shapeLines(b *testing.B, path, sub string, format Format) (nomatch, match []byte) {
	b.Helper()
	d := newTestDecoder(b, format)
	for _, line := range readLines(b, path) {
		if !bytes.Contains(line, []byte(sub)) {
			continue
		}
		var ev processor.Event
		out, err := d.Decode(line, &ev)
		switch {
		case err != nil:
			b.Fatal(err)
		case out == OutcomeNoMatch && nomatch == nil:
			nomatch = line
		case out == OutcomeEvent && match == nil && processor.Match(processor.MatchESCU, &ev):
			match = line
		}
	}
	if nomatch == nil || match == nil {
		b.Fatalf("%s: no lines with %q", path, sub)
	}
	return nomatch, match
}

// BenchmarkFormats measures, for each JSON format's synthetic file, the
// decode and reject of a non-ssh process start (the common case) and the
// decode of a match, in auto mode (the default) and with the format named.
func BenchmarkFormats(b *testing.B) {
	for _, sh := range []struct {
		name, file, sub string
		format          Format
	}{
		{"cim", "positives_cim.json", "", FormatCIM},
		{"envelope_splunk_export", "positives_envelope.jsonl", `"_raw"`, FormatEnvelope},
		{"envelope_rsyslog", "positives_envelope.jsonl", `"programname"`, FormatEnvelope},
		{"envelope_vector", "positives_envelope.jsonl", `"source_type"`, FormatEnvelope},
		{"hec_string", "positives_hec.jsonl", `"event":"`, FormatHEC},
		{"hec_object", "positives_hec.jsonl", `"event":{`, FormatHEC},
		{"ecs_nested", "positives_ecs.jsonl", `"process":{`, FormatECS},
		{"ecs_flat", "positives_ecs.jsonl", `"process.name"`, FormatECS},
		{"ocsf", "positives_ocsf.jsonl", "", FormatOCSF},
	} {
		nomatch, match := shapeLines(b, "../../testdata/synthetic/"+sh.file, sh.sub, sh.format)
		for _, format := range []Format{FormatAuto, sh.format} {
			b.Run(sh.name+"/"+format.String()+"/nomatch", func(b *testing.B) { benchDecode(b, nomatch, format, false, OutcomeNoMatch) })
			b.Run(sh.name+"/"+format.String()+"/match", func(b *testing.B) { benchDecode(b, match, format, false, OutcomeEvent) })
		}
	}
}

// BenchmarkAuditd feeds the synthetic auditd log (six records per process
// start, most non-ssh) through the assembler with the prefilter, draining
// what is left at the end of each pass; lines/s is per core.
func BenchmarkAuditd(b *testing.B) {
	lines := readLines(b, "../../testdata/synthetic/positives_auditd.log")
	d := newTestDecoder(b, FormatAuditd)
	var ev processor.Event
	var size int64
	for _, l := range lines {
		size += int64(len(l))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, l := range lines {
			if _, err := d.Decode(l, &ev); err != nil {
				b.Fatal(err)
			}
		}
		d.Expire(time.Time{})
		for {
			if _, ok, _ := d.Ready(&ev); !ok {
				break
			}
		}
	}
	b.ReportMetric(float64(b.N*len(lines))/b.Elapsed().Seconds(), "lines/s")
}
