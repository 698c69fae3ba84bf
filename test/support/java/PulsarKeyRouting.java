// Produces one keyed message per line of a key file to a partitioned topic with the
// official Java client's default message router, and prints the partition each landed on.
//   args: serviceUrl topic keyFile [JavaStringHash|Murmur3_32Hash]
//   key file lines: "s:<text>" for a string key, "b:<hex>" for a binary key (keyBytes)
//   output: "ROUTE <line index> <partition>" per key
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.HexFormat;
import java.util.List;
import org.apache.pulsar.client.api.HashingScheme;
import org.apache.pulsar.client.api.MessageId;
import org.apache.pulsar.client.api.MessageIdAdv;
import org.apache.pulsar.client.api.Producer;
import org.apache.pulsar.client.api.ProducerBuilder;
import org.apache.pulsar.client.api.PulsarClient;
import org.apache.pulsar.client.api.TypedMessageBuilder;

public class PulsarKeyRouting {
  public static void main(String[] args) throws Exception {
    String serviceUrl = args[0];
    String topic = args[1];
    List<String> lines = Files.readAllLines(Paths.get(args[2]), StandardCharsets.UTF_8);
    try (PulsarClient client = PulsarClient.builder().serviceUrl(serviceUrl).build()) {
      ProducerBuilder<byte[]> builder = client.newProducer().topic(topic);
      if (args.length > 3) builder = builder.hashingScheme(HashingScheme.valueOf(args[3]));
      try (Producer<byte[]> producer = builder.create()) {
        for (int i = 0; i < lines.size(); i++) {
          String line = lines.get(i);
          TypedMessageBuilder<byte[]> message = producer.newMessage().value(("java " + i).getBytes(StandardCharsets.UTF_8));
          if (line.startsWith("b:")) message = message.keyBytes(HexFormat.of().parseHex(line.substring(2)));
          else message = message.key(line.substring(2));
          MessageId id = message.send();
          System.out.println("ROUTE " + i + " " + ((MessageIdAdv) id).getPartitionIndex());
        }
      }
    }
  }
}
