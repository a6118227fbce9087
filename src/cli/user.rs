//! `sluice user add|list|remove`: SCRAM users over the Kafka protocol
//! (AlterUserScramCredentials, DescribeUserScramCredentials), as `kafka-configs.sh
//! --alter --add-config SCRAM-SHA-512=[password=...]` manages them. The password is salted
//! and hashed here; only the salted password travels (inside the connection's TLS, if any).

use anyhow::anyhow;
use clap::{Args, Subcommand};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::{AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest};
use kafka_protocol::protocol::StrBytes;

use crate::cli::client::{check, Client};
use crate::sasl::scram::{salted_password, ScramHash};
use crate::sasl::Mechanism;

#[derive(Args, Debug)]
pub struct UserArgs {
    /// A broker to start from.
    #[arg(
        long,
        short = 'b',
        global = true,
        default_value = "127.0.0.1:9092",
        value_name = "HOST:PORT"
    )]
    bootstrap: String,
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Adds a user, or changes its password, for one or both SCRAM mechanisms.
    Add {
        name: String,
        #[arg(long)]
        password: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512; both when left out.
        #[arg(long)]
        mechanism: Option<String>,
        #[arg(long, default_value_t = crate::sasl::SCRAM_ITERATIONS)]
        iterations: u32,
    },
    /// Every user with SCRAM credentials, and each credential's mechanism and iterations.
    List,
    /// Removes a user's credential for one mechanism, or for both.
    Remove {
        name: String,
        #[arg(long)]
        mechanism: Option<String>,
    },
}

pub fn run(args: UserArgs) -> anyhow::Result<()> {
    let mut client = Client::connect(&args.bootstrap)?;
    match args.command {
        UserCommand::Add {
            name,
            password,
            mechanism,
            iterations,
        } => add(&mut client, &name, &password, mechanism.as_deref(), iterations),
        UserCommand::List => list(&mut client),
        UserCommand::Remove { name, mechanism } => remove(&mut client, &name, mechanism.as_deref()),
    }
}

/// The SCRAM mechanisms a flag names: one, or both.
fn mechanisms(flag: Option<&str>) -> anyhow::Result<Vec<Mechanism>> {
    match flag {
        None => Ok(vec![Mechanism::ScramSha256, Mechanism::ScramSha512]),
        Some(name) => match Mechanism::parse(&name.to_ascii_uppercase()) {
            Some(m) if m.scram_type().is_some() => Ok(vec![m]),
            _ => Err(anyhow!("--mechanism {name}: expected SCRAM-SHA-256 or SCRAM-SHA-512")),
        },
    }
}

fn alter(client: &mut Client, request: AlterUserScramCredentialsRequest, what: &str) -> anyhow::Result<()> {
    let response = client.call(0, &request)?;
    for result in &response.results {
        check(
            result.error_code,
            result.error_message.as_ref(),
            format!("{what} {}", result.user.as_str()),
        )?;
    }
    Ok(())
}

fn add(
    client: &mut Client,
    name: &str,
    password: &str,
    mechanism: Option<&str>,
    iterations: u32,
) -> anyhow::Result<()> {
    // One request per mechanism: Kafka refuses a user altered twice in one request.
    for mechanism in mechanisms(mechanism)? {
        let hash = if mechanism == Mechanism::ScramSha256 {
            ScramHash::Sha256
        } else {
            ScramHash::Sha512
        };
        let salt = crate::sasl::random_bytes(32);
        let salted = salted_password(hash, password, &salt, iterations);
        let upsertion = ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_string(name.to_string()))
            .with_mechanism(mechanism.scram_type().expect("a SCRAM mechanism"))
            .with_iterations(iterations as i32)
            .with_salt(salt.into())
            .with_salted_password(salted.into());
        alter(
            client,
            AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion]),
            "adding",
        )?;
        println!("user {name}: {} set", mechanism.name());
    }
    Ok(())
}

fn list(client: &mut Client) -> anyhow::Result<()> {
    let response = client.call(0, &DescribeUserScramCredentialsRequest::default().with_users(None))?;
    check(response.error_code, response.error_message.as_ref(), "listing users")?;
    for result in &response.results {
        check(result.error_code, result.error_message.as_ref(), result.user.as_str())?;
        let credentials: Vec<String> = result
            .credential_infos
            .iter()
            .map(|c| {
                let mechanism = Mechanism::from_scram_type(c.mechanism).map_or("UNKNOWN", Mechanism::name);
                format!("{mechanism} ({} iterations)", c.iterations)
            })
            .collect();
        println!("{}: {}", result.user.as_str(), credentials.join(", "));
    }
    Ok(())
}

fn remove(client: &mut Client, name: &str, mechanism: Option<&str>) -> anyhow::Result<()> {
    let wanted = mechanisms(mechanism)?;
    // Removing both: only the mechanisms the user has, as Kafka refuses deleting a missing one.
    let response = client.call(
        0,
        &DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
            kafka_protocol::messages::describe_user_scram_credentials_request::UserName::default()
                .with_name(StrBytes::from_string(name.to_string())),
        ])),
    )?;
    let has: Vec<i8> = response
        .results
        .iter()
        .flat_map(|r| r.credential_infos.iter().map(|c| c.mechanism))
        .collect();
    let codes: Vec<i8> = wanted
        .into_iter()
        .filter_map(|m| m.scram_type())
        .filter(|code| mechanism.is_some() || has.contains(code))
        .collect();
    if codes.is_empty() {
        anyhow::bail!("user {name} has no SCRAM credentials");
    }
    for code in codes {
        let deletion = ScramCredentialDeletion::default()
            .with_name(StrBytes::from_string(name.to_string()))
            .with_mechanism(code);
        alter(
            client,
            AlterUserScramCredentialsRequest::default().with_deletions(vec![deletion]),
            "removing",
        )?;
    }
    println!("user {name} removed");
    Ok(())
}
