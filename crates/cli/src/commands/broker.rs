use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use skiff_broker::{Broker, BrokerConfig, ListenerConfig};
use skiff_metrics::Metrics;
use skiff_net::listener::{parse_protocol_map, protocol_of};
use skiff_net::{ListenerSpec, TlsFiles};
use skiff_storage::faults::Faults;
use skiff_storage::Storage;
use tokio::sync::watch;

/// The `--authorizer` choices.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Authorizer {
    None,
    Acl,
}

/// Flags of `skiff broker`; each has a `SKIFF_*` environment variable.
#[derive(Args)]
pub(crate) struct BrokerArgs {
    /// Address to accept Kafka clients on, in plaintext: the one-listener shorthand for
    /// `--listeners PLAINTEXT://ADDR`.
    #[arg(long, env = "SKIFF_LISTEN", default_value = "0.0.0.0:9092")]
    listen: SocketAddr,
    /// HOST:PORT clients are told to connect to (Metadata, FindCoordinator), with --listen.
    #[arg(long, env = "SKIFF_ADVERTISED_LISTENER", default_value = "localhost:9092")]
    advertised_listener: String,
    /// Listeners as Kafka spells them: `PLAINTEXT://0.0.0.0:9092,SSL://0.0.0.0:9093`. A name
    /// other than PLAINTEXT or SSL needs --listener-security-protocol-map. Replaces --listen.
    #[arg(long, env = "SKIFF_LISTENERS", conflicts_with = "listen")]
    listeners: Option<String>,
    /// What each listener tells its clients to connect to: `PLAINTEXT://kafka.example:9092,...`
    /// by listener name; a listener left out advertises its own host (localhost when it binds
    /// every interface) and port. Replaces --advertised-listener.
    #[arg(long, env = "SKIFF_ADVERTISED_LISTENERS", requires = "listeners")]
    advertised_listeners: Option<String>,
    /// The security protocol of each named listener: `CLIENT:SSL,INTERNAL:PLAINTEXT`.
    #[arg(long, env = "SKIFF_LISTENER_SECURITY_PROTOCOL_MAP", default_value = "")]
    listener_security_protocol_map: String,
    #[command(flatten)]
    tls: super::tls_flags::TlsFlags,
    /// SASL on the SASL_PLAINTEXT and SASL_SSL listeners.
    #[command(flatten)]
    sasl: super::sasl_flags::SaslFlags,
    /// `acl`: check every request against the cluster's ACLs (Kafka's StandardAuthorizer;
    /// manage them with `skiff acl` or an admin client). `none`: everyone may do everything.
    #[arg(long, env = "SKIFF_AUTHORIZER", value_enum, default_value = "none")]
    authorizer: Authorizer,
    /// Principals allowed everything whatever the ACLs say (super.users): `User:admin;User:ops`.
    #[arg(long, env = "SKIFF_SUPER_USERS", default_value = "")]
    super_users: String,
    /// Let every principal act on a resource that no ACL names (allow.everyone.if.no.acl.found).
    #[arg(long, env = "SKIFF_ALLOW_EVERYONE_IF_NO_ACL_FOUND")]
    allow_everyone_if_no_acl_found: bool,
    /// How old this broker's copy of the ACLs may grow before it is read again from storage
    /// (milliseconds): an ACL changed through another broker is enforced here within this.
    /// 0: read them for every request (a storage read each).
    #[arg(long, env = "SKIFF_ACL_REFRESH_MS", default_value_t = 1000)]
    acl_refresh_ms: u64,
    /// How old this broker's copy of the client quotas may grow before it is read again
    /// (milliseconds); quotas are set with AlterClientQuotas (`kafka-configs`).
    #[arg(long, env = "SKIFF_QUOTA_REFRESH_MS", default_value_t = 1000)]
    quota_refresh_ms: u64,
    /// Samples in the window a client's byte rate is measured over (quota.window.num).
    #[arg(long, env = "SKIFF_QUOTA_WINDOW_NUM", default_value_t = 11)]
    quota_window_num: usize,
    /// Length of one such sample in seconds (quota.window.size.seconds).
    #[arg(long, env = "SKIFF_QUOTA_WINDOW_SIZE_SECONDS", default_value_t = 1)]
    quota_window_size_seconds: u64,
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
    /// How often consumer-protocol (KIP-848) members heartbeat, told to them in every answer
    /// (group.consumer.heartbeat.interval.ms).
    #[arg(long, env = "SKIFF_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS", default_value_t = 5000, value_parser = clap::value_parser!(i32).range(1..))]
    group_consumer_heartbeat_interval_ms: i32,
    /// A consumer-protocol member that has not heartbeated for this long is removed from its
    /// group (group.consumer.session.timeout.ms).
    #[arg(long, env = "SKIFF_GROUP_CONSUMER_SESSION_TIMEOUT_MS", default_value_t = 45_000, value_parser = clap::value_parser!(i32).range(1..))]
    group_consumer_session_timeout_ms: i32,
    /// Server-side assignors of consumer-protocol groups, by preference; the first is used
    /// when no member names one with group.remote.assignor (group.consumer.assignors).
    #[arg(long, env = "SKIFF_GROUP_CONSUMER_ASSIGNORS", value_delimiter = ',', default_value = "uniform,range", value_parser = parse_assignor)]
    group_consumer_assignors: Vec<skiff_broker::AssignorName>,
    /// Most members of one consumer-protocol group (group.consumer.max.size).
    #[arg(long, env = "SKIFF_GROUP_CONSUMER_MAX_SIZE", default_value_t = i32::MAX, value_parser = clap::value_parser!(i32).range(1..))]
    group_consumer_max_size: i32,
    /// How often to look for expired transactions to abort (milliseconds).
    #[arg(long, env = "SKIFF_TRANSACTION_CHECK_INTERVAL_MS", default_value_t = 5000)]
    transaction_check_interval_ms: u64,
    /// How often retention (retention.ms) is applied, by whichever broker holds the cleaner
    /// lease (milliseconds).
    #[arg(long, env = "SKIFF_RETENTION_CHECK_INTERVAL_MS", default_value_t = 300_000)]
    retention_check_interval_ms: u64,
    /// Where tables go for topics that set skiff.table.format without skiff.table.location:
    /// file:///absolute/path or s3://bucket/prefix (docs/tables.md).
    #[arg(long, env = "SKIFF_TABLE_LOCATION")]
    table_location: Option<String>,
    /// The catalog Apache Iceberg tables (skiff.table.format=iceberg) are registered in, in the
    /// layout of Iceberg's JDBC catalog that pyiceberg's SqlCatalog reads: sqlite://path or
    /// postgres://...; `?namespace=` (default skiff) and `?catalog=` (default skiff). Default:
    /// the storage URL when it is sqlite:// or postgres:// (docs/tables.md).
    #[arg(long, env = "SKIFF_ICEBERG_CATALOG")]
    iceberg_catalog: Option<String>,
    /// How often table writers read new records and check whether a commit is due
    /// (milliseconds).
    #[arg(long, env = "SKIFF_TABLE_CHECK_INTERVAL_MS", default_value_t = 1000)]
    table_check_interval_ms: u64,
    /// How long a table writer's lease on a partition lasts (milliseconds): the partitions of
    /// a broker that died are taken over by another within it.
    #[arg(long, env = "SKIFF_TABLE_LEASE_MS", default_value_t = 15_000)]
    table_lease_ms: u64,
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
    /// Require HTTP basic authentication on the Schema Registry with the cluster's users (the
    /// ones `skiff user add` makes and SASL clients log in as).
    #[arg(long, env = "SKIFF_SCHEMA_REGISTRY_BASIC_AUTH", requires = "schema_registry_listen")]
    schema_registry_basic_auth: bool,
    /// Serve Prometheus metrics at /metrics, liveness at /healthz and readiness (storage
    /// answers) at /readyz on this address (HOST:PORT). Off unless given.
    #[arg(long, env = "SKIFF_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// For testing only, never in production: make storage calls fail, lose their replies or
    /// slow down, e.g. `append:error=0.1,append:lost=0.05,read:delay_ms=20,seed=7`
    /// (docs/reliability.md). Clients must see only retriable errors and no lost or doubled
    /// records; a count of what was injected is logged at shutdown.
    #[arg(long, env = "SKIFF_INJECT_FAULTS")]
    inject_faults: Option<String>,
}

impl BrokerArgs {
    /// The listeners: `--listeners` (with `--advertised-listeners` and the protocol map), or
    /// the one plaintext listener of `--listen` and `--advertised-listener`.
    fn listener_configs(&self) -> anyhow::Result<Vec<ListenerConfig>> {
        let Some(listeners) = &self.listeners else {
            let (host, port) = self
                .advertised_listener
                .rsplit_once(':')
                .context("--advertised-listener must be HOST:PORT")?;
            let port: u16 = port.parse().context("--advertised-listener port must be a number")?;
            return Ok(vec![ListenerConfig {
                advertised_host: host.trim_start_matches('[').trim_end_matches(']').to_owned(),
                advertised_port: i32::from(port),
                ..ListenerConfig::plaintext(self.listen)
            }]);
        };
        let map = parse_protocol_map(&self.listener_security_protocol_map)
            .map_err(anyhow::Error::msg)
            .context("--listener-security-protocol-map")?;
        let advertised = match &self.advertised_listeners {
            Some(list) => ListenerSpec::parse_list(list)
                .map_err(anyhow::Error::msg)
                .context("--advertised-listeners")?,
            None => Vec::new(),
        };
        let specs = ListenerSpec::parse_list(listeners)
            .map_err(anyhow::Error::msg)
            .context("--listeners")?;
        if let Some(stray) = advertised.iter().find(|a| specs.iter().all(|s| s.name != a.name)) {
            anyhow::bail!("--advertised-listeners names {}, which --listeners lacks", stray.name);
        }
        let mut configs = Vec::new();
        for spec in specs {
            let protocol = protocol_of(&spec.name, &map).map_err(anyhow::Error::msg)?;
            let bind = spec.bind_address().map_err(anyhow::Error::msg)?;
            let (host, port) = match advertised.iter().find(|a| a.name == spec.name) {
                Some(told) if !told.host.is_empty() => (told.host.clone(), told.port),
                Some(told) => anyhow::bail!("--advertised-listeners: {told} needs a host"),
                None if bind.ip().is_unspecified() => ("localhost".to_owned(), spec.port),
                None => (spec.host.clone(), spec.port),
            };
            configs.push(ListenerConfig {
                name: spec.name,
                protocol,
                bind,
                advertised_host: host,
                advertised_port: i32::from(port),
            });
        }
        Ok(configs)
    }

    fn tls(&self, listeners: &[ListenerConfig]) -> anyhow::Result<Option<TlsFiles>> {
        let ssl = listeners.iter().find(|l| l.protocol.uses_tls());
        match (self.tls.files(), ssl) {
            (Some(files), _) => Ok(Some(files)),
            (None, Some(listener)) => {
                anyhow::bail!(
                    "listener {} speaks {}: give --tls-cert and --tls-key",
                    listener.name,
                    listener.protocol
                )
            }
            _ => Ok(None),
        }
    }

    /// The Iceberg catalog: the flag, or else the storage itself when it is a SQL database.
    fn iceberg_catalog(&self) -> anyhow::Result<Option<String>> {
        if let Some(url) = &self.iceberg_catalog {
            skiff_broker::tables::check_catalog(url).map_err(anyhow::Error::msg)?;
            return Ok(Some(url.clone()));
        }
        let sql = ["sqlite://", "postgres://", "postgresql://"];
        let own = sql.iter().any(|scheme| self.storage.starts_with(scheme));
        Ok((own && skiff_broker::tables::check_catalog(&self.storage).is_ok())
            .then(|| self.storage.clone()))
    }

    /// The fault plan of --inject-faults, if given; a bad spec stops the broker from starting.
    fn faults(&self) -> anyhow::Result<Option<Faults>> {
        let Some(spec) = &self.inject_faults else { return Ok(None) };
        let faults = Faults::parse(spec).context("--inject-faults")?;
        tracing::warn!(spec = %spec, "injecting storage faults: for testing only, never in production");
        Ok(Some(faults))
    }

    /// The ACL checks of --authorizer acl.
    fn authorization(&self) -> Option<skiff_broker::AuthorizationConfig> {
        if self.authorizer == Authorizer::None {
            return None;
        }
        let super_users = self
            .super_users
            .split(';')
            .map(str::trim)
            .filter(|user| !user.is_empty())
            .map(str::to_owned)
            .collect();
        Some(skiff_broker::AuthorizationConfig {
            rules: skiff_auth::acl::AuthorizerConfig {
                super_users,
                allow_everyone_if_no_acl_found: self.allow_everyone_if_no_acl_found,
            },
            refresh: std::time::Duration::from_millis(self.acl_refresh_ms),
        })
    }

    fn config(&self) -> anyhow::Result<BrokerConfig> {
        if self.num_partitions < 1 {
            anyhow::bail!("--num-partitions must be at least 1");
        }
        let listeners = self.listener_configs()?;
        let tls = self.tls(&listeners)?;
        let sasl = skiff_broker::SaslConfig {
            mechanisms: self.sasl.mechanisms()?,
            max_reauth: self.sasl.max_reauth(),
        };
        Ok(BrokerConfig {
            listeners,
            tls,
            sasl,
            authorization: self.authorization(),
            quotas: skiff_broker::QuotaConfig {
                refresh: std::time::Duration::from_millis(self.quota_refresh_ms),
                window_samples: self.quota_window_num.max(2),
                sample: std::time::Duration::from_secs(self.quota_window_size_seconds.max(1)),
            },
            node_id: self.node_id,
            max_request_bytes: self.max_request_bytes,
            max_connections: self.max_connections.max(1),
            auto_create_topics: self.auto_create_topics,
            num_partitions: self.num_partitions,
            group_initial_rebalance_delay_ms: i64::from(self.group_initial_rebalance_delay_ms),
            group_initial_rebalance_quiet_ms: i64::from(self.group_initial_rebalance_quiet_ms),
            group_consumer: skiff_broker::ConsumerConfig {
                heartbeat_interval_ms: self.group_consumer_heartbeat_interval_ms,
                session_timeout_ms: self.group_consumer_session_timeout_ms,
                assignors: self.group_consumer_assignors.clone(),
                max_size: usize::try_from(self.group_consumer_max_size).unwrap_or(usize::MAX),
            },
            retention_check_interval: std::time::Duration::from_millis(
                self.retention_check_interval_ms.max(10),
            ),
            transaction_check_interval: std::time::Duration::from_millis(
                self.transaction_check_interval_ms.max(10),
            ),
            table_location: match &self.table_location {
                Some(url) => {
                    skiff_broker::tables::check_location(url).map_err(anyhow::Error::msg)?;
                    Some(url.clone())
                }
                None => None,
            },
            iceberg_catalog: self.iceberg_catalog()?,
            table_check_interval: std::time::Duration::from_millis(
                self.table_check_interval_ms.max(10),
            ),
            table_lease: std::time::Duration::from_millis(self.table_lease_ms.max(100)),
            idle_exit: (self.idle_exit_ms > 0)
                .then(|| std::time::Duration::from_millis(self.idle_exit_ms)),
        })
    }
}

pub(crate) async fn run(args: BrokerArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let faults = args.faults()?;
    let mut metrics = args.metrics_listen.map(|_| Metrics::new());
    let storage =
        crate::engines::open_with_faults(&args.storage, metrics.as_mut(), faults.clone())?;
    let served = serve(&args, config, storage, metrics.map(Arc::new)).await;
    if let Some(faults) = faults {
        log_injected(&faults);
    }
    served
}

/// The totals of injected faults, so a test (or a person) can see faults really happened.
fn log_injected(faults: &Faults) {
    let counts = faults.counts();
    tracing::warn!(
        calls = counts.calls,
        errors = counts.errors,
        lost = counts.lost,
        delayed = counts.delayed,
        "injected storage faults"
    );
}

/// Serves clients (and the side servers asked for) until a signal or --idle-exit-ms.
async fn serve(
    args: &BrokerArgs,
    config: BrokerConfig,
    storage: Storage,
    metrics: Option<Arc<Metrics>>,
) -> anyhow::Result<()> {
    let shown = crate::engines::redacted(&args.storage);
    let advertised: Vec<String> = config
        .listeners
        .iter()
        .map(|l| format!("{}://{}:{}", l.name, l.advertised_host, l.advertised_port))
        .collect();
    tracing::info!(storage = %shown, advertised = %advertised.join(","), "starting broker");
    let broker = Broker::with_metrics(storage, config, metrics.clone());
    let listeners = skiff_broker::server::bind(&broker).await?;
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
        return skiff_broker::serve(broker, listeners, shutdown_signal()).await;
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
        let security = skiff_registry::http::Security {
            users: args.schema_registry_basic_auth.then(|| broker.users()),
            acls: broker.registry_acls(),
        };
        let server = skiff_registry::http::serve(
            broker.registry(),
            registry_listener,
            security,
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
    let served = skiff_broker::serve(broker, listeners, until_stopped(stopped)).await;
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

/// One name of --group-consumer-assignors.
fn parse_assignor(name: &str) -> Result<skiff_broker::AssignorName, String> {
    skiff_broker::AssignorName::parse(name.trim())
        .ok_or_else(|| format!("unknown assignor {name:?} (uniform, range)"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        args: BrokerArgs,
    }

    fn listeners(flags: &[&str]) -> anyhow::Result<Vec<String>> {
        let command =
            Command::try_parse_from(std::iter::once("broker").chain(flags.iter().copied()))?;
        let config = command.args.config()?;
        Ok(config
            .listeners
            .iter()
            .map(|l| {
                format!(
                    "{} {} {} {}:{}",
                    l.name, l.protocol, l.bind, l.advertised_host, l.advertised_port
                )
            })
            .collect())
    }

    #[test]
    fn listen_is_the_one_plaintext_listener_shorthand() {
        let shown =
            listeners(&["--listen", "127.0.0.1:9000", "--advertised-listener", "kafka:9000"]);
        assert_eq!(
            shown.ok(),
            Some(vec!["PLAINTEXT PLAINTEXT 127.0.0.1:9000 kafka:9000".to_owned()])
        );
    }

    #[test]
    fn named_listeners_take_protocols_and_advertised_addresses() {
        let shown = listeners(&[
            "--listeners",
            "PLAINTEXT://0.0.0.0:9092,CLIENT://127.0.0.1:9093",
            "--listener-security-protocol-map",
            "CLIENT:SSL",
            "--advertised-listeners",
            "CLIENT://broker.example:443",
            "--tls-cert",
            "cert.pem",
            "--tls-key",
            "key.pem",
        ]);
        assert_eq!(
            shown.ok(),
            Some(vec![
                "PLAINTEXT PLAINTEXT 0.0.0.0:9092 localhost:9092".to_owned(),
                "CLIENT SSL 127.0.0.1:9093 broker.example:443".to_owned(),
            ])
        );
    }

    #[test]
    fn inconsistent_listeners_are_refused() {
        let refused = |flags: &[&str]| listeners(flags).err().map(|e| format!("{e:#}"));
        let no_tls = refused(&["--listeners", "SSL://:9093"]);
        assert!(no_tls.is_some_and(|e| e.contains("--tls-cert")));
        let unknown = refused(&["--listeners", "CLIENT://:9093"]);
        assert!(unknown.is_some_and(|e| e.contains("unknown security protocol CLIENT")));
        let stray =
            refused(&["--listeners", "PLAINTEXT://:1", "--advertised-listeners", "SSL://h:2"]);
        assert!(stray.is_some_and(|e| e.contains("names SSL")));
        assert!(refused(&["--listeners", "PLAINTEXT://:1", "--listen", "0.0.0.0:2"]).is_some());
    }

    #[test]
    fn inject_faults_takes_a_spec_and_refuses_typos() {
        let faults = |spec: &str| {
            let command = Command::try_parse_from(["broker", "--inject-faults", spec])?;
            command.args.faults()
        };
        let plan = faults("append:error=0.1,append:lost=0.05,seed=7").ok().flatten();
        let rule = plan.and_then(|plan| plan.rule(skiff_storage::faults::Operation::Append));
        assert_eq!(rule.map(|rule| (rule.error, rule.lost)), Some((0.1, 0.05)));
        let typo = faults("apend:error=0.1").err().map(|e| format!("{e:#}"));
        assert!(typo.is_some_and(|e| e.contains("--inject-faults: unknown operation \"apend\"")));
    }

    #[test]
    fn consumer_group_settings_default_to_kafkas_and_refuse_unknown_assignors() {
        let consumer = |flags: &[&str]| {
            let command =
                Command::try_parse_from(std::iter::once("broker").chain(flags.iter().copied()))?;
            anyhow::Ok(command.args.config()?.group_consumer)
        };
        let defaults = consumer(&[]).ok();
        assert_eq!(defaults, Some(skiff_broker::ConsumerConfig::default()));
        let chosen = consumer(&[
            "--group-consumer-assignors",
            "range,uniform",
            "--group-consumer-session-timeout-ms",
            "10000",
        ])
        .ok();
        assert_eq!(
            chosen.map(|config| (config.assignors, config.session_timeout_ms)),
            Some((
                vec![skiff_broker::AssignorName::Range, skiff_broker::AssignorName::Uniform],
                10000
            ))
        );
        assert!(consumer(&["--group-consumer-assignors", "sticky"]).is_err());
        assert!(consumer(&["--group-consumer-heartbeat-interval-ms", "0"]).is_err());
    }
}
