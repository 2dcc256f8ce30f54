package dev.flinkscale.shedding;

import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.ScalarFunction;

/** What the SQL shedding functions share: configuration from the job parameters, the control, metrics. */
abstract class ShedFunctionBase extends ScalarFunction {
    private static final long serialVersionUID = 1L;
    protected transient ShedControl control;
    protected transient Counter seen;
    protected transient Counter kept;
    private transient ShedConfig config;

    @Override
    public void open(FunctionContext context) throws Exception {
        config = ShedConfig.fromParameters(context::getJobParameter);
        control = config.open();
        MetricGroup group = context.getMetricGroup().addGroup("flinkscale_shedding");
        seen = group.counter("seen");
        kept = group.counter("kept");
        ShedControl current = control;
        group.gauge("keepProbability", (Gauge<Double>) current::keepProbability);
        group.gauge("controlSeq", (Gauge<Long>) current::seq);
    }

    @Override
    public void close() throws Exception {
        if (config != null) {
            config.close();
        }
    }

    protected boolean decide(Object key) {
        boolean keep = control.keep(key);
        seen.inc();
        if (keep) {
            kept.inc();
        }
        return keep;
    }

    /** The answer follows p: the planner must neither constant-fold nor reuse it. */
    @Override
    public boolean isDeterministic() {
        return false;
    }
}
