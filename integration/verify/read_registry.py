#!/usr/bin/env python3
"""Reads risk records through a schema registry with confluent-kafka's own
registry-aware AvroDeserializer (no Go code, no local schema file).

Each value's writer schema is fetched from the registry by the id in its
Confluent header; with --reader-schema the value is resolved into that schema
(Avro schema resolution by fastavro). Prints one JSON object per record on
stdout: position, schema_id and the decoded record, timestamps as integer
milliseconds. A summary line goes to stderr.

Exit codes: 0 --max records read and decoded; 1 a value failed to decode or a
Kafka error; 2 usage error, or fewer than --max records within --timeout.

Example:
  read_registry.py --bootstrap 127.0.0.1:9092 --topic risk \\
      --registry http://127.0.0.1:8080/apis/ccompat/v7 --max 4 --timeout 30
"""

import argparse
import datetime
import json
import struct
import sys

from decode_avro import KafkaSource

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def plain(value):
    if isinstance(value, datetime.datetime):
        return (value - EPOCH) // datetime.timedelta(milliseconds=1)
    raise TypeError("unexpected %s" % type(value).__name__)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--registry", required=True, help="base URL of the Confluent-compatible API")
    ap.add_argument("--reader-schema", help="Avro schema file to resolve every value into")
    ap.add_argument("--group", default="sshlateral-verify-registry")
    ap.add_argument("--max", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--request-timeout", type=float, default=10,
                    help="seconds per registry request; some registries leave one unanswered")
    args = ap.parse_args(argv)
    args.from_beginning = True

    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    registry = SchemaRegistryClient({"url": args.registry, "timeout": args.request_timeout})
    reader = None
    if args.reader_schema:
        with open(args.reader_schema) as f:
            reader = f.read()
    deserialize = AvroDeserializer(registry, schema_str=reader)
    ctx = SerializationContext(args.topic, MessageField.VALUE)

    source = KafkaSource(args)
    decoded, failed = 0, []
    for position, value, _key in source:
        try:
            schema_id = struct.unpack(">bI", value[:5])[1]
            record = deserialize(value, ctx)
        except Exception as e:  # report every failure, keep reading
            failed.append("%s: %s" % (position, e))
            continue
        decoded += 1
        print(json.dumps({"position": position, "schema_id": schema_id, "record": record}, default=plain))

    summary = {"decoded": decoded, "failed": failed, "kafka_errors": source.errors, "received": source.received}
    print(json.dumps(summary), file=sys.stderr)
    if failed or source.errors:
        return 1
    if source.received < args.max:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
