use std::net::SocketAddr;

use clap::Args;

/// Flags of `skiff broker`; each has a `SKIFF_*` environment variable.
#[derive(Args)]
pub(crate) struct BrokerArgs {
    /// Address to accept Kafka clients on.
    #[arg(long, env = "SKIFF_LISTEN", default_value = "0.0.0.0:9092")]
    listen: SocketAddr,
    /// HOST:PORT clients are told to connect to (Metadata, FindCoordinator).
    #[arg(long, env = "SKIFF_ADVERTISED_LISTENER", default_value = "localhost:9092")]
    advertised_listener: String,
    /// Where every fact lives: memory://, sqlite://PATH.
    #[arg(long, env = "SKIFF_STORAGE", default_value = "sqlite://skiff.db")]
    storage: String,
    /// Largest request frame accepted; larger ones are refused before reading them.
    #[arg(long, env = "SKIFF_MAX_REQUEST_BYTES", default_value_t = 100 * 1024 * 1024)]
    max_request_bytes: usize,
    /// Create unknown topics when a client asks for them in Metadata.
    #[arg(long = "auto-create-topics", env = "SKIFF_AUTO_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set)]
    auto_create_topics: bool,
    /// Partitions of auto-created topics and of CreateTopics asking for the default (-1).
    #[arg(long, env = "SKIFF_NUM_PARTITIONS", default_value_t = 1)]
    num_partitions: i32,
    /// Node id this broker reports; brokers hold no identity, so all may share it.
    #[arg(long, env = "SKIFF_NODE_ID", default_value_t = 0)]
    node_id: i32,
    /// Most client connections served at once.
    #[arg(long, env = "SKIFF_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,
}

pub(crate) async fn run(args: BrokerArgs) -> anyhow::Result<()> {
    let storage = crate::engines::open(&args.storage)?;
    let _ = storage;
    anyhow::bail!("broker not built yet on {}", args.listen)
}
