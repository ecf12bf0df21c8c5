//! `skiff`: a Kafka-compatible broker with stateless brokers, and the small tools users expect.

mod client;
mod commands;
mod engines;
mod json_format;
mod registry_client;

use clap::{Parser, Subcommand};

/// mimalloc reserves large blocks with `MAP_NORESERVE`: an absurd allocation that a malformed
/// request makes the protocol decoder attempt (an array claiming 2^31 elements) is then only
/// address space, and the decode fails cleanly on the missing bytes instead of aborting the
/// process on an out-of-memory error. It is also a fast, compact allocator for a server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "skiff", version, about = "Kafka-compatible broker whose brokers hold no state")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker.
    // Boxed: the broker has far more flags than any other command.
    Broker(Box<commands::broker::BrokerArgs>),
    /// Run a Kafka protocol proxy in front of a Kafka-compatible cluster.
    Proxy(commands::proxy::ProxyArgs),
    /// Create, list, describe and delete topics.
    Topic(commands::topic::TopicArgs),
    /// Produce lines from stdin or a file as records.
    Produce(commands::produce::ProduceArgs),
    /// Consume records to stdout.
    Consume(commands::consume::ConsumeArgs),
    /// Register, list, show, check and delete schemas in a Schema Registry.
    Schema(commands::schema::SchemaArgs),
    /// Show how far topics written as tables (skiff.table.format) have been committed.
    Table(commands::table::TableArgs),
    /// Add, list and delete the SASL users of a cluster (in its storage).
    User(commands::user::UserArgs),
    /// Add, list and remove the ACLs a cluster enforces (in its storage; --authorizer acl).
    Acl(commands::acl::AclArgs),
    /// Set, list and remove the client quotas (byte rates) brokers enforce (in their storage).
    Quota(commands::quota::QuotaArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging();
    // The proxy only moves bytes (a few hundredths of a core at 400k records/s): one thread
    // serves it, and one allocator heap instead of one per worker keeps its memory small.
    // Checking records against schemas is real work, so then it gets every core.
    let mut builder = match &cli.command {
        Command::Proxy(args) if args.schema_registry.is_none() => {
            tokio::runtime::Builder::new_current_thread()
        }
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("skiff: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Broker(args) => commands::broker::run(*args).await,
            Command::Proxy(args) => commands::proxy::run(args).await,
            Command::Topic(args) => commands::topic::run(args).await,
            Command::Produce(args) => commands::produce::run(args).await,
            Command::Consume(args) => commands::consume::run(args).await,
            Command::Schema(args) => commands::schema::run(args).await,
            Command::Table(args) => commands::table::run(args).await,
            Command::User(args) => commands::user::run(args).await,
            Command::Acl(args) => commands::acl::run(args).await,
            Command::Quota(args) => commands::quota::run(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("skiff: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr so `skiff consume` output on stdout stays clean. `SKIFF_LOG` (or
/// `RUST_LOG`) sets the filter; the default is `info`.
fn init_logging() {
    let filter = std::env::var("SKIFF_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
