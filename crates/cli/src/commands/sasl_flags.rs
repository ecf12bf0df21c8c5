//! The SASL flags `skiff broker` and `skiff proxy` share: which mechanisms clients may log in
//! with, and how long a login lasts.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use skiff_auth::Mechanism;

#[derive(Args)]
pub(crate) struct SaslFlags {
    /// SASL mechanisms clients may log in with (sasl.enabled.mechanisms); users are added
    /// with `skiff user add`.
    #[arg(
        long,
        env = "SKIFF_SASL_ENABLED_MECHANISMS",
        default_value = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
    )]
    sasl_enabled_mechanisms: String,
    /// How long an authenticated SASL session lasts before the client must re-authenticate on
    /// its connection (connections.max.reauth.ms, KIP-368), milliseconds; 0: forever.
    #[arg(long, env = "SKIFF_CONNECTIONS_MAX_REAUTH_MS", default_value_t = 0)]
    connections_max_reauth_ms: u64,
}

impl SaslFlags {
    /// The mechanisms of --sasl-enabled-mechanisms.
    pub(crate) fn mechanisms(&self) -> anyhow::Result<Vec<Mechanism>> {
        Mechanism::parse_list(&self.sasl_enabled_mechanisms)
            .map_err(anyhow::Error::msg)
            .context("--sasl-enabled-mechanisms")
    }

    /// How long a login lasts; `None`: forever.
    pub(crate) fn max_reauth(&self) -> Option<Duration> {
        (self.connections_max_reauth_ms > 0)
            .then(|| Duration::from_millis(self.connections_max_reauth_ms))
    }
}
