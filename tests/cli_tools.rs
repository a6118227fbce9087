//! The command-line client against a running broker: `sluice topic`, `sluice produce` and
//! `sluice consume` run as subprocesses, checked against what librdkafka sees and writes;
//! and the failures `sluice group describe` and `sluice bench consume` must report.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{assign, block_on, consume, flush, send, Broker, WAIT};
use rdkafka::admin::{AdminOptions, ResourceSpecifier};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `sluice args` with `stdin` as its input, failing the test if it takes over [`WAIT`].
fn sluice(args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sluice");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    // Written from a thread so a child that never reads cannot block the test.
    std::thread::spawn(move || input.write_all(&data));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).expect("utf-8 output");
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for sluice") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sluice {args:?} ran past {WAIT:?}: {}", stderr.join().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Stdout of a run that must succeed.
fn ok(args: &[&str], stdin: &[u8]) -> String {
    let run = sluice(args, stdin);
    assert!(run.status.success(), "sluice {args:?} failed: {}", run.stderr);
    run.stdout
}

/// Stderr of a run that must fail.
fn fails(args: &[&str], stdin: &[u8]) -> String {
    let run = sluice(args, stdin);
    assert!(!run.status.success(), "sluice {args:?} succeeded: {}", run.stdout);
    run.stderr
}

fn topic_names(broker: &Broker) -> BTreeSet<String> {
    let metadata = broker.consumer(&[]).fetch_metadata(None, WAIT).expect("metadata");
    metadata.topics().iter().map(|t| t.name().to_string()).collect()
}

fn partition_count(broker: &Broker, topic: &str) -> usize {
    let metadata = broker.consumer(&[]).fetch_metadata(None, WAIT).expect("metadata");
    let found = metadata.topics().iter().find(|t| t.name() == topic);
    found.unwrap_or_else(|| panic!("no topic {topic}")).partitions().len()
}

fn config_value(broker: &Broker, topic: &str, key: &str) -> Option<String> {
    let results = block_on(
        broker
            .admin()
            .describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new()),
    )
    .expect("describe configs");
    let resource = results.into_iter().next().unwrap().expect("topic described");
    resource.get(key).and_then(|entry| entry.value.clone())
}

/// A record as librdkafka read it: partition, key, value, headers.
type Read4 = (i32, Option<String>, String, Vec<(String, String)>);

/// `count` records read by librdkafka from every partition of `topic`.
fn read_back(broker: &Broker, topic: &str, partitions: i32, count: usize) -> Vec<Read4> {
    let consumer = broker.consumer(&[]);
    assign(&consumer, topic, partitions, Offset::Beginning);
    consume(&consumer, count, |m| {
        let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).unwrap();
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), text(h.value.unwrap_or_default())))
                    .collect()
            })
            .unwrap_or_default();
        (
            m.partition(),
            m.key().map(text),
            text(m.payload().unwrap_or_default()),
            headers,
        )
    })
}

#[test]
fn topic_commands_create_list_describe_alter_and_delete() {
    let broker = Broker::start();
    let b = broker.addr.as_str();
    let created = ok(
        &[
            "topic",
            "-b",
            b,
            "create",
            "orders",
            "--partitions",
            "3",
            "--config",
            "retention.ms=3600000",
        ],
        b"",
    );
    assert_eq!(
        created.trim(),
        "created topic orders: 3 partitions, replication factor 1"
    );
    assert_eq!(partition_count(&broker, "orders"), 3);
    assert_eq!(
        config_value(&broker, "orders", "retention.ms").as_deref(),
        Some("3600000")
    );
    let again = fails(&["topic", "-b", b, "create", "orders"], b"");
    assert!(
        again.contains("TOPIC_ALREADY_EXISTS (36)") && again.contains("orders"),
        "{again}"
    );

    let listed = ok(&["topic", "-b", b, "list"], b"");
    let row: Vec<&str> = listed
        .lines()
        .find(|l| l.starts_with("orders "))
        .unwrap_or_else(|| panic!("not listed:\n{listed}"))
        .split_whitespace()
        .collect();
    assert_eq!(row, ["orders", "3"]);

    let producer = broker.producer(&[]);
    for _ in 0..5 {
        send(
            &producer,
            BaseRecord::to("orders").partition(1).payload(b"x".as_slice()),
        );
    }
    flush(&producer);
    let described = ok(&["topic", "describe", "orders", "-b", b], b"");
    let rows: BTreeMap<&str, Vec<&str>> = described
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cells| cells.len() == 6 && cells[0].parse::<i32>().is_ok())
        .map(|cells| (cells[0], cells))
        .collect();
    // Partition, leader, replicas, ISR, log start, log end.
    assert_eq!(rows["0"], ["0", "0", "0", "0", "0", "0"], "{described}");
    assert_eq!(rows["1"], ["1", "0", "0", "0", "0", "5"], "{described}");
    assert_eq!(rows.len(), 3, "{described}");
    assert!(described.contains("  retention.ms=3600000  (topic)"), "{described}");
    assert!(described.contains("  cleanup.policy=delete  (default)"), "{described}");

    ok(
        &[
            "topic",
            "-b",
            b,
            "alter",
            "orders",
            "--config",
            "cleanup.policy=compact",
        ],
        b"",
    );
    assert_eq!(
        config_value(&broker, "orders", "cleanup.policy").as_deref(),
        Some("compact")
    );
    let bogus = fails(&["topic", "-b", b, "alter", "orders", "--config", "bogus.key=1"], b"");
    assert!(
        bogus.contains("INVALID_CONFIG (40)") && bogus.contains("bogus.key"),
        "{bogus}"
    );
    ok(
        &["topic", "-b", b, "alter", "orders", "--delete-config", "retention.ms"],
        b"",
    );
    assert_eq!(
        config_value(&broker, "orders", "retention.ms").as_deref(),
        Some("604800000")
    );

    ok(&["topic", "-b", b, "delete", "orders"], b"");
    let deadline = Instant::now() + WAIT;
    while topic_names(&broker).contains("orders") {
        assert!(Instant::now() < deadline, "orders still listed after its deletion");
        std::thread::sleep(Duration::from_millis(50));
    }
    let gone = fails(&["topic", "-b", b, "delete", "orders"], b"");
    assert!(gone.contains("UNKNOWN_TOPIC_OR_PARTITION (3)"), "{gone}");
    let missing = fails(&["topic", "-b", b, "describe", "orders"], b"");
    assert!(missing.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{missing}");
}

#[test]
fn produce_sends_each_line_with_its_key_headers_and_partition() {
    let broker = Broker::start();
    let b = broker.addr.as_str();
    broker.create_topic("lines", 3);
    let input = b"k1:first\nk2:second\nno key here\nk1:third:with:colons\n:empty key\n";
    ok(
        &[
            "produce",
            "-b",
            b,
            "-t",
            "lines",
            "-k",
            ":",
            "-H",
            "trace=abc",
            "-H",
            "origin=cli=1",
        ],
        input,
    );
    let mut records = read_back(&broker, "lines", 3, 5);
    let headers = vec![
        ("trace".to_string(), "abc".to_string()),
        ("origin".to_string(), "cli=1".to_string()),
    ];
    for record in &records {
        assert_eq!(record.3, headers, "{record:?}");
    }
    // Records with one key share a partition, in the order they were read.
    let k1: Vec<&Read4> = records.iter().filter(|r| r.1.as_deref() == Some("k1")).collect();
    assert_eq!(k1.len(), 2);
    assert_eq!(k1[0].0, k1[1].0);
    assert_eq!((k1[0].2.as_str(), k1[1].2.as_str()), ("first", "third:with:colons"));
    records.sort_by(|a, b| a.2.cmp(&b.2));
    let keyed: Vec<(Option<&str>, &str)> = records.iter().map(|r| (r.1.as_deref(), r.2.as_str())).collect();
    assert_eq!(
        keyed,
        [
            (Some(""), "empty key"),
            (Some("k1"), "first"),
            (None, "no key here"),
            (Some("k2"), "second"),
            (Some("k1"), "third:with:colons"),
        ]
    );

    // Many lines to one partition: several requests, every record once and in order.
    let many: String = (0..5000)
        .map(|i| format!("line-{i:05}-{}\n", "x".repeat(200)))
        .collect();
    ok(&["produce", "-b", b, "-t", "many", "-p", "0"], many.as_bytes());
    let values: Vec<String> = read_back(&broker, "many", 1, 5000).into_iter().map(|r| r.2).collect();
    let expected: Vec<String> = many.lines().map(str::to_string).collect();
    assert_eq!(values, expected);

    // Compressed, to an explicit partition, and acks=0, which gets no answer to wait for.
    ok(&["produce", "-b", b, "-t", "lines", "-p", "2", "-z", "zstd"], b"z1\nz2");
    ok(&["produce", "-b", b, "-t", "lines", "-p", "2", "--acks", "0"], b"a1\n");
    let consumer = broker.consumer(&[]);
    let mut list = TopicPartitionList::new();
    list.add_partition_offset("lines", 2, Offset::Beginning).unwrap();
    consumer.assign(&list).unwrap();
    let tail: Vec<String> = consume(&consumer, records.iter().filter(|r| r.0 == 2).count() + 3, |m| {
        String::from_utf8(m.payload().unwrap().to_vec()).unwrap()
    });
    assert_eq!(tail[tail.len() - 3..], ["z1", "z2", "a1"]);

    // Refusals are reported with the broker's error, and the exit status says so.
    broker.create_topic_with("small", 1, &[("max.message.bytes", "1000")]);
    let big = format!("{}\nshort\n", "y".repeat(2000));
    let refused = fails(&["produce", "-b", b, "-t", "small"], big.as_bytes());
    assert!(refused.contains("MESSAGE_TOO_LARGE (10)"), "{refused}");
    assert!(refused.contains("2 of 2 records failed"), "{refused}");
    let no_partition = fails(&["produce", "-b", b, "-t", "small", "-p", "4"], b"x\n");
    assert!(no_partition.contains("has no partition 4"), "{no_partition}");
}

/// Produces five records with keys, headers and timestamps to each of `partitions`.
fn fill(broker: &Broker, topic: &str, partitions: i32, compression: &str) {
    let producer = broker.producer(&[("compression.type", compression)]);
    for p in 0..partitions {
        for i in 0..5 {
            let key = format!("k{p}-{i}");
            let value = format!("v{p}-{i}");
            let trace = format!("t{i}");
            let headers = OwnedHeaders::new().insert(Header {
                key: "trace",
                value: Some(trace.as_str()),
            });
            send(
                &producer,
                BaseRecord::to(topic)
                    .partition(p)
                    .key(key.as_bytes())
                    .payload(value.as_bytes())
                    .headers(headers)
                    .timestamp(1_700_000_000_000 + i64::from(i)),
            );
        }
    }
    flush(&producer);
}

fn sorted_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

#[test]
fn consume_prints_records_in_formats_from_chosen_offsets() {
    let broker = Broker::start();
    let b = broker.addr.as_str();
    broker.create_topic("events", 2);
    fill(&broker, "events", 2, "lz4");

    let values = ok(&["consume", "-b", b, "-t", "events", "-e"], b"");
    let partition_0: Vec<&str> = values.lines().filter(|l| l.starts_with("v0")).collect();
    assert_eq!(
        partition_0,
        ["v0-0", "v0-1", "v0-2", "v0-3", "v0-4"],
        "in order:\n{values}"
    );
    assert_eq!(values.lines().count(), 10, "{values}");

    let formatted = ok(
        &[
            "consume",
            "-b",
            b,
            "-t",
            "events",
            "-e",
            "-f",
            "%t|%p|%o|%k|%s|%h|%T|%K|%S\\n",
        ],
        b"",
    );
    let mut expected: Vec<String> = (0..2)
        .flat_map(|p| {
            (0..5).map(move |i| {
                format!(
                    "events|{p}|{i}|k{p}-{i}|v{p}-{i}|trace=t{i}|{}|4|4",
                    1_700_000_000_000i64 + i
                )
            })
        })
        .collect();
    expected.sort();
    assert_eq!(sorted_lines(&formatted), expected);

    let tail = ok(
        &["consume", "-b", b, "-t", "events", "-o", "-2", "-e", "-f", "%p@%o\\n"],
        b"",
    );
    assert_eq!(sorted_lines(&tail), ["0@3", "0@4", "1@3", "1@4"]);
    let from = ok(
        &["consume", "-b", b, "-t", "events", "-o", "4", "-e", "-f", "%p@%o\\n"],
        b"",
    );
    assert_eq!(sorted_lines(&from), ["0@4", "1@4"]);
    assert_eq!(ok(&["consume", "-b", b, "-t", "events", "-o", "end", "-e"], b""), "");
    let first = ok(&["consume", "-b", b, "-t", "events", "-p", "1", "-n", "3"], b"");
    assert_eq!(first, "v1-0\nv1-1\nv1-2\n");

    // A gzip topic, and one that is empty: -e returns at once with nothing.
    broker.create_topic("squeezed", 1);
    fill(&broker, "squeezed", 1, "gzip");
    let squeezed = ok(&["consume", "-b", b, "-t", "squeezed", "-e", "-f", "%k=%s "], b"");
    assert_eq!(squeezed, "k0-0=v0-0 k0-1=v0-1 k0-2=v0-2 k0-3=v0-3 k0-4=v0-4 ");
    broker.create_topic("quiet", 2);
    assert_eq!(ok(&["consume", "-b", b, "-t", "quiet", "-e"], b""), "");

    // A missing topic is an error, and consuming does not create it.
    let missing = fails(&["consume", "-b", b, "-t", "nowhere", "-e"], b"");
    assert!(missing.contains("topic nowhere does not exist"), "{missing}");
    assert!(!topic_names(&broker).contains("nowhere"));
    let bad_format = fails(&["consume", "-b", b, "-t", "events", "-e", "-f", "%x"], b"");
    assert!(bad_format.contains("%x"), "{bad_format}");
}

fn committed(broker: &Broker, group: &str, topic: &str, partitions: i32) -> Vec<Offset> {
    let consumer: BaseConsumer = broker.consumer(&[("group.id", group)]);
    let mut wanted = TopicPartitionList::new();
    for p in 0..partitions {
        wanted.add_partition(topic, p);
    }
    let got = consumer.committed_offsets(wanted, WAIT).expect("committed offsets");
    (0..partitions)
        .map(|p| got.find_partition(topic, p).unwrap().offset())
        .collect()
}

#[test]
fn consume_with_a_group_commits_and_the_next_run_resumes_there() {
    let broker = Broker::start_with_config("\"group.initial.rebalance.delay.ms\" = 200\n");
    let b = broker.addr.as_str();
    broker.create_topic("work", 2);
    fill(&broker, "work", 2, "none");

    let group = ["consume", "-b", b, "-t", "work", "-g", "workers"];
    let member = |extra: &[&str]| ok(&[&group[..], extra].concat(), b"");
    let first = member(&["-n", "7"]);
    assert_eq!(first.lines().count(), 7, "{first}");
    // What was printed is committed, as other clients see it.
    let offsets = committed(&broker, "workers", "work", 2);
    let total: i64 = offsets
        .iter()
        .map(|o| match o {
            Offset::Offset(n) => *n,
            _ => 0,
        })
        .sum();
    assert_eq!(total, 7, "{offsets:?}");

    let second = member(&["-e"]);
    assert_eq!(second.lines().count(), 3, "{second}");
    let mut all: Vec<&str> = first.lines().chain(second.lines()).collect();
    all.sort_unstable();
    let expected: Vec<String> = (0..2).flat_map(|p| (0..5).map(move |i| format!("v{p}-{i}"))).collect();
    assert_eq!(all, expected, "the second run resumes exactly where the first stopped");
    assert_eq!(
        committed(&broker, "workers", "work", 2),
        [Offset::Offset(5), Offset::Offset(5)]
    );
    assert_eq!(member(&["-e"]), "", "nothing is left for the group");

    let described = ok(&["group", "-b", b, "describe", "workers"], b"");
    assert!(described.contains("Empty"), "{described}");
}

#[test]
fn unknown_groups_and_missing_bench_topics_are_errors() {
    let broker = Broker::start();
    let b = broker.addr.as_str();
    let unknown = fails(&["group", "-b", b, "describe", "nobody"], b"");
    assert!(unknown.contains("group nobody does not exist"), "{unknown}");

    let bench = fails(
        &["bench", "consume", "-b", b, "--topic", "absent", "--duration", "10"],
        b"",
    );
    assert!(bench.contains("topic absent does not exist"), "{bench}");
    assert!(
        !topic_names(&broker).contains("absent"),
        "bench consume created the topic"
    );

    // Produce asks for auto-creation; a broker that will not create the topic is an error.
    let strict = Broker::start_with_config("\"auto.create.topics.enable\" = false\n");
    let refused = fails(&["produce", "-b", &strict.addr, "-t", "absent"], b"x\n");
    assert!(refused.contains("topic absent does not exist"), "{refused}");
}
