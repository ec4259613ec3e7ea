// A real Curator LeaderLatch participant, the recipe Dremio's master election uses, so that
// tests/it/zk.rs can prove dremio-sim takes part in the same latch by the same rules.
//
//   java -cp classes:/usr/share/java/curator-recipes.jar:/usr/share/java/slf4j-nop.jar Latch \
//        CONNECT LATCH_PATH SESSION_TIMEOUT_MS
//
// Prints "leader" when it is elected. Closes its latch on SIGTERM, which hands over at once.
import java.util.UUID;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.retry.RetryOneTime;

public class Latch {
    public static void main(String[] args) throws Exception {
        CuratorFramework client = CuratorFrameworkFactory.builder()
                .connectString(args[0])
                .sessionTimeoutMs(Integer.parseInt(args[2]))
                .connectionTimeoutMs(10_000)
                .retryPolicy(new RetryOneTime(200))
                .build();
        client.start();
        LeaderLatch latch = new LeaderLatch(client, args[1], UUID.randomUUID().toString());
        latch.addListener(new LeaderLatchListener() {
            public void isLeader() {
                System.out.println("leader");
                System.out.flush();
            }

            public void notLeader() {
                System.out.println("not leader");
                System.out.flush();
            }
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                latch.close();
                client.close();
            } catch (Exception e) {
                // exiting anyway: the session's expiry removes the node
            }
        }));
        latch.start();
        Thread.currentThread().join();
    }
}
