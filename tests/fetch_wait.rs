//! A fetch that cannot be answered yet parks (costing no CPU) until a wanted partition grows
//! or its deadline passes; one that can never be answered better (an offset out of range) is
//! answered at once; and responses stay within `max_bytes` but for their first batch.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::raw::{connect, fetch_request, request, response, FETCH_VERSION};
use common::{block_on, Broker, WAIT};
use kafka_protocol::messages::{ApiKey, FetchResponse};
use rdkafka::admin::AdminOptions;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

fn produce(broker: &Broker, topic: &str, count: usize, value_bytes: usize) {
    let producer = broker.producer(&[("acks", "all"), ("linger.ms", "5")]);
    let value = vec![b'x'; value_bytes];
    for _ in 0..count {
        common::send(&producer, BaseRecord::to(topic).payload(&value[..]).key(&[][..]));
    }
    producer.flush(WAIT).expect("acknowledged");
}

fn records_bytes(answer: &FetchResponse) -> Vec<usize> {
    answer.responses[0]
        .partitions
        .iter()
        .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
        .collect()
}

#[test]
fn a_fetch_below_the_log_start_is_answered_at_once() {
    let broker = Broker::start();
    broker.create_topic_with("trimmed", 1, &[("segment.bytes", "4096")]);
    produce(&broker, "trimmed", 100, 100);
    let mut list = TopicPartitionList::new();
    list.add_partition_offset("trimmed", 0, Offset::Offset(50)).unwrap();
    block_on(broker.admin().delete_records(&list, &AdminOptions::new())).expect("delete records");

    let mut stream = connect(&broker);
    let cpu_before = broker.cpu_time();
    let started = Instant::now();
    let fetch = fetch_request("trimmed", &[(0, 10)], 10_000, 1, 1 << 20, 1 << 20);
    stream
        .write_all(&request(ApiKey::Fetch, FETCH_VERSION, 1, &fetch))
        .unwrap();
    let answer: FetchResponse = response(&mut stream, ApiKey::Fetch, FETCH_VERSION, 1);
    let waited = started.elapsed();
    let partition = &answer.responses[0].partitions[0];
    assert_eq!(partition.error_code, 1, "OFFSET_OUT_OF_RANGE");
    assert_eq!(partition.log_start_offset, 50);
    assert!(
        waited < Duration::from_secs(2),
        "an out-of-range fetch waited {waited:?}"
    );
    assert!(broker.cpu_time() - cpu_before < Duration::from_millis(500));
}

#[test]
fn waiting_for_min_bytes_costs_no_cpu_and_blocks_nobody() {
    // One shard, so a spinning fetch would starve everything else on it.
    let broker = Broker::start_with(&["--cores", "0"]);
    broker.create_topic("slow", 1);
    produce(&broker, "slow", 3, 100);
    // Three fetches that want 1 MB where 3 records are: each must park for its 3 s.
    let mut streams: Vec<_> = (0..3).map(|_| connect(&broker)).collect();
    let cpu_before = broker.cpu_time();
    let started = Instant::now();
    for (i, stream) in streams.iter_mut().enumerate() {
        let fetch = fetch_request("slow", &[(0, 0)], 3000, 1_000_000, 50 << 20, 1 << 20);
        stream
            .write_all(&request(ApiKey::Fetch, FETCH_VERSION, i as i32, &fetch))
            .unwrap();
    }
    // While they wait, metadata and produce on the same shard are answered promptly.
    let metadata_started = Instant::now();
    broker
        .producer(&[])
        .client()
        .fetch_metadata(Some("slow"), WAIT)
        .expect("metadata");
    assert!(
        metadata_started.elapsed() < Duration::from_secs(1),
        "metadata took {:?} beside waiting fetches",
        metadata_started.elapsed()
    );
    for (i, stream) in streams.iter_mut().enumerate() {
        let answer: FetchResponse = response(stream, ApiKey::Fetch, FETCH_VERSION, i as i32);
        assert_eq!(answer.responses[0].partitions[0].error_code, 0);
        assert!(
            records_bytes(&answer)[0] > 0,
            "the records there are returned at the deadline"
        );
    }
    let waited = started.elapsed();
    let cpu = broker.cpu_time() - cpu_before;
    assert!(
        waited >= Duration::from_millis(2900),
        "answered after {waited:?}, before max_wait"
    );
    // Parked fetches cost nothing; what is counted is the metadata client and three answers.
    assert!(
        cpu < Duration::from_millis(700),
        "{cpu:?} of broker CPU while fetches waited"
    );
}

#[test]
fn a_waiting_fetch_wakes_when_min_bytes_arrive() {
    let broker = Broker::start();
    broker.create_topic("growing", 1);
    produce(&broker, "growing", 1, 100);
    let mut stream = connect(&broker);
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let fetch = fetch_request("growing", &[(0, 0)], 60_000, 20_000, 50 << 20, 1 << 20);
    let started = Instant::now();
    stream
        .write_all(&request(ApiKey::Fetch, FETCH_VERSION, 1, &fetch))
        .unwrap();
    // 30 KB more in several appends: the fetch must wake on the one that passes 20 KB.
    for _ in 0..3 {
        produce(&broker, "growing", 10, 1000);
    }
    let answer: FetchResponse = response(&mut stream, ApiKey::Fetch, FETCH_VERSION, 1);
    assert!(records_bytes(&answer)[0] >= 20_000, "{:?}", records_bytes(&answer));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "woke after {:?}",
        started.elapsed()
    );
}

#[test]
fn librdkafka_with_a_large_fetch_min_bytes_and_a_slow_producer() {
    let broker = Broker::start_with(&["--cores", "0"]);
    broker.create_topic("trickle", 1);
    let consumer = broker.consumer(&[("fetch.min.bytes", "1000000"), ("fetch.wait.max.ms", "500")]);
    common::assign(&consumer, "trickle", 1, Offset::Beginning);
    let producer = broker.producer(&[("acks", "all"), ("message.timeout.ms", "5000")]);
    let started = Instant::now();
    let text = |m: &rdkafka::message::BorrowedMessage<'_>| {
        use rdkafka::Message;
        String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap()
    };
    let mut values = Vec::new();
    for i in 0..40 {
        let value = format!("slow-{i}");
        common::send(
            &producer,
            BaseRecord::to("trickle").payload(value.as_bytes()).key(&[][..]),
        );
        producer.flush(Duration::from_secs(5)).expect("acknowledged within 5 s");
        if let Some(message) = consumer.poll(Duration::from_millis(50)) {
            values.push(text(&message.expect("no consumer error")));
        }
    }
    let rest = 40 - values.len();
    values.extend(common::consume(&consumer, rest, text));
    assert_eq!(values, (0..40).map(|i| format!("slow-{i}")).collect::<Vec<_>>());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn responses_stay_within_max_bytes_but_for_their_first_batch() {
    let broker = Broker::start();
    broker.create_topic("wide", 2);
    // About 2 MB per partition in batches of up to 100 KB or so.
    for partition in 0..2 {
        let producer = broker.producer(&[("acks", "all"), ("linger.ms", "20"), ("batch.size", "100000")]);
        let value = vec![b'y'; 1000];
        for _ in 0..2000 {
            common::send(
                &producer,
                BaseRecord::to("wide")
                    .partition(partition)
                    .payload(&value[..])
                    .key(&[][..]),
            );
        }
        producer.flush(WAIT).unwrap();
    }
    let mut stream = connect(&broker);
    // 1 MB per response, 20 MB per partition: the answer is at most 1 MB of whole batches.
    let fetch = fetch_request("wide", &[(0, 0), (1, 0)], 0, 1, 1_000_000, 20_000_000);
    stream
        .write_all(&request(ApiKey::Fetch, FETCH_VERSION, 1, &fetch))
        .unwrap();
    let answer: FetchResponse = response(&mut stream, ApiKey::Fetch, FETCH_VERSION, 1);
    let sizes = records_bytes(&answer);
    assert!(sizes[0] > 0, "the first partition returns data: {sizes:?}");
    assert!(sizes.iter().sum::<usize>() <= 1_000_000, "{sizes:?} over max_bytes");

    // A max_bytes smaller than one batch still returns exactly that first batch.
    let fetch = fetch_request("wide", &[(0, 0), (1, 0)], 0, 1, 10, 20_000_000);
    stream
        .write_all(&request(ApiKey::Fetch, FETCH_VERSION, 2, &fetch))
        .unwrap();
    let answer: FetchResponse = response(&mut stream, ApiKey::Fetch, FETCH_VERSION, 2);
    let sizes = records_bytes(&answer);
    let records = answer.responses[0].partitions[0].records.clone().unwrap();
    let first_batch = 12 + i32::from_be_bytes(records[8..12].try_into().unwrap()) as usize;
    assert_eq!(sizes, vec![first_batch, 0], "one whole batch, nothing more");

    // The broker's fetch.max.bytes caps what a client asks for.
    drop(stream);
    let capped = Broker::start_with_config("\"fetch.max.bytes\" = 300000\n");
    capped.create_topic("wide", 1);
    let producer = capped.producer(&[("acks", "all"), ("linger.ms", "20"), ("batch.size", "50000")]);
    let value = vec![b'z'; 1000];
    for _ in 0..2000 {
        common::send(&producer, BaseRecord::to("wide").payload(&value[..]).key(&[][..]));
    }
    producer.flush(WAIT).unwrap();
    let mut stream = connect(&capped);
    let fetch = fetch_request("wide", &[(0, 0)], 0, 1, 50 << 20, 50 << 20);
    stream
        .write_all(&request(ApiKey::Fetch, FETCH_VERSION, 3, &fetch))
        .unwrap();
    let answer: FetchResponse = response(&mut stream, ApiKey::Fetch, FETCH_VERSION, 3);
    let sizes = records_bytes(&answer);
    assert!(sizes[0] > 0 && sizes[0] <= 300_000, "{sizes:?} over fetch.max.bytes");
}

#[test]
fn a_spent_fetch_read_budget_defers_partitions_without_starving_them() {
    // One shard with 1 MiB for fetch reads: a fetch of two full partitions gets the first and
    // nothing of the second this time; a consumer still reads both to the end.
    let broker = Broker::start_with(&[
        "--cores",
        "0",
        "--config",
        &config_file("\"fetch.read.memory.bytes\" = 1048576\n"),
    ]);
    broker.create_topic("budgeted", 2);
    for partition in 0..2 {
        let producer = broker.producer(&[("acks", "all"), ("linger.ms", "20"), ("batch.size", "100000")]);
        let value = vec![b'b'; 1000];
        for _ in 0..1500 {
            common::send(
                &producer,
                BaseRecord::to("budgeted")
                    .partition(partition)
                    .payload(&value[..])
                    .key(&[][..]),
            );
        }
        producer.flush(WAIT).unwrap();
    }
    let mut stream = connect(&broker);
    let fetch = fetch_request("budgeted", &[(0, 0), (1, 0)], 0, 1, 50 << 20, 1 << 20);
    stream
        .write_all(&request(ApiKey::Fetch, FETCH_VERSION, 1, &fetch))
        .unwrap();
    let answer: FetchResponse = response(&mut stream, ApiKey::Fetch, FETCH_VERSION, 1);
    let sizes = records_bytes(&answer);
    assert!(sizes[0] > 0 && sizes[0] <= (1 << 20) + 200_000, "{sizes:?}");
    assert_eq!(sizes[1], 0, "the second partition waits for budget: {sizes:?}");

    let consumer = broker.consumer(&[]);
    common::assign(&consumer, "budgeted", 2, Offset::Beginning);
    let partitions = common::consume(&consumer, 3000, |m| {
        use rdkafka::Message;
        m.partition()
    });
    assert_eq!(partitions.iter().filter(|&&p| p == 1).count(), 1500);
}

/// Writes `toml` to a config file that lives as long as the test process.
fn config_file(toml: &str) -> String {
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join("sluice.toml");
    std::fs::write(&path, toml).unwrap();
    path.to_str().unwrap().to_string()
}

/// Cross-shard hops taken by one fetch of `partitions` (offset 0 each) of the empty `topic`,
/// sent on a fresh connection with a 300 ms max wait, which it must wait out and answer
/// empty. The metrics scrapes that count the hops are hops themselves (a scrape gathers every
/// shard's metrics), so their own cost is measured and taken off.
fn hops_of_waiting_fetch(broker: &Broker, topic: &str, partitions: &[(i32, i64)], correlation_id: i32) -> u64 {
    let mut stream = connect(broker);
    let first = broker.counter("cross_shard_hops_total");
    let before = broker.counter("cross_shard_hops_total");
    let scrape = before - first;
    let started = Instant::now();
    let fetch = fetch_request(topic, partitions, 300, 1, 1 << 20, 1 << 20);
    stream
        .write_all(&request(ApiKey::Fetch, FETCH_VERSION, correlation_id, &fetch))
        .unwrap();
    let answer: FetchResponse = response(&mut stream, ApiKey::Fetch, FETCH_VERSION, correlation_id);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "waited out max_wait_ms"
    );
    assert_eq!(records_bytes(&answer), vec![0; partitions.len()]);
    broker.counter("cross_shard_hops_total") - before - scrape
}

/// A long-poll over partitions on both shards costs two hops per shard it waits on, at most:
/// the read that also registers the watch, and the read at the end. Before, it took three (a
/// read, a wait, a read).
#[test]
fn a_long_poll_across_shards_registers_its_watch_in_the_read_hop() {
    let broker = Broker::start();
    // Two partitions: placement puts them on both shards of the two-shard broker.
    broker.create_topic("two-shards", 2);
    for correlation_id in 1..=4 {
        let hops = hops_of_waiting_fetch(&broker, "two-shards", &[(0, 0), (1, 0)], correlation_id);
        assert!(
            hops <= 2,
            "connection {correlation_id}: a waiting fetch took {hops} hops"
        );
    }
}

/// A long-poll whose partitions all live on one shard costs one cross-shard hop at most (the
/// owner reads, parks and reads again itself), however long it waits; before, a waiting fetch
/// took a hop to read, one to register its wait and one to read again. Several connections,
/// so some land on the shard that does not own the partition.
#[test]
fn a_long_poll_on_one_shards_partitions_costs_at_most_one_hop() {
    let broker = Broker::start();
    broker.create_topic("one-shard", 1);
    for correlation_id in 1..=6 {
        let hops = hops_of_waiting_fetch(&broker, "one-shard", &[(0, 0)], correlation_id);
        assert!(
            hops <= 1,
            "connection {correlation_id}: a waiting fetch took {hops} hops"
        );
    }
}
