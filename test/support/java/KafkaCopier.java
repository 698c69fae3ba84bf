// Copies <input> to <output> exactly once with the official Java clients, the way their documentation
// writes consume-transform-produce: a read_committed KafkaConsumer in <group> and a transactional producer
// (<transactionalId>) that sends each polled batch and commits its offsets with the consumer's group
// metadata (sendOffsetsToTransaction, KIP-447). Each record goes to the same partition of <output> with its
// key and value. Prints "committed <n>" after each commit and "assigned <partitions>" after each
// rebalance; a transaction that fails is aborted and the consumer rewinds to the committed offsets. Runs
// until killed; exits 2 when fenced.
// Usage: KafkaCopier <bootstrap> <input> <output> <group> <transactionalId>
import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class KafkaCopier {
  private static void say(String line) {
    System.out.println(line);
    System.out.flush();
  }

  public static void main(String[] args) {
    String bootstrap = args[0], input = args[1], output = args[2], group = args[3], transactionalId = args[4];
    Properties c = new Properties();
    c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    c.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    c.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "6000");
    c.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
    c.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, "8192");
    c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c);
    KafkaProducer<String, String> producer = new KafkaProducer<>(p);
    producer.initTransactions();
    consumer.subscribe(List.of(input), new ConsumerRebalanceListener() {
      public void onPartitionsRevoked(Collection<TopicPartition> partitions) {}

      public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
        say("assigned " + partitions);
      }
    });
    say("started");
    // Runs until killed.
    while (true) {
      ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(100));
      if (records.isEmpty()) continue;
      try {
        producer.beginTransaction();
        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
        for (TopicPartition tp : records.partitions()) {
          List<ConsumerRecord<String, String>> batch = records.records(tp);
          for (ConsumerRecord<String, String> r : batch) producer.send(new ProducerRecord<>(output, tp.partition(), r.key(), r.value()));
          offsets.put(tp, new OffsetAndMetadata(batch.get(batch.size() - 1).offset() + 1));
        }
        producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
        producer.commitTransaction();
        say("committed " + records.count());
      } catch (ProducerFencedException e) {
        System.err.println("fenced: " + e);
        System.exit(2);
      } catch (KafkaException e) {
        System.err.println("aborting after: " + e);
        try {
          producer.abortTransaction();
        } catch (KafkaException abort) {
          System.err.println("abort failed: " + abort);
        }
        // Read again from what the group committed.
        Map<TopicPartition, OffsetAndMetadata> committed = consumer.committed(consumer.assignment());
        for (TopicPartition tp : consumer.assignment()) {
          OffsetAndMetadata o = committed.get(tp);
          if (o == null) consumer.seekToBeginning(List.of(tp));
          else consumer.seek(tp, o.offset());
        }
      }
    }
  }
}
