use std::net::SocketAddr;
use std::time::Duration;

use skiff_net::{SecurityProtocol, TlsFiles};

/// One listener of the broker: where it binds, what it speaks, and what clients that came in
/// on it are told to connect to (Metadata, FindCoordinator, DescribeCluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Kafka's listener name: `PLAINTEXT`, `SSL`, or a name of the protocol map.
    pub name: String,
    pub protocol: SecurityProtocol,
    pub bind: SocketAddr,
    pub advertised_host: String,
    pub advertised_port: i32,
}

impl ListenerConfig {
    /// A plaintext listener named `PLAINTEXT` advertising the address it binds.
    pub fn plaintext(bind: SocketAddr) -> Self {
        Self {
            name: "PLAINTEXT".to_owned(),
            protocol: SecurityProtocol::Plaintext,
            bind,
            advertised_host: bind.ip().to_string(),
            advertised_port: i32::from(bind.port()),
        }
    }
}

/// SASL on the SASL_PLAINTEXT and SASL_SSL listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslConfig {
    /// `sasl.enabled.mechanisms`: what SaslHandshake accepts.
    pub mechanisms: Vec<skiff_auth::Mechanism>,
    /// `connections.max.reauth.ms`: how long an authenticated session lasts before the client
    /// must re-authenticate (KIP-368); `None`: forever.
    pub max_reauth: Option<Duration>,
}

impl Default for SaslConfig {
    fn default() -> Self {
        Self { mechanisms: skiff_auth::Mechanism::ALL.to_vec(), max_reauth: None }
    }
}

/// Everything a broker is told at start. Brokers sharing one storage may differ only in their
/// listeners; all cluster facts live in storage.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// At least one; a client is answered with the advertised address of the listener it came
    /// in on.
    pub listeners: Vec<ListenerConfig>,
    /// Certificate and key of the SSL and SASL_SSL listeners.
    pub tls: Option<TlsFiles>,
    /// How clients of the SASL listeners authenticate.
    pub sasl: SaslConfig,
    /// `--authorizer acl`: every request is checked against the cluster's ACLs. `None`: every
    /// principal may do everything (Kafka without an authorizer).
    pub authorization: Option<crate::AuthorizationConfig>,
    /// How client quotas are measured (the quotas themselves are in storage).
    pub quotas: crate::QuotaConfig,
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
    /// `group.consumer.*`: heartbeat interval, session timeout, assignors and size limit of
    /// consumer-protocol (KIP-848) groups.
    pub group_consumer: skiff_coordinator::consumer::ConsumerConfig,
    /// How often this broker looks for expired transactions (and prepared ones a dead broker
    /// left unfinished). Each look lists the transactional ids in storage.
    pub transaction_check_interval: Duration,
    /// How often the broker holding the cleaner lease applies `retention.ms` (Kafka's
    /// `log.retention.check.interval.ms`).
    pub retention_check_interval: Duration,
    /// Where tables go when a topic sets `skiff.table.format` but no `skiff.table.location`.
    pub table_location: Option<String>,
    /// The catalog Iceberg tables are registered in (`sqlite://...`, `postgres://...`);
    /// topics cannot ask for `skiff.table.format=iceberg` without one.
    pub iceberg_catalog: Option<String>,
    /// How often table writers read new records and check whether a commit is due.
    pub table_check_interval: Duration,
    /// How long a table writer's partition lease lasts: a dead broker's partitions are taken
    /// over within it. Renewed every third of it.
    pub table_lease: Duration,
    /// Exit cleanly after this long with no client connection (scale to zero: a socket
    /// activator or platform starts a new broker on the next connection). `None`: never.
    pub idle_exit: Option<Duration>,
}

impl BrokerConfig {
    /// A config with one plaintext listener on `listen`, advertising the same address.
    pub fn for_address(listen: SocketAddr) -> Self {
        Self {
            listeners: vec![ListenerConfig::plaintext(listen)],
            tls: None,
            sasl: SaslConfig::default(),
            authorization: None,
            quotas: crate::QuotaConfig::default(),
            node_id: 0,
            max_request_bytes: skiff_protocol::frame::DEFAULT_MAX_REQUEST_BYTES,
            max_connections: 10_000,
            auto_create_topics: true,
            num_partitions: 1,
            group_initial_rebalance_delay_ms: 3000,
            group_initial_rebalance_quiet_ms: 1000,
            group_consumer: skiff_coordinator::consumer::ConsumerConfig::default(),
            transaction_check_interval: Duration::from_secs(5),
            retention_check_interval: Duration::from_secs(300),
            table_location: None,
            iceberg_catalog: None,
            table_check_interval: Duration::from_secs(1),
            table_lease: Duration::from_secs(15),
            idle_exit: None,
        }
    }
}

impl BrokerConfig {
    /// The listener named `name`, or the first one (requests reach handlers only through a
    /// listener of this config, so the fallback serves tests that call handlers directly).
    pub fn listener(&self, name: &str) -> Option<&ListenerConfig> {
        self.listeners.iter().find(|listener| listener.name == name).or(self.listeners.first())
    }
}
