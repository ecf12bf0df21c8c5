//! One file per Kafka API, and the table that ties them to API keys.
//!
//! [`api_table!`] lists every handled API once: the same list generates [`dispatch`] and
//! [`supported`], so ApiVersions can never advertise an API that is not answered.
//! Each handler is `async fn handle(broker, version, request, context) -> Response` (Produce
//! may also answer nothing: acks=0); the [`RequestContext`] says who sent the request, over
//! which listener, and whether its principal may act on a resource (the ACL check every
//! handler makes before it acts: Kafka's rules for its API are in its file).

mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod alter_client_quotas;
mod alter_configs;
mod alter_user_scram_credentials;
mod api_versions;
mod config_changes;
mod consumer_group_describe;
mod consumer_group_heartbeat;
mod create_acls;
mod create_partitions;
mod create_topics;
mod delete_acls;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_acls;
mod describe_client_quotas;
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
use std::time::Duration;

use skiff_auth::acl::model::CLUSTER_NAME;
pub(crate) use skiff_auth::acl::{Operation, ResourceType};
use skiff_auth::quota::QuotaKind;

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

/// Responses that tell the client how long it is throttled (`throttle_time_ms`): a request
/// quota's throttle is set after the handler ran (its busy time is only known then), keeping a
/// longer byte-rate throttle the handler set.
pub(crate) trait ThrottleTime {
    fn throttled(&mut self, throttle_ms: i32);
}

macro_rules! throttle_time {
    ($($response:ident),* $(,)?) => {
        $(impl ThrottleTime for kafka_protocol::messages::$response {
            fn throttled(&mut self, throttle_ms: i32) {
                self.throttle_time_ms = self.throttle_time_ms.max(throttle_ms);
            }
        })*
    };
}

throttle_time!(
    ProduceResponse,
    FetchResponse,
    ListOffsetsResponse,
    MetadataResponse,
    ApiVersionsResponse,
    CreateTopicsResponse,
    DeleteTopicsResponse,
    DeleteRecordsResponse,
    OffsetForLeaderEpochResponse,
    DescribeConfigsResponse,
    AlterConfigsResponse,
    CreatePartitionsResponse,
    IncrementalAlterConfigsResponse,
    DescribeClusterResponse,
    FindCoordinatorResponse,
    JoinGroupResponse,
    SyncGroupResponse,
    HeartbeatResponse,
    LeaveGroupResponse,
    OffsetCommitResponse,
    OffsetFetchResponse,
    DescribeGroupsResponse,
    ListGroupsResponse,
    DeleteGroupsResponse,
    OffsetDeleteResponse,
    InitProducerIdResponse,
    AddPartitionsToTxnResponse,
    AddOffsetsToTxnResponse,
    EndTxnResponse,
    TxnOffsetCommitResponse,
    DescribeTransactionsResponse,
    ListTransactionsResponse,
    DescribeProducersResponse,
    DescribeUserScramCredentialsResponse,
    AlterUserScramCredentialsResponse,
    CreateAclsResponse,
    DescribeAclsResponse,
    DeleteAclsResponse,
    DescribeClientQuotasResponse,
    AlterClientQuotasResponse,
    ConsumerGroupHeartbeatResponse,
    ConsumerGroupDescribeResponse,
);

/// The SASL responses carry no throttle time, and are never throttled (request quotas start
/// once a client is authenticated, as in Kafka).
impl ThrottleTime for kafka_protocol::messages::SaslHandshakeResponse {
    fn throttled(&mut self, _throttle_ms: i32) {}
}

impl ThrottleTime for kafka_protocol::messages::SaslAuthenticateResponse {
    fn throttled(&mut self, _throttle_ms: i32) {}
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
    ($( $key:ident => $module:ident :: $request:ident $(up to $max:literal)? ),* $(,)?) => {
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
                        let handling = $module::handle(broker, version, request, context);
                        let (response, busy) = crate::busy::measure(handling).await;
                        let mut response = IntoHandled::into_handled(response);
                        let throttle = context.charge_busy(broker, api_key, busy);
                        if let (Some(response), true) = (response.as_mut(), throttle > 0) {
                            ThrottleTime::throttled(response, throttle);
                        }
                        encode_measured(response, version, measure)
                    }
                )*
                _ => Err("api not supported by this broker".into()),
            }
        }
    };
    (@range $request:ident) => { <$request as Message>::VERSIONS };
    (@range $request:ident, $max:literal) => { capped(<$request as Message>::VERSIONS, $max) };
}

api_table! {
    Produce => produce::ProduceRequest,
    Fetch => fetch::FetchRequest,
    ListOffsets => list_offsets::ListOffsetsRequest,
    Metadata => metadata::MetadataRequest,
    ApiVersions => api_versions::ApiVersionsRequest,
    CreateTopics => create_topics::CreateTopicsRequest,
    DeleteTopics => delete_topics::DeleteTopicsRequest,
    DeleteRecords => delete_records::DeleteRecordsRequest,
    OffsetForLeaderEpoch => offset_for_leader_epoch::OffsetForLeaderEpochRequest,
    DescribeConfigs => describe_configs::DescribeConfigsRequest,
    AlterConfigs => alter_configs::AlterConfigsRequest,
    CreatePartitions => create_partitions::CreatePartitionsRequest,
    IncrementalAlterConfigs => incremental_alter_configs::IncrementalAlterConfigsRequest,
    DescribeCluster => describe_cluster::DescribeClusterRequest,
    FindCoordinator => find_coordinator::FindCoordinatorRequest,
    JoinGroup => join_group::JoinGroupRequest,
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
    SaslHandshake => sasl_handshake::SaslHandshakeRequest,
    SaslAuthenticate => sasl_authenticate::SaslAuthenticateRequest,
    DescribeUserScramCredentials => describe_user_scram_credentials::DescribeUserScramCredentialsRequest,
    AlterUserScramCredentials => alter_user_scram_credentials::AlterUserScramCredentialsRequest,
    CreateAcls => create_acls::CreateAclsRequest,
    DescribeAcls => describe_acls::DescribeAclsRequest,
    DeleteAcls => delete_acls::DeleteAclsRequest,
    DescribeClientQuotas => describe_client_quotas::DescribeClientQuotasRequest,
    AlterClientQuotas => alter_client_quotas::AlterClientQuotasRequest,
    ConsumerGroupHeartbeat => consumer_group_heartbeat::ConsumerGroupHeartbeatRequest,
    ConsumerGroupDescribe => consumer_group_describe::ConsumerGroupDescribeRequest,
}

/// Who sent the request being handled and how it arrived: JoinGroup records the client,
/// Metadata and FindCoordinator answer with the addresses of the listener the client came in on,
/// Produce waits for its turn to append, SaslHandshake and SaslAuthenticate move the
/// connection's SASL session along, and every handler asks it whether the principal may act.
pub(crate) struct RequestContext<'a> {
    pub(crate) connection: &'a skiff_net::ConnectionInfo,
    /// Who the connection acts as (SASL).
    pub(crate) session: &'a crate::session::Session,
    /// The principal the request is authorized as (the session's, read once per request).
    pub(crate) principal: skiff_auth::Principal,
    /// The ACLs this request is checked against; `None`: no authorizer, everything allowed.
    pub(crate) authorizer: Option<std::sync::Arc<skiff_auth::acl::Authorizer>>,
    /// The client quotas this request is charged against.
    pub(crate) quotas: std::sync::Arc<skiff_auth::quota::Quotas>,
    /// Mutes the connection of a client over its quota.
    pub(crate) throttle: &'a crate::connection::Throttle,
    /// Where denials are counted (`--metrics-listen`).
    pub(crate) metrics: Option<&'a skiff_metrics::Metrics>,
    pub(crate) client_id: &'a str,
    /// When a Produce request may queue its appends (connection.rs: pipelined produces).
    pub(crate) append_turn: crate::connection::AppendTurn,
}

impl RequestContext<'_> {
    /// The peer address as Kafka shows it: `/127.0.0.1`.
    pub(crate) fn host(&self) -> String {
        format!("/{}", self.connection.peer.ip())
    }

    /// Whether the request's principal may perform `operation` on the named resource: the
    /// one question every handler asks before it acts (Kafka's per-API rules, in each handler
    /// file). Always yes without `--authorizer`.
    pub(crate) fn allows(
        &self,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        let allowed = self.decides(operation, resource_type, name);
        if !allowed {
            if let Some(metrics) = self.metrics {
                metrics.authorization_denied(resource_type.name());
            }
            tracing::debug!(
                principal = %self.principal,
                host = %self.connection.peer.ip(),
                ?operation,
                ?resource_type,
                resource = name,
                "denied"
            );
        }
        allowed
    }

    /// The decision, unlogged.
    fn decides(&self, operation: Operation, resource_type: ResourceType, name: &str) -> bool {
        let Some(authorizer) = &self.authorizer else { return true };
        let peer = self.connection.peer.ip();
        authorizer.allows(&self.principal, peer, operation, resource_type, name)
    }

    /// The operations the principal may perform on the resource, as the bit field Kafka's
    /// "authorized operations" fields carry (bit n: the operation with code n), for
    /// Metadata, DescribeCluster and DescribeGroups when a client asks.
    pub(crate) fn authorized_operations(&self, resource_type: ResourceType, name: &str) -> i32 {
        Operation::applicable_to(resource_type)
            .iter()
            .filter(|operation| self.decides(**operation, resource_type, name))
            .fold(0, |bits, operation| bits | 1 << operation.code())
    }

    /// [`Self::allows`] on the cluster resource.
    pub(crate) fn allows_cluster(&self, operation: Operation) -> bool {
        self.allows(operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// [`Self::authorized_operations`] on the cluster resource.
    pub(crate) fn cluster_authorized_operations(&self) -> i32 {
        self.authorized_operations(ResourceType::Cluster, CLUSTER_NAME)
    }

    /// Whether the principal may perform `operation` on some resource of the type (an
    /// idempotent producer with WRITE on any topic).
    pub(crate) fn allows_any(&self, operation: Operation, resource_type: ResourceType) -> bool {
        let Some(authorizer) = &self.authorizer else { return true };
        authorizer.allows_any(&self.principal, self.connection.peer.ip(), operation, resource_type)
    }

    /// Charges `bytes` to the client's quota of `kind` (Produce: request bytes, Fetch:
    /// response bytes), mutes the connection for the throttle time that earns, and returns it
    /// for the response's `throttle_time_ms`.
    pub(crate) fn charge(&self, broker: &Broker, kind: QuotaKind, bytes: usize) -> i32 {
        self.charge_amount(broker, kind, bytes as f64)
    }

    /// Records `amount` on the client's `kind` quota; mutes the connection for the throttle
    /// time and returns it in milliseconds.
    fn charge_amount(&self, broker: &Broker, kind: QuotaKind, amount: f64) -> i32 {
        let client = (self.principal.name.as_str(), self.client_id);
        let time = broker.quotas.charge(&self.quotas, kind, client, amount);
        if let (false, Some(metrics)) = (time.is_zero(), broker.metrics()) {
            metrics.quota_throttled(kind.name());
        }
        self.throttle.mute_for(time);
        i32::try_from(time.as_millis()).unwrap_or(i32::MAX)
    }

    /// Charges the time a request kept the broker busy against the client's
    /// `request_percentage` quota (Kafka's KIP-124: n% is n% of one thread's time); returns the
    /// throttle time, and mutes the connection for it. ApiVersions and the SASL requests are
    /// exempt, as Kafka exempts what a client needs before it can be identified.
    pub(crate) fn charge_busy(&self, broker: &Broker, api_key: ApiKey, busy: Duration) -> i32 {
        if skiff_auth::session::is_authentication(api_key) {
            return 0;
        }
        // A rate in percent of one thread: percent-seconds of busy time per second.
        self.charge_amount(broker, QuotaKind::RequestPercentage, busy.as_secs_f64() * 100.0)
    }

    /// Takes back a charge whose bytes were not sent after all (a throttled fetch answers
    /// empty, as Kafka's does).
    pub(crate) fn refund(&self, broker: &Broker, kind: QuotaKind, bytes: usize) {
        let client = (self.principal.name.as_str(), self.client_id);
        broker.quotas.charge(&self.quotas, kind, client, -(bytes as f64));
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
