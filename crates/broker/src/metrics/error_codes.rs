//! Every error code an answer carries, for the error metrics: the top-level code first, then
//! those per topic, partition, group or resource in answer order. Written out per response
//! type because Kafka nests them differently in each; an API missing here would not compile
//! (the dispatcher asks every handled response for its codes).

use kafka_protocol::messages::*;

/// The error codes of a response, 0 included (callers skip it).
pub(crate) trait ErrorCodes {
    fn error_codes(&self, seen: &mut dyn FnMut(i16));
}

/// Responses whose only error code is the top-level one.
macro_rules! top_level_only {
    ($($response:ty),* $(,)?) => {$(
        impl ErrorCodes for $response {
            fn error_codes(&self, seen: &mut dyn FnMut(i16)) {
                seen(self.error_code);
            }
        }
    )*};
}

/// Responses with codes only one or two levels down: `$response: list => code` or
/// `$response: list / inner => code`, with an optional top-level code first.
macro_rules! nested {
    ($response:ty $(, top $top:ident)?: $outer:ident => $code:ident) => {
        impl ErrorCodes for $response {
            fn error_codes(&self, seen: &mut dyn FnMut(i16)) {
                $(seen(self.$top);)?
                self.$outer.iter().for_each(|item| seen(item.$code));
            }
        }
    };
    ($response:ty $(, top $top:ident)?: $outer:ident / $inner:ident => $code:ident) => {
        impl ErrorCodes for $response {
            fn error_codes(&self, seen: &mut dyn FnMut(i16)) {
                $(seen(self.$top);)?
                for item in &self.$outer {
                    item.$inner.iter().for_each(|inner| seen(inner.$code));
                }
            }
        }
    };
}

top_level_only!(
    ApiVersionsResponse,
    DescribeClusterResponse,
    JoinGroupResponse,
    SyncGroupResponse,
    HeartbeatResponse,
    ListGroupsResponse,
    InitProducerIdResponse,
    AddOffsetsToTxnResponse,
    EndTxnResponse,
    ListTransactionsResponse,
    SaslHandshakeResponse,
    SaslAuthenticateResponse,
    DescribeAclsResponse,
    DescribeClientQuotasResponse,
    ConsumerGroupHeartbeatResponse,
);

nested!(ProduceResponse: responses / partition_responses => error_code);
nested!(FetchResponse, top error_code: responses / partitions => error_code);
nested!(ListOffsetsResponse: topics / partitions => error_code);
nested!(CreateTopicsResponse: topics => error_code);
nested!(DeleteTopicsResponse: responses => error_code);
nested!(DeleteRecordsResponse: topics / partitions => error_code);
nested!(OffsetForLeaderEpochResponse: topics / partitions => error_code);
nested!(DescribeConfigsResponse: results => error_code);
nested!(AlterConfigsResponse: responses => error_code);
nested!(IncrementalAlterConfigsResponse: responses => error_code);
nested!(CreatePartitionsResponse: results => error_code);
nested!(FindCoordinatorResponse, top error_code: coordinators => error_code);
nested!(LeaveGroupResponse, top error_code: members => error_code);
nested!(OffsetCommitResponse: topics / partitions => error_code);
nested!(DescribeGroupsResponse: groups => error_code);
nested!(DeleteGroupsResponse: results => error_code);
nested!(OffsetDeleteResponse, top error_code: topics / partitions => error_code);
nested!(TxnOffsetCommitResponse: topics / partitions => error_code);
nested!(DescribeTransactionsResponse: transaction_states => error_code);
nested!(DescribeProducersResponse: topics / partitions => error_code);
nested!(DescribeUserScramCredentialsResponse, top error_code: results => error_code);
nested!(AlterUserScramCredentialsResponse: results => error_code);
nested!(CreateAclsResponse: results => error_code);
nested!(AlterClientQuotasResponse: entries => error_code);
nested!(DeleteAclsResponse: filter_results => error_code);
nested!(ConsumerGroupDescribeResponse: groups => error_code);

impl ErrorCodes for MetadataResponse {
    fn error_codes(&self, seen: &mut dyn FnMut(i16)) {
        seen(self.error_code);
        for topic in &self.topics {
            seen(topic.error_code);
            topic.partitions.iter().for_each(|partition| seen(partition.error_code));
        }
    }
}

/// v0-v3 group codes one level down, v8+ one more per group.
impl ErrorCodes for OffsetFetchResponse {
    fn error_codes(&self, seen: &mut dyn FnMut(i16)) {
        seen(self.error_code);
        for topic in &self.topics {
            topic.partitions.iter().for_each(|partition| seen(partition.error_code));
        }
        for group in &self.groups {
            seen(group.error_code);
            for topic in &group.topics {
                topic.partitions.iter().for_each(|partition| seen(partition.error_code));
            }
        }
    }
}

/// v0-v3 list results by topic; v4+ (batched, broker-to-broker) by transaction.
impl ErrorCodes for AddPartitionsToTxnResponse {
    fn error_codes(&self, seen: &mut dyn FnMut(i16)) {
        seen(self.error_code);
        let by_topic = self.results_by_transaction.iter().flat_map(|txn| &txn.topic_results);
        for topic in self.results_by_topic_v3_and_below.iter().chain(by_topic) {
            topic.results_by_partition.iter().for_each(|result| seen(result.partition_error_code));
        }
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };

    use super::*;

    fn codes(response: &impl ErrorCodes) -> Vec<i16> {
        let mut codes = Vec::new();
        response.error_codes(&mut |code| codes.push(code));
        codes
    }

    #[test]
    fn produce_codes_come_per_partition_in_answer_order() {
        let partition = |code| PartitionProduceResponse::default().with_error_code(code);
        let response = ProduceResponse::default().with_responses(vec![
            TopicProduceResponse::default()
                .with_partition_responses(vec![partition(0), partition(3)]),
            TopicProduceResponse::default().with_partition_responses(vec![partition(87)]),
        ]);
        assert_eq!(codes(&response), vec![0, 3, 87]);
    }

    #[test]
    fn the_top_level_code_comes_first() {
        let response = FetchResponse::default().with_error_code(15);
        assert_eq!(codes(&response), vec![15]);
        assert_eq!(codes(&HeartbeatResponse::default().with_error_code(27)), vec![27]);
    }
}
