import io.debezium.engine.ChangeEvent;
import io.debezium.engine.DebeziumEngine;
import io.debezium.engine.format.Json;

import java.io.BufferedWriter;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.InputStream;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * Runs Debezium's embedded engine with Kafka Connect's JsonConverter and writes every record as one JSON line:
 * {"destination": topic, "key": key JSON text or null, "value": value JSON text or null} (key and value as JSON
 * strings holding the converter's exact text, so no reader rounds a 64-bit number).
 *
 * Usage: java -cp 'lib/*:.' DebeziumReference engine.properties out.jsonl
 * The engine stops when standard input closes (the caller decides when it has seen enough).
 */
public final class DebeziumReference {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (InputStream in = new FileInputStream(args[0])) {
            props.load(in);
        }
        BufferedWriter out = new BufferedWriter(new OutputStreamWriter(new FileOutputStream(args[1], true), StandardCharsets.UTF_8));
        DebeziumEngine<ChangeEvent<String, String>> engine = DebeziumEngine.create(Json.class)
                .using(props)
                .notifying(record -> {
                    try {
                        synchronized (out) {
                            out.write("{\"destination\":" + quote(record.destination()) + ",\"key\":" + quote(record.key())
                                    + ",\"value\":" + quote(record.value()) + "}\n");
                            out.flush();
                        }
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                })
                .using((success, message, error) -> {
                    if (!success) {
                        System.err.println("engine stopped: " + message);
                        if (error != null) error.printStackTrace();
                        System.exit(2);
                    }
                })
                .build();
        ExecutorService executor = Executors.newSingleThreadExecutor();
        executor.execute(engine);
        // Wait for the caller to close standard input, then stop cleanly (offsets flushed).
        while (System.in.read() != -1) {
            // ignore input
        }
        engine.close();
        executor.shutdown();
        executor.awaitTermination(60, TimeUnit.SECONDS);
        synchronized (out) {
            out.close();
        }
        System.exit(0);
    }

    private static String quote(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }
}
