// Prints its arguments joined by commas, and the Java version line.
public class WitnessEcho {
  public static void main(String[] args) {
    System.out.println("echo:" + String.join(",", args));
    System.out.println("hash:" + "txkit".hashCode());
  }
}
