// Prints, for each key given, the partition a default Java producer picks for it among <partitions>
// partitions (the client's own BuiltInPartitioner.partitionForKey: murmur2 of the key's UTF-8 bytes,
// made positive): one "<key>\t<partition>" line per key. No broker is needed.
// Usage: KafkaKeyPartition <partitions> <key>...
import java.nio.charset.StandardCharsets;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;

public class KafkaKeyPartition {
  public static void main(String[] args) {
    int partitions = Integer.parseInt(args[0]);
    StringBuilder out = new StringBuilder();
    for (int i = 1; i < args.length; i++) {
      byte[] key = args[i].getBytes(StandardCharsets.UTF_8);
      out.append(args[i]).append('\t').append(BuiltInPartitioner.partitionForKey(key, partitions)).append('\n');
    }
    System.out.print(out);
  }
}
