//! `skiff table status TOPIC`: how far a topic's table writers got, read from storage.
//!
//! Writers keep their status in storage (every fact lives there), so this opens the storage URL
//! the brokers use instead of asking a broker: it works with every broker stopped too. A
//! `memory://` broker's storage is in its own process and cannot be read from here.

use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Args)]
pub(crate) struct TableArgs {
    #[command(subcommand)]
    command: TableCommand,
}

#[derive(Subcommand)]
enum TableCommand {
    /// Show, per partition: the offset the table is committed up to, the lag behind the log,
    /// the last commit's time, counts, the last error and which writer holds the lease.
    Status(StatusArgs),
}

#[derive(Args)]
struct StatusArgs {
    /// The topic.
    topic: String,
    /// The storage URL the brokers run on.
    #[arg(long, env = "SKIFF_STORAGE", default_value = "sqlite://skiff.db")]
    storage: String,
    /// Print JSON (one object per partition, in an array) instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: TableArgs) -> anyhow::Result<()> {
    match args.command {
        TableCommand::Status(args) => status(args).await,
    }
}

async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let storage = crate::engines::open(&args.storage, None)?;
    let reports = skiff_broker::tables::table_status(&storage, &args.topic)
        .await
        .with_context(|| format!("reading the table status of {}", args.topic))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(());
    }
    println!(
        "{:>9}  {:>12}  {:>12}  {:>10}  {:<24}  {:>8}  {:>10}  LAST ERROR",
        "PARTITION", "COMMITTED", "LOG END", "LAG", "LAST COMMIT", "COMMITS", "ROWS"
    );
    for report in reports {
        let status = &report.status;
        let committed = status.committed_offset.map_or("-".to_owned(), |o| o.to_string());
        let at = status.committed_at_ms.map_or("-".to_owned(), format_time);
        let error = match (&status.last_error, status.last_error_at_ms) {
            (Some(error), Some(at)) => format!("{} ({error})", format_time(at)),
            (Some(error), None) => error.clone(),
            _ => "-".to_owned(),
        };
        println!(
            "{:>9}  {:>12}  {:>12}  {:>10}  {:<24}  {:>8}  {:>10}  {error}",
            report.partition,
            committed,
            report.log_end,
            report.lag,
            at,
            status.commits,
            status.rows
        );
    }
    Ok(())
}

/// Milliseconds since the epoch as RFC 3339 UTC.
fn format_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |at| at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}
