package processor

import (
	"testing"
	"time"
)

// Every field has a distinct name that maps back to it, and Ptr reaches a
// distinct Event field, in declaration order.
func TestFieldTable(t *testing.T) {
	var e Event
	seen := map[*string]Field{}
	for f := Field(0); f < NumFields; f++ {
		g, ok := FieldByName(f.String())
		if !ok || g != f {
			t.Fatalf("FieldByName(%q) = %v, %v", f.String(), g, ok)
		}
		p := e.Ptr(f)
		if prev, dup := seen[p]; dup {
			t.Fatalf("%v and %v share a struct field", prev, f)
		}
		seen[p] = f
		e.Set(f, f.String())
		if e.Get(f) != f.String() {
			t.Fatalf("Get(%v) = %q", f, e.Get(f))
		}
	}
	want := Event{Dest: "dest", User: "user", Process: "process", ProcessName: "process_name", ProcessPath: "process_path",
		ProcessID: "process_id", ParentProcess: "parent_process", ParentProcessName: "parent_process_name",
		ParentProcessPath: "parent_process_path", ParentProcessID: "parent_process_id", OriginalFileName: "original_file_name"}
	if e != want {
		t.Fatalf("got %+v", e)
	}
	if _, ok := FieldByName("Dest"); ok {
		t.Fatal("names are case-sensitive")
	}
	if NumFields.String() != "field(11)" {
		t.Fatal(NumFields.String())
	}
}

func TestValidEventTime(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    time.Time
		want bool
	}{
		{"epoch", time.Unix(0, 0), true},
		{"before epoch", time.Unix(0, -1), false},
		{"year 1900", time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"now", time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), true},
		{"max", MaxEventTime, true},
		{"after max", MaxEventTime.Add(1), false},
		{"year 9999", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidEventTime(tc.t); got != tc.want {
				t.Fatalf("ValidEventTime(%v) = %v", tc.t, got)
			}
		})
	}
}
