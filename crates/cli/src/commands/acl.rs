//! `skiff acl add|list|remove`: the cluster's ACLs, written to the storage URL the brokers run
//! on, in the words of Kafka's `kafka-acls` tool. Like `skiff user`, this works with every
//! broker stopped (how the first ACLs of a locked-down cluster are made); brokers enforce a
//! change within their `--acl-refresh-ms`. Admin clients can do the same over the Kafka
//! protocol (CreateAcls, DescribeAcls, DeleteAcls).

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use skiff_auth::acl::model::{PatternFilter, CLUSTER_NAME, WILDCARD};
use skiff_auth::acl::{
    AclBinding, AclFilter, AclStore, Operation, PatternType, Permission, ResourceType,
};

#[derive(Args)]
pub(crate) struct AclArgs {
    #[command(subcommand)]
    command: AclCommand,
    /// The storage URL the brokers run on.
    #[arg(long, global = true, env = "SKIFF_STORAGE", default_value = "sqlite://skiff.db")]
    storage: String,
}

#[derive(Subcommand)]
enum AclCommand {
    /// Allow or deny principals operations on one resource (one ACL per principal and
    /// operation).
    Add(AddArgs),
    /// List the ACLs, or those on a resource or of a principal.
    List(ListArgs),
    /// Remove the ACLs a filter matches.
    Remove(RemoveArgs),
}

/// The resource an ACL names: exactly one for `add`, at most one to filter by.
#[derive(Args)]
#[group(multiple = false)]
struct ResourceArgs {
    /// A topic (`*`: every topic).
    #[arg(long)]
    topic: Option<String>,
    /// A consumer group (`*`: every group).
    #[arg(long)]
    group: Option<String>,
    /// A transactional id (`*`: every one).
    #[arg(long)]
    transactional_id: Option<String>,
    /// The cluster (creating topics, IDEMPOTENT_WRITE, ACLs, users, broker configs).
    #[arg(long)]
    cluster: bool,
}

impl ResourceArgs {
    fn resource(&self) -> Option<(ResourceType, String)> {
        if let Some(topic) = &self.topic {
            return Some((ResourceType::Topic, topic.clone()));
        }
        if let Some(group) = &self.group {
            return Some((ResourceType::Group, group.clone()));
        }
        if let Some(id) = &self.transactional_id {
            return Some((ResourceType::TransactionalId, id.clone()));
        }
        self.cluster.then(|| (ResourceType::Cluster, CLUSTER_NAME.to_owned()))
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum PatternArg {
    Literal,
    Prefixed,
    /// Filters only: every pattern that covers the name (literal, `*`, prefixes of it).
    Match,
    /// Filters only: any pattern type.
    Any,
}

#[derive(Args)]
struct AddArgs {
    #[command(flatten)]
    resource: ResourceArgs,
    /// `literal` names the resource (or every one with `*`); `prefixed` every name starting
    /// with it.
    #[arg(long, value_enum, default_value = "literal")]
    resource_pattern_type: PatternArg,
    /// Principals to allow, e.g. `User:alice` or `User:*`.
    #[arg(long)]
    allow_principal: Vec<String>,
    /// Principals to deny (a DENY wins over any ALLOW).
    #[arg(long)]
    deny_principal: Vec<String>,
    /// Operations: read, write, create, delete, alter, describe, describe-configs,
    /// alter-configs, idempotent-write, cluster-action, all.
    #[arg(long, required = true, value_delimiter = ',')]
    operation: Vec<String>,
    /// The client IP address the ACL applies to (`*`: any).
    #[arg(long, default_value = WILDCARD)]
    host: String,
}

#[derive(Args)]
struct FilterArgs {
    #[command(flatten)]
    resource: ResourceArgs,
    /// How the resource name is compared.
    #[arg(long, value_enum, default_value = "any")]
    resource_pattern_type: PatternArg,
    /// Only the ACLs of this principal.
    #[arg(long)]
    principal: Option<String>,
}

#[derive(Args)]
struct ListArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RemoveArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Remove every ACL when no resource or principal is given (refused otherwise).
    #[arg(long)]
    all: bool,
}

pub(crate) async fn run(args: AclArgs) -> anyhow::Result<()> {
    let storage = crate::engines::open(&args.storage, None)?;
    let store = AclStore::new(storage.state);
    match args.command {
        AclCommand::Add(add) => add_acls(&store, add).await,
        AclCommand::List(list) => list_acls(&store, list).await,
        AclCommand::Remove(remove) => remove_acls(&store, remove).await,
    }
}

fn bindings(args: &AddArgs) -> anyhow::Result<Vec<AclBinding>> {
    let Some((resource_type, resource_name)) = args.resource.resource() else {
        bail!("name the resource: --topic, --group, --transactional-id or --cluster");
    };
    let pattern_type = match args.resource_pattern_type {
        PatternArg::Literal => PatternType::Literal,
        PatternArg::Prefixed => PatternType::Prefixed,
        PatternArg::Match | PatternArg::Any => bail!("an ACL is literal or prefixed"),
    };
    if args.allow_principal.is_empty() && args.deny_principal.is_empty() {
        bail!("give --allow-principal or --deny-principal");
    }
    let operations = args
        .operation
        .iter()
        .map(|name| {
            Operation::from_name(name.trim()).with_context(|| format!("unknown operation {name}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let principals = args
        .allow_principal
        .iter()
        .map(|principal| (principal, Permission::Allow))
        .chain(args.deny_principal.iter().map(|principal| (principal, Permission::Deny)));
    let mut bindings = Vec::new();
    for (principal, permission) in principals {
        for &operation in &operations {
            let binding = AclBinding {
                resource_type,
                resource_name: resource_name.clone(),
                pattern_type,
                principal: principal.clone(),
                host: args.host.clone(),
                operation,
                permission,
            };
            binding.check().map_err(anyhow::Error::msg)?;
            bindings.push(binding);
        }
    }
    Ok(bindings)
}

async fn add_acls(store: &AclStore, args: AddArgs) -> anyhow::Result<()> {
    let bindings = bindings(&args)?;
    store.create(&bindings).await.context("storing the ACLs")?;
    for binding in &bindings {
        println!("added: {}", row(binding));
    }
    Ok(())
}

fn filter(args: &FilterArgs) -> AclFilter {
    let resource = args.resource.resource();
    AclFilter {
        resource_type: resource.as_ref().map(|(resource_type, _)| *resource_type),
        resource_name: resource.map(|(_, name)| name),
        pattern: match args.resource_pattern_type {
            PatternArg::Literal => PatternFilter::Exactly(PatternType::Literal),
            PatternArg::Prefixed => PatternFilter::Exactly(PatternType::Prefixed),
            PatternArg::Match => PatternFilter::Match,
            PatternArg::Any => PatternFilter::Any,
        },
        principal: args.principal.clone(),
        ..AclFilter::any()
    }
}

async fn list_acls(store: &AclStore, args: ListArgs) -> anyhow::Result<()> {
    let filter = filter(&args.filter);
    let acls: Vec<AclBinding> = store
        .list()
        .await
        .context("reading the ACLs")?
        .into_iter()
        .filter(|acl| filter.matches(acl))
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&acls)?);
        return Ok(());
    }
    println!(
        "{:<16}  {:<24}  {:<8}  {:<24}  {:<15}  {:<16}  PERMISSION",
        "RESOURCE", "NAME", "PATTERN", "PRINCIPAL", "HOST", "OPERATION"
    );
    for acl in &acls {
        println!("{}", row(acl));
    }
    Ok(())
}

async fn remove_acls(store: &AclStore, args: RemoveArgs) -> anyhow::Result<()> {
    let filter = filter(&args.filter);
    if filter.resource_type.is_none() && filter.principal.is_none() && !args.all {
        bail!("name a resource or --principal, or give --all to remove every ACL");
    }
    let removed = store.delete(std::slice::from_ref(&filter)).await.context("removing ACLs")?;
    let removed = removed.into_iter().flatten().collect::<Vec<_>>();
    if removed.is_empty() {
        bail!("no ACL matches");
    }
    for acl in &removed {
        println!("removed: {}", row(acl));
    }
    Ok(())
}

fn row(acl: &AclBinding) -> String {
    format!(
        "{:<16}  {:<24}  {:<8}  {:<24}  {:<15}  {:<16}  {}",
        acl.resource_type.name(),
        acl.resource_name,
        acl.pattern_type.name(),
        acl.principal,
        acl.host,
        acl.operation.name(),
        acl.permission.name()
    )
}
