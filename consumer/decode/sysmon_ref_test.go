package decode

import (
	"encoding/xml"
	"strconv"
	"time"

	"github.com/sshlateral/sshlateral/processor"
)

// The reference Sysmon decoder: encoding/xml into a struct, then the same
// field mapping written plainly. It is the oracle for
// FuzzSysmonDifferential and the baseline of BenchmarkSysmonEncodingXML.
// The line split (syslog header, <Event> element) and the syslog timestamp
// fallback are shared with the fast decoder; everything inside the element
// is independent.

type refSysmonEvent struct {
	XMLName xml.Name `xml:"Event"`
	System  struct {
		EventID     string `xml:"EventID"`
		TimeCreated struct {
			SystemTime string `xml:"SystemTime,attr"`
		} `xml:"TimeCreated"`
		Computer string `xml:"Computer"`
	} `xml:"System"`
	EventData struct {
		Data []struct {
			Name  string `xml:"Name,attr"`
			Value string `xml:",chardata"`
		} `xml:"Data"`
	} `xml:"EventData"`
}

// refSysmonResult is what the reference made of a line.
type refSysmonResult struct {
	ok        bool // the element parsed
	eventID   uint64
	idOK      bool
	event     processor.Event
	timeOK    bool
	parseErr  error
	elemFound bool
}

// refDecodeSysmon decodes line with encoding/xml. now is the clock for the
// RFC 3164 year.
func refDecodeSysmon(line []byte, now func() time.Time) refSysmonResult {
	var r refSysmonResult
	prefix, elem, ok := splitSysmonLine(trimLineEnd(line))
	if !ok {
		return r
	}
	r.elemFound = true
	var x refSysmonEvent
	if err := xml.Unmarshal(elem, &x); err != nil {
		r.parseErr = err
		return r
	}
	r.ok = true
	id, err := strconv.ParseUint(x.System.EventID, 10, 32)
	if err != nil || !allDigits(x.System.EventID) {
		return r
	}
	r.eventID, r.idOK = id, true
	data := map[string]string{}
	for _, d := range x.EventData.Data {
		data[d.Name] = d.Value // the last one wins, as Unmarshal does for fields
	}
	base := func(p string) string {
		for i := len(p) - 1; i >= 0; i-- {
			if p[i] == '/' {
				return p[i+1:]
			}
		}
		return p
	}
	e := processor.Event{
		Dest:              x.System.Computer,
		User:              data["User"],
		Process:           data["CommandLine"],
		ProcessName:       base(data["Image"]),
		ProcessPath:       data["Image"],
		ProcessID:         data["ProcessId"],
		ParentProcess:     data["ParentCommandLine"],
		ParentProcessName: base(data["ParentImage"]),
		ParentProcessPath: data["ParentImage"],
		ParentProcessID:   data["ParentProcessId"],
		OriginalFileName:  data["OriginalFileName"],
	}
	if t, err := time.Parse("2006-01-02 15:04:05.000", data["UtcTime"]); err == nil {
		e.Time, r.timeOK = t.UTC(), true
	} else if v := data["UtcTime"]; v != "" && v != "-" {
		r.timeOK = false // a corrupt UtcTime is an error, not a reason to fall back
	} else if t, err := time.Parse(time.RFC3339Nano, x.System.TimeCreated.SystemTime); err == nil {
		e.Time, r.timeOK = t.UTC(), true
	} else if t, ok := syslogTime(prefix, now); ok {
		e.Time, r.timeOK = t, true
	}
	if r.timeOK && !processor.ValidEventTime(e.Time) {
		r.timeOK = false // out of the supported range: an error
	}
	r.event = e
	return r
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
