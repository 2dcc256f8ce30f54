package dev.flinkscale.shedding;

import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code flinkscale_weight()}: the Horvitz-Thompson weight (10000 / threshold, i.e. 1/p) of the row that the last
 * {@code flinkscale_keep} on this thread kept. Use it in the SELECT whose WHERE calls {@code flinkscale_keep}: Flink
 * evaluates a row's filter and projection together, so the weight matches the p the decision used.
 */
public class WeightFunction extends ScalarFunction {
    private static final long serialVersionUID = 1L;

    public Double eval() {
        return ShedControl.lastWeight();
    }

    @Override
    public boolean isDeterministic() {
        return false;
    }
}
