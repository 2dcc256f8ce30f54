package dev.flinkscale.shedding;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.InputGroup;

/**
 * {@code flinkscale_shed_weight(key)}: 0 for a shed record, else its weight 1/p, decided in one call (the form the
 * PyFlink reference pipeline uses): {@code SELECT * FROM (SELECT *, flinkscale_shed_weight(id) AS w FROM t) WHERE w > 0}.
 */
public class ShedWeightFunction extends ShedFunctionBase {
    private static final long serialVersionUID = 1L;

    public Double eval(@DataTypeHint(inputGroup = InputGroup.ANY) Object key) {
        return decide(key) ? ShedControl.lastWeight() : 0.0;
    }

    public Double eval() {
        return decide(null) ? ShedControl.lastWeight() : 0.0;
    }
}
