//! `skiff user add|list|delete`: the SASL users of a cluster, written to the storage URL the
//! brokers run on (users live in storage like every other fact, so this works with every
//! broker stopped, and is how the first user is made). Admin clients can do the same over the
//! Kafka protocol (AlterUserScramCredentials) once a user exists.
//!
//! Passwords are never stored: each mechanism gets a salted, iterated SCRAM credential, and
//! PLAIN logins are checked against it.

use std::io::BufRead;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use skiff_auth::{ScramCredential, ScramMechanism, Users};

#[derive(Args)]
pub(crate) struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
    /// The storage URL the brokers run on.
    #[arg(long, global = true, env = "SKIFF_STORAGE", default_value = "sqlite://skiff.db")]
    storage: String,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user, or set a user's password: a SCRAM credential per mechanism (PLAIN logins
    /// are checked against them).
    Add(AddArgs),
    /// List users and the mechanisms they have credentials for.
    List(ListArgs),
    /// Delete a user, or only its credential for some mechanisms.
    Delete(DeleteArgs),
}

#[derive(Args)]
struct AddArgs {
    /// The user name clients log in with.
    name: String,
    /// The password (visible in the process list: prefer --password-stdin or the variable).
    #[arg(long, env = "SKIFF_USER_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Read the password from the first line of stdin.
    #[arg(long, conflicts_with = "password")]
    password_stdin: bool,
    /// SCRAM mechanisms to make credentials for.
    #[arg(long, value_delimiter = ',', default_value = "SCRAM-SHA-256,SCRAM-SHA-512")]
    mechanism: Vec<String>,
    /// PBKDF2 iterations (4096 to 16384, as Kafka accepts): each login pays for them.
    #[arg(long, default_value_t = ScramMechanism::MIN_ITERATIONS)]
    iterations: u32,
}

#[derive(Args)]
struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DeleteArgs {
    /// The user.
    name: String,
    /// Delete only these mechanisms' credentials (the user goes with its last one).
    #[arg(long, value_delimiter = ',')]
    mechanism: Vec<String>,
}

pub(crate) async fn run(args: UserArgs) -> anyhow::Result<()> {
    let storage = crate::engines::open(&args.storage, None)?;
    let users = Users::new(storage.state);
    match args.command {
        UserCommand::Add(add) => add_user(&users, add).await,
        UserCommand::List(list) => list_users(&users, list).await,
        UserCommand::Delete(delete) => delete_user(&users, delete).await,
    }
}

fn mechanisms(names: &[String]) -> anyhow::Result<Vec<ScramMechanism>> {
    names
        .iter()
        .map(|name| {
            ScramMechanism::from_name(&name.trim().to_ascii_uppercase()).with_context(|| {
                format!("unknown mechanism {name}: expected SCRAM-SHA-256 or SCRAM-SHA-512")
            })
        })
        .collect()
}

async fn add_user(users: &Users, args: AddArgs) -> anyhow::Result<()> {
    if args.name.is_empty() {
        bail!("a user name must not be empty");
    }
    if !ScramCredential::iterations_acceptable(i64::from(args.iterations)) {
        bail!(
            "--iterations must be between {} and {}",
            ScramMechanism::MIN_ITERATIONS,
            ScramMechanism::MAX_ITERATIONS
        );
    }
    let password = match (args.password, args.password_stdin) {
        (Some(password), _) => password,
        (None, true) => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).context("reading the password")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
        (None, false) => {
            bail!("give the password: --password-stdin, --password or SKIFF_USER_PASSWORD")
        }
    };
    if password.is_empty() {
        bail!("the password must not be empty");
    }
    for mechanism in mechanisms(&args.mechanism)? {
        let credential = ScramCredential::new(mechanism, &password, args.iterations);
        users
            .upsert(&args.name, mechanism, credential)
            .await
            .with_context(|| format!("storing {}'s {mechanism} credential", args.name))?;
        println!("{}: {mechanism} credential set ({} iterations)", args.name, args.iterations);
    }
    Ok(())
}

async fn list_users(users: &Users, args: ListArgs) -> anyhow::Result<()> {
    let all = users.list().await.context("reading the users")?;
    if args.json {
        let listed: Vec<serde_json::Value> = all
            .iter()
            .map(|(name, user)| {
                let credentials: Vec<serde_json::Value> = user
                    .mechanisms()
                    .into_iter()
                    .map(|(mechanism, iterations)| {
                        serde_json::json!({"mechanism": mechanism.name(), "iterations": iterations})
                    })
                    .collect();
                serde_json::json!({"name": name, "credentials": credentials})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&listed)?);
        return Ok(());
    }
    println!("{:<32}  MECHANISMS", "USER");
    for (name, user) in all {
        let mechanisms: Vec<String> = user
            .mechanisms()
            .into_iter()
            .map(|(mechanism, iterations)| format!("{mechanism} ({iterations})"))
            .collect();
        println!("{name:<32}  {}", mechanisms.join(", "));
    }
    Ok(())
}

async fn delete_user(users: &Users, args: DeleteArgs) -> anyhow::Result<()> {
    if args.mechanism.is_empty() {
        if !users.delete(&args.name).await.context("deleting the user")? {
            bail!("no user {}", args.name);
        }
        println!("{}: deleted", args.name);
        return Ok(());
    }
    for mechanism in mechanisms(&args.mechanism)? {
        if !users.remove(&args.name, mechanism).await.context("deleting the credential")? {
            bail!("{} has no {mechanism} credential", args.name);
        }
        println!("{}: {mechanism} credential deleted", args.name);
    }
    Ok(())
}
