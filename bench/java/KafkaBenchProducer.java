// The official Java Kafka producer as a benchmark anchor, driven round by round from Node so
// its rounds interleave with txkit's in the same run (bench/kafka.bench.ts).
//
// Usage: KafkaBenchProducer <bootstrap> <topic> <mode> <messagesPerOp> <settings> <transactionalId>
//   mode: transactional (one transaction of messagesPerOp records per operation) or
//         idempotent (messagesPerOp records, then flush: every record acknowledged)
//   settings: defaults (the client's own) or tuned (batch.size 1 MB, linger.ms 5)
// Then one command per stdin line: "<ops>" runs that many operations and prints
// "<wall ns> <process cpu ns>" for them; "quit" closes the producer and exits.
// Records are 1 KB values with no key, to partition 0.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Properties;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class KafkaBenchProducer {
  public static void main(String[] args) throws Exception {
    if (args.length != 6) {
      System.err.println("usage: KafkaBenchProducer <bootstrap> <topic> <transactional|idempotent> <messagesPerOp> <defaults|tuned> <transactionalId>");
      System.exit(2);
    }
    String topic = args[1];
    boolean transactional = args[2].equals("transactional");
    int messages = Integer.parseInt(args[3]);
    boolean tuned = args[4].equals("tuned");
    Properties props = new Properties();
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
    props.put(ProducerConfig.ACKS_CONFIG, "all");
    if (transactional) props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, args[5]);
    if (tuned) {
      props.put(ProducerConfig.BATCH_SIZE_CONFIG, String.valueOf(1024 * 1024));
      props.put(ProducerConfig.LINGER_MS_CONFIG, "5");
    }
    byte[] value = new byte[1024];
    Arrays.fill(value, (byte) 'x');
    com.sun.management.OperatingSystemMXBean os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
      if (transactional) producer.initTransactions();
      System.out.println("ready");
      System.out.flush();
      BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
      for (String line = in.readLine(); line != null && !line.equals("quit"); line = in.readLine()) {
        int ops = Integer.parseInt(line.trim());
        long cpu0 = os.getProcessCpuTime();
        long t0 = System.nanoTime();
        for (int op = 0; op < ops; op++) {
          if (transactional) producer.beginTransaction();
          for (int i = 0; i < messages; i++) producer.send(new ProducerRecord<>(topic, 0, null, value));
          if (transactional) producer.commitTransaction(); // flushes, then EndTxn
          else producer.flush();
        }
        long wall = System.nanoTime() - t0;
        long cpu = os.getProcessCpuTime() - cpu0;
        System.out.println(wall + " " + cpu);
        System.out.flush();
      }
    }
  }
}
