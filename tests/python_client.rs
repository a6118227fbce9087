//! Cross-implementation round trip: librdkafka produces and kafka-python consumes, then
//! kafka-python produces (gzip, headers) and librdkafka consumes. The Python client comes from
//! the virtualenv `scripts/test.sh` installs (or `SLUICE_PYTHON`).

mod common;

use std::collections::HashSet;

use common::{assign, consume, flush, send, Broker};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::BaseRecord;
use rdkafka::Offset;

const FROM_RDKAFKA: usize = 2_000;
const FROM_PYTHON: usize = 3_000;

#[test]
fn kafka_python_and_librdkafka_read_each_others_records() {
    let broker = Broker::start();
    broker.create_topic("from-rdkafka", 4);
    let producer = broker.producer(&[]);
    for i in 0..FROM_RDKAFKA {
        let headers = OwnedHeaders::new().insert(Header {
            key: "n",
            value: Some(i.to_string().as_bytes()),
        });
        send(
            &producer,
            BaseRecord::to("from-rdkafka")
                .key(format!("key-{}", i % 10).as_bytes())
                .payload(i.to_string().as_bytes())
                .headers(headers),
        );
    }
    flush(&producer);

    let (from_rdkafka, from_python) = (FROM_RDKAFKA.to_string(), FROM_PYTHON.to_string());
    common::run_python("roundtrip.py", &[broker.addr.as_str(), &from_rdkafka, &from_python]);

    let consumer = broker.consumer(&[]);
    assign(&consumer, "from-python", 3, Offset::Beginning);
    let mut seen = HashSet::new();
    for (i, key, header) in consume(&consumer, FROM_PYTHON, |m| {
        let i: usize = std::str::from_utf8(m.payload().unwrap()).unwrap().parse().unwrap();
        let header = m.headers().map(|h| h.get(0).value.map(|v| v.to_vec()));
        (i, m.key().map(|k| k.to_vec()), header)
    }) {
        assert!(seen.insert(i), "record {i} consumed twice");
        assert_eq!(key, Some(format!("key-{}", i % 7).into_bytes()));
        assert_eq!(header, Some(Some(i.to_string().into_bytes())));
    }
    assert_eq!(seen.len(), FROM_PYTHON);
}

/// kafka-python as a group member: joins, commits, leaves; a second member resumes at the
/// commit. The coordinator code path is the same one librdkafka uses, from another client.
#[test]
fn kafka_python_group_consumer_commits_and_resumes() {
    let broker = Broker::start_with_config("\"group.initial.rebalance.delay.ms\" = 200\n");
    broker.create_topic("python-group-topic", 3);
    let producer = broker.producer(&[]);
    for i in 0..900 {
        let value = i.to_string();
        send(
            &producer,
            BaseRecord::to("python-group-topic")
                .key(value.as_bytes())
                .payload(value.as_bytes()),
        );
    }
    flush(&producer);
    common::run_python("group.py", &[broker.addr.as_str(), "python-group-topic", "900", "400"]);
}

/// kafka-python's and aiokafka's transactional producers commit and abort; each library's
/// read_committed consumer sees the committed records only, and the offsets aiokafka sent in
/// its transaction become the group's committed offset.
#[test]
fn python_transactional_producers_commit_and_abort() {
    let broker = Broker::start();
    broker.create_topic("python-txn", 1);
    common::run_python(
        "transactional.py",
        &[broker.addr.as_str(), "python-txn", "python-txn-group"],
    );
}
