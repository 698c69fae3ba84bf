// The official Java Pulsar client as a benchmark anchor, driven round by round from Node so
// its rounds interleave with txkit's in the same run (bench/pulsar.bench.ts).
//
// Usage: PulsarBenchProducer <serviceUrl> <topic> <plain|transactional> <messagesPerOp> <inFlight>
// An operation is messagesPerOp messages of 100 bytes (keys k0..), sent asynchronously and
// awaited until stored; transactional: in one transaction, awaited until its commit returned.
// inFlight operations run at once. The producer batches (the client's default).
// Then one command per stdin line: "<ops>" runs that many operations and prints
// "<wall ns> <latency ms of each op, space-separated>"; "quit" closes and exits.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.pulsar.client.api.Producer;
import org.apache.pulsar.client.api.PulsarClient;
import org.apache.pulsar.client.api.Schema;
import org.apache.pulsar.client.api.transaction.Transaction;

public class PulsarBenchProducer {
  public static void main(String[] args) throws Exception {
    if (args.length != 5) {
      System.err.println("usage: PulsarBenchProducer <serviceUrl> <topic> <plain|transactional> <messagesPerOp> <inFlight>");
      System.exit(2);
    }
    boolean transactional = args[2].equals("transactional");
    int messages = Integer.parseInt(args[3]);
    int inFlight = Integer.parseInt(args[4]);
    String payload = "x".repeat(100);
    try (PulsarClient client = PulsarClient.builder().serviceUrl(args[0]).enableTransaction(transactional).build();
        Producer<String> producer =
            client
                .newProducer(Schema.STRING)
                .topic(args[1])
                // Transactions need no send timeout; the same for both modes.
                .sendTimeout(0, TimeUnit.SECONDS)
                .blockIfQueueFull(true)
                .create()) {
      System.out.println("ready");
      System.out.flush();
      BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
      for (String line = in.readLine(); line != null && !line.equals("quit"); line = in.readLine()) {
        int ops = Integer.parseInt(line.trim());
        double[] latencies = new double[ops];
        AtomicInteger started = new AtomicInteger();
        long t0 = System.nanoTime();
        List<CompletableFuture<Void>> lanes = new ArrayList<>();
        for (int lane = 0; lane < inFlight; lane++) lanes.add(runLane(client, producer, transactional, messages, payload, ops, started, latencies));
        CompletableFuture.allOf(lanes.toArray(new CompletableFuture[0])).get();
        long wall = System.nanoTime() - t0;
        StringBuilder out = new StringBuilder().append(wall);
        for (double l : latencies) out.append(' ').append(l);
        System.out.println(out);
        System.out.flush();
      }
    }
  }

  /** Runs operations one after another until `ops` have started among all lanes. */
  private static CompletableFuture<Void> runLane(
      PulsarClient client, Producer<String> producer, boolean transactional, int messages, String payload, int ops, AtomicInteger started, double[] latencies) {
    int op = started.getAndIncrement();
    if (op >= ops) return CompletableFuture.completedFuture(null);
    long s = System.nanoTime();
    CompletableFuture<Void> done;
    if (transactional) {
      done =
          client
              .newTransaction()
              .withTransactionTimeout(60, TimeUnit.SECONDS)
              .build()
              .thenCompose(txn -> sendAll(producer, txn, messages, payload).thenCompose(ignored -> txn.commit()));
    } else {
      done = sendAll(producer, null, messages, payload);
    }
    return done.thenCompose(
        ignored -> {
          latencies[op] = (System.nanoTime() - s) / 1e6;
          return runLane(client, producer, transactional, messages, payload, ops, started, latencies);
        });
  }

  private static CompletableFuture<Void> sendAll(Producer<String> producer, Transaction txn, int messages, String payload) {
    CompletableFuture<?>[] sends = new CompletableFuture<?>[messages];
    for (int i = 0; i < messages; i++) {
      sends[i] = (txn == null ? producer.newMessage() : producer.newMessage(txn)).key("k" + i).value(payload).sendAsync();
    }
    producer.flushAsync();
    return CompletableFuture.allOf(sends);
  }
}
