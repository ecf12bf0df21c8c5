//! One file per Kafka API, and the table that ties them to API keys.
//!
//! [`api_table!`] lists every handled API once: the same list generates [`dispatch`] and
//! [`supported`], so ApiVersions can never advertise an API that is not answered.
//! Each handler is `async fn handle(broker, version, request) -> Response` (Produce may also
//! answer nothing: acks=0); the handlers marked `with context` in the table also get the
//! [`RequestContext`] (who sent the request, over which listener) as a fourth argument.

mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod alter_configs;
mod alter_user_scram_credentials;
mod api_versions;
mod config_changes;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_producers;
mod describe_transactions;
mod describe_user_scram_credentials;
mod end_txn;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_transactions;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod sasl_authenticate;
mod sasl_handshake;
mod sync_group;
mod txn_offset_commit;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message, VersionRange};

use crate::metrics::{ErrorCodes, Measure};
use crate::Broker;

/// What the connection writes back.
pub(crate) enum Reply {
    Response {
        header_version: i16,
        body: BytesMut,
    },
    /// The request asked for no response (Produce with acks=0).
    None,
}

/// Lets a handler return its response, or `Option` of it when it may stay silent.
pub(crate) trait IntoHandled<R> {
    fn into_handled(self) -> Option<R>;
}

impl<R: Encodable> IntoHandled<R> for R {
    fn into_handled(self) -> Option<R> {
        Some(self)
    }
}

impl<R: Encodable> IntoHandled<R> for Option<R> {
    fn into_handled(self) -> Option<R> {
        self
    }
}

fn encode<R: Encodable + HeaderVersion>(
    response: Option<R>,
    version: i16,
) -> Result<Reply, String> {
    let Some(response) = response else { return Ok(Reply::None) };
    let size = response.compute_size(version).map_err(|error| error.to_string())?;
    let mut body = BytesMut::with_capacity(size);
    response.encode(&mut body, version).map_err(|error| format!("encoding response: {error}"))?;
    Ok(Reply::Response { header_version: R::header_version(version), body })
}

/// Encodes the answer and, when measuring, records the request with its error codes.
fn encode_measured<R: Encodable + HeaderVersion + ErrorCodes>(
    response: Option<R>,
    version: i16,
    measure: Option<Measure<'_>>,
) -> Result<Reply, String> {
    let Some(measure) = measure else { return encode(response, version) };
    let mut codes = Vec::new();
    if let Some(response) = &response {
        response.error_codes(&mut |code| {
            if code != 0 {
                codes.push(code)
            }
        });
    }
    let reply = encode(response, version);
    match &reply {
        Ok(Reply::Response { body, .. }) => measure.answered(&codes, body.len()),
        Ok(Reply::None) => measure.answered(&codes, 0),
        Err(_) => measure.refused(),
    }
    reply
}

fn in_range(range: &VersionRange, version: i16) -> bool {
    range.min <= version && version <= range.max
}

/// The versions answered: the codec's range, capped where newer versions mean something
/// Skiff does not do (e.g. broker-to-broker forms).
const fn capped(range: VersionRange, max: i16) -> VersionRange {
    VersionRange { min: range.min, max: if range.max < max { range.max } else { max } }
}

macro_rules! api_table {
    ($( $key:ident => $module:ident :: $request:ident $(up to $max:literal)? $(with $with:ident)? ),* $(,)?) => {
        /// Every API this broker answers and the versions it answers.
        pub(crate) fn supported() -> Vec<(ApiKey, VersionRange)> {
            vec![$( (ApiKey::$key, api_table!(@range $request $(, $max)?)) ),*]
        }

        /// Decodes the request body, runs its handler and encodes the response. An error means
        /// the connection cannot continue (unknown API or version, undecodable body).
        pub(crate) async fn dispatch(
            broker: &Broker,
            api_key: ApiKey,
            header: &RequestHeader,
            mut body: Bytes,
            context: &RequestContext<'_>,
        ) -> Result<Reply, String> {
            let version = header.request_api_version;
            let measure = Measure::start(broker.metrics(), api_key, version, body.len());
            if api_key == ApiKey::ApiVersions
                && !in_range(&<ApiVersionsRequest as Message>::VERSIONS, version)
            {
                // Labelled with the version answered: the one asked for is any number.
                let measure = measure.map(|measure| measure.answering_version(0));
                return encode_measured(Some(api_versions::unsupported_version()), 0, measure);
            }
            match api_key {
                $(
                    ApiKey::$key => {
                        if !in_range(&api_table!(@range $request $(, $max)?), version) {
                            measure.map(Measure::refused);
                            return Err("unsupported api version".into());
                        }
                        let request = match <$request as Decodable>::decode(&mut body, version) {
                            Ok(request) => request,
                            Err(error) => {
                                measure.map(Measure::refused);
                                return Err(format!("malformed request: {error}"));
                            }
                        };
                        let response = api_table!(
                            @call $module, broker, version, request, context $(, $with)?
                        );
                        encode_measured(IntoHandled::into_handled(response), version, measure)
                    }
                )*
                _ => Err("api not supported by this broker".into()),
            }
        }
    };
    (@call $module:ident, $broker:ident, $version:ident, $request:ident, $context:ident) => {
        $module::handle($broker, $version, $request).await
    };
    (@call $module:ident, $broker:ident, $version:ident, $request:ident, $context:ident, context) => {
        $module::handle($broker, $version, $request, $context).await
    };
    (@range $request:ident) => { <$request as Message>::VERSIONS };
    (@range $request:ident, $max:literal) => { capped(<$request as Message>::VERSIONS, $max) };
}

api_table! {
    Produce => produce::ProduceRequest with context,
    Fetch => fetch::FetchRequest,
    ListOffsets => list_offsets::ListOffsetsRequest,
    Metadata => metadata::MetadataRequest with context,
    ApiVersions => api_versions::ApiVersionsRequest,
    CreateTopics => create_topics::CreateTopicsRequest,
    DeleteTopics => delete_topics::DeleteTopicsRequest,
    DeleteRecords => delete_records::DeleteRecordsRequest,
    OffsetForLeaderEpoch => offset_for_leader_epoch::OffsetForLeaderEpochRequest,
    DescribeConfigs => describe_configs::DescribeConfigsRequest,
    AlterConfigs => alter_configs::AlterConfigsRequest,
    CreatePartitions => create_partitions::CreatePartitionsRequest,
    IncrementalAlterConfigs => incremental_alter_configs::IncrementalAlterConfigsRequest,
    DescribeCluster => describe_cluster::DescribeClusterRequest with context,
    FindCoordinator => find_coordinator::FindCoordinatorRequest with context,
    JoinGroup => join_group::JoinGroupRequest with context,
    SyncGroup => sync_group::SyncGroupRequest,
    Heartbeat => heartbeat::HeartbeatRequest,
    LeaveGroup => leave_group::LeaveGroupRequest,
    OffsetCommit => offset_commit::OffsetCommitRequest,
    OffsetFetch => offset_fetch::OffsetFetchRequest,
    DescribeGroups => describe_groups::DescribeGroupsRequest,
    ListGroups => list_groups::ListGroupsRequest,
    DeleteGroups => delete_groups::DeleteGroupsRequest,
    OffsetDelete => offset_delete::OffsetDeleteRequest,
    InitProducerId => init_producer_id::InitProducerIdRequest,
    AddPartitionsToTxn => add_partitions_to_txn::AddPartitionsToTxnRequest up to 3,
    AddOffsetsToTxn => add_offsets_to_txn::AddOffsetsToTxnRequest,
    EndTxn => end_txn::EndTxnRequest,
    TxnOffsetCommit => txn_offset_commit::TxnOffsetCommitRequest,
    DescribeTransactions => describe_transactions::DescribeTransactionsRequest,
    ListTransactions => list_transactions::ListTransactionsRequest up to 1,
    DescribeProducers => describe_producers::DescribeProducersRequest,
    SaslHandshake => sasl_handshake::SaslHandshakeRequest with context,
    SaslAuthenticate => sasl_authenticate::SaslAuthenticateRequest with context,
    DescribeUserScramCredentials => describe_user_scram_credentials::DescribeUserScramCredentialsRequest,
    AlterUserScramCredentials => alter_user_scram_credentials::AlterUserScramCredentialsRequest,
}

/// Who sent the request being handled and how it arrived: what the handlers marked `with
/// context` depend on (JoinGroup records the client, Metadata and FindCoordinator answer with
/// the addresses of the listener the client came in on, Produce waits for its turn to append,
/// SaslHandshake and SaslAuthenticate move the connection's SASL session along).
pub(crate) struct RequestContext<'a> {
    pub(crate) connection: &'a skiff_net::ConnectionInfo,
    /// Who the connection acts as (SASL).
    pub(crate) session: &'a crate::session::Session,
    pub(crate) client_id: &'a str,
    /// When a Produce request may queue its appends (connection.rs: pipelined produces).
    pub(crate) append_turn: crate::connection::AppendTurn,
}

impl RequestContext<'_> {
    /// The peer address as Kafka shows it: `/127.0.0.1`.
    pub(crate) fn host(&self) -> String {
        format!("/{}", self.connection.peer.ip())
    }

    /// The advertised address of the listener the request came in on.
    pub(crate) fn advertised(&self, broker: &Broker) -> (String, i32) {
        broker
            .config
            .listener(&self.connection.listener.name)
            .map(|listener| (listener.advertised_host.clone(), listener.advertised_port))
            .unwrap_or_default()
    }
}

/// Shorthand used by handlers for Kafka strings.
pub(crate) fn str_bytes(value: impl Into<String>) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(value.into())
}
