use std::net::SocketAddr;
use std::time::Duration;

/// Everything a broker is told at start. Brokers sharing one storage may differ only in
/// `listen`/`advertised_*`; all cluster facts live in storage.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub listen: SocketAddr,
    /// Host clients are told to connect to.
    pub advertised_host: String,
    pub advertised_port: i32,
    /// Node id reported to clients; brokers have no identity, so several may share one.
    pub node_id: i32,
    pub max_request_bytes: usize,
    pub max_connections: usize,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `num.partitions`: partitions of auto-created topics and of CreateTopics asking for -1.
    pub num_partitions: i32,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty consumer
    /// group waits for more members before forming a generation.
    pub group_initial_rebalance_delay_ms: i64,
    /// How long without a new member ends that wait early (Skiff's; equal to the delay for
    /// Kafka's behaviour).
    pub group_initial_rebalance_quiet_ms: i64,
    /// How often this broker looks for expired transactions (and prepared ones a dead broker
    /// left unfinished). Each look lists the transactional ids in storage.
    pub transaction_check_interval: Duration,
    /// How often the broker holding the cleaner lease applies `retention.ms` (Kafka's
    /// `log.retention.check.interval.ms`).
    pub retention_check_interval: Duration,
    /// Exit cleanly after this long with no client connection (scale to zero: a socket
    /// activator or platform starts a new broker on the next connection). `None`: never.
    pub idle_exit: Option<Duration>,
}

impl BrokerConfig {
    /// A config listening on `listen` and advertising the same address.
    pub fn for_address(listen: SocketAddr) -> Self {
        Self {
            listen,
            advertised_host: listen.ip().to_string(),
            advertised_port: i32::from(listen.port()),
            node_id: 0,
            max_request_bytes: skiff_protocol::frame::DEFAULT_MAX_REQUEST_BYTES,
            max_connections: 10_000,
            auto_create_topics: true,
            num_partitions: 1,
            group_initial_rebalance_delay_ms: 3000,
            group_initial_rebalance_quiet_ms: 1000,
            transaction_check_interval: Duration::from_secs(5),
            retention_check_interval: Duration::from_secs(300),
            idle_exit: None,
        }
    }
}
