package main

import (
	"github.com/sshlateral/sshlateral/consumer/decode"

	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sshlateral/sshlateral/processor"
)

// maxLine bounds one input record; Sysmon events are a few KiB.
const maxLine = 16 << 20

// eachLine calls fn for every line of the named files ("-" is stdin), with
// the file name and 1-based line number. Line endings are kept off; the
// decoders accept a trailing \r.
func eachLine(stdin io.Reader, files []string, fn func(file string, lineNo int, line []byte) error) error {
	for _, name := range files {
		var r io.Reader = stdin
		if name != "-" {
			f, err := os.Open(name)
			if err != nil {
				return err
			}
			defer f.Close()
			r = f
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), maxLine)
		n := 0
		for sc.Scan() {
			n++
			if err := fn(name, n, sc.Bytes()); err != nil {
				return err
			}
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("read %s after line %d: %w", name, n, err)
		}
	}
	return nil
}

// hostKeyer finds the partition key of an input record: its host, so that
// all of one host's events land in one partition, as the windows need.
type hostKeyer struct {
	dec *decode.Decoder
	ev  processor.Event
}

func newHostKeyer() (*hostKeyer, error) {
	dec, err := decode.NewDecoder(decode.FormatAuto)
	if err != nil {
		return nil, err
	}
	return &hostKeyer{dec: dec}, nil
}

// key returns the host of line, or nil when the line has none (banners,
// undecodable records: they are still produced, and dead-lettered later).
func (h *hostKeyer) key(line []byte) []byte {
	h.ev = processor.Event{}
	outcome, err := h.dec.DecodeFull(line, &h.ev)
	if err != nil || outcome != decode.OutcomeEvent || h.ev.Dest == "" {
		return nil
	}
	return []byte(h.ev.Dest)
}

func isTopicExists(err error) bool { return errors.Is(err, kerr.TopicAlreadyExists) }
