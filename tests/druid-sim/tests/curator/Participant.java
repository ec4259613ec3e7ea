// A real Curator LeaderLatch participant with a participant id of its own, so that
// tests/ha.rs can check druid-sim takes part in Druid's latches by Curator's rules.
//
//   java -cp classes:/usr/share/java/curator-recipes.jar:/usr/share/java/slf4j-nop.jar \
//        Participant CONNECT LATCH_PATH SESSION_TIMEOUT_MS ID
//
// Prints "leader" / "not leader" when its listener is told; answers each "who" line on stdin
// with "leader-id <id>", the leader as its LeaderLatch reads the latch. Closes its latch on
// SIGTERM or when stdin ends, which hands over at once.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.retry.RetryOneTime;

public class Participant {
    public static void main(String[] args) throws Exception {
        CuratorFramework client = CuratorFrameworkFactory.builder()
                .connectString(args[0])
                .sessionTimeoutMs(Integer.parseInt(args[2]))
                .connectionTimeoutMs(10_000)
                .retryPolicy(new RetryOneTime(200))
                .build();
        client.start();
        LeaderLatch latch = new LeaderLatch(client, args[1], args[3]);
        latch.addListener(new LeaderLatchListener() {
            public void isLeader() {
                say("leader");
            }

            public void notLeader() {
                say("not leader");
            }
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> close(latch, client)));
        latch.start();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        for (String line; (line = in.readLine()) != null; ) {
            if (line.equals("who")) {
                say("leader-id " + latch.getLeader().getId());
            }
        }
        System.exit(0);
    }

    private static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    private static void close(LeaderLatch latch, CuratorFramework client) {
        try {
            latch.close();
            client.close();
        } catch (Exception e) {
            // exiting anyway: the session's expiry removes the node
        }
    }
}
