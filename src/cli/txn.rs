//! `sluice txn list|describe`: transactions over the Kafka protocol. `list` asks every broker
//! (each lists the ids it coordinates); `describe` asks the id's coordinator.

use anyhow::Context;
use clap::{Args, Subcommand};
use kafka_protocol::messages::{
    DescribeClusterRequest, DescribeTransactionsRequest, FindCoordinatorRequest, ListTransactionsRequest,
    TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use crate::cli::client::{self, Client};

/// FindCoordinator's key type for transactional ids.
const KEY_TYPE_TRANSACTION: i8 = 1;

#[derive(Args, Debug)]
pub struct TxnArgs {
    /// A broker to start from.
    #[arg(long, short = 'b', default_value = "127.0.0.1:9092", value_name = "HOST:PORT")]
    bootstrap: String,
    #[command(subcommand)]
    command: TxnCommand,
}

#[derive(Subcommand, Debug)]
enum TxnCommand {
    /// Every transactional id with its producer id and state.
    List,
    /// A transactional id's state, producer id and epoch, timeout and open partitions.
    Describe { transactional_id: String },
}

pub fn run(args: TxnArgs) -> anyhow::Result<()> {
    let mut client = Client::connect(&args.bootstrap)?;
    match args.command {
        TxnCommand::List => list(&mut client),
        TxnCommand::Describe { transactional_id } => describe(&mut client, &transactional_id),
    }
}

fn list(client: &mut Client) -> anyhow::Result<()> {
    let cluster = client.call(0, &DescribeClusterRequest::default())?;
    client::check(cluster.error_code, cluster.error_message.as_ref(), "DescribeCluster")?;
    let mut rows = Vec::new();
    for broker in &cluster.brokers {
        let address = format!("{}:{}", broker.host.as_str(), broker.port);
        let mut each = Client::connect(&address).with_context(|| format!("broker {}", broker.broker_id.0))?;
        let listed = each.call(1, &ListTransactionsRequest::default())?;
        client::check(listed.error_code, None, format!("ListTransactions on {address}"))?;
        for state in listed.transaction_states {
            rows.push((
                state.transactional_id.0.to_string(),
                state.producer_id.0,
                state.transaction_state.to_string(),
                broker.broker_id.0,
            ));
        }
    }
    rows.sort();
    println!(
        "{:<40} {:>12} {:<16} COORDINATOR",
        "TRANSACTIONAL-ID", "PRODUCER-ID", "STATE"
    );
    for (id, producer_id, state, coordinator) in rows {
        println!("{id:<40} {producer_id:>12} {state:<16} {coordinator}");
    }
    Ok(())
}

fn describe(client: &mut Client, id: &str) -> anyhow::Result<()> {
    let found = client.call(
        3,
        &FindCoordinatorRequest::default()
            .with_key(StrBytes::from_string(id.to_string()))
            .with_key_type(KEY_TYPE_TRANSACTION),
    )?;
    client::check(found.error_code, found.error_message.as_ref(), "FindCoordinator")?;
    let address = format!("{}:{}", found.host.as_str(), found.port);
    let mut coordinator = Client::connect(&address).with_context(|| format!("the coordinator of {id}"))?;
    let described = coordinator.call(
        0,
        &DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(StrBytes::from_string(id.to_string()))]),
    )?;
    let state = described
        .transaction_states
        .into_iter()
        .next()
        .context("DescribeTransactions answered nothing")?;
    client::check(state.error_code, None, format!("DescribeTransactions {id}"))?;
    println!("transactional id {id}, coordinator {}", found.node_id.0);
    println!("  state        {}", state.transaction_state.as_str());
    println!(
        "  producer     id {} epoch {}",
        state.producer_id.0, state.producer_epoch
    );
    println!("  timeout      {} ms", state.transaction_timeout_ms);
    if state.transaction_start_time_ms >= 0 {
        println!(
            "  started      {} (ms since the epoch)",
            state.transaction_start_time_ms
        );
    }
    for topic in state.topics {
        let partitions: Vec<String> = topic.partitions.iter().map(|p| p.to_string()).collect();
        println!("  partitions   {} [{}]", topic.topic.0.as_str(), partitions.join(","));
    }
    Ok(())
}
