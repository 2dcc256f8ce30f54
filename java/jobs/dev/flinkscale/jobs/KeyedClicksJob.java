package dev.flinkscale.jobs;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.locks.LockSupport;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.serialization.SimpleStringEncoder;
import org.apache.flink.api.common.state.StateTtlConfig;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple5;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.file.sink.FileSink;
import org.apache.flink.core.fs.Path;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.filesystem.rollingpolicies.OnCheckpointRollingPolicy;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

import dev.flinkscale.shedding.ShedConfig;
import dev.flinkscale.shedding.ShedControl;
import dev.flinkscale.shedding.ShedFilter;

/**
 * A small Java DataStream job: clicks from Kafka -> (optional shedding filter) -> keyBy(user) -> a keyed process
 * function with state (clicks seen per user, RocksDB, TTL) and a configurable per-event cost -> exactly-once file sink
 * of every event with its user's running count.
 *
 * <p>It exists to show that flinkscale's profile, autoscale and shedding do not depend on the job's language.
 * The Kafka table is declared in SQL (so the jar compiles against the apache-flink wheel alone) and turned into a
 * DataStream. Arguments: --bootstrap, --topic, --group, --out (file:// URL), --cost-us, --cost-kind (spin: CPU, the
 * default; sleep: waiting, like a remote lookup), --max-parallelism, --checkpoint-interval-ms, --shed-control-topic,
 * --shed-keep, --name.
 */
public final class KeyedClicksJob {
    private KeyedClicksJob() {
    }

    /** (event_id, user_id, size_bytes, weight, running count). */
    public static final class CountPerUser
            extends KeyedProcessFunction<String, Tuple5<Long, String, Integer, Double, Long>,
                                         Tuple5<Long, String, Integer, Double, Long>> {
        private static final long serialVersionUID = 1L;
        private final long costNanos;
        private final boolean sleeps;
        private transient ValueState<Long> count;

        public CountPerUser(double costMicros, boolean sleeps) {
            this.costNanos = (long) (costMicros * 1000);
            this.sleeps = sleeps;
        }

        @Override
        public void open(OpenContext openContext) {
            ValueStateDescriptor<Long> descriptor = new ValueStateDescriptor<>("clicks", Types.LONG);
            descriptor.enableTimeToLive(StateTtlConfig.newBuilder(Duration.ofHours(1)).build());
            count = getRuntimeContext().getState(descriptor);
        }

        @Override
        public void processElement(Tuple5<Long, String, Integer, Double, Long> click, Context context,
                                   Collector<Tuple5<Long, String, Integer, Double, Long>> out) throws Exception {
            // A busy loop stands in for real per-event work (scoring), as in the reference pipelines; a sleep for
            // waiting on a remote lookup: the task is busy either way, but a sleep takes no CPU from other tasks.
            long deadline = System.nanoTime() + costNanos;
            for (long left = costNanos; left > 0; left = deadline - System.nanoTime()) {
                if (sleeps) {
                    LockSupport.parkNanos(left);
                } else {
                    Thread.onSpinWait();
                }
            }
            Long seen = count.value();
            long next = (seen == null ? 0 : seen) + 1;
            count.update(next);
            click.f4 = next;
            out.collect(click);
        }
    }

    static Map<String, String> parse(String[] args) {
        Map<String, String> options = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                throw new IllegalArgumentException("expected --name value pairs, got " + args[i]);
            }
            options.put(args[i].substring(2), args[++i]);
        }
        for (String required : new String[] {"bootstrap", "topic", "out"}) {
            if (!options.containsKey(required)) {
                throw new IllegalArgumentException("--" + required + " is required");
            }
        }
        return options;
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> options = parse(args);
        Configuration config = new Configuration();
        config.setString("state.backend.type", "rocksdb");
        config.setString("execution.checkpointing.incremental", "true");
        config.setString("pipeline.name", options.getOrDefault("name", "keyed-clicks-java"));
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(config);
        env.enableCheckpointing(Long.parseLong(options.getOrDefault("checkpoint-interval-ms", "5000")));
        env.setMaxParallelism(Integer.parseInt(options.getOrDefault("max-parallelism", "120")));
        StreamTableEnvironment tables = StreamTableEnvironment.create(env);
        tables.executeSql("CREATE TABLE clicks (event_id BIGINT, user_id STRING, url STRING, size_bytes INT, "
                          + "event_time BIGINT) WITH ('connector' = 'kafka', 'topic' = '" + options.get("topic")
                          + "', 'properties.bootstrap.servers' = '" + options.get("bootstrap") + "', "
                          + "'properties.group.id' = '" + options.getOrDefault("group", "flinkscale-keyed-java")
                          + "', 'scan.startup.mode' = 'earliest-offset', 'format' = 'json', "
                          + "'json.ignore-parse-errors' = 'true')");
        DataStream<Row> rows = tables.toDataStream(tables.from("clicks"));
        DataStream<Tuple5<Long, String, Integer, Double, Long>> clicks = rows
                .filter(row -> row.getField("event_id") != null && row.getField("user_id") != null)
                .name("valid")
                .map(row -> Tuple5.of((Long) row.getField("event_id"), (String) row.getField("user_id"),
                                      row.getField("size_bytes") == null ? 0 : (Integer) row.getField("size_bytes"),
                                      1.0, 0L))
                .returns(Types.TUPLE(Types.LONG, Types.STRING, Types.INT, Types.DOUBLE, Types.LONG))
                .name("parse");
        String controlTopic = options.getOrDefault("shed-control-topic", "");
        double keep = Double.parseDouble(options.getOrDefault("shed-keep", "1.0"));
        if (!controlTopic.isEmpty() || keep < 1.0) {
            ShedConfig shed = new ShedConfig(options.get("bootstrap"), controlTopic, keep);
            // Keep by event id (a replayed record gets the same decision), then carry the weight on the record.
            clicks = clicks.filter(new ShedFilter<>(shed, click -> click.f0)).name("shed")
                    .map(click -> {
                        click.f3 = ShedControl.lastWeight();
                        return click;
                    })
                    .returns(Types.TUPLE(Types.LONG, Types.STRING, Types.INT, Types.DOUBLE, Types.LONG))
                    .name("weight");
        }
        double costMicros = Double.parseDouble(options.getOrDefault("cost-us", "0"));
        boolean costSleeps = "sleep".equals(options.getOrDefault("cost-kind", "spin"));
        DataStream<String> out = clicks
                .keyBy(click -> click.f1, Types.STRING)
                .process(new CountPerUser(costMicros, costSleeps))
                .returns(Types.TUPLE(Types.LONG, Types.STRING, Types.INT, Types.DOUBLE, Types.LONG))
                .name("count-per-user")
                .map(click -> "{\"event_id\":" + click.f0 + ",\"user_id\":\"" + click.f1.replace("\"", "\\\"")
                              + "\",\"size_bytes\":" + click.f2 + ",\"weight\":" + click.f3
                              + ",\"user_count\":" + click.f4 + "}")
                .returns(Types.STRING)
                .name("to-json");
        out.sinkTo(FileSink.forRowFormat(new Path(options.get("out")), new SimpleStringEncoder<String>("UTF-8"))
                           .withRollingPolicy(OnCheckpointRollingPolicy.build())
                           .build())
           .name("events-sink");
        env.execute(options.getOrDefault("name", "keyed-clicks-java"));
    }
}
