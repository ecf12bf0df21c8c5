use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use skiff_auth::Mechanism;
use skiff_proxy::{
    BrokerPorts, ClientSasl, NoProduceChecks, ProduceHook, ProxyConfig, SchemaValidation,
    UpstreamSasl,
};

/// Flags of `skiff proxy`; each has a `SKIFF_*` environment variable.
#[derive(Args)]
pub(crate) struct ProxyArgs {
    /// Bootstrap address to accept Kafka clients on; each upstream broker is served on a port of
    /// its own at the same IP address (see --broker-ports and --broker-port-base).
    #[arg(long, env = "SKIFF_LISTEN", default_value = "0.0.0.0:9092")]
    listen: SocketAddr,
    /// HOST:PORT clients bootstrap from; every upstream broker is advertised at HOST with the
    /// port its proxy listener bound.
    #[arg(long, env = "SKIFF_ADVERTISED_LISTENER", default_value = "localhost:9092")]
    advertised_listener: String,
    /// Proxy ports of the upstream brokers, in order: the --upstream brokers first, then brokers
    /// discovered later; 0 means any free port. Brokers beyond the list use --broker-port-base.
    #[arg(long, env = "SKIFF_BROKER_PORTS", value_delimiter = ',', value_name = "PORT,...")]
    broker_ports: Vec<String>,
    /// Upstream broker n (counting from 0) beyond --broker-ports is served on this port + n;
    /// 0 means any free port, reported in the log and advertised to clients in Metadata.
    #[arg(long, env = "SKIFF_BROKER_PORT_BASE", default_value_t = 0)]
    broker_port_base: u16,
    /// Upstream bootstrap brokers, HOST:PORT[,HOST:PORT...].
    #[arg(long, env = "SKIFF_UPSTREAM", value_delimiter = ',', required = true)]
    upstream: Vec<String>,
    /// Largest request frame accepted; larger ones are refused before reading them.
    #[arg(long, env = "SKIFF_MAX_REQUEST_BYTES", default_value_t = 100 * 1024 * 1024)]
    max_request_bytes: usize,
    /// Most client connections served at once.
    #[arg(long, env = "SKIFF_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,
    /// Shared, pipelined upstream connections per upstream broker (Fetch, JoinGroup and
    /// SyncGroup use a dedicated connection per client instead).
    #[arg(long, env = "SKIFF_UPSTREAM_CONNECTIONS", default_value_t = 4)]
    upstream_connections: usize,
    /// How long to wait for an upstream broker to accept a connection (milliseconds).
    #[arg(long, env = "SKIFF_UPSTREAM_CONNECT_TIMEOUT_MS", default_value_t = 5000)]
    upstream_connect_timeout_ms: u64,
    /// A shared upstream connection whose oldest request has waited this long is closed and
    /// its clients disconnected (milliseconds); Fetch, JoinGroup and SyncGroup are exempt.
    #[arg(long, env = "SKIFF_UPSTREAM_REQUEST_TIMEOUT_MS", default_value_t = 60_000)]
    upstream_request_timeout_ms: u64,
    /// Most upstream brokers served (each takes one proxy port).
    #[arg(long, env = "SKIFF_MAX_UPSTREAM_BROKERS", default_value_t = 64)]
    max_upstream_brokers: usize,
    /// With --tls-cert, every proxy port speaks TLS to clients, whatever the upstream cluster
    /// speaks.
    #[command(flatten)]
    tls: super::tls_flags::TlsFlags,
    /// Schema Registry URL (Skiff's or Confluent's): Produce requests are decoded and every
    /// record of a topic whose <topic>-value or <topic>-key subject exists is checked; invalid
    /// partitions are refused with INVALID_RECORD and not forwarded. Off unless given.
    #[arg(long, env = "SKIFF_SCHEMA_REGISTRY", value_name = "URL")]
    pub(crate) schema_registry: Option<String>,
    /// How long one Schema Registry request may take (milliseconds); beyond it the partitions
    /// it was for are refused with a retriable error.
    #[arg(long, env = "SKIFF_SCHEMA_REGISTRY_TIMEOUT_MS", default_value_t = 5000)]
    schema_registry_timeout_ms: u64,
    /// Storage URL holding the users (`skiff user add --storage URL`): every proxy port then
    /// requires SASL (SASL_PLAINTEXT, or SASL_SSL with --tls-cert), answered by the proxy
    /// itself; the clients' SASL exchange never goes upstream. Off unless given.
    #[arg(long, env = "SKIFF_SASL_USERS", value_name = "STORAGE_URL")]
    sasl_users: Option<String>,
    /// SASL toward clients, with --sasl-users.
    #[command(flatten)]
    sasl: super::sasl_flags::SaslFlags,
    /// The proxy logs every upstream connection in with this SASL mechanism (PLAIN,
    /// SCRAM-SHA-256, SCRAM-SHA-512) and --upstream-sasl-username/--upstream-sasl-password.
    #[arg(long, env = "SKIFF_UPSTREAM_SASL_MECHANISM", value_name = "MECHANISM")]
    upstream_sasl_mechanism: Option<String>,
    /// The proxy's user on the upstream cluster.
    #[arg(long, env = "SKIFF_UPSTREAM_SASL_USERNAME", value_name = "USER")]
    upstream_sasl_username: Option<String>,
    /// The proxy's password on the upstream cluster (prefer the environment variable: command
    /// lines are visible to other users of the machine).
    #[arg(
        long,
        env = "SKIFF_UPSTREAM_SASL_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    upstream_sasl_password: Option<String>,
}

impl ProxyArgs {
    fn config(&self) -> anyhow::Result<ProxyConfig> {
        let (host, port) = self
            .advertised_listener
            .rsplit_once(':')
            .context("--advertised-listener must be HOST:PORT")?;
        let _: u16 = port.parse().context("--advertised-listener port must be a number")?;
        let upstreams: Vec<String> = self
            .upstream
            .iter()
            .map(|address| address.trim().to_owned())
            .filter(|address| !address.is_empty())
            .collect();
        for upstream in &upstreams {
            let valid =
                upstream.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_ok());
            if !valid {
                anyhow::bail!("--upstream {upstream}: expected HOST:PORT");
            }
        }
        // Parsed here rather than by clap so that an empty SKIFF_BROKER_PORTS means "no list".
        let mut broker_ports = Vec::new();
        for port in self.broker_ports.iter().map(|port| port.trim()).filter(|p| !p.is_empty()) {
            let Ok(port) = port.parse::<u16>() else {
                anyhow::bail!("--broker-ports {port}: expected a port number (0-65535)");
            };
            broker_ports.push(port);
        }
        Ok(ProxyConfig {
            listen: self.listen,
            advertised_host: host.trim_start_matches('[').trim_end_matches(']').to_owned(),
            broker_ports: BrokerPorts { list: broker_ports, base: self.broker_port_base },
            upstreams,
            max_request_bytes: self.max_request_bytes,
            max_connections: self.max_connections.max(1),
            shared_connections: self.upstream_connections.max(1),
            connect_timeout: Duration::from_millis(self.upstream_connect_timeout_ms.max(1)),
            request_timeout: Duration::from_millis(self.upstream_request_timeout_ms.max(1)),
            max_upstream_brokers: self.max_upstream_brokers.max(1),
            tls: self.tls.files(),
            sasl: None,
            upstream_sasl: self.upstream_sasl()?,
        })
    }

    /// SASL toward clients, with the users of the --sasl-users storage.
    fn client_sasl(&self) -> anyhow::Result<Option<ClientSasl>> {
        let Some(url) = self.sasl_users.as_deref().map(str::trim).filter(|url| !url.is_empty())
        else {
            return Ok(None);
        };
        let mechanisms = self.sasl.mechanisms()?;
        let storage = crate::engines::open(url, None).context("--sasl-users")?;
        Ok(Some(ClientSasl {
            users: skiff_auth::Users::new(storage.state),
            mechanisms,
            max_reauth: self.sasl.max_reauth(),
        }))
    }

    /// The proxy's own upstream login: all three flags or none.
    fn upstream_sasl(&self) -> anyhow::Result<Option<UpstreamSasl>> {
        fn given(value: &Option<String>) -> Option<&str> {
            value.as_deref().filter(|value| !value.is_empty())
        }
        match (
            given(&self.upstream_sasl_mechanism),
            given(&self.upstream_sasl_username),
            given(&self.upstream_sasl_password),
        ) {
            (None, None, None) => Ok(None),
            (Some(mechanism), Some(username), Some(password)) => {
                let mechanism = Mechanism::from_name(mechanism.trim()).with_context(|| {
                    format!(
                        "--upstream-sasl-mechanism {mechanism}: expected PLAIN, SCRAM-SHA-256 or \
                         SCRAM-SHA-512"
                    )
                })?;
                Ok(Some(UpstreamSasl {
                    mechanism,
                    username: username.to_owned(),
                    password: password.to_owned(),
                }))
            }
            _ => anyhow::bail!(
                "--upstream-sasl-mechanism, --upstream-sasl-username and \
                 --upstream-sasl-password go together"
            ),
        }
    }
}

pub(crate) async fn run(args: ProxyArgs) -> anyhow::Result<()> {
    let mut config = args.config()?;
    config.sasl = args.client_sasl()?;
    if let Some(sasl) = &config.sasl {
        let protocol = if config.tls.is_some() { "SASL_SSL" } else { "SASL_PLAINTEXT" };
        tracing::info!(protocol, mechanisms = ?sasl.mechanisms, "clients log in to the proxy");
    }
    if let Some(login) = &config.upstream_sasl {
        tracing::info!(user = %login.username, mechanism = %login.mechanism, "logging in upstream");
    }
    tracing::info!(
        upstream = %config.upstreams.join(","),
        advertised = %args.advertised_listener,
        "starting proxy"
    );
    let hook: Arc<dyn ProduceHook> = match args.schema_registry.as_deref().map(str::trim) {
        Some(url) if !url.is_empty() => {
            let timeout = Duration::from_millis(args.schema_registry_timeout_ms.max(1));
            let shown = skiff_resolve::http::BasicAuth::hidden_in(url);
            tracing::info!(schema_registry = %shown, "validating produce requests");
            Arc::new(SchemaValidation::over_http(url, timeout)?)
        }
        _ => Arc::new(NoProduceChecks),
    };
    let listeners = skiff_proxy::bind(config, hook)?;
    skiff_proxy::serve(listeners, super::broker::shutdown_signal()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        args: ProxyArgs,
    }

    fn config(extra: &[&str]) -> Result<ProxyConfig, String> {
        let argv = ["skiff-proxy", "--upstream", "kafka-1:9092"].iter().chain(extra);
        let command = Command::try_parse_from(argv).map_err(|error| error.to_string())?;
        command.args.config().map_err(|error| format!("{error:#}"))
    }

    #[test]
    fn broker_ports_default_to_any_free_port() {
        let ports = config(&[]).map(|config| config.broker_ports);
        assert_eq!(ports.ok(), Some(BrokerPorts::default()));
    }

    #[test]
    fn broker_ports_take_a_list_and_a_base() {
        let ports = config(&["--broker-ports", " 40001, 0,40003 ,", "--broker-port-base", "41000"])
            .map(|config| config.broker_ports);
        assert_eq!(ports.ok(), Some(BrokerPorts { list: vec![40001, 0, 40003], base: 41000 }));
        let empty = config(&["--broker-ports", ""]).map(|config| config.broker_ports);
        assert_eq!(empty.ok(), Some(BrokerPorts::default()));
    }

    #[test]
    fn upstream_sasl_flags_go_together() {
        let none = config(&[]).map(|config| config.upstream_sasl.is_none());
        assert_eq!(none.ok(), Some(true));
        let all = ["--upstream-sasl-mechanism", "SCRAM-SHA-512", "--upstream-sasl-username", "p"];
        let login = config(&[&all[..], &["--upstream-sasl-password", "secret"]].concat())
            .map(|config| config.upstream_sasl.map(|login| (login.mechanism, login.username)));
        let expected = (Mechanism::Scram(skiff_auth::ScramMechanism::Sha512), "p".to_owned());
        assert_eq!(login.ok(), Some(Some(expected)));
        let partial = config(&all).map(|_| ());
        assert!(matches!(&partial, Err(message) if message.contains("go together")), "{partial:?}");
        let bad = ["--upstream-sasl-mechanism", "GSSAPI", "--upstream-sasl-username", "p"];
        let bad = config(&[&bad[..], &["--upstream-sasl-password", "x"]].concat()).map(|_| ());
        assert!(matches!(&bad, Err(message) if message.contains("GSSAPI")), "{bad:?}");
    }

    #[test]
    fn a_bad_broker_port_names_the_flag() {
        for bad in ["x", "65536", "-1", "40001,,x"] {
            let error = config(&[&format!("--broker-ports={bad}")]).map(|_| ());
            assert!(
                matches!(&error, Err(message) if message.contains("--broker-ports")),
                "{bad}: {error:?}"
            );
        }
        let error = config(&["--broker-port-base", "70000"]).map(|_| ());
        assert!(matches!(&error, Err(message) if message.contains("--broker-port-base")));
    }
}
