//! `skiff quota set|list|remove`: the client quotas of a cluster, written to the storage URL
//! the brokers run on (like `skiff acl`; admin clients do the same with AlterClientQuotas and
//! DescribeClientQuotas, e.g. `kafka-configs --entity-type users`). Brokers apply a change
//! within their `--quota-refresh-ms`.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use skiff_auth::quota::{EntityPart, QuotaEntity, QuotaKind, QuotaStore};

#[derive(Args)]
pub(crate) struct QuotaArgs {
    #[command(subcommand)]
    command: QuotaCommand,
    /// The storage URL the brokers run on.
    #[arg(long, global = true, env = "SKIFF_STORAGE", default_value = "sqlite://skiff.db")]
    storage: String,
}

#[derive(Subcommand)]
enum QuotaCommand {
    /// Set an entity's byte rates (bytes per second, per broker).
    Set(SetArgs),
    /// List every entity's quotas.
    List(ListArgs),
    /// Remove an entity's quotas.
    Remove(EntityArgs),
}

/// Who a quota applies to: a user, a client id, or a user's client id; `--default-*` for
/// every one without its own quota.
#[derive(Args)]
struct EntityArgs {
    /// A user (the SASL user name; `ANONYMOUS` for unauthenticated clients).
    #[arg(long, conflicts_with = "default_user")]
    user: Option<String>,
    /// Every user without a quota of their own.
    #[arg(long)]
    default_user: bool,
    /// A client id (the client's `client.id`).
    #[arg(long, conflicts_with = "default_client_id")]
    client_id: Option<String>,
    /// Every client id without a quota of its own.
    #[arg(long)]
    default_client_id: bool,
}

impl EntityArgs {
    fn entity(&self) -> anyhow::Result<QuotaEntity> {
        let part = |name: &Option<String>, default: bool| match (name, default) {
            (Some(name), _) => Some(EntityPart::Named(name.clone())),
            (None, true) => Some(EntityPart::Default),
            (None, false) => None,
        };
        let entity = QuotaEntity {
            user: part(&self.user, self.default_user),
            client_id: part(&self.client_id, self.default_client_id),
        };
        if !entity.is_valid() {
            bail!("name the entity: --user, --default-user, --client-id or --default-client-id");
        }
        Ok(entity)
    }
}

#[derive(Args)]
struct SetArgs {
    #[command(flatten)]
    entity: EntityArgs,
    /// Bytes a second the entity may produce (producer_byte_rate).
    #[arg(long)]
    producer_byte_rate: Option<f64>,
    /// Bytes a second the entity may fetch (consumer_byte_rate).
    #[arg(long)]
    consumer_byte_rate: Option<f64>,
    /// Share of one broker thread's time the entity's requests may take, in percent
    /// (request_percentage: 50 is half a thread, 200 two threads).
    #[arg(long)]
    request_percentage: Option<f64>,
}

#[derive(Args)]
struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: QuotaArgs) -> anyhow::Result<()> {
    let storage = crate::engines::open(&args.storage, None)?;
    let store = QuotaStore::new(storage.state);
    match args.command {
        QuotaCommand::Set(set) => {
            let entity = set.entity.entity()?;
            let rates = [
                (QuotaKind::ProducerByteRate, set.producer_byte_rate),
                (QuotaKind::ConsumerByteRate, set.consumer_byte_rate),
                (QuotaKind::RequestPercentage, set.request_percentage),
            ];
            let mut changes = Vec::new();
            for (kind, value) in rates {
                let Some(value) = value else { continue };
                if !(value.is_finite() && value > 0.0) {
                    bail!("{} must be a positive number", kind.name());
                }
                changes.push((entity.clone(), kind, Some(value)));
            }
            if changes.is_empty() {
                bail!("give --producer-byte-rate, --consumer-byte-rate or --request-percentage");
            }
            store.alter(&changes).await.context("storing the quotas")?;
            println!("set: {}", describe(&entity));
        }
        QuotaCommand::Remove(remove) => {
            let entity = remove.entity()?;
            let changes: Vec<_> =
                QuotaKind::ALL.iter().map(|kind| (entity.clone(), *kind, None)).collect();
            store.alter(&changes).await.context("removing the quotas")?;
            println!("removed: {}", describe(&entity));
        }
        QuotaCommand::List(list) => {
            let quotas = store.get().await.context("reading the quotas")?;
            if list.json {
                let listed: Vec<serde_json::Value> = quotas
                    .entries
                    .iter()
                    .map(|(entity, values)| {
                        let values: serde_json::Map<String, serde_json::Value> = values
                            .iter()
                            .map(|(k, v)| (k.name().to_owned(), (*v).into()))
                            .collect();
                        serde_json::json!({"entity": describe(entity), "quotas": values})
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&listed)?);
                return Ok(());
            }
            for (entity, values) in &quotas.entries {
                let values: Vec<String> =
                    values.iter().map(|(kind, value)| format!("{}={value}", kind.name())).collect();
                println!("{:<40}  {}", describe(entity), values.join(", "));
            }
        }
    }
    Ok(())
}

/// `user=alice,client-id=<default>`, as kafka-configs names entities.
fn describe(entity: &QuotaEntity) -> String {
    let part = |part: &EntityPart| match part {
        EntityPart::Named(name) => name.clone(),
        EntityPart::Default => "<default>".to_owned(),
    };
    let mut parts = Vec::new();
    if let Some(user) = &entity.user {
        parts.push(format!("user={}", part(user)));
    }
    if let Some(client_id) = &entity.client_id {
        parts.push(format!("client-id={}", part(client_id)));
    }
    parts.join(",")
}
