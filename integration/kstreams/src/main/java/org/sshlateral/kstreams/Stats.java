package org.sshlateral.kstreams;

import java.util.concurrent.atomic.AtomicLong;

/** Counters of one run; written by stream threads, read by the idle monitor. */
final class Stats {
    final AtomicLong records = new AtomicLong();
    final AtomicLong matches = new AtomicLong();
    final AtomicLong rows = new AtomicLong();
    volatile long firstNanos;
    volatile long lastNanos;

    void record() {
        long now = System.nanoTime();
        if (records.getAndIncrement() == 0) {
            firstNanos = now;
        }
        lastNanos = now;
    }

    void match() {
        matches.incrementAndGet();
    }

    void row() {
        rows.incrementAndGet();
    }

    /** One-line JSON summary: the processing pass is first to last input record. */
    String summary(String guarantee, Long commitIntervalMs) {
        long n = records.get();
        double secs = n > 1 ? (lastNanos - firstNanos) / 1e9 : 0;
        return String.format(java.util.Locale.ROOT,
                "{\"records\":%d,\"matches\":%d,\"rows\":%d,\"first_to_last_s\":%.3f,\"events_per_s\":%.0f,"
                        + "\"guarantee\":\"%s\",\"commit_interval_ms\":%s}",
                n, matches.get(), rows.get(), secs, secs > 0 ? n / secs : 0.0, guarantee,
                commitIntervalMs == null ? "null" : commitIntervalMs.toString());
    }
}
