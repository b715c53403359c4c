package org.sshlateral.kstreams;

import java.time.Duration;
import java.util.Map;
import org.apache.kafka.streams.kstream.Windows;
import org.apache.kafka.streams.kstream.internals.TimeWindow;

/**
 * Tumbling event-time windows of a given size whose starts are offset from
 * the epoch: size 1h and offset 50m give ESCU's windows from :50 to :50.
 * TimeWindows aligns to the epoch only, hence this class.
 */
final class AlignedWindows extends Windows<TimeWindow> {
    private final long sizeMs;
    private final long offsetMs;
    private final long graceMs;

    AlignedWindows(Duration size, Duration offset, Duration grace) {
        this.sizeMs = size.toMillis();
        this.offsetMs = Math.floorMod(offset.toMillis(), sizeMs);
        this.graceMs = grace.toMillis();
        if (sizeMs <= 0 || graceMs < 0) {
            throw new IllegalArgumentException("window size must be positive and grace not negative");
        }
    }

    /** Returns the start of the window holding timestamp ts. */
    long startOf(long ts) {
        return Math.floorDiv(ts - offsetMs, sizeMs) * sizeMs + offsetMs;
    }

    /**
     * Returns the window holding timestamp, or none when that window would
     * start before the epoch (TimeWindow rejects it, which would stop the
     * stream thread): such a record is dropped, not fatal.
     */
    @Override
    public Map<Long, TimeWindow> windowsFor(long timestamp) {
        long start = startOf(timestamp);
        if (start < 0) {
            return Map.of();
        }
        return Map.of(start, new TimeWindow(start, start + sizeMs));
    }

    @Override
    public long size() {
        return sizeMs;
    }

    @Override
    public long gracePeriodMs() {
        return graceMs;
    }
}
