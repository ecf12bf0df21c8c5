use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use skiff_broker::{Broker, BrokerConfig};
use skiff_metrics::Metrics;
use tokio::sync::watch;

/// Flags of `skiff broker`; each has a `SKIFF_*` environment variable.
#[derive(Args)]
pub(crate) struct BrokerArgs {
    /// Address to accept Kafka clients on.
    #[arg(long, env = "SKIFF_LISTEN", default_value = "0.0.0.0:9092")]
    listen: SocketAddr,
    /// HOST:PORT clients are told to connect to (Metadata, FindCoordinator).
    #[arg(long, env = "SKIFF_ADVERTISED_LISTENER", default_value = "localhost:9092")]
    advertised_listener: String,
    /// Where every fact lives: memory://, sqlite://PATH, postgres://USER@HOST/DB.
    #[arg(long, env = "SKIFF_STORAGE", default_value = "sqlite://skiff.db")]
    storage: String,
    /// Largest request frame accepted; larger ones are refused before reading them.
    #[arg(long, env = "SKIFF_MAX_REQUEST_BYTES", default_value_t = 100 * 1024 * 1024)]
    max_request_bytes: usize,
    /// Create unknown topics when a client asks for them in Metadata (auto.create.topics.enable).
    #[arg(long = "auto-create-topics", env = "SKIFF_AUTO_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set)]
    auto_create_topics: bool,
    /// Partitions of auto-created topics and of CreateTopics asking for the default (num.partitions).
    #[arg(long, env = "SKIFF_NUM_PARTITIONS", default_value_t = 1)]
    num_partitions: i32,
    /// Node id this broker reports; brokers hold no identity, so all may share it.
    #[arg(long, env = "SKIFF_NODE_ID", default_value_t = 0)]
    node_id: i32,
    /// How long the first rebalance of an empty consumer group waits for more members
    /// (group.initial.rebalance.delay.ms); 0 forms groups at once.
    #[arg(long, env = "SKIFF_GROUP_INITIAL_REBALANCE_DELAY_MS", default_value_t = 3000)]
    group_initial_rebalance_delay_ms: u32,
    /// The first rebalance of an empty group completes once no new member arrived for this
    /// long (milliseconds), at most --group-initial-rebalance-delay-ms after the first member.
    /// Equal to the delay: Kafka's rule (the whole delay after each newcomer).
    #[arg(long, env = "SKIFF_GROUP_INITIAL_REBALANCE_QUIET_MS", default_value_t = 1000)]
    group_initial_rebalance_quiet_ms: u32,
    /// How often to look for expired transactions to abort (milliseconds).
    #[arg(long, env = "SKIFF_TRANSACTION_CHECK_INTERVAL_MS", default_value_t = 5000)]
    transaction_check_interval_ms: u64,
    /// How often retention (retention.ms) is applied, by whichever broker holds the cleaner
    /// lease (milliseconds).
    #[arg(long, env = "SKIFF_RETENTION_CHECK_INTERVAL_MS", default_value_t = 300_000)]
    retention_check_interval_ms: u64,
    /// Exit cleanly after this many milliseconds with no client connected (scale to zero with
    /// a socket activator or a platform that starts the broker on the next connection); 0: never.
    #[arg(long, env = "SKIFF_IDLE_EXIT_MS", default_value_t = 0)]
    idle_exit_ms: u64,
    /// Most client connections served at once.
    #[arg(long, env = "SKIFF_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,
    /// Serve the Confluent-compatible Schema Registry REST API on this address (HOST:PORT),
    /// kept in the broker's storage. Off unless given.
    #[arg(long, env = "SKIFF_SCHEMA_REGISTRY_LISTEN")]
    schema_registry_listen: Option<SocketAddr>,
    /// Serve Prometheus metrics at /metrics, liveness at /healthz and readiness (storage
    /// answers) at /readyz on this address (HOST:PORT). Off unless given.
    #[arg(long, env = "SKIFF_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
}

impl BrokerArgs {
    fn config(&self) -> anyhow::Result<BrokerConfig> {
        let (host, port) = self
            .advertised_listener
            .rsplit_once(':')
            .context("--advertised-listener must be HOST:PORT")?;
        let port: u16 = port.parse().context("--advertised-listener port must be a number")?;
        if self.num_partitions < 1 {
            anyhow::bail!("--num-partitions must be at least 1");
        }
        Ok(BrokerConfig {
            listen: self.listen,
            advertised_host: host.trim_start_matches('[').trim_end_matches(']').to_owned(),
            advertised_port: i32::from(port),
            node_id: self.node_id,
            max_request_bytes: self.max_request_bytes,
            max_connections: self.max_connections.max(1),
            auto_create_topics: self.auto_create_topics,
            num_partitions: self.num_partitions,
            group_initial_rebalance_delay_ms: i64::from(self.group_initial_rebalance_delay_ms),
            group_initial_rebalance_quiet_ms: i64::from(self.group_initial_rebalance_quiet_ms),
            retention_check_interval: std::time::Duration::from_millis(
                self.retention_check_interval_ms.max(10),
            ),
            transaction_check_interval: std::time::Duration::from_millis(
                self.transaction_check_interval_ms.max(10),
            ),
            idle_exit: (self.idle_exit_ms > 0)
                .then(|| std::time::Duration::from_millis(self.idle_exit_ms)),
        })
    }
}

pub(crate) async fn run(args: BrokerArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let mut metrics = args.metrics_listen.map(|_| Metrics::new());
    let storage = crate::engines::open(&args.storage, metrics.as_mut())?;
    let metrics = metrics.map(Arc::new);
    let shown = crate::engines::redacted(&args.storage);
    tracing::info!(storage = %shown, advertised = %args.advertised_listener, "starting broker");
    let broker = Broker::with_metrics(storage, config, metrics.clone());
    let listener = match skiff_broker::server::inherited_listener()? {
        Some(listener) => {
            tracing::info!("serving the socket passed by the socket activator (LISTEN_FDS)");
            listener
        }
        None => skiff_broker::server::bind(&broker).await?,
    };
    let registry_listener = match args.schema_registry_listen {
        Some(address) => Some(
            skiff_broker::server::bind_address(address)
                .await
                .context("--schema-registry-listen")?,
        ),
        None => None,
    };
    let metrics_listener = match (args.metrics_listen, metrics) {
        (Some(address), Some(metrics)) => Some((
            skiff_broker::server::bind_address(address).await.context("--metrics-listen")?,
            metrics,
        )),
        _ => None,
    };
    if registry_listener.is_none() && metrics_listener.is_none() {
        return skiff_broker::serve(broker, listener, shutdown_signal()).await;
    }
    // A signal stops every server, each finishing its in-flight requests; the broker stopping
    // by itself (--idle-exit-ms) stops the others too.
    let (stop, stopped) = watch::channel(false);
    let on_signal = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = on_signal.send(true);
    });
    let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stopped| *stopped).await;
    };
    let mut side_servers = Vec::new();
    if let Some(registry_listener) = registry_listener {
        let server = skiff_registry::http::serve(
            broker.registry(),
            registry_listener,
            until_stopped(stopped.clone()),
        );
        side_servers.push(("schema registry server", tokio::spawn(server)));
    }
    if let Some((metrics_listener, metrics)) = metrics_listener {
        let readiness = Arc::new(broker.clone());
        let server = skiff_metrics::http::serve(
            metrics,
            readiness,
            metrics_listener,
            until_stopped(stopped.clone()),
        );
        side_servers.push(("metrics server", tokio::spawn(server)));
    }
    let served = skiff_broker::serve(broker, listener, until_stopped(stopped)).await;
    let _ = stop.send(true);
    for (name, server) in side_servers {
        server.await.context(name)?.context(name)?;
    }
    served
}

/// Completes on SIGINT or SIGTERM, so in-flight requests can finish before exit.
pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
