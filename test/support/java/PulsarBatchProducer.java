// Sends COUNT messages (value "m-<i>", key "k-<i % 7>") to TOPIC with the official Java
// client's batching, as its applications do by default; prints how many entries they took.
// Arguments: serviceUrl topic count maxMessagesPerBatch
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.pulsar.client.api.MessageId;
import org.apache.pulsar.client.api.Producer;
import org.apache.pulsar.client.api.PulsarClient;
import org.apache.pulsar.client.api.Schema;
import org.apache.pulsar.client.impl.MessageIdImpl;

public class PulsarBatchProducer {
  public static void main(String[] args) throws Exception {
    String serviceUrl = args[0];
    String topic = args[1];
    int count = Integer.parseInt(args[2]);
    int perBatch = Integer.parseInt(args[3]);
    try (PulsarClient client = PulsarClient.builder().serviceUrl(serviceUrl).build();
        Producer<String> producer =
            client
                .newProducer(Schema.STRING)
                .topic(topic)
                .enableBatching(true)
                .batchingMaxMessages(perBatch)
                .batchingMaxPublishDelay(50, TimeUnit.MILLISECONDS)
                .blockIfQueueFull(true)
                .create()) {
      List<CompletableFuture<MessageId>> sends = new ArrayList<>(count);
      for (int i = 0; i < count; i++) {
        sends.add(producer.newMessage().key("k-" + (i % 7)).value("m-" + i).sendAsync());
      }
      producer.flush();
      Set<String> entries = new HashSet<>();
      for (CompletableFuture<MessageId> send : sends) {
        MessageIdImpl id = (MessageIdImpl) send.get(60, TimeUnit.SECONDS);
        entries.add(id.getLedgerId() + ":" + id.getEntryId());
      }
      System.out.println("sent:" + count);
      System.out.println("entries:" + entries.size());
    }
  }
}
