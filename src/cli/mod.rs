//! Command-line entry: one file per subcommand.

pub mod acl;
pub mod bench;
pub mod client;
pub mod cluster;
pub mod consume;
pub mod group;
pub mod produce;
pub mod security;
pub mod serve;
pub mod topic;
pub mod txn;
pub mod user;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "A Kafka-compatible event-streaming broker, thread-per-core on io_uring"
)]
struct Cli {
    #[command(flatten)]
    security: security::SecurityArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker.
    Serve(serve::ServeArgs),
    /// Create, list, describe, alter and delete topics (over the Kafka protocol; any
    /// Kafka-compatible broker).
    Topic(topic::TopicArgs),
    /// Inspect consumer groups (over the Kafka protocol; any Kafka-compatible broker).
    Group(group::GroupArgs),
    /// Inspect transactions (over the Kafka protocol; any Kafka-compatible broker).
    Txn(txn::TxnArgs),
    /// The brokers, the active controller and quorum, and under-replicated and offline
    /// partitions.
    Cluster(cluster::ClusterArgs),
    /// Produce one record per line of stdin, like `kcat -P`.
    Produce(produce::ProduceArgs),
    /// Print a topic's records, like `kcat -C`.
    Consume(consume::ConsumeArgs),
    /// Load generator: produce, consume or end-to-end against any Kafka-compatible broker.
    Bench(bench::BenchArgs),
    /// Add, list and remove ACLs (over the Kafka protocol; any Kafka-compatible broker).
    Acl(acl::AclArgs),
    /// Add, list and remove SCRAM users (over the Kafka protocol).
    User(user::UserArgs),
}

pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        // A client's output piped into `head` ends it quietly, as for any Unix tool, instead
        // of a panic on the closed pipe. The broker keeps Rust's default (SIGPIPE ignored).
        // SAFETY: setting a signal's disposition to the default before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // openraft logs every failed message to an unreachable voter; the cluster thread logs
    // reachability changes itself. A SLUICE_LOG that names openraft keeps its own level.
    if !std::env::var("SLUICE_LOG").is_ok_and(|f| f.contains("openraft")) {
        filter = filter.add_directive("openraft=off".parse().expect("a valid directive"));
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal: log files and pipes get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(e) = check_security(&cli) {
        eprintln!("sluice: {e:#}");
        return std::process::ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Topic(args) => topic::run(args),
        Command::Group(args) => group::run(args),
        Command::Txn(args) => txn::run(args),
        Command::Cluster(args) => cluster::run(args),
        Command::Produce(args) => produce::run(args),
        Command::Consume(args) => consume::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Acl(args) => acl::run(args),
        Command::User(args) => user::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The client subcommands' security flags, taken for every connection; `serve` has its own
/// (the listeners of its config).
fn check_security(cli: &Cli) -> anyhow::Result<()> {
    if matches!(cli.command, Command::Serve(_)) {
        if cli.security.is_set() {
            anyhow::bail!(
                "the client security flags are not for serve: its listeners are configured in its config file"
            );
        }
        return Ok(());
    }
    security::install(&cli.security)
}

/// A `key=value` argument (`--config`, `-H`), split at the first `=`.
fn key_value(argument: &str) -> Result<(String, String), String> {
    match argument.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected key=value, got {argument:?}")),
    }
}
