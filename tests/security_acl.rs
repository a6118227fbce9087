//! ACLs: a broker with only a SASL_SSL listener, users from its config, `acl.enable` and
//! `User:admin` as its super user. kafka-python (a second protocol implementation) creates,
//! describes and deletes the ACLs (tests/python/acls.py); librdkafka is then held to them for
//! produce, consume, groups, admin, idempotent and transactional writes, a DENY beating a
//! PREFIXED ALLOW, Metadata hiding what a principal may not describe, and the ACLs surviving a
//! restart; each refusal is counted per API and listener.

mod common;

use common::raw;

use std::time::Duration;

use common::tls::{secured_broker, Certificates};
use common::{assign, block_on, consume, produce_to as produce, Broker};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::Offset;

const WAIT: Duration = Duration::from_secs(30);

/// The broker: SASL_SSL only, users admin, alice, bob (password `<user>-secret`).
fn acl_broker() -> (Broker, Certificates, tempfile::TempDir) {
    secured_broker("SASL_SSL://127.0.0.1:0", |certificates| {
        format!(
            "\"ssl.keystore.location\" = {:?}\n\"acl.enable\" = true\n\"super.users\" = \"User:admin\"\n\
             [sasl.users]\nadmin = \"admin-secret\"\nalice = \"alice-secret\"\nbob = \"bob-secret\"\n",
            certificates.keystore
        )
    })
}

fn client(broker: &Broker, certificates: &Certificates, user: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", broker.listener("SASL_SSL"))
        .set("security.protocol", "sasl_ssl")
        .set("ssl.ca.location", certificates.ca.to_str().unwrap())
        .set("sasl.mechanism", "SCRAM-SHA-512")
        .set("sasl.username", user)
        .set("sasl.password", format!("{user}-secret"))
        .set("message.timeout.ms", "15000");
    config
}

fn producer(config: &mut ClientConfig) -> FutureProducer {
    config.set("linger.ms", "0").create().expect("producer")
}

/// Polls `consumer` until it reports an error (which is returned) or delivers a record
/// (a failure: the caller expected a refusal).
fn refusal(consumer: &BaseConsumer) -> RDKafkaErrorCode {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        assert!(std::time::Instant::now() < deadline, "no refusal within {WAIT:?}");
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => panic!("a record was delivered: {:?}", message.payload()),
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => return e.rdkafka_error_code().unwrap_or_else(|| panic!("{e}")),
        }
    }
}

fn topics_seen(config: &mut ClientConfig) -> Vec<String> {
    let consumer: BaseConsumer = config.create().unwrap();
    let metadata = consumer.fetch_metadata(None, WAIT).expect("metadata");
    metadata.topics().iter().map(|t| t.name().to_string()).collect()
}

#[test]
fn acls_hold_librdkafka_and_kafka_python_to_them() {
    let (mut broker, certificates, _dir) = acl_broker();
    let bootstrap = broker.listener("SASL_SSL");
    let ca = certificates.ca.to_str().unwrap().to_string();
    common::run_python("acls.py", &["setup", &bootstrap, &ca]);

    // Produce: alice may write "orders", not "secret"; an idempotent producer needs WRITE on
    // some topic, which alice has.
    let alice = producer(client(&broker, &certificates, "alice").set("enable.idempotence", "true"));
    for i in 0..10 {
        assert_eq!(produce(&alice, "orders", &format!("order-{i}")), Ok(()));
    }
    assert_eq!(
        produce(&alice, "secret", "x"),
        Err(RDKafkaErrorCode::TopicAuthorizationFailed)
    );

    // Metadata: alice sees what she may describe, admin (a super user) everything.
    let seen = topics_seen(&mut client(&broker, &certificates, "alice"));
    assert!(
        seen.contains(&"orders".to_string()) && !seen.contains(&"secret".to_string()),
        "{seen:?}"
    );
    let everything = topics_seen(&mut client(&broker, &certificates, "admin"));
    assert!(everything.contains(&"secret".to_string()), "{everything:?}");

    // Consume in a group: alice reads "orders" in groups named alice-*, and commits.
    let consumer: BaseConsumer = client(&broker, &certificates, "alice")
        .set("group.id", "alice-readers")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["orders"]).unwrap();
    let values = consume(&consumer, 10, |m| {
        String::from_utf8(m.payload().unwrap().to_vec()).unwrap()
    });
    assert_eq!(values, (0..10).map(|i| format!("order-{i}")).collect::<Vec<_>>());
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit in an allowed group");
    drop(consumer);
    // Any other group is refused.
    let outsider: BaseConsumer = client(&broker, &certificates, "alice")
        .set("group.id", "someone-elses")
        .create()
        .unwrap();
    outsider.subscribe(&["orders"]).unwrap();
    assert_eq!(refusal(&outsider), RDKafkaErrorCode::GroupAuthorizationFailed);
    drop(outsider);

    // A DENY beats a PREFIXED ALLOW: bob may do anything to pay-* but read pay-in.
    let bob = producer(&mut client(&broker, &certificates, "bob"));
    assert_eq!(produce(&bob, "pay-in", "in"), Ok(()));
    assert_eq!(produce(&bob, "pay-out", "out"), Ok(()));
    let reader: BaseConsumer = client(&broker, &certificates, "bob")
        .set("group.id", "bob-readers")
        .create()
        .unwrap();
    assign(&reader, "pay-in", 1, Offset::Beginning);
    assert_eq!(refusal(&reader), RDKafkaErrorCode::TopicAuthorizationFailed);
    assign(&reader, "pay-out", 1, Offset::Beginning);
    assert_eq!(
        consume(&reader, 1, |m| m.payload().unwrap().to_vec()),
        vec![b"out".to_vec()]
    );
    drop(reader);

    // Transactions: bob's id is allowed, alice has none.
    let transactional = producer(
        client(&broker, &certificates, "bob")
            .set("transactional.id", "bob-tx")
            .set("enable.idempotence", "true"),
    );
    transactional.init_transactions(WAIT).expect("bob may use bob-tx");
    transactional.begin_transaction().unwrap();
    assert_eq!(produce(&transactional, "pay-out", "in a transaction"), Ok(()));
    transactional.commit_transaction(WAIT).expect("commit");
    let refused = producer(
        client(&broker, &certificates, "alice")
            .set("transactional.id", "alice-tx")
            .set("enable.idempotence", "true"),
    );
    let error = refused
        .init_transactions(WAIT)
        .expect_err("alice has no transactional id");
    assert_eq!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::TransactionalIdAuthorizationFailed),
        "{error}"
    );

    // Admin: alice may not create topics; admin may.
    let alice_admin: AdminClient<DefaultClientContext> = client(&broker, &certificates, "alice").create().unwrap();
    let topic = NewTopic::new("alice-new", 1, TopicReplication::Fixed(1));
    let created = block_on(alice_admin.create_topics([&topic], &AdminOptions::new())).unwrap();
    assert!(
        matches!(&created[0], Err((_, RDKafkaErrorCode::TopicAuthorizationFailed))),
        "{created:?}"
    );
    let admin: AdminClient<DefaultClientContext> = client(&broker, &certificates, "admin").create().unwrap();
    let created = block_on(admin.create_topics([&topic], &AdminOptions::new())).unwrap();
    assert!(created[0].is_ok(), "{created:?}");

    // Every refusal is counted, per API and listener. (librdkafka learns from Metadata that it
    // may not write "secret", and from FindCoordinator that it may not join the group or use
    // the transactional id, so it never sends those Produce, JoinGroup or InitProducerId
    // requests: the raw test below has the handlers refuse them.)
    let (_, metrics) = broker.scrape("/metrics");
    for api in ["Metadata", "FindCoordinator", "Fetch", "CreateTopics", "CreateAcls"] {
        let line = format!("api=\"{api}\",listener=\"SASL_SSL\"");
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("sluice_authorization_denials_total{") && l.contains(&line)),
            "no {api} denial counted:\n{metrics}"
        );
    }
    drop((alice, bob, transactional, refused, alice_admin, admin));

    // The ACLs are in the metadata: a restart keeps them.
    broker.restart();
    let alice = producer(&mut client(&broker, &certificates, "alice"));
    assert_eq!(produce(&alice, "orders", "after restart"), Ok(()));
    assert_eq!(
        produce(&alice, "secret", "x"),
        Err(RDKafkaErrorCode::TopicAuthorizationFailed)
    );
    let bootstrap = broker.listener("SASL_SSL");
    common::run_python("acls.py", &["enforce", &bootstrap, &ca]);
}

/// `allow.everyone.if.no.acl.found`: a resource no ACL names is open to everyone, and one
/// an ACL names is closed to all the ACL does not allow. Without super users, alice may
/// create ACLs because none names the cluster.
#[test]
fn resources_without_acls_follow_allow_everyone() {
    let (broker, certificates, _dir) = secured_broker("SASL_SSL://127.0.0.1:0", |certificates| {
        format!(
            "\"ssl.keystore.location\" = {:?}\n\"acl.enable\" = true\n\"allow.everyone.if.no.acl.found\" = true\n\
             [sasl.users]\nalice = \"alice-secret\"\nbob = \"bob-secret\"\n",
            certificates.keystore
        )
    });
    let alice_admin: AdminClient<DefaultClientContext> = client(&broker, &certificates, "alice").create().unwrap();
    for name in ["open", "closed"] {
        let topic = NewTopic::new(name, 1, TopicReplication::Fixed(1));
        let created = block_on(alice_admin.create_topics([&topic], &AdminOptions::new())).unwrap();
        assert!(created[0].is_ok(), "{created:?}");
    }
    let bob = producer(&mut client(&broker, &certificates, "bob"));
    assert_eq!(produce(&bob, "closed", "x"), Ok(()), "no ACL names it yet");
    let bootstrap = broker.listener("SASL_SSL");
    let ca = certificates.ca.to_str().unwrap().to_string();
    common::run_python("acls.py", &["close", &bootstrap, &ca]);
    let alice = producer(&mut client(&broker, &certificates, "alice"));
    assert_eq!(produce(&alice, "closed", "mine"), Ok(()));
    assert_eq!(
        produce(&bob, "closed", "x"),
        Err(RDKafkaErrorCode::TopicAuthorizationFailed)
    );
    assert_eq!(produce(&bob, "open", "x"), Ok(()));
}

/// The handlers' own refusals, in the raw protocol on a PLAINTEXT listener (whose clients are
/// `User:ANONYMOUS`): with `allow.everyone.if.no.acl.found` the anonymous client creates a
/// topic and then DENY ACLs against itself, which Produce, Metadata, ListOffsets, JoinGroup,
/// OffsetCommit and InitProducerId then answer with Kafka's codes.
#[test]
fn handlers_refuse_with_kafkas_codes() {
    use kafka_protocol::messages::create_acls_request::AclCreation;
    use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;

    const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
    let name = |text: &str| StrBytes::from_string(text.to_string());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    std::fs::write(
        &path,
        "\"acl.enable\" = true\n\"allow.everyone.if.no.acl.found\" = true\n",
    )
    .unwrap();
    let broker = Broker::start_with(&["--config", path.to_str().unwrap()]);
    // Before any ACL names them (or the cluster), everyone may create topics.
    broker.create_topic("guarded", 1);
    broker.create_topic("hidden", 1);

    let acl = |kind: i8, resource: &str, operation: i8, permission: i8| {
        AclCreation::default()
            .with_resource_type(kind)
            .with_resource_name(name(resource))
            .with_resource_pattern_type(3)
            .with_principal(name("User:ANONYMOUS"))
            .with_host(name("*"))
            .with_operation(operation)
            .with_permission_type(permission)
    };
    let deny = |kind, resource, operation| acl(kind, resource, operation, 2);
    // TOPIC 2, GROUP 3, CLUSTER 4; ALL 2, WRITE 4, READ 3, DESCRIBE 8, IDEMPOTENT_WRITE 12;
    // DENY 2, ALLOW 3. Once an ACL names "guarded", only an ALLOW opens it: ALL, but for the
    // WRITE the DENY takes.
    let creations = vec![
        acl(2, "guarded", 2, 3),
        deny(2, "guarded", 4),
        deny(2, "hidden", 8),
        deny(3, "closed-group", 3),
        deny(4, "kafka-cluster", 12),
        deny(4, "not-the-cluster", 12),
    ];
    let created: CreateAclsResponse = raw::call(
        &broker,
        ApiKey::CreateAcls,
        3,
        &CreateAclsRequest::default().with_creations(creations),
    );
    let codes: Vec<i16> = created.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, vec![0, 0, 0, 0, 0, 42], "a CLUSTER ACL must name kafka-cluster");

    let batch = sluice::record::encode_batch(
        [(None, Some(bytes::Bytes::from_static(b"refused")), 0)],
        kafka_protocol::records::Compression::None,
    )
    .unwrap();
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(name("guarded")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch))])]);
    let produced: ProduceResponse = raw::call(&broker, ApiKey::Produce, 11, &produce);
    assert_eq!(
        produced.responses[0].partition_responses[0].error_code,
        TOPIC_AUTHORIZATION_FAILED
    );

    // Metadata: the listing leaves "hidden" out; asked for by name, it is refused.
    let all: MetadataResponse = raw::call(
        &broker,
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(None),
    );
    let listed: Vec<String> = all
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .collect();
    assert!(
        listed.contains(&"guarded".to_string()) && !listed.contains(&"hidden".to_string()),
        "{listed:?}"
    );
    let named: MetadataResponse = raw::call(
        &broker,
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(TopicName(name("hidden"))))
        ])),
    );
    assert_eq!(named.topics[0].error_code, TOPIC_AUTHORIZATION_FAILED);

    let offsets: ListOffsetsResponse = raw::call(
        &broker,
        ApiKey::ListOffsets,
        7,
        &ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(name("hidden")))
            .with_partitions(vec![ListOffsetsPartition::default().with_timestamp(-1)])]),
    );
    assert_eq!(offsets.topics[0].partitions[0].error_code, TOPIC_AUTHORIZATION_FAILED);

    let joined: JoinGroupResponse = raw::call(
        &broker,
        ApiKey::JoinGroup,
        9,
        &JoinGroupRequest::default()
            .with_group_id(GroupId(name("closed-group")))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_protocol_type(name("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default().with_name(name("range"))]),
    );
    assert_eq!(joined.error_code, GROUP_AUTHORIZATION_FAILED);
    let committed: OffsetCommitResponse = raw::call(
        &broker,
        ApiKey::OffsetCommit,
        8,
        &OffsetCommitRequest::default()
            .with_group_id(GroupId(name("closed-group")))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(name("guarded")))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default().with_committed_offset(1),
                ])]),
    );
    assert_eq!(committed.topics[0].partitions[0].error_code, GROUP_AUTHORIZATION_FAILED);

    // An idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE on some topic:
    // the DENY takes the first, and no ACL allows the second.
    let init: InitProducerIdResponse = raw::call(
        &broker,
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default().with_transaction_timeout_ms(60_000),
    );
    assert_eq!(init.error_code, CLUSTER_AUTHORIZATION_FAILED);

    let (_, metrics) = broker.scrape("/metrics");
    for api in [
        "Produce",
        "Metadata",
        "ListOffsets",
        "JoinGroup",
        "OffsetCommit",
        "InitProducerId",
    ] {
        let line = format!("api=\"{api}\",listener=\"PLAINTEXT\"");
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("sluice_authorization_denials_total{") && l.contains(&line)),
            "no {api} denial counted"
        );
    }
}

/// `sluice` itself over SASL_SSL: admin adds a user and ACLs with `sluice user` and
/// `sluice acl`, creates a topic with `sluice topic`, and the new user produces and consumes
/// with `sluice produce` and `sluice consume`; removing the ACLs closes the topic to it, and
/// removing the user ends its logins. A wrong password is a clear error.
#[test]
fn the_cli_manages_users_and_acls_over_sasl_ssl() {
    let (broker, certificates, _dir) = acl_broker();
    let bootstrap = broker.listener("SASL_SSL");
    let ca = certificates.ca.to_str().unwrap().to_string();
    let sluice = |user: &str, args: &[&str], stdin: &str| {
        use std::io::Write as _;
        let password = format!("{user}-secret");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .args(["-b", &bootstrap, "--security-protocol", "SASL_SSL", "--ca", &ca])
            .args(["--sasl-username", user, "-X", &format!("sasl.password={password}")])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run sluice");
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    };
    let ok = |user: &str, args: &[&str], stdin: &str| {
        let (success, text) = sluice(user, args, stdin);
        assert!(success, "sluice {args:?} as {user}: {text}");
        text
    };
    ok("admin", &["user", "add", "carol", "--password", "carol-secret"], "");
    let users = ok("admin", &["user", "list"], "");
    assert!(
        users.contains("carol: SCRAM-SHA-256 (4096 iterations), SCRAM-SHA-512 (4096 iterations)"),
        "{users}"
    );
    ok("admin", &["topic", "create", "notes", "--partitions", "1"], "");
    ok(
        "admin",
        &[
            "acl",
            "add",
            "--principal",
            "User:carol",
            "--operation",
            "write,read",
            "--topic",
            "notes",
        ],
        "",
    );
    ok(
        "admin",
        &[
            "acl",
            "add",
            "--principal",
            "User:carol",
            "--operation",
            "read",
            "--group",
            "carol-",
            "--prefixed",
        ],
        "",
    );
    let listed = ok("admin", &["acl", "list", "--principal", "User:carol"], "");
    assert!(
        listed.contains("TOPIC LITERAL notes: User:carol from * ALLOW WRITE"),
        "{listed}"
    );
    assert!(
        listed.contains("GROUP PREFIXED carol-: User:carol from * ALLOW READ"),
        "{listed}"
    );
    let matching = ok("admin", &["acl", "list", "--group", "carol-readers", "--match"], "");
    assert!(matching.contains("GROUP PREFIXED carol-"), "{matching}");

    ok("carol", &["produce", "-t", "notes"], "one\ntwo\nthree\n");
    let read = ok("carol", &["consume", "-t", "notes", "-g", "carol-readers", "-e"], "");
    assert_eq!(
        read.lines().filter(|l| ["one", "two", "three"].contains(l)).count(),
        3,
        "{read}"
    );
    let (created, text) = sluice("carol", &["topic", "create", "carols-own"], "");
    assert!(!created && text.contains("TOPIC_AUTHORIZATION_FAILED"), "{text}");

    let removed = ok(
        "admin",
        &["acl", "remove", "--principal", "User:carol", "--topic", "notes"],
        "",
    );
    assert!(removed.contains("removed 2 ACLs"), "{removed}");
    let (written, text) = sluice("carol", &["produce", "-t", "notes"], "four\n");
    assert!(!written, "carol wrote after her ACLs went: {text}");
    ok("admin", &["user", "remove", "carol"], "");
    let (listed, text) = sluice("carol", &["topic", "list"], "");
    assert!(!listed && text.contains("refused"), "{text}");
    let (_, wrong) = sluice("alice", &["topic", "list", "--sasl-password", "wrong"], "");
    assert!(
        wrong.contains("SASL SCRAM-SHA-512 login as \"alice\" refused"),
        "{wrong}"
    );
}
