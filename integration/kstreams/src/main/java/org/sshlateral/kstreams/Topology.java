package org.sshlateral.kstreams;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Optional;
import java.util.Set;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.processor.TimestampExtractor;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.processor.api.RecordMetadata;
import org.apache.kafka.streams.state.WindowStore;

/**
 * The detection as a Kafka Streams topology:
 *
 * <pre>
 * input (Sysmon lines, event time = UtcTime)
 *   → detect (indexOf fields, ESCU matcher; key := group)
 *   → repartition (each record stays on its input partition's number)
 *   → groupByKey → windowedBy(:50-aligned hour, 10 min grace) → aggregate(count, first, last)
 *   → suppress(untilWindowCloses) → one JSON row per group and window → output
 * </pre>
 *
 * Windows close on stream time, which Kafka Streams tracks per task from the
 * records that reach the window operator. Only matches would reach it, so a
 * partition without later matches would never close its windows; detect
 * therefore forwards a non-matching event as a tick when its event time is a
 * minute or more past the last forwarded one. Routing every record to the
 * repartition partition of its input partition keeps stream time per input
 * partition, as sshlateral's watermark is, so one partition running ahead
 * cannot make another's events late.
 */
final class Topology {
    private Topology() {}

    static final Duration WINDOW = Duration.ofHours(1);
    static final Duration OFFSET = Duration.ofMinutes(50);
    static final Duration GRACE = Duration.ofMinutes(10);
    static final long TICK_MS = 60_000;
    /** Key of ticks; group keys start with a digit (a length), so none equals it. */
    static final String TICK = "~tick";

    private static final DateTimeFormatter CTIME =
            DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss").withZone(ZoneOffset.UTC);

    static org.apache.kafka.streams.Topology build(String input, String output, Stats stats) {
        StreamsBuilder b = new StreamsBuilder();
        b.stream(input, Consumed.with(Serdes.ByteArray(), Serdes.String())
                        .withTimestampExtractor(new UtcTimeExtractor())
                        .withName("sysmon-source"))
                .process(() -> new Detect(stats), Named.as("detect"))
                .repartition(Repartitioned.with(Serdes.String(), hitSerde())
                        .withName("groups")
                        .withStreamPartitioner((topic, key, hit, n) -> Optional.of(Set.of(hit.partition() % n))))
                .groupByKey(Grouped.with(Serdes.String(), hitSerde()))
                .windowedBy(new AlignedWindows(WINDOW, OFFSET, GRACE))
                .aggregate(Agg::empty, (key, hit, agg) -> {
                            stats.busy();
                            return agg.add(hit.timestamp());
                        },
                        Named.as("count"),
                        Materialized.<String, Agg, WindowStore<Bytes, byte[]>>as("escu-groups")
                                .withKeySerde(Serdes.String()).withValueSerde(aggSerde()))
                .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()).withName("final"))
                .toStream(Named.as("rows"))
                .filter((wk, agg) -> !TICK.equals(wk.key()), Named.as("drop-ticks"))
                .map((wk, agg) -> {
                    stats.row();
                    Detection.Group g = Detection.Group.decode(wk.key());
                    return KeyValue.pair(g.dest(), rowJson(g, agg, wk));
                }, Named.as("to-json"))
                .to(output, Produced.<String, String>with(Serdes.String(), Serdes.String()).withName("sink"));
        return b.build();
    }

    /** One result row, with sshlateral's field names. */
    static String rowJson(Detection.Group g, Agg agg, Windowed<String> wk) {
        StringBuilder sb = new StringBuilder(256).append('{');
        field(sb, "dest", g.dest()).append(',');
        field(sb, "user", g.user()).append(',');
        field(sb, "parent_process_name", g.parentProcessName()).append(',');
        field(sb, "process_name", g.processName()).append(',');
        field(sb, "process", g.process()).append(',');
        field(sb, "process_id", g.processId()).append(',');
        field(sb, "parent_process_id", g.parentProcessId()).append(',');
        sb.append("\"count\":").append(agg.count()).append(',');
        field(sb, "firstTime", CTIME.format(Instant.ofEpochMilli(agg.first()))).append(',');
        field(sb, "lastTime", CTIME.format(Instant.ofEpochMilli(agg.last()))).append(',');
        field(sb, "window_start", Instant.ofEpochMilli(wk.window().start()).toString());
        return sb.append('}').toString();
    }

    private static StringBuilder field(StringBuilder sb, String name, String value) {
        sb.append('"').append(name).append("\":\"");
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        return sb.append('"');
    }

    /** Event time from the record's UtcTime; -1 (the record is skipped) when it has none. */
    static final class UtcTimeExtractor implements TimestampExtractor {
        @Override
        public long extract(ConsumerRecord<Object, Object> rec, long partitionTime) {
            return rec.value() instanceof String s ? Sysmon.eventTimeMillis(s) : -1;
        }
    }

    /** Matches records and forwards them keyed by group, plus ticks; counts input records. */
    static final class Detect implements Processor<byte[], String, String, Hit> {
        private final Stats stats;
        private ProcessorContext<String, Hit> ctx;
        private long forwardedUpTo = Long.MIN_VALUE;

        Detect(Stats stats) {
            this.stats = stats;
        }

        @Override
        public void init(ProcessorContext<String, Hit> ctx) {
            this.ctx = ctx;
        }

        @Override
        public void process(Record<byte[], String> rec) {
            stats.record();
            if (rec.value() == null) {
                return;
            }
            long ts = rec.timestamp();
            int partition = ctx.recordMetadata().map(RecordMetadata::partition).orElse(0);
            Detection.Group g = Detection.match(rec.value());
            if (g != null) {
                stats.match();
                ctx.forward(rec.withKey(g.encode()).withValue(new Hit(partition, ts)));
                forwardedUpTo = Math.max(forwardedUpTo, ts);
            } else if (forwardedUpTo == Long.MIN_VALUE || ts >= forwardedUpTo + TICK_MS) {
                ctx.forward(rec.withKey(TICK).withValue(new Hit(partition, ts)));
                forwardedUpTo = ts;
            }
        }
    }

    /** A matching event (or tick): its input partition and event time. */
    record Hit(int partition, long timestamp) {}

    /** Count, first and last event time of one group in one window. */
    record Agg(long count, long first, long last) {
        static Agg empty() {
            return new Agg(0, Long.MAX_VALUE, Long.MIN_VALUE);
        }

        Agg add(long ts) {
            return new Agg(count + 1, Math.min(first, ts), Math.max(last, ts));
        }
    }

    static Serde<Hit> hitSerde() {
        return Serdes.serdeFrom(
                (topic, h) -> h == null ? null : ByteBuffer.allocate(12).putInt(h.partition()).putLong(h.timestamp()).array(),
                (topic, b) -> {
                    if (b == null) {
                        return null;
                    }
                    ByteBuffer bb = ByteBuffer.wrap(b);
                    return new Hit(bb.getInt(), bb.getLong());
                });
    }

    static Serde<Agg> aggSerde() {
        return Serdes.serdeFrom(
                (topic, a) -> a == null ? null
                        : ByteBuffer.allocate(24).putLong(a.count()).putLong(a.first()).putLong(a.last()).array(),
                (topic, b) -> {
                    if (b == null) {
                        return null;
                    }
                    ByteBuffer bb = ByteBuffer.wrap(b);
                    return new Agg(bb.getLong(), bb.getLong(), bb.getLong());
                });
    }
}
