package dev.flinkscale.shedding;

import java.io.Serializable;

/**
 * Where a job's keep probability comes from: a control topic on a Kafka bootstrap, and the initial p.
 *
 * <p>SQL functions read it from the job parameters ({@code pipeline.global-job-parameters}):
 * {@value #BOOTSTRAP}, {@value #CONTROL_TOPIC} and {@value #KEEP}; without a topic p stays at the initial value.
 */
public final class ShedConfig implements Serializable {
    private static final long serialVersionUID = 1L;
    public static final String BOOTSTRAP = "flinkscale.shed.bootstrap";
    public static final String CONTROL_TOPIC = "flinkscale.shed.control-topic";
    public static final String KEEP = "flinkscale.shed.keep";
    /** How long an opening subtask waits for the message in force (the PyFlink UDF waits as long). */
    public static final long INITIAL_WAIT_MILLIS = 3000;

    public final String bootstrap;
    public final String controlTopic;
    public final double initialKeepProbability;

    public ShedConfig(String bootstrap, String controlTopic, double initialKeepProbability) {
        this.bootstrap = bootstrap == null ? "" : bootstrap;
        this.controlTopic = controlTopic == null ? "" : controlTopic;
        this.initialKeepProbability = initialKeepProbability;
        if (!(initialKeepProbability > 0.0 && initialKeepProbability <= 1.0)) {
            throw new IllegalArgumentException(KEEP + " must be in (0, 1], got " + initialKeepProbability);
        }
        if (!this.controlTopic.isEmpty() && this.bootstrap.isEmpty()) {
            throw new IllegalArgumentException(CONTROL_TOPIC + " is set but " + BOOTSTRAP + " is not");
        }
    }

    public interface Parameters {
        String get(String key, String defaultValue);
    }

    public static ShedConfig fromParameters(Parameters parameters) {
        String keep = parameters.get(KEEP, "1.0");
        double p;
        try {
            p = Double.parseDouble(keep.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(KEEP + " must be a number in (0, 1], got '" + keep + "'");
        }
        return new ShedConfig(parameters.get(BOOTSTRAP, ""), parameters.get(CONTROL_TOPIC, ""), p);
    }

    /** The control in force: the shared topic reader's, or a fixed one. */
    ShedControl open() {
        if (controlTopic.isEmpty()) {
            return new ShedControl(initialKeepProbability);
        }
        return ControlTopicReader.acquire(bootstrap, controlTopic, initialKeepProbability, INITIAL_WAIT_MILLIS);
    }

    void close() {
        if (!controlTopic.isEmpty()) {
            ControlTopicReader.release(bootstrap, controlTopic);
        }
    }
}
