//! `skiff produce`: one record per input line, sent in batched Produce requests.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::builder::BoolishValueParser;
use clap::{Args, ValueEnum};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::records::Compression;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};

use crate::client::lookups::{self, topic_name};
use crate::client::records::{encode_batch, OutgoingRecord};
use crate::client::{errors, Client};
use crate::json_format::{JsonEncoder, RecordFormat};
use crate::registry_client::{RegistryClient, DEFAULT_REGISTRY};

/// Produce v13 addresses topics by id; up to v12 by name, which is all this tool builds.
const MAX_PRODUCE_VERSION: i16 = 12;

/// Keeps each record batch under brokers' default `max.message.bytes` (1 MiB + 12): a request
/// carries at most this much of keys, values and per-record framing.
const MAX_REQUEST_PAYLOAD_BYTES: usize = 1_000_000;

/// A generous estimate of a record's framing in a v2 batch (varint lengths, deltas, attributes).
const RECORD_OVERHEAD_BYTES: usize = 24;

/// Broker-side wait for acknowledgements.
const PRODUCE_TIMEOUT_MS: i32 = 30_000;

#[derive(Args)]
pub(crate) struct ProduceArgs {
    /// Broker to talk to (HOST:PORT, or several separated by commas).
    #[arg(long, env = "SKIFF_BOOTSTRAP", default_value = "localhost:9092")]
    bootstrap: String,
    /// Topic to write to; created by the broker if missing and auto-creation is on.
    topic: String,
    /// Read lines from this file instead of stdin.
    #[arg(long, env = "SKIFF_PRODUCE_FILE")]
    file: Option<PathBuf>,
    /// Write every record to this partition instead of spreading them.
    #[arg(long, env = "SKIFF_PRODUCE_PARTITION")]
    partition: Option<i32>,
    /// Split each line at the first SEP: the part before is the key, the rest the value.
    /// Lines without SEP get no key.
    #[arg(long, env = "SKIFF_KEY_SEPARATOR", value_parser = parse_separator)]
    key_separator: Option<String>,
    /// Acknowledgements to wait for: 0 (none), 1 (leader) or all.
    #[arg(long, env = "SKIFF_ACKS", default_value = "all", value_parser = parse_acks)]
    acks: i16,
    /// Compression codec of the record batches.
    #[arg(long, env = "SKIFF_COMPRESSION", value_enum, default_value_t = CompressionArg::None)]
    compression: CompressionArg,
    /// Most records per Produce request (requests also stop at 1 MiB of keys and values).
    #[arg(long, env = "SKIFF_BATCH_SIZE", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: u32,
    /// `text`: each line's bytes are the value. `json`: each line is a JSON document, encoded
    /// with the latest schema of `<topic>-value` in Confluent's wire format.
    #[arg(long, env = "SKIFF_PRODUCE_FORMAT", value_enum, default_value_t = RecordFormat::Text)]
    format: RecordFormat,
    /// The Schema Registry's base URL (for `--format json`).
    #[arg(long, env = "SKIFF_SCHEMA_REGISTRY", default_value = DEFAULT_REGISTRY)]
    registry: String,
    /// With `--format json`: report lines that do not fit the schema and go on, instead of
    /// stopping at the first.
    #[arg(long, env = "SKIFF_SKIP_INVALID", value_parser = BoolishValueParser::new())]
    skip_invalid: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum CompressionArg {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl From<CompressionArg> for Compression {
    fn from(arg: CompressionArg) -> Self {
        match arg {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Snappy => Compression::Snappy,
            CompressionArg::Lz4 => Compression::Lz4,
            CompressionArg::Zstd => Compression::Zstd,
        }
    }
}

fn parse_acks(text: &str) -> Result<i16, String> {
    match text {
        "0" => Ok(0),
        "1" => Ok(1),
        "all" | "-1" => Ok(-1),
        other => Err(format!("expected 0, 1 or all, got {other:?}")),
    }
}

fn parse_separator(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("the key separator cannot be empty".to_owned());
    }
    Ok(text.to_owned())
}

pub(crate) async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let mut input = open_input(args.file.as_ref()).await?;
    let encoder = match args.format {
        RecordFormat::Text => None,
        RecordFormat::Json => {
            let registry = RegistryClient::new(&args.registry)?;
            Some(JsonEncoder::for_topic(&registry, &args.topic).await?)
        }
    };
    let mut client = Client::connect(&args.bootstrap).await?;
    let version = client.version::<ProduceRequest>(MAX_PRODUCE_VERSION)?;
    let topic = lookups::topic_metadata(&mut client, &args.topic, true).await?;
    let mut partitioner = Partitioner::new(topic.partition_indexes(), args.partition)?;
    let separator = args.key_separator.as_deref().map(str::as_bytes);
    let mut batcher = LineBatcher::new(&mut *input, args.batch_size as usize);
    let mut lines_read: u64 = 0;
    let mut produced: u64 = 0;
    let mut skipped: u64 = 0;
    loop {
        let lines = batcher.next_batch().await?;
        if lines.is_empty() {
            break;
        }
        let (records, refused) =
            to_records(&lines, separator, encoder.as_ref(), &args, &mut lines_read, &mut skipped);
        if !records.is_empty() {
            let count = records.len() as u64;
            let by_partition = partitioner.assign(records.into_iter());
            send(&mut client, &args, version, by_partition)
                .await
                .with_context(|| format!("{produced} records were produced before this failure"))?;
            produced += count;
        }
        if let Some(refused) = refused {
            bail!("{refused} ({produced} records before it were produced; --skip-invalid skips such lines)");
        }
    }
    let confirmed = if args.acks == 0 { " (acks=0: not confirmed)" } else { "" };
    let skipped =
        if skipped > 0 { format!("; skipped {skipped} invalid lines") } else { String::new() };
    eprintln!("produced {produced} records to {}{confirmed}{skipped}", args.topic);
    Ok(())
}

/// The records of a batch of lines, their values encoded with `encoder` if there is one; stops
/// at the first line that does not fit and answers why, unless `--skip-invalid` (then the line
/// is reported and skipped). `lines_read` counts lines, so errors can name them.
fn to_records(
    lines: &[Vec<u8>],
    separator: Option<&[u8]>,
    encoder: Option<&JsonEncoder>,
    args: &ProduceArgs,
    lines_read: &mut u64,
    skipped: &mut u64,
) -> (Vec<OutgoingRecord>, Option<String>) {
    let mut records = Vec::with_capacity(lines.len());
    for line in lines {
        *lines_read += 1;
        let mut record = split_line(line, separator);
        if let Some(encoder) = encoder {
            match encoder.encode(&record.value) {
                Ok(value) => record.value = value,
                Err(reason) if args.skip_invalid => {
                    eprintln!("skipping line {lines_read}: {reason}");
                    *skipped += 1;
                    continue;
                }
                Err(reason) => {
                    let subject = encoder.subject();
                    let refused =
                        format!("line {lines_read} does not fit the schema of {subject}: {reason}");
                    return (records, Some(refused));
                }
            }
        }
        records.push(record);
    }
    (records, None)
}

async fn send(
    client: &mut Client,
    args: &ProduceArgs,
    version: i16,
    by_partition: BTreeMap<i32, Vec<OutgoingRecord>>,
) -> anyhow::Result<()> {
    let request = produce_request(args, by_partition)?;
    if args.acks == 0 {
        client.send_without_response(request, version).await
    } else {
        let response = client.send(request, version).await?;
        check_response(&response)
    }
}

async fn open_input(file: Option<&PathBuf>) -> anyhow::Result<Box<dyn AsyncBufRead + Unpin>> {
    let capacity = 1024 * 1024;
    Ok(match file {
        Some(path) => {
            let file = tokio::fs::File::open(path)
                .await
                .with_context(|| format!("opening {}", path.display()))?;
            Box::new(BufReader::with_capacity(capacity, file))
        }
        None => Box::new(BufReader::with_capacity(capacity, tokio::io::stdin())),
    })
}

/// Groups input lines into request-sized batches, holding back the line that would overflow
/// one so it starts the next batch.
struct LineBatcher<'a> {
    input: &'a mut (dyn AsyncBufRead + Unpin),
    max_lines: usize,
    held_back: Option<Vec<u8>>,
}

impl<'a> LineBatcher<'a> {
    fn new(input: &'a mut (dyn AsyncBufRead + Unpin), max_lines: usize) -> Self {
        Self { input, max_lines, held_back: None }
    }

    /// Up to `max_lines` lines whose payload fits [`MAX_REQUEST_PAYLOAD_BYTES`] (a longer
    /// line goes alone, for the broker to judge); empty only at end of input. Line endings
    /// (`\n` or `\r\n`) are dropped; other bytes pass through untouched, UTF-8 or not.
    async fn next_batch(&mut self) -> anyhow::Result<Vec<Vec<u8>>> {
        let mut lines = Vec::new();
        let mut bytes = 0;
        while lines.len() < self.max_lines {
            let Some(line) = self.next_line().await? else { break };
            let size = line.len() + RECORD_OVERHEAD_BYTES;
            if !lines.is_empty() && bytes + size > MAX_REQUEST_PAYLOAD_BYTES {
                self.held_back = Some(line);
                break;
            }
            bytes += size;
            lines.push(line);
        }
        Ok(lines)
    }

    async fn next_line(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        if let Some(line) = self.held_back.take() {
            return Ok(Some(line));
        }
        let mut line = Vec::new();
        if self.input.read_until(b'\n', &mut line).await.context("reading input")? == 0 {
            return Ok(None);
        }
        strip_line_ending(&mut line);
        Ok(Some(line))
    }
}

fn strip_line_ending(line: &mut Vec<u8>) {
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
}

/// Splits a line at the first `separator` into key and value; without one (or without it in
/// the line) the whole line is the value and the key is null.
fn split_line(line: &[u8], separator: Option<&[u8]>) -> OutgoingRecord {
    let whole = || OutgoingRecord { key: None, value: Bytes::copy_from_slice(line) };
    let Some(separator) = separator.filter(|separator| !separator.is_empty()) else {
        return whole();
    };
    match line.windows(separator.len()).position(|window| window == separator) {
        Some(at) => OutgoingRecord {
            key: Some(Bytes::copy_from_slice(&line[..at])),
            value: Bytes::copy_from_slice(&line[at + separator.len()..]),
        },
        None => whole(),
    }
}

/// Chooses partitions the way Kafka's Java client does for keyed records (murmur2 of the key,
/// so a key always lands on the same partition and other clients agree), round-robin for
/// records without a key, or one fixed partition.
struct Partitioner {
    partitions: Vec<i32>,
    fixed: Option<i32>,
    next: usize,
}

impl Partitioner {
    fn new(partitions: Vec<i32>, fixed: Option<i32>) -> anyhow::Result<Self> {
        if partitions.is_empty() {
            bail!("the topic has no partitions");
        }
        if let Some(partition) = fixed.filter(|partition| !partitions.contains(partition)) {
            bail!("partition {partition} does not exist (the topic has {})", partitions.len());
        }
        Ok(Self { partitions, fixed, next: 0 })
    }

    fn choose(&mut self, key: Option<&[u8]>) -> i32 {
        if let Some(partition) = self.fixed {
            return partition;
        }
        let slot = match key {
            Some(key) => (murmur2(key) & 0x7fff_ffff) as usize % self.partitions.len(),
            None => {
                let slot = self.next % self.partitions.len();
                self.next = self.next.wrapping_add(1);
                slot
            }
        };
        self.partitions[slot]
    }

    fn assign(
        &mut self,
        records: impl Iterator<Item = OutgoingRecord>,
    ) -> BTreeMap<i32, Vec<OutgoingRecord>> {
        let mut by_partition: BTreeMap<i32, Vec<OutgoingRecord>> = BTreeMap::new();
        for record in records {
            let partition = self.choose(record.key.as_deref());
            by_partition.entry(partition).or_default().push(record);
        }
        by_partition
    }
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), seed 0x9747b28c.
fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

fn produce_request(
    args: &ProduceArgs,
    by_partition: BTreeMap<i32, Vec<OutgoingRecord>>,
) -> anyhow::Result<ProduceRequest> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|since| i64::try_from(since.as_millis()).ok())
        .unwrap_or(0);
    let compression = Compression::from(args.compression);
    let mut partition_data = Vec::with_capacity(by_partition.len());
    for (partition, records) in by_partition {
        let batch = encode_batch(&records, compression, now_ms)?;
        partition_data
            .push(PartitionProduceData::default().with_index(partition).with_records(Some(batch)));
    }
    let topic_data = TopicProduceData::default()
        .with_name(topic_name(&args.topic))
        .with_partition_data(partition_data);
    Ok(ProduceRequest::default()
        .with_acks(args.acks)
        .with_timeout_ms(PRODUCE_TIMEOUT_MS)
        .with_topic_data(vec![topic_data]))
}

/// Fails on the first partition the broker did not accept, naming it and the reason.
fn check_response(response: &ProduceResponse) -> anyhow::Result<()> {
    for topic in &response.responses {
        for partition in &topic.partition_responses {
            let what = format!("producing to {}/{}", topic.name.as_str(), partition.index);
            let detail = partition
                .record_errors
                .first()
                .and_then(|record_error| record_error.batch_index_error_message.as_deref())
                .or(partition.error_message.as_deref());
            errors::check(partition.error_code, detail, &what)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_value(line: &str, separator: Option<&str>) -> (Option<String>, String) {
        let record = split_line(line.as_bytes(), separator.map(str::as_bytes));
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        (record.key.as_deref().map(text), text(&record.value))
    }

    #[test]
    fn lines_split_at_the_first_separator() {
        assert_eq!(key_value("k:v", Some(":")), (Some("k".into()), "v".into()));
        assert_eq!(key_value("k:v:w", Some(":")), (Some("k".into()), "v:w".into()));
        assert_eq!(key_value(":v", Some(":")), (Some(String::new()), "v".into()));
        assert_eq!(key_value("k::v", Some("::")), (Some("k".into()), "v".into()));
        assert_eq!(key_value("no separator", Some(":")), (None, "no separator".into()));
        assert_eq!(key_value("k:v", None), (None, "k:v".into()));
        assert_eq!(key_value("", None), (None, String::new()));
    }

    #[test]
    fn line_endings_are_stripped_once() {
        for (input, expected) in [("a\n", "a"), ("a\r\n", "a"), ("a", "a"), ("a\n\n", "a\n")] {
            let mut line = input.as_bytes().to_vec();
            strip_line_ending(&mut line);
            assert_eq!(line, expected.as_bytes());
        }
    }

    #[tokio::test]
    async fn batches_stop_at_the_line_limit_and_keep_the_last_unterminated_line(
    ) -> anyhow::Result<()> {
        let mut input: &[u8] = b"one\ntwo\r\n\nthree";
        let mut batcher = LineBatcher::new(&mut input, 2);
        assert_eq!(batcher.next_batch().await?, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(batcher.next_batch().await?, vec![Vec::new(), b"three".to_vec()]);
        assert!(batcher.next_batch().await?.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn batches_stop_before_the_byte_limit() -> anyhow::Result<()> {
        let big = vec![b'a'; MAX_REQUEST_PAYLOAD_BYTES / 2];
        let huge = vec![b'b'; MAX_REQUEST_PAYLOAD_BYTES * 2];
        let mut text = Vec::new();
        for line in [&big, &big, &huge, &big] {
            text.extend_from_slice(line);
            text.push(b'\n');
        }
        let mut input: &[u8] = &text;
        let mut batcher = LineBatcher::new(&mut input, 1000);
        let sizes = |lines: Vec<Vec<u8>>| lines.iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(sizes(batcher.next_batch().await?), vec![big.len()]);
        assert_eq!(sizes(batcher.next_batch().await?), vec![big.len()]);
        assert_eq!(sizes(batcher.next_batch().await?), vec![huge.len()]);
        assert_eq!(sizes(batcher.next_batch().await?), vec![big.len()]);
        assert!(batcher.next_batch().await?.is_empty());
        Ok(())
    }

    #[test]
    fn acks_accept_kafka_spellings() {
        assert_eq!(parse_acks("all"), Ok(-1));
        assert_eq!(parse_acks("-1"), Ok(-1));
        assert_eq!(parse_acks("1"), Ok(1));
        assert_eq!(parse_acks("0"), Ok(0));
        assert!(parse_acks("2").is_err());
    }

    #[test]
    fn murmur2_matches_kafka() {
        // Values from Kafka's UtilsTest.testMurmur2.
        let cases: [(&[u8], i32); 5] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        ];
        for (input, expected) in cases {
            assert_eq!(murmur2(input) as i32, expected, "{}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn partitioner_round_robins_hashes_or_pins() -> anyhow::Result<()> {
        let mut spread = Partitioner::new(vec![0, 1, 2], None)?;
        let chosen: Vec<i32> = (0..4).map(|_| spread.choose(None)).collect();
        assert_eq!(chosen, vec![0, 1, 2, 0]);
        let keyed = spread.choose(Some(b"user-7"));
        assert_eq!(spread.choose(Some(b"user-7")), keyed);

        let mut pinned = Partitioner::new(vec![0, 1, 2], Some(2))?;
        assert_eq!(pinned.choose(None), 2);
        assert_eq!(pinned.choose(Some(b"k")), 2);
        assert!(Partitioner::new(vec![0, 1], Some(5)).is_err());
        Ok(())
    }
}
