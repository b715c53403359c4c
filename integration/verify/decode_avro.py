#!/usr/bin/env python3
"""Independent decoder for sshlateral risk records (no Go code involved).

Reads Avro values from a Kafka topic (confluent-kafka, read_committed) or from
a file of kcat output written with the binary-safe format '%R%s' (each value
preceded by its length as a 4-byte big-endian signed integer), decodes each
value with schemas/risk_record.avsc using fastavro.schemaless_reader (or, with
--lib avro, the avro package's DatumReader), or reads an Avro object container
file (scan --output avro) with fastavro.reader or avro's DataFileReader, using
the schema in its header, and prints one JSON object per
record on stdout: fields in schema order, ["null","string"] unions as null or
the string, timestamp-millis as integer milliseconds, enums as symbols -- the
same rendering as the Go producer.JSON.

A summary line goes to stderr. Exit codes: 0 all values decoded; 1 any value
failed to decode (or a Kafka error, or a key mismatch with --check-key);
2 usage error, or --max records did not arrive within --timeout.

Examples:
  kcat -C -b 127.0.0.1:9092 -t risk -o beginning -e -q \\
       -X isolation.level=read_committed -f '%R%s' > risk.kcat
  decode_avro.py --kcat-file risk.kcat --wire confluent
  decode_avro.py --ocf-file risk.avro --lib avro
  decode_avro.py --bootstrap 127.0.0.1:9092 --topic risk --group verify \\
       --from-beginning --max 2 --timeout 30 --wire plain --lib avro
"""

import argparse
import datetime
import io
import json
import os
import struct
import sys
import time

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
ONE_MS = datetime.timedelta(milliseconds=1)
CONFLUENT_MAGIC = 0
CONFLUENT_HEADER_LEN = 5
DEFAULT_SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "schemas", "risk_record.avsc")


class DecodeError(Exception):
    pass


def make_reader(lib, schema_text):
    """Returns a function: Avro binary bytes -> decoded record (dict)."""
    if lib == "fastavro":
        import fastavro

        parsed = fastavro.parse_schema(json.loads(schema_text))

        def read(payload):
            buf = io.BytesIO(payload)
            record = fastavro.schemaless_reader(buf, parsed)
            return record, len(payload) - buf.tell()

        return read
    if lib == "avro":
        import avro.io
        import avro.schema

        parsed = avro.schema.parse(schema_text)
        datum_reader = avro.io.DatumReader(parsed)

        def read(payload):
            buf = io.BytesIO(payload)
            record = datum_reader.read(avro.io.BinaryDecoder(buf))
            return record, len(payload) - buf.tell()

        return read
    raise ValueError("unknown --lib %r" % lib)


def to_millis(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return (value - EPOCH) // ONE_MS
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise DecodeError("timestamp-millis value %r is neither datetime nor int" % (value,))


def render(schema_type, value):
    """Puts a decoded value in the producer.JSON form, walking the schema."""
    if isinstance(schema_type, dict):
        kind = schema_type.get("type")
        if kind == "record":
            if not isinstance(value, dict):
                raise DecodeError("record %s decoded as %r" % (schema_type.get("name"), type(value)))
            out = {}
            for field in schema_type["fields"]:
                if field["name"] not in value:
                    raise DecodeError("field %s missing from decoded record" % field["name"])
                out[field["name"]] = render(field["type"], value[field["name"]])
            return out
        if schema_type.get("logicalType") == "timestamp-millis":
            return to_millis(value)
        if kind == "array":
            return [render(schema_type["items"], item) for item in value]
        return value  # enum symbols decode as str
    if isinstance(schema_type, list):
        return value  # ["null","string"] decodes as None or str
    return value


def to_json(rendered):
    """Compact JSON, escaped as Go's encoding/json with HTML escaping off."""
    text = json.dumps(rendered, ensure_ascii=False, separators=(",", ":"))
    # U+2028/U+2029 only occur inside strings; Go always escapes them.
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def split_frame(value, wire, expect_schema_id):
    if wire == "plain":
        return value
    if len(value) < CONFLUENT_HEADER_LEN or value[0] != CONFLUENT_MAGIC:
        raise DecodeError("value is not confluent-framed (%d bytes, first byte %s)"
                          % (len(value), "0x%02x" % value[0] if value else "none"))
    schema_id = struct.unpack(">i", value[1:CONFLUENT_HEADER_LEN])[0]
    if expect_schema_id is not None and schema_id != expect_schema_id:
        raise DecodeError("schema id %d, want %d" % (schema_id, expect_schema_id))
    return value[CONFLUENT_HEADER_LEN:]


def ocf_records(path, lib):
    """Yields (position, record) from an Avro object container file."""
    with open(path, "rb") as f:
        if lib == "fastavro":
            import fastavro

            records = fastavro.reader(f)
        else:
            import avro.datafile
            import avro.io

            records = avro.datafile.DataFileReader(f, avro.io.DatumReader())
        for index, record in enumerate(records):
            yield "record %d" % index, record


def kcat_values(path):
    """Yields (position, value) from kcat '%R%s' output; None for a null value."""
    stream = sys.stdin.buffer if path == "-" else open(path, "rb")
    try:
        index = 0
        while True:
            header = stream.read(4)
            if not header:
                return
            if len(header) < 4:
                raise DecodeError("record %d: truncated length prefix (%d bytes)" % (index, len(header)))
            (size,) = struct.unpack(">i", header)
            if size < 0:
                yield "record %d" % index, None
            else:
                value = stream.read(size)
                if len(value) != size:
                    raise DecodeError("record %d: truncated value (%d of %d bytes)" % (index, len(value), size))
                yield "record %d" % index, value
            index += 1
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


class KafkaSource:
    """Yields (position, value, key) from a topic; records its errors."""

    def __init__(self, args):
        from confluent_kafka import Consumer, OFFSET_BEGINNING

        self.args = args
        self.errors = []
        self.received = 0
        conf = {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest" if args.from_beginning else "latest",
            "log_level": 4,  # warnings and worse; librdkafka info lines would bury the summary
        }
        self.consumer = Consumer(conf)

        def on_assign(consumer, partitions):
            if args.from_beginning:
                for p in partitions:
                    p.offset = OFFSET_BEGINNING
            consumer.assign(partitions)

        self.consumer.subscribe([args.topic], on_assign=on_assign)

    def __iter__(self):
        deadline = time.monotonic() + self.args.timeout
        try:
            while self.args.max is None or self.received < self.args.max:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                msg = self.consumer.poll(min(left, 1.0))
                if msg is None:
                    continue
                if msg.error():
                    self.errors.append("%s: %s" % (self.args.topic, msg.error()))
                    continue
                self.received += 1
                position = "%s/%d@%d" % (msg.topic(), msg.partition(), msg.offset())
                yield position, msg.value(), msg.key()
        finally:
            self.consumer.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--kcat-file", metavar="F", help="kcat output written with -f '%%R%%s' ('-' for stdin)")
    src.add_argument("--ocf-file", metavar="F", help="Avro object container file (scan --output avro)")
    src.add_argument("--bootstrap", metavar="HOST:PORT", help="Kafka bootstrap servers")
    ap.add_argument("--topic", help="topic to read (with --bootstrap)")
    ap.add_argument("--group", default="sshlateral-verify", help="consumer group id (default %(default)s)")
    ap.add_argument("--from-beginning", action="store_true", help="start at the earliest offsets")
    ap.add_argument("--max", type=int, metavar="N", help="stop after N records")
    ap.add_argument("--timeout", type=float, default=30.0, metavar="S",
                    help="stop reading the topic after S seconds (default %(default)s)")
    ap.add_argument("--check-key", action="store_true", help="fail a record whose Kafka key is not its alert_id")
    ap.add_argument("--wire", choices=["plain", "confluent"], default="plain",
                    help="value layout; confluent strips the 5-byte frame (default %(default)s)")
    ap.add_argument("--schema-id", type=int, help="with --wire confluent: fail on any other schema id")
    ap.add_argument("--lib", choices=["fastavro", "avro"], default="fastavro", help="decoder (default %(default)s)")
    ap.add_argument("--schema", default=DEFAULT_SCHEMA, help="path of risk_record.avsc (default: the repository's)")
    args = ap.parse_args(argv)
    if args.bootstrap and not args.topic:
        ap.error("--bootstrap needs --topic")
    if args.schema_id is not None and args.wire != "confluent":
        ap.error("--schema-id needs --wire confluent")

    with open(args.schema, encoding="utf-8") as f:
        schema_text = f.read()
    schema = json.loads(schema_text)
    read = make_reader(args.lib, schema_text)

    decoded = failures = 0
    source = None
    if args.kcat_file:
        items = ((pos, value, None) for pos, value in kcat_values(args.kcat_file))
    elif args.ocf_file:
        items = ((pos, record, None) for pos, record in ocf_records(args.ocf_file, args.lib))
    else:
        source = KafkaSource(args)
        items = iter(source)
    out = sys.stdout
    try:
        for position, value, key in items:
            try:
                if args.ocf_file:
                    record = value  # the container's reader decoded it
                else:
                    if value is None:
                        raise DecodeError("null value (tombstone)")
                    payload = split_frame(value, args.wire, args.schema_id)
                    record, trailing = read(payload)
                    if trailing:
                        raise DecodeError("%d trailing bytes after the record" % trailing)
                rendered = render(schema, record)
                if args.check_key and key is not None and key.decode("utf-8", "replace") != rendered["alert_id"]:
                    raise DecodeError("key %r is not alert_id %r" % (key, rendered["alert_id"]))
            except Exception as exc:  # any decoder exception is a verification failure
                failures += 1
                print("decode_avro: %s: %s: %s" % (position, type(exc).__name__, exc), file=sys.stderr)
                continue
            decoded += 1
            out.write(to_json(rendered) + "\n")
    except Exception as exc:  # broken kcat framing, or a container its reader rejects
        failures += 1
        print("decode_avro: %s: %s" % (type(exc).__name__, exc), file=sys.stderr)
    out.flush()

    summary = {"decoded": decoded, "failures": failures, "lib": args.lib, "wire": args.wire,
               "source": args.kcat_file or args.ocf_file or "%s/%s" % (args.bootstrap, args.topic)}
    code = 1 if failures else 0
    if source is not None:
        for err in source.errors:
            print("decode_avro: kafka: %s" % err, file=sys.stderr)
        summary["kafka_errors"] = len(source.errors)
        if source.errors:
            code = 1
        if code == 0 and args.max is not None and source.received < args.max:
            summary["short"] = "received %d of --max %d within --timeout %gs" % (source.received, args.max, args.timeout)
            code = 2
    print(json.dumps(summary, separators=(",", ":")), file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
