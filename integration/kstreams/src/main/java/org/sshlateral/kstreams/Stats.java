package org.sshlateral.kstreams;

import java.util.concurrent.atomic.AtomicLong;

/** Counters of one run; written by stream threads, read by the idle monitor. */
final class Stats {
    final AtomicLong records = new AtomicLong();
    final AtomicLong matches = new AtomicLong();
    final AtomicLong rows = new AtomicLong();
    /** Rebalances that began after the first record: each pauses processing inside the measured pass. */
    final AtomicLong rebalancesInPass = new AtomicLong();
    volatile long firstNanos;
    volatile long lastNanos;
    /** Process CPU time sampled by the idle monitor: at the first record and at the last sample that saw new records. */
    long cpuAtFirstNanos = -1;
    long cpuAtLastNanos = -1;
    private long sampledRecords;

    private static final com.sun.management.OperatingSystemMXBean OS =
            (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();

    /**
     * Called by the idle monitor every few milliseconds: the CPU of the
     * processing pass is then known to within one sampling period, without a
     * system call per record.
     */
    void sampleCpu() {
        long n = records.get();
        if (n != sampledRecords) {
            long cpu = OS.getProcessCpuTime();
            if (sampledRecords == 0) {
                cpuAtFirstNanos = cpu;
            }
            cpuAtLastNanos = cpu;
            sampledRecords = n;
        }
    }

    /** Peak resident set size in MiB (VmHWM), or -1 where /proc is not available. */
    static long peakRssMiB() {
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024;
                }
            }
        } catch (java.io.IOException | NumberFormatException e) {
            // reported as -1
        }
        return -1;
    }

    void record() {
        long now = System.nanoTime();
        if (records.getAndIncrement() == 0) {
            firstNanos = now;
        }
        lastNanos = now;
    }

    /** Marks downstream work (repartitioned records): the run is not idle while it goes on. */
    void busy() {
        lastBusyNanos = System.nanoTime();
    }

    volatile long lastBusyNanos;

    void match() {
        matches.incrementAndGet();
    }

    void row() {
        rows.incrementAndGet();
    }

    /**
     * One-line JSON summary. The processing pass is first to last input
     * record; "settled" also waits for the last repartitioned record to be
     * aggregated (with exactly-once it is read only after its commit).
     */
    String summary(String guarantee, Long commitIntervalMs) {
        long n = records.get();
        double secs = n > 1 ? (lastNanos - firstNanos) / 1e9 : 0;
        double settled = n > 1 ? (Math.max(lastNanos, lastBusyNanos) - firstNanos) / 1e9 : 0;
        return String.format(java.util.Locale.ROOT,
                "{\"records\":%d,\"matches\":%d,\"rows\":%d,\"first_to_last_s\":%.3f,\"events_per_s\":%.0f,"
                        + "\"first_to_settled_s\":%.3f,\"rebalances_in_pass\":%d,"
                        + "\"cpu_s_pass\":%.2f,\"cpu_s_process\":%.2f,\"peak_rss_mib\":%d,"
                        + "\"guarantee\":\"%s\",\"commit_interval_ms\":%s}",
                n, matches.get(), rows.get(), secs, secs > 0 ? n / secs : 0.0, settled, rebalancesInPass.get(),
                cpuAtFirstNanos < 0 ? 0.0 : (cpuAtLastNanos - cpuAtFirstNanos) / 1e9, OS.getProcessCpuTime() / 1e9,
                peakRssMiB(), guarantee, commitIntervalMs == null ? "null" : commitIntervalMs.toString());
    }
}
