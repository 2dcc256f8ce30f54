package dev.flinkscale.shedding;

import java.nio.charset.StandardCharsets;
import java.util.concurrent.ThreadLocalRandom;
import java.util.zip.CRC32;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;

/**
 * The keep probability in force and the keep decision: the Java twin of flinkscale's Python shedding path.
 *
 * <p>Protocol (the same as {@code flinkscale.pipelines.shedding} and the PyFlink reference pipeline):
 * <ul>
 *   <li>A control message is JSON {@code {"keep_probability": p, "seq": n}} on partition 0 of the control topic
 *       (an optional {@code "per_key"} object is read by the Python library only and ignored here, as by the
 *       PyFlink SQL pipeline). p must be a number in (0, 1], seq an integer; anything else is ignored and the
 *       last good value stays. A message applies only when its seq is newer than the one in force.</li>
 *   <li>p is used as a threshold of round-half-even(p x 10000) buckets out of 10000, at least 1.</li>
 *   <li>A record with a key is kept when crc32(UTF-8 of the key's text) mod 10000 is below the threshold: a hash,
 *       not a draw, so a record replayed after a failure gets the same decision. Passing a unique record id
 *       gives per-record (Bernoulli-like) sampling; passing a grouping key keeps whole keys. A null key is kept
 *       by an independent random draw at the same rate.</li>
 *   <li>The Horvitz-Thompson weight of a kept record is 10000 / threshold, the exact inclusion probability's
 *       inverse (1/p up to the 1/10000 resolution).</li>
 * </ul>
 * Thread-safe: the reader thread writes one volatile packed value, the operator threads read it.
 */
public final class ShedControl {
    public static final int HASH_BUCKETS = 10_000;
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ThreadLocal<int[]> LAST_THRESHOLD = ThreadLocal.withInitial(() -> new int[] {HASH_BUCKETS});

    /** (seq, threshold, p bits) published together, so a reader never mixes two messages. */
    private static final class Value {
        final long seq;
        final int threshold;
        final double keepProbability;

        Value(long seq, double keepProbability) {
            this.seq = seq;
            this.keepProbability = keepProbability;
            this.threshold = threshold(keepProbability);
        }
    }

    private volatile Value value;
    private volatile long rejectedMessages;

    public ShedControl(double initialKeepProbability) {
        if (!(initialKeepProbability > 0.0 && initialKeepProbability <= 1.0)) {
            throw new IllegalArgumentException("keep probability must be in (0, 1], got " + initialKeepProbability);
        }
        this.value = new Value(-1, initialKeepProbability);
    }

    /** Buckets kept out of 10000: round-half-even(p x 10000) clamped to [1, 10000] (Python's round()). */
    public static int threshold(double keepProbability) {
        long rounded = (long) Math.rint(keepProbability * HASH_BUCKETS);
        return (int) Math.max(1, Math.min(HASH_BUCKETS, rounded));
    }

    /** crc32 of the UTF-8 bytes of the key's text, as an unsigned 32-bit value (zlib.crc32 in Python). */
    public static long stableHash(String key) {
        CRC32 crc = new CRC32();
        crc.update(key.getBytes(StandardCharsets.UTF_8));
        return crc.getValue();
    }

    public double keepProbability() {
        return value.keepProbability;
    }

    public long seq() {
        return value.seq;
    }

    public int threshold() {
        return value.threshold;
    }

    public long rejectedMessages() {
        return rejectedMessages;
    }

    /** Apply one raw control message; false when it is invalid or not newer. Never throws. */
    public synchronized boolean applyMessage(byte[] raw) {
        JsonNode node;
        try {
            node = raw == null ? null : JSON.readTree(raw);
        } catch (java.io.IOException | RuntimeException e) {
            node = null;
        }
        if (node == null || !node.isObject()) {
            rejectedMessages++;
            return false;
        }
        JsonNode p = node.get("keep_probability");
        JsonNode seq = node.get("seq");
        // Python's parse_control_message: p a number (not a boolean), seq an integer (not a boolean).
        if (p == null || !p.isNumber() || seq == null || !seq.isIntegralNumber() || !seq.canConvertToLong()) {
            rejectedMessages++;
            return false;
        }
        double probability = p.asDouble();
        if (!(probability > 0.0 && probability <= 1.0)) {
            rejectedMessages++;
            return false;
        }
        JsonNode perKey = node.get("per_key");
        if (perKey != null && !perKey.isNull() && !validPerKey(perKey)) {
            rejectedMessages++;
            return false;
        }
        long sequence = seq.asLong();
        if (sequence <= value.seq) {
            return false;
        }
        value = new Value(sequence, probability);
        return true;
    }

    private static boolean validPerKey(JsonNode perKey) {
        if (!perKey.isObject()) {
            // Python treats a falsy per_key (false, 0, "", []) as absent.
            return perKey.isBoolean() && !perKey.asBoolean()
                || perKey.isNumber() && perKey.asDouble() == 0.0
                || perKey.isTextual() && perKey.asText().isEmpty()
                || perKey.isArray() && perKey.size() == 0;
        }
        for (java.util.Iterator<JsonNode> it = perKey.elements(); it.hasNext(); ) {
            JsonNode rate = it.next();
            if (!rate.isNumber() || !(rate.asDouble() > 0.0 && rate.asDouble() <= 1.0)) {
                return false;
            }
        }
        return true;
    }

    /** The keep decision for a key (null: a random draw); remembers the threshold used for {@link #lastWeight}. */
    public boolean keep(Object key) {
        int threshold = value.threshold;
        LAST_THRESHOLD.get()[0] = threshold;
        if (threshold >= HASH_BUCKETS) {
            return true;
        }
        long bucket = key == null ? ThreadLocalRandom.current().nextInt(HASH_BUCKETS)
                                  : stableHash(key.toString()) % HASH_BUCKETS;
        return bucket < threshold;
    }

    /** 0 for a dropped record, else its weight 10000 / threshold: keep and weight in one consistent call. */
    public double shedWeight(Object key) {
        return keep(key) ? weightOf(LAST_THRESHOLD.get()[0]) : 0.0;
    }

    public static double weightOf(int threshold) {
        return threshold >= HASH_BUCKETS ? 1.0 : (double) HASH_BUCKETS / threshold;
    }

    /**
     * The weight of the last keep decision made on this thread (Flink evaluates a row's filter and projection on
     * one thread, so {@code WHERE flinkscale_keep(k)} and {@code flinkscale_weight()} in the same SELECT agree even
     * when p changes in between); 1 before any decision.
     */
    public static double lastWeight() {
        return weightOf(LAST_THRESHOLD.get()[0]);
    }
}
