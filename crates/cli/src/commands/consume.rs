//! `skiff consume`: print a topic's records, one per line, from all partitions or one.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::builder::BoolishValueParser;
use clap::Args;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{FetchRequest, FetchResponse};

use crate::client::lookups::{self, topic_name};
use crate::client::records::{decode_fetched, FetchedRecord};
use crate::client::{errors, groups, Client};
use crate::json_format::{JsonDecoder, RecordFormat};
use crate::registry_client::{RegistryClient, DEFAULT_REGISTRY};

/// Fetch v13 addresses topics by id; up to v12 by name, which is all this tool builds.
const MAX_FETCH_VERSION: i16 = 12;

/// How long the broker may hold a fetch waiting for records; also bounds how late a
/// `--timeout-ms` exit or a Ctrl-C can be noticed.
const MAX_WAIT_MS: u64 = 500;

/// Per-partition bytes per fetch; doubled (up to the cap) when a batch does not fit, so one
/// large batch cannot stall the consumer.
const PARTITION_MAX_BYTES: i32 = 1024 * 1024;
const PARTITION_MAX_BYTES_CAP: i32 = 64 * 1024 * 1024;
const FETCH_MAX_BYTES: i32 = 50 * 1024 * 1024;

const OFFSET_OUT_OF_RANGE: i16 = 1;

/// Pause after a retriable partition error before fetching again.
const RETRY_DELAY: Duration = Duration::from_millis(200);

#[derive(Args)]
pub(crate) struct ConsumeArgs {
    /// Broker to talk to (HOST:PORT, or several separated by commas).
    #[arg(long, env = "SKIFF_BOOTSTRAP", default_value = "localhost:9092")]
    bootstrap: String,
    /// Topic to read.
    topic: String,
    /// Start at the oldest record instead of only new ones.
    #[arg(long, env = "SKIFF_FROM_BEGINNING", value_parser = BoolishValueParser::new())]
    from_beginning: bool,
    /// Read only this partition.
    #[arg(long, env = "SKIFF_CONSUME_PARTITION")]
    partition: Option<i32>,
    /// Exit after printing this many records.
    #[arg(long, env = "SKIFF_MAX_MESSAGES")]
    max_messages: Option<u64>,
    /// Exit after this many milliseconds without a new record (default: run until stopped).
    #[arg(long, env = "SKIFF_TIMEOUT_MS")]
    timeout_ms: Option<u64>,
    /// Print each record's key (or `null`) and a tab before its value.
    #[arg(long, env = "SKIFF_PRINT_KEY", value_parser = BoolishValueParser::new())]
    print_key: bool,
    /// Print `PARTITION:OFFSET` and a tab before each record.
    #[arg(long, env = "SKIFF_PRINT_OFFSET", value_parser = BoolishValueParser::new())]
    print_offset: bool,
    /// Resume from, and commit to, this consumer group's offsets (no group membership: this
    /// consumer reads every requested partition itself).
    #[arg(long, env = "SKIFF_GROUP")]
    group: Option<String>,
    /// `text`: values as (lossy) UTF-8. `json`: values in Confluent's wire format, decoded by
    /// their schema id into one JSON document per line (keys stay text).
    #[arg(long, env = "SKIFF_CONSUME_FORMAT", value_enum, default_value_t = RecordFormat::Text)]
    format: RecordFormat,
    /// The Schema Registry's base URL (for `--format json`).
    #[arg(long, env = "SKIFF_SCHEMA_REGISTRY", default_value = DEFAULT_REGISTRY)]
    registry: String,
}

/// Where each partition's next fetch starts, and how many bytes it may return.
struct Position {
    offset: i64,
    max_bytes: i32,
}

pub(crate) async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let mut decoder = match args.format {
        RecordFormat::Text => None,
        RecordFormat::Json => Some(JsonDecoder::new(RegistryClient::new(&args.registry)?)),
    };
    let mut client = Client::connect(&args.bootstrap).await?;
    if args.group.is_some() {
        groups::require_group_support(&client)?;
    }
    let version = client.version::<FetchRequest>(MAX_FETCH_VERSION)?;
    let topic = lookups::topic_metadata(&mut client, &args.topic, false).await?;
    let partitions = match args.partition {
        Some(partition) if topic.partition_indexes().contains(&partition) => vec![partition],
        Some(partition) => bail!(
            "partition {partition} of {} does not exist (it has {})",
            args.topic,
            topic.partitions.len()
        ),
        None => topic.partition_indexes(),
    };
    let starts = starting_offsets(&mut client, &args, &partitions).await?;
    let mut positions: BTreeMap<i32, Position> = starts
        .into_iter()
        .map(|(partition, offset)| (partition, Position { offset, max_bytes: PARTITION_MAX_BYTES }))
        .collect();
    let stop = stop_flag(args.group.is_some());
    // On an error the connection may be unusable; every fetch that printed was committed.
    let printed =
        consume_loop(&mut client, &args, version, &mut positions, &stop, decoder.as_mut()).await?;
    commit_if_grouped(&mut client, &args, &positions).await?;
    eprintln!("consumed {printed} records from {}", args.topic);
    Ok(())
}

/// With `--group`, Ctrl-C ends the loop between fetches so the final commit still happens;
/// without it the default (exit at once) is kept, as there is nothing to save.
fn stop_flag(install: bool) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    if install {
        let flag = Arc::clone(&stop);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::SeqCst);
            }
        });
    }
    stop
}

/// The group's committed offsets where there are some; elsewhere the log start
/// (`--from-beginning`) or the high watermark.
async fn starting_offsets(
    client: &mut Client,
    args: &ConsumeArgs,
    partitions: &[i32],
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let mut committed = BTreeMap::new();
    if let Some(group) = &args.group {
        committed = groups::committed_offsets(client, group, &args.topic, partitions).await?;
    }
    let reset = reset_timestamp(args);
    let mut offsets = lookups::list_offsets(client, &args.topic, partitions, reset).await?;
    for (partition, offset) in committed {
        if let Some(offset) = offset {
            offsets.insert(partition, offset);
        }
    }
    Ok(offsets)
}

fn reset_timestamp(args: &ConsumeArgs) -> i64 {
    if args.from_beginning {
        lookups::EARLIEST
    } else {
        lookups::LATEST
    }
}

/// Fetches and prints until `--max-messages`, `--timeout-ms` idle, Ctrl-C (with `--group`) or
/// a closed stdout; returns how many records were printed.
async fn consume_loop(
    client: &mut Client,
    args: &ConsumeArgs,
    version: i16,
    positions: &mut BTreeMap<i32, Position>,
    stop: &AtomicBool,
    mut decoder: Option<&mut JsonDecoder>,
) -> anyhow::Result<u64> {
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let idle_limit = args.timeout_ms.map(Duration::from_millis);
    let max_wait_ms = args.timeout_ms.map_or(MAX_WAIT_MS, |t| t.clamp(1, MAX_WAIT_MS));
    let mut last_record = Instant::now();
    let mut printed: u64 = 0;
    while !stop.load(Ordering::SeqCst) && args.max_messages.is_none_or(|max| printed < max) {
        if idle_limit.is_some_and(|limit| last_record.elapsed() >= limit) {
            break;
        }
        let request = fetch_request(&args.topic, positions, max_wait_ms);
        let response = client.send(request, version).await?;
        errors::check(response.error_code, None, &format!("fetching from {}", args.topic))?;
        let before = printed;
        let mut batches = Vec::new();
        for data in partition_data(&response, &args.topic) {
            batches.extend(handle_partition(client, args, positions, data).await?);
        }
        if let Some(decoder) = decoder.as_deref_mut() {
            load_schemas(decoder, &batches).await?;
        }
        let mut keep_going = true;
        for batch in batches {
            let Some(position) = positions.get_mut(&batch.partition) else { continue };
            let decoder = decoder.as_deref();
            keep_going = print_batch(&mut out, args, decoder, batch, position, &mut printed)?;
            if !keep_going {
                break;
            }
        }
        keep_going &= flush(&mut out)?;
        if printed > before {
            last_record = Instant::now();
            commit_if_grouped(client, args, positions).await?;
        }
        if !keep_going {
            break;
        }
    }
    Ok(printed)
}

fn fetch_request(
    topic: &str,
    positions: &BTreeMap<i32, Position>,
    max_wait_ms: u64,
) -> FetchRequest {
    let partitions = positions
        .iter()
        .map(|(&partition, position)| {
            FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(position.offset)
                .with_partition_max_bytes(position.max_bytes)
        })
        .collect();
    FetchRequest::default()
        .with_max_wait_ms(i32::try_from(max_wait_ms).unwrap_or(i32::MAX))
        .with_min_bytes(1)
        .with_max_bytes(FETCH_MAX_BYTES)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(partitions)])
}

fn partition_data<'a>(
    response: &'a FetchResponse,
    topic: &'a str,
) -> impl Iterator<Item = &'a PartitionData> {
    response
        .responses
        .iter()
        .filter(move |answered| answered.topic.as_str() == topic)
        .flat_map(|answered| answered.partitions.iter())
}

/// One partition's new records (at or past the position asked for) and where its next fetch
/// starts once they are all printed.
struct PartitionBatch {
    partition: i32,
    records: Vec<FetchedRecord>,
    next_offset: i64,
}

/// Reads one partition's answer: its new records, if any; resets the position when it is out
/// of range, waits on retriable errors, and widens the byte limit when a batch did not fit.
async fn handle_partition(
    client: &mut Client,
    args: &ConsumeArgs,
    positions: &mut BTreeMap<i32, Position>,
    data: &PartitionData,
) -> anyhow::Result<Option<PartitionBatch>> {
    let partition = data.partition_index;
    let Some(position) = positions.get_mut(&partition) else {
        return Ok(None); // a partition we did not ask for
    };
    let topic = &args.topic;
    match data.error_code {
        0 => {}
        OFFSET_OUT_OF_RANGE => {
            let reset = reset_timestamp(args);
            let offsets = lookups::list_offsets(client, topic, &[partition], reset).await?;
            let offset = offsets.get(&partition).copied().unwrap_or(position.offset);
            eprintln!(
                "offset {} of {topic}/{partition} is out of range; resuming at {offset}",
                position.offset
            );
            position.offset = offset;
            return Ok(None);
        }
        code if errors::is_retriable(code) => {
            let error = errors::error_name(code);
            tracing::warn!(topic, partition, error, "fetch failed; retrying");
            tokio::time::sleep(RETRY_DELAY).await;
            return Ok(None);
        }
        code => errors::check(code, None, &format!("fetching {topic}/{partition}"))?,
    }
    let Some(bytes) = data.records.clone() else {
        return Ok(None);
    };
    let fetched =
        decode_fetched(bytes).with_context(|| format!("reading records of {topic}/{partition}"))?;
    if fetched.truncated {
        position.max_bytes = position.max_bytes.saturating_mul(2).min(PARTITION_MAX_BYTES_CAP);
    }
    let wanted_from = position.offset;
    let records: Vec<FetchedRecord> =
        fetched.records.into_iter().filter(|record| record.offset >= wanted_from).collect();
    let after_last = records.last().map(|record| record.offset + 1);
    let next_offset = [Some(wanted_from), fetched.next_offset, after_last]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(wanted_from);
    Ok(Some(PartitionBatch { partition, records, next_offset }))
}

/// Looks up the schemas of the values about to be printed that are not known yet.
async fn load_schemas(decoder: &mut JsonDecoder, batches: &[PartitionBatch]) -> anyhow::Result<()> {
    for batch in batches {
        for record in &batch.records {
            if let Some(value) = &record.value {
                decoder.load(value).await.with_context(|| {
                    format!(
                        "the schema of the record at offset {} of partition {}",
                        record.offset, batch.partition
                    )
                })?;
            }
        }
    }
    Ok(())
}

/// Prints a partition's records and moves its position past them; stopping early (at
/// `--max-messages` or a closed stdout) leaves the position at the first unprinted record, so a
/// group commit never skips records nobody saw. Returns whether to keep consuming.
fn print_batch(
    out: &mut impl Write,
    args: &ConsumeArgs,
    decoder: Option<&JsonDecoder>,
    batch: PartitionBatch,
    position: &mut Position,
    printed: &mut u64,
) -> anyhow::Result<bool> {
    for record in &batch.records {
        if args.max_messages.is_some_and(|max| *printed >= max)
            || !print(out, &format_record(args, decoder, batch.partition, record)?)?
        {
            position.offset = record.offset;
            return Ok(false);
        }
        *printed += 1;
    }
    position.offset = batch.next_offset;
    Ok(args.max_messages.is_none_or(|max| *printed < max))
}

async fn commit_if_grouped(
    client: &mut Client,
    args: &ConsumeArgs,
    positions: &BTreeMap<i32, Position>,
) -> anyhow::Result<()> {
    let Some(group) = &args.group else {
        return Ok(());
    };
    let offsets =
        positions.iter().map(|(&partition, position)| (partition, position.offset)).collect();
    groups::commit_offsets(client, group, &args.topic, &offsets).await
}

/// One output line: `[PARTITION:OFFSET\t][KEY\t]VALUE`, keys and values as lossy UTF-8 and
/// null ones as `null`, as Kafka's console consumer shows them; with a decoder, values as JSON.
fn format_record(
    args: &ConsumeArgs,
    decoder: Option<&JsonDecoder>,
    partition: i32,
    record: &FetchedRecord,
) -> anyhow::Result<String> {
    let text = |bytes: &Option<bytes::Bytes>| {
        bytes.as_deref().map_or("null".into(), |bytes| String::from_utf8_lossy(bytes).into_owned())
    };
    let mut line = String::new();
    if args.print_offset {
        line.push_str(&format!("{partition}:{}\t", record.offset));
    }
    if args.print_key {
        line.push_str(&text(&record.key));
        line.push('\t');
    }
    match (decoder, &record.value) {
        (Some(decoder), Some(value)) => {
            line.push_str(&decoder.decode(value).with_context(|| {
                format!("the record at offset {} of partition {partition}", record.offset)
            })?)
        }
        _ => line.push_str(&text(&record.value)),
    }
    line.push('\n');
    Ok(line)
}

/// Writes a line; `Ok(false)` when stdout was closed (e.g. piped into `head`), which ends
/// consumption quietly rather than as an error.
fn print(out: &mut impl Write, line: &str) -> anyhow::Result<bool> {
    match out.write_all(line.as_bytes()) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(error) => Err(error).context("writing to stdout"),
    }
}

fn flush(out: &mut impl Write) -> anyhow::Result<bool> {
    match out.flush() {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(error) => Err(error).context("writing to stdout"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ConsumeArgs,
    }

    fn args(flags: &[&str]) -> anyhow::Result<ConsumeArgs> {
        let argv = ["consume", "t"].iter().chain(flags);
        Ok(Wrapper::try_parse_from(argv)?.args)
    }

    fn record(key: Option<&'static str>, value: Option<&'static str>) -> FetchedRecord {
        FetchedRecord {
            offset: 7,
            key: key.map(|key| Bytes::from_static(key.as_bytes())),
            value: value.map(|value| Bytes::from_static(value.as_bytes())),
        }
    }

    #[test]
    fn prints_value_then_optional_key_and_offset() -> anyhow::Result<()> {
        let plain = args(&[])?;
        assert_eq!(format_record(&plain, None, 0, &record(Some("k"), Some("v")))?, "v\n");
        let all = args(&["--print-key", "--print-offset"])?;
        assert_eq!(format_record(&all, None, 2, &record(Some("k"), Some("v")))?, "2:7\tk\tv\n");
        assert_eq!(format_record(&all, None, 2, &record(None, None))?, "2:7\tnull\tnull\n");
        Ok(())
    }

    #[test]
    fn invalid_utf8_is_shown_lossily() -> anyhow::Result<()> {
        let plain = args(&[])?;
        let fetched =
            FetchedRecord { offset: 0, key: None, value: Some(Bytes::from_static(b"a\xffb")) };
        assert_eq!(format_record(&plain, None, 0, &fetched)?, "a\u{fffd}b\n");
        Ok(())
    }

    #[test]
    fn stopping_early_leaves_the_position_at_the_first_unprinted_record() -> anyhow::Result<()> {
        let limited = args(&["--max-messages", "2"])?;
        let batch = || PartitionBatch {
            partition: 0,
            records: (10..15)
                .map(|offset| FetchedRecord { offset, ..record(None, Some("v")) })
                .collect(),
            next_offset: 20,
        };
        let mut position = Position { offset: 10, max_bytes: 1 };
        let mut out = Vec::new();
        let mut printed = 0;
        assert!(!print_batch(&mut out, &limited, None, batch(), &mut position, &mut printed)?);
        assert_eq!((printed, position.offset), (2, 12));
        assert_eq!(out, b"v\nv\n");

        let unlimited = args(&[])?;
        assert!(print_batch(
            &mut Vec::new(),
            &unlimited,
            None,
            batch(),
            &mut position,
            &mut printed
        )?);
        assert_eq!((printed, position.offset), (7, 20));
        Ok(())
    }

    #[test]
    fn starts_at_latest_unless_asked() -> anyhow::Result<()> {
        assert_eq!(reset_timestamp(&args(&[])?), lookups::LATEST);
        assert_eq!(reset_timestamp(&args(&["--from-beginning"])?), lookups::EARLIEST);
        Ok(())
    }
}
