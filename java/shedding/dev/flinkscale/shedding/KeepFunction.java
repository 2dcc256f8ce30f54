package dev.flinkscale.shedding;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.InputGroup;

/**
 * {@code flinkscale_keep(key)}: TRUE when the record is kept at the probability in force.
 *
 * <pre>
 *   CREATE TEMPORARY FUNCTION flinkscale_keep AS 'dev.flinkscale.shedding.KeepFunction';
 *   CREATE TEMPORARY FUNCTION flinkscale_weight AS 'dev.flinkscale.shedding.WeightFunction';
 *   SELECT user_id, flinkscale_weight() AS w FROM clicks WHERE flinkscale_keep(event_id);
 * </pre>
 * The key is any value (its text is hashed): a unique record id samples records and keeps a replayed record's
 * decision; a grouping key keeps whole groups; no argument (or NULL) draws at random.
 */
public class KeepFunction extends ShedFunctionBase {
    private static final long serialVersionUID = 1L;

    public Boolean eval(@DataTypeHint(inputGroup = InputGroup.ANY) Object key) {
        return decide(key);
    }

    public Boolean eval() {
        return decide(null);
    }
}
