// Reads every partition of a topic with the official Java consumer (read_committed), from the
// beginning until its position reaches each partition's end offset or 60 s pass, and prints one
// line per record: partition, offset, key, value, and the txkit-outbox-id and txkit-outbox-seq
// headers (empty when absent), tab-separated; then "end" with the partitions not reached, if any.
// The lines go to <outFile> (a topic can hold more than a captured stdout keeps).
// Usage: KafkaTopicDump <bootstrap> <topic> <outFile>
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;

public class KafkaTopicDump {
  private static String header(ConsumerRecord<String, String> r, String name) {
    Header h = r.headers().lastHeader(name);
    return h == null ? "" : new String(h.value(), StandardCharsets.UTF_8);
  }

  public static void main(String[] args) throws java.io.IOException {
    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
      List<TopicPartition> tps = new ArrayList<>();
      for (PartitionInfo p : consumer.partitionsFor(args[1], Duration.ofSeconds(30))) tps.add(new TopicPartition(p.topic(), p.partition()));
      consumer.assign(tps);
      consumer.seekToBeginning(tps);
      Map<TopicPartition, Long> end = consumer.endOffsets(tps);
      StringBuilder out = new StringBuilder();
      long deadline = System.currentTimeMillis() + 60_000;
      // Bounded by the deadline.
      while (System.currentTimeMillis() < deadline && tps.stream().anyMatch(tp -> consumer.position(tp) < end.get(tp))) {
        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
          out.append(r.partition()).append('\t').append(r.offset()).append('\t').append(r.key() == null ? "" : r.key()).append('\t')
              .append(r.value() == null ? "" : r.value()).append('\t').append(header(r, "txkit-outbox-id")).append('\t')
              .append(header(r, "txkit-outbox-seq")).append('\n');
        }
      }
      List<String> behind = new ArrayList<>();
      for (TopicPartition tp : tps) if (consumer.position(tp) < end.get(tp)) behind.add(String.valueOf(tp.partition()));
      out.append("end\t").append(String.join(",", behind)).append('\n');
      java.nio.file.Files.writeString(java.nio.file.Path.of(args[2]), out, StandardCharsets.UTF_8);
    }
  }
}
