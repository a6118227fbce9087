//! The Prometheus endpoint: per-shard counters and histograms that move with real traffic.

mod common;

use common::{assign, consume, flush, send, Broker};
use rdkafka::producer::BaseRecord;
use rdkafka::Offset;

/// The sum over shards of a sample whose line starts with `prefix` (name and leading labels).
fn total(body: &str, name: &str, label: Option<&str>) -> f64 {
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.split(['{', ' ']).next() == Some(name))
        .filter(|line| label.is_none_or(|l| line.contains(l)))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[test]
fn metrics_count_requests_bytes_flushes_and_partitions_per_shard() {
    let broker = Broker::start();
    broker.create_topic("measured", 4);
    let producer = broker.producer(&[]);
    for i in 0..500 {
        let value = format!("value-{i}");
        send(
            &producer,
            BaseRecord::to("measured").key(&b"k"[..]).payload(value.as_bytes()),
        );
    }
    flush(&producer);
    let consumer = broker.consumer(&[]);
    assign(&consumer, "measured", 4, Offset::Beginning);
    consume(&consumer, 500, |_| ());

    let (status, body) = broker.scrape("/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    for shard in ["0", "1"] {
        assert!(
            body.contains(&format!("sluice_partitions{{shard=\"{shard}\"}}")),
            "shard {shard} reports: {body}"
        );
    }
    // The offsets and transaction state topics' 50 partitions each and the 4 created here.
    assert_eq!(total(&body, "sluice_partitions", None), 104.0);
    assert!(total(&body, "sluice_requests_total", Some("api=\"Produce\"")) >= 1.0);
    assert!(total(&body, "sluice_requests_total", Some("api=\"Fetch\"")) >= 1.0);
    assert!(total(&body, "sluice_requests_total", Some("api=\"Metadata\"")) >= 1.0);
    assert!(total(&body, "sluice_bytes_received_total", None) > 500.0 * 7.0);
    assert!(total(&body, "sluice_bytes_sent_total", None) > 500.0 * 7.0);
    assert!(total(&body, "sluice_produce_latency_microseconds_count", None) >= 1.0);
    assert!(total(&body, "sluice_flush_latency_microseconds_count", None) >= 1.0);
    // Every produce request is counted once in each of its stages, on whichever shard ran it.
    let produces = total(&body, "sluice_requests_total", Some("api=\"Produce\""));
    for stage in [
        "read",
        "decode",
        "route",
        "write_wait",
        "write",
        "flush_wait",
        "response_wait",
        "response_write",
    ] {
        let label = format!("stage=\"{stage}\"");
        let counted = total(&body, "sluice_produce_stage_nanoseconds_count", Some(&label));
        assert!(
            counted >= 1.0 && counted <= produces * 4.0,
            "{stage}: {counted} of {produces} produces"
        );
    }
    assert_eq!(
        total(
            &body,
            "sluice_produce_stage_nanoseconds_count",
            Some("stage=\"decode\"")
        ),
        produces
    );
    assert_eq!(
        total(&body, "sluice_flush_records_sum", None),
        500.0,
        "every record flushed once"
    );
    assert!(
        total(&body, "sluice_cache_hits_total", None) >= 1.0,
        "tailing reads come from the cache"
    );
    assert!(total(&body, "sluice_io_file_writes_total", None) >= 1.0);
    assert!(
        total(&body, "sluice_connections", None) >= 2.0,
        "producer and consumer are connected"
    );
    assert_eq!(
        total(&body, "sluice_request_errors_total", Some("api=\"Produce\"")),
        0.0,
        "no produce failed"
    );

    let (status, _) = broker.scrape("/other");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}
