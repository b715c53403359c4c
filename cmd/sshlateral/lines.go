package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sshlateral/sshlateral/consumer/decode"
	"github.com/sshlateral/sshlateral/processor"
)

// defaultMaxRecordBytes bounds one input line of scan and replay; Sysmon
// events are a few KiB.
const defaultMaxRecordBytes = 1 << 20 // run's default too (consumer.Config.MaxRecordBytes)

// lineReader reads the lines of input files ("-" is stdin) one file at a
// time. Line endings (\n, \r\n) are cut off. A line longer than max is
// neither kept in memory nor passed on: it goes to tooLong with its size,
// and reading goes on.
type lineReader struct {
	stdin   io.Reader
	max     int
	tooLong func(file string, lineNo int, size int64)
}

// each calls fn for every line of files, with the file name and 1-based line
// number; an error from fn stops it.
func (lr lineReader) each(files []string, fn func(file string, lineNo int, line []byte) error) error {
	for _, name := range files {
		if err := lr.file(name, fn); err != nil {
			return err
		}
	}
	return nil
}

// file reads one file and closes it before the next is opened.
func (lr lineReader) file(name string, fn func(file string, lineNo int, line []byte) error) error {
	r := lr.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	var size int64
	over := false
	lineNo := 0
	for {
		chunk, err := br.ReadSlice('\n')
		size += int64(len(chunk))
		if !over {
			if len(buf)+len(chunk) > lr.max+2 { // +2: the line ending
				over, buf = true, buf[:0]
			} else {
				buf = append(buf, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read %s after line %d: %w", name, lineNo, err)
		}
		if size > 0 {
			lineNo++
			line := bytes.TrimSuffix(bytes.TrimSuffix(buf, []byte("\n")), []byte("\r"))
			switch {
			case over || len(line) > lr.max:
				if lr.tooLong != nil {
					lr.tooLong(name, lineNo, size)
				}
			default:
				if ferr := fn(name, lineNo, line); ferr != nil {
					return ferr
				}
			}
		}
		buf, size, over = buf[:0], 0, false
		if err != nil {
			return nil // io.EOF
		}
	}
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
// An auditd line is one part of an event: all parts of a node share its
// name as key (a log without node= names one host: "auditd"), so that they
// are assembled in one partition.
func (h *hostKeyer) key(line []byte) []byte {
	if rest, ok := bytes.CutPrefix(line, []byte("node=")); ok {
		node, _, _ := bytes.Cut(rest, []byte(" "))
		return node
	}
	if bytes.HasPrefix(line, []byte("type=")) {
		return []byte("auditd")
	}
	h.ev = processor.Event{}
	outcome, err := h.dec.DecodeFull(line, &h.ev)
	if err != nil || outcome != decode.OutcomeEvent || h.ev.Dest == "" {
		return nil
	}
	return []byte(h.ev.Dest)
}

// eventTime is the event time of line, when it is a process event.
func (h *hostKeyer) eventTime(line []byte) (processor.Event, bool) {
	h.ev = processor.Event{}
	outcome, err := h.dec.DecodeFull(line, &h.ev)
	return h.ev, err == nil && outcome == decode.OutcomeEvent && !h.ev.Time.IsZero()
}
