package dev.flinkscale.shedding;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichFilterFunction;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.MetricGroup;

/**
 * A DataStream filter that keeps each record with the probability on the control topic:
 * {@code stream.filter(new ShedFilter<>(config, click -> click.eventId))}; a later operator in the same chain
 * reads the kept record's weight with {@link ShedControl#lastWeight()} (or carry it: see {@code KeyedClicksJob}).
 * A null key selector draws at random.
 */
public class ShedFilter<T> extends RichFilterFunction<T> {
    private static final long serialVersionUID = 1L;
    private final ShedConfig config;
    private final KeySelector<T, ?> keyOf;
    private transient ShedControl control;
    private transient Counter seen;
    private transient Counter kept;

    public ShedFilter(ShedConfig config, KeySelector<T, ?> keyOf) {
        this.config = config;
        this.keyOf = keyOf;
    }

    @Override
    public void open(OpenContext openContext) throws Exception {
        control = config.open();
        MetricGroup group = getRuntimeContext().getMetricGroup().addGroup("flinkscale_shedding");
        seen = group.counter("seen");
        kept = group.counter("kept");
        ShedControl current = control;
        group.gauge("keepProbability", (Gauge<Double>) current::keepProbability);
    }

    @Override
    public boolean filter(T value) throws Exception {
        boolean keep = control.keep(keyOf == null ? null : keyOf.getKey(value));
        seen.inc();
        if (keep) {
            kept.inc();
        }
        return keep;
    }

    @Override
    public void close() throws Exception {
        config.close();
    }
}
