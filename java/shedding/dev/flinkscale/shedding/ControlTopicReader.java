package dev.flinkscale.shedding;

import java.lang.reflect.Constructor;
import java.lang.reflect.Method;
import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Reads the control topic into a {@link ShedControl}: one daemon thread per (bootstrap, topic) and job in a JVM,
 * shared by every subtask there, reference counted so that the last {@link #release} stops it.
 *
 * <p>It assigns itself partition 0 from the last message (no consumer group: every reader must see every
 * message, and the embedded broker has no groups) and polls about once a second, like the PyFlink UDF. The
 * Kafka client is reached by reflection: the library compiles against the jars of the apache-flink wheel alone
 * (which has no Kafka client), and at run time the job has kafka-clients on its classpath anyway (the Kafka
 * connector needs it). A missing client, an unreachable broker or a missing topic never fails the job: the
 * reader logs, keeps the initial p and retries.
 */
public final class ControlTopicReader implements Runnable {
    static final long POLL_MILLIS = 1000;
    static final long RETRY_MILLIS = 2000;
    private static final Map<String, ControlTopicReader> READERS = new HashMap<>();

    final ShedControl control;
    private final String bootstrap;
    private final String topic;
    private final CountDownLatch initialised = new CountDownLatch(1);
    private volatile boolean running = true;
    private volatile String lastError = "";
    private int users;
    private Thread thread;

    private ControlTopicReader(String bootstrap, String topic, double initialKeepProbability) {
        this.control = new ShedControl(initialKeepProbability);
        this.bootstrap = bootstrap;
        this.topic = topic;
    }

    /**
     * The shared reader of this topic, started on first use. Waits up to {@code waitMillis} for the message in
     * force, so that a (re)started job uses the current p from its first record.
     */
    public static ShedControl acquire(String bootstrap, String topic, double initialKeepProbability,
                                      long waitMillis) {
        ControlTopicReader reader;
        synchronized (READERS) {
            String key = bootstrap + "/" + topic;
            reader = READERS.get(key);
            if (reader == null) {
                reader = new ControlTopicReader(bootstrap, topic, initialKeepProbability);
                reader.thread = new Thread(reader, "flinkscale-shed-control-" + topic);
                reader.thread.setDaemon(true);
                reader.thread.setContextClassLoader(ControlTopicReader.class.getClassLoader());
                reader.thread.start();
                READERS.put(key, reader);
            }
            reader.users++;
        }
        try {
            reader.initialised.await(waitMillis, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return reader.control;
    }

    public static void release(String bootstrap, String topic) {
        synchronized (READERS) {
            String key = bootstrap + "/" + topic;
            ControlTopicReader reader = READERS.get(key);
            if (reader != null && --reader.users <= 0) {
                READERS.remove(key);
                reader.running = false;
                reader.thread.interrupt();
            }
        }
    }

    /** Why the reader is not reading ("" when it is). */
    public static String lastError(String bootstrap, String topic) {
        synchronized (READERS) {
            ControlTopicReader reader = READERS.get(bootstrap + "/" + topic);
            return reader == null ? "" : reader.lastError;
        }
    }

    @Override
    public void run() {
        while (running) {
            try {
                readUntilStopped();
            } catch (InterruptedException e) {
                break;
            } catch (Throwable e) { // reflection wraps everything; nothing may escape into the job
                if (!running) {
                    break;
                }
                Throwable cause = e instanceof java.lang.reflect.InvocationTargetException ? e.getCause() : e;
                String message = cause.getClass().getSimpleName() + ": " + cause.getMessage();
                if (!message.equals(lastError)) {
                    System.err.println("flinkscale shedding: cannot read control topic " + topic + " at "
                                       + bootstrap + " (" + message + "); keeping p = "
                                       + control.keepProbability());
                }
                lastError = message;
                initialised.countDown();
                try {
                    Thread.sleep(RETRY_MILLIS);
                } catch (InterruptedException interrupted) {
                    break;
                }
            }
        }
    }

    private void readUntilStopped() throws Exception {
        ClassLoader loader = ControlTopicReader.class.getClassLoader();
        Class<?> consumerClass = Class.forName("org.apache.kafka.clients.consumer.KafkaConsumer", true, loader);
        Class<?> partitionClass = Class.forName("org.apache.kafka.common.TopicPartition", true, loader);
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("key.deserializer", "org.apache.kafka.common.serialization.ByteArrayDeserializer");
        props.put("value.deserializer", "org.apache.kafka.common.serialization.ByteArrayDeserializer");
        props.put("enable.auto.commit", "false");
        props.put("client.id", "flinkscale-shed-control");
        props.put("default.api.timeout.ms", "10000");
        props.put("request.timeout.ms", "10000");
        Constructor<?> create = consumerClass.getConstructor(Properties.class);
        Object consumer = create.newInstance(props);
        try {
            Object partition = partitionClass.getConstructor(String.class, int.class).newInstance(topic, 0);
            List<Object> partitions = List.of(partition);
            consumerClass.getMethod("assign", Collection.class).invoke(consumer, partitions);
            Map<?, ?> begin = (Map<?, ?>) consumerClass.getMethod("beginningOffsets", Collection.class)
                    .invoke(consumer, partitions);
            Map<?, ?> end = (Map<?, ?>) consumerClass.getMethod("endOffsets", Collection.class)
                    .invoke(consumer, partitions);
            long low = (Long) begin.get(partition);
            long high = (Long) end.get(partition);
            consumerClass.getMethod("seek", partitionClass, long.class)
                    .invoke(consumer, partition, Math.max(low, high - 1));
            Method poll = consumerClass.getMethod("poll", Duration.class);
            boolean waiting = high > low;
            if (!waiting) {
                initialised.countDown();
            }
            lastError = "";
            while (running) {
                Iterable<?> records = (Iterable<?>) poll.invoke(consumer, Duration.ofMillis(POLL_MILLIS));
                for (Object record : records) {
                    Method valueOf = record.getClass().getMethod("value");
                    control.applyMessage((byte[]) valueOf.invoke(record));
                    if (waiting) {
                        waiting = false;
                        initialised.countDown();
                    }
                }
                if (Thread.interrupted()) {
                    throw new InterruptedException();
                }
            }
        } finally {
            try {
                consumerClass.getMethod("close", Duration.class).invoke(consumer, Duration.ofMillis(500));
            } catch (Exception ignored) {
                // closing is best effort
            }
        }
    }
}
