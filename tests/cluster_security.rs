//! Users and ACLs in a cluster: kept in the controller quorum's log, so every broker applies
//! them and they outlive the active controller. Each node has a PLAINTEXT listener first (the
//! one brokers reach each other on, whose `User:ANONYMOUS` is the super user here, as an
//! inter-broker network would be) and a SASL_PLAINTEXT one for clients.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{Cluster, CLUSTER_CONFIG};
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureProducer;

const WAIT: Duration = Duration::from_secs(30);

/// `sluice` over a node's PLAINTEXT listener (the super user).
fn sluice(node: &common::Broker, args: &[&str]) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .args(["-b", &node.listener("PLAINTEXT")])
        .output()
        .expect("run sluice");
    assert!(
        output.status.success(),
        "sluice {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// alice, over the SASL_PLAINTEXT listeners of the running nodes.
fn alice(cluster: &Cluster) -> FutureProducer {
    let bootstrap: Vec<String> = cluster
        .running()
        .into_iter()
        .map(|id| cluster.node(id).listener("SASL_PLAINTEXT"))
        .collect();
    alice_via(&bootstrap.join(","))
}

/// alice, bootstrapping from `bootstrap` alone.
fn alice_via(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("security.protocol", "sasl_plaintext")
        .set("sasl.mechanism", "SCRAM-SHA-256")
        .set("sasl.username", "alice")
        .set("sasl.password", "alice-secret")
        .set("acks", "all")
        .set("linger.ms", "0")
        .set("message.timeout.ms", "20000")
        .create()
        .expect("producer")
}

fn produce(producer: &FutureProducer, topic: &str) -> Result<(), RDKafkaErrorCode> {
    common::produce_to(producer, topic, "x")
}

/// Retries `produce` while the cluster settles after a failover (leaders moving).
fn eventually(producer: &FutureProducer, topic: &str, wanted: Result<(), RDKafkaErrorCode>) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = produce(producer, topic);
        if got == wanted {
            return;
        }
        assert!(Instant::now() < deadline, "{topic}: {got:?}, never {wanted:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn users_and_acls_outlive_the_active_controller() {
    let config = format!("{CLUSTER_CONFIG}\"acl.enable\" = true\n\"super.users\" = \"User:ANONYMOUS\"\n");
    let mut cluster =
        Cluster::new(3, &config).with_args(&["--listeners", "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0"]);
    let controller = cluster.start_all() as usize;
    let other = if controller == 1 { 2 } else { 1 };
    let node = cluster.node(other);
    sluice(
        node,
        &[
            "user",
            "add",
            "alice",
            "--password",
            "alice-secret",
            "--mechanism",
            "SCRAM-SHA-256",
        ],
    );
    for topic in ["allowed", "refused", "later"] {
        sluice(
            node,
            &[
                "topic",
                "create",
                topic,
                "--partitions",
                "1",
                "--replication-factor",
                "3",
            ],
        );
    }
    sluice(
        node,
        &[
            "acl",
            "add",
            "--principal",
            "User:alice",
            "--operation",
            "write",
            "--topic",
            "allowed",
        ],
    );
    cluster.wait_for_isr("allowed", 1, &[1, 2, 3]);

    let producer = alice(&cluster);
    eventually(&producer, "allowed", Ok(()));
    assert_eq!(
        produce(&producer, "refused"),
        Err(RDKafkaErrorCode::TopicAuthorizationFailed)
    );
    drop(producer);

    // The active controller dies: its successor holds the same users and ACLs, and takes
    // new ones.
    cluster.kill(controller);
    let remaining: Vec<i32> = (1..=3).filter(|id| *id != controller as i32).collect();
    cluster.wait_for_brokers(&remaining);
    let producer = alice(&cluster);
    eventually(&producer, "allowed", Ok(()));
    assert_eq!(
        produce(&producer, "later"),
        Err(RDKafkaErrorCode::TopicAuthorizationFailed)
    );
    sluice(
        cluster.node(remaining[0] as usize),
        &[
            "acl",
            "add",
            "--principal",
            "User:alice",
            "--operation",
            "write",
            "--topic",
            "later",
        ],
    );
    eventually(&producer, "later", Ok(()));
    drop(producer);

    // The old controller comes back from its log and knows the user and the ACL added
    // without it: it authenticates alice, and its Metadata lets her describe "later" (a
    // broker without the ACL would answer TOPIC_AUTHORIZATION_FAILED, which librdkafka fails
    // the record with).
    cluster.start(controller);
    cluster.wait_for_brokers(&[1, 2, 3]);
    let only_it = alice_via(&cluster.node(controller).listener("SASL_PLAINTEXT"));
    eventually(&only_it, "later", Ok(()));
    assert_eq!(
        produce(&only_it, "refused"),
        Err(RDKafkaErrorCode::TopicAuthorizationFailed)
    );
}
