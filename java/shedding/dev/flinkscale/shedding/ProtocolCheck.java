package dev.flinkscale.shedding;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;

/**
 * A command-line twin of the Python protocol, for compatibility tests: reads lines from stdin and prints one
 * answer per line.
 * <ul>
 *   <li>{@code M <json>}: apply a control message; prints {@code applied seq p threshold}.</li>
 *   <li>{@code K <key>}: prints {@code keep weight} for the key (1/0 and the weight) at the p in force.</li>
 *   <li>{@code T <p>}: prints the threshold of p.</li>
 * </ul>
 */
public final class ProtocolCheck {
    private ProtocolCheck() {
    }

    public static void main(String[] args) throws Exception {
        ShedControl control = new ShedControl(args.length > 0 ? Double.parseDouble(args[0]) : 1.0);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            String body = line.length() > 2 ? line.substring(2) : "";
            switch (line.isEmpty() ? ' ' : line.charAt(0)) {
                case 'M':
                    boolean applied = control.applyMessage(body.getBytes(StandardCharsets.UTF_8));
                    out.append(applied ? 1 : 0).append(' ').append(control.seq()).append(' ')
                       .append(control.keepProbability()).append(' ').append(control.threshold()).append('\n');
                    break;
                case 'K':
                    double weight = control.shedWeight(body);
                    out.append(weight > 0 ? 1 : 0).append(' ').append(ShedControl.lastWeight()).append('\n');
                    break;
                case 'T':
                    out.append(ShedControl.threshold(Double.parseDouble(body))).append('\n');
                    break;
                default:
                    out.append("?\n");
            }
        }
        System.out.print(out);
    }
}
