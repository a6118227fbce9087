//! `sluice bench` against a real broker: produce, consume and e2e runs move exactly the
//! records asked for, report latencies for each, and what they wrote is readable by librdkafka.

mod common;

use std::process::Command;

use common::{Broker, WAIT};
use rdkafka::consumer::Consumer;

fn bench(broker: &Broker, args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["bench", "-b", &broker.addr, "--json", "--duration", "60"])
        .args(args)
        .output()
        .expect("run sluice bench");
    assert!(
        output.status.success(),
        "sluice bench {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "bench printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[test]
fn produce_consume_and_e2e_runs_move_every_record() {
    let broker = Broker::start();
    let produced = bench(
        &broker,
        &[
            "produce",
            "--topic",
            "load",
            "--partitions",
            "3",
            "--records",
            "30000",
            "--acks",
            "-1",
        ],
    );
    assert_eq!(produced["produced"], 30000);
    assert_eq!(produced["errors"], 0);
    assert_eq!(produced["produce_to_ack"]["count"], 30000, "a latency per record");
    assert!(produced["records_per_second"].as_f64().unwrap() > 0.0);

    // librdkafka sees exactly those records.
    let consumer = broker.consumer(&[]);
    let total: i64 = (0..3)
        .map(|p| consumer.fetch_watermarks("load", p, WAIT).expect("watermarks").1)
        .sum();
    assert_eq!(total, 30000);

    let consumed = bench(&broker, &["consume", "--topic", "load", "--consumers", "2"]);
    assert_eq!(consumed["consumed"], 30000, "a consume run reads what the topic holds");

    let compressed = bench(
        &broker,
        &[
            "produce",
            "--topic",
            "squeezed",
            "--records",
            "5000",
            "--compression",
            "lz4",
            "--record-size",
            "1024",
        ],
    );
    assert_eq!(compressed["produced"], 5000);

    let e2e = bench(
        &broker,
        &["e2e", "--topic", "load", "--records", "4000", "--rate", "4000"],
    );
    assert_eq!(e2e["produced"], 4000);
    assert_eq!(e2e["consumed"], 4000);
    assert_eq!(
        e2e["produce_to_consume"]["count"], 4000,
        "a produce-to-consume latency per record"
    );
    let p99 = e2e["produce_to_consume"]["p99_ms"].as_f64().unwrap();
    assert!(p99 > 0.0, "latencies are measured: p99 {p99} ms");
}

#[test]
fn bench_refuses_bad_options_with_a_message() {
    let broker = Broker::start();
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["bench", "produce", "-b", &broker.addr, "--acks", "2"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--acks"));
}

/// `--progress-ms` sets how often the progress line is printed, and each line's latencies are
/// those of the records acknowledged in its interval: a run at a fixed rate for about 1.5 s
/// prints a line every 100 ms, each with its p50, p99 and max.
#[test]
fn progress_lines_report_each_intervals_own_latency() {
    let broker = Broker::start();
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "bench",
            "-b",
            &broker.addr,
            "--json",
            "--duration",
            "60",
            "--progress-ms",
            "100",
        ])
        .args([
            "produce",
            "--topic",
            "paced",
            "--partitions",
            "1",
            "--records",
            "3000",
            "--rate",
            "2000",
        ])
        .output()
        .expect("run sluice bench");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(" records/s ")).collect();
    assert!(lines.len() >= 8, "a line every 100 ms over about 1.5 s: {stderr}");
    let with_latency = lines
        .iter()
        .filter(|l| l.contains(" p50 ") && l.contains(" p99 ") && l.contains(" max "))
        .count();
    assert!(
        with_latency >= lines.len() - 2,
        "every interval that acknowledged records reports their latency: {stderr}"
    );
}
