//! Start-up refuses what would make two brokers share state: a listen address another
//! process listens on, and a data dir another broker holds.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Broker, WAIT};
use rdkafka::producer::Producer;

/// Runs `sluice serve` with `args` and waits (bounded) for it to exit on its own.
fn serve_expecting_exit(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("serve")
        .args(["--cores", "0", "--metrics-listen", "127.0.0.1:0"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start sluice");
    let deadline = Instant::now() + WAIT;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the second broker kept running: it should have refused to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn a_second_broker_on_the_same_port_refuses_to_start() {
    let first = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let output = serve_expecting_exit(&["--listen", &first.addr, "--data-dir", data.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "exit status {}", output.status);
    assert!(stderr.contains("address already in use"), "stderr: {stderr}");
    // The first broker still serves everything.
    first
        .producer(&[])
        .client()
        .fetch_metadata(None, WAIT)
        .expect("the first broker answers");
}

#[test]
fn a_second_broker_on_the_same_data_dir_refuses_to_start() {
    let mut first = Broker::start();
    first.create_topic("kept", 1);
    let data = first.data_dir().to_str().unwrap().to_string();
    let output = serve_expecting_exit(&["--listen", "127.0.0.1:0", "--data-dir", &data]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "exit status {}", output.status);
    assert!(
        stderr.contains("is in use by process") && stderr.contains(".lock"),
        "stderr: {stderr}"
    );
    // Once the first broker is gone, the lock goes with it, even after SIGKILL.
    first.kill();
    first.restart();
    let metadata = first
        .producer(&[])
        .client()
        .fetch_metadata(Some("kept"), WAIT)
        .expect("metadata");
    assert_eq!(metadata.topics()[0].partitions().len(), 1);
}
