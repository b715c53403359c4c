package org.sshlateral.kstreams;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Stream;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;

/**
 * Runs the detection until killed, or, with --exit-when-idle, until no input
 * record has arrived for that many seconds after the first one; then it prints
 * a one-line JSON summary on stdout.
 */
public final class Main {
    private Main() {}

    private static final String USAGE = """
            usage: java -jar sshlateral-kstreams.jar --bootstrap HOST:PORT[,...] --input TOPIC --output TOPIC
                   --application-id ID [--guarantee at_least_once|exactly_once_v2] [--commit-interval-ms MS]
                   [--threads N] [--state-dir DIR] [--exit-when-idle SECONDS]
            """;

    public static void main(String[] args) throws Exception {
        // Kafka Streams logs every config at INFO; keep stderr to warnings unless asked.
        if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        }
        Args a;
        try {
            a = Args.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("sshlateral-kstreams: " + e.getMessage());
            System.err.print(USAGE);
            System.exit(2);
            return;
        }
        System.exit(run(a));
    }

    static int run(Args a) throws IOException, InterruptedException {
        boolean tempState = a.stateDir == null;
        Path stateDir = tempState ? Files.createTempDirectory("sshlateral-kstreams-") : Path.of(a.stateDir);

        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, a.applicationId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, a.bootstrap);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, a.guarantee);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, a.threads);
        if (a.commitIntervalMs != null) {
            p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, a.commitIntervalMs);
        }

        Stats stats = new Stats();
        KafkaStreams streams = new KafkaStreams(Topology.build(a.input, a.output, stats), p);
        CountDownLatch done = new CountDownLatch(1);
        int[] exit = {0};
        streams.setUncaughtExceptionHandler(e -> {
            System.err.println("sshlateral-kstreams: stream thread failed: " + e);
            exit[0] = 1;
            done.countDown();
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.REBALANCING && stats.records.get() > 0) {
                stats.rebalancesInPass.incrementAndGet();
            }
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
                done.countDown();
            }
        });
        Thread hook = new Thread(done::countDown, "shutdown");
        Runtime.getRuntime().addShutdownHook(hook);

        streams.start();
        if (a.exitWhenIdleSeconds > 0) {
            long idleNanos = a.exitWhenIdleSeconds * 1_000_000_000L;
            while (done.getCount() > 0) {
                stats.sampleCpu();
                long now = System.nanoTime();
                if (stats.records.get() > 0 && now - stats.lastNanos > idleNanos && now - stats.lastBusyNanos > idleNanos) {
                    break;
                }
                done.await(20, java.util.concurrent.TimeUnit.MILLISECONDS);
            }
        } else {
            done.await();
        }
        // close() commits, so results emitted by the last records are flushed
        // (and their transaction committed) before the summary is printed.
        boolean closed = streams.close(Duration.ofMinutes(1));
        if (!closed) {
            System.err.println("sshlateral-kstreams: close timed out");
            exit[0] = 1;
        }
        if (tempState) {
            deleteTree(stateDir);
        }
        System.out.println(stats.summary(a.guarantee, a.commitIntervalMs));
        System.out.flush();
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
            // killed: the JVM is already running the hook
        }
        return exit[0];
    }

    private static void deleteTree(Path root) throws IOException {
        try (Stream<Path> paths = Files.walk(root)) {
            paths.sorted(Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
        }
    }

    static final class Args {
        String bootstrap, input, output, applicationId, stateDir;
        String guarantee = StreamsConfig.AT_LEAST_ONCE;
        Long commitIntervalMs;
        int threads = 1;
        long exitWhenIdleSeconds;

        static Args parse(String[] argv) {
            Args a = new Args();
            for (int i = 0; i < argv.length; i++) {
                String flag = argv[i];
                if (i + 1 >= argv.length) {
                    throw new IllegalArgumentException(flag + " needs a value");
                }
                String v = argv[++i];
                switch (flag) {
                    case "--bootstrap" -> a.bootstrap = v;
                    case "--input" -> a.input = v;
                    case "--output" -> a.output = v;
                    case "--application-id" -> a.applicationId = v;
                    case "--guarantee" -> {
                        if (!v.equals(StreamsConfig.AT_LEAST_ONCE) && !v.equals(StreamsConfig.EXACTLY_ONCE_V2)) {
                            throw new IllegalArgumentException("--guarantee must be at_least_once or exactly_once_v2, got " + v);
                        }
                        a.guarantee = v;
                    }
                    case "--commit-interval-ms" -> a.commitIntervalMs = positive(flag, v);
                    case "--threads" -> a.threads = Math.toIntExact(positive(flag, v));
                    case "--state-dir" -> a.stateDir = v;
                    case "--exit-when-idle" -> a.exitWhenIdleSeconds = positive(flag, v);
                    default -> throw new IllegalArgumentException("unknown flag " + flag);
                }
            }
            if (a.bootstrap == null || a.input == null || a.output == null || a.applicationId == null) {
                throw new IllegalArgumentException("--bootstrap, --input, --output and --application-id are required");
            }
            return a;
        }

        private static long positive(String flag, String v) {
            try {
                long n = Long.parseLong(v);
                if (n > 0) {
                    return n;
                }
            } catch (NumberFormatException e) {
                // reported below
            }
            throw new IllegalArgumentException(flag + " must be a positive integer, got " + v);
        }
    }
}
