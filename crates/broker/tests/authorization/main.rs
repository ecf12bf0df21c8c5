//! ACLs enforced at the wire: a broker with `--authorizer acl` on a SASL_PLAINTEXT listener,
//! users who log in with PLAIN, and ACLs written to storage that the broker reads for every
//! request (refresh 0, so no test waits for a refresh). One module per family of APIs; real
//! clients over the same rules are in tests/e2e/test_acl.py.

#[path = "../common/mod.rs"]
mod common;

mod admin;
mod groups;
mod topics;
mod transactions;

use bytes::Bytes;
use kafka_protocol::messages::*;
use skiff_auth::acl::{AclBinding, AclStore, Operation, PatternType, Permission, ResourceType};
use skiff_auth::{ScramCredential, ScramMechanism};
use skiff_broker::{AuthorizationConfig, Broker, BrokerConfig, ListenerConfig};
use skiff_net::SecurityProtocol;
use tokio::net::TcpStream;

/// The password of every test user.
pub(crate) const PASSWORD: &str = "secret";

/// A broker enforcing ACLs, with users `admin` (a super user), `alice` and `bob`.
pub(crate) struct Cluster {
    pub(crate) address: std::net::SocketAddr,
    acls: AclStore,
}

impl Cluster {
    pub(crate) async fn start() -> Self {
        let storage = skiff_storage_memory::MemoryEngine::storage();
        let users = skiff_auth::Users::new(storage.state.clone());
        for user in ["admin", "alice", "bob"] {
            // The fewest iterations SCRAM allows: PLAIN logins are checked against it.
            let credential = ScramCredential::new(ScramMechanism::Sha256, PASSWORD, 4096);
            users.upsert(user, ScramMechanism::Sha256, credential).await.expect("user");
        }
        let mut config = BrokerConfig::for_address("127.0.0.1:0".parse().expect("address"));
        config.listeners = vec![ListenerConfig {
            name: "SASL_PLAINTEXT".into(),
            protocol: SecurityProtocol::SaslPlaintext,
            ..ListenerConfig::plaintext("127.0.0.1:0".parse().expect("address"))
        }];
        config.authorization = Some(AuthorizationConfig {
            rules: skiff_auth::acl::AuthorizerConfig {
                super_users: vec!["User:admin".into()],
                allow_everyone_if_no_acl_found: false,
            },
            refresh: std::time::Duration::ZERO,
        });
        config.group_initial_rebalance_delay_ms = 0;
        let acls = AclStore::new(storage.state.clone());
        let address = common::serve(Broker::new(storage, config)).await;
        Self { address, acls }
    }

    /// A connection authenticated as `user` with SASL/PLAIN.
    pub(crate) async fn login(&self, user: &str) -> TcpStream {
        let mut stream = TcpStream::connect(self.address).await.expect("connect");
        let handshake = SaslHandshakeRequest::default().with_mechanism(text("PLAIN"));
        let answer = call(&mut stream, &handshake, 1).await;
        assert_eq!(answer.error_code, 0, "handshake");
        let token = format!("\0{user}\0{PASSWORD}");
        let authenticate =
            SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token.into_bytes()));
        let answer = call(&mut stream, &authenticate, 2).await;
        assert_eq!(answer.error_code, 0, "{user} logs in");
        stream
    }

    /// Allows `User:<user>` the operation on the literally named resource (`*`: all of its
    /// type); [`Self::add`] writes any other ACL.
    pub(crate) async fn allow(
        &self,
        user: &str,
        resource_type: ResourceType,
        name: &str,
        operation: Operation,
    ) {
        self.add(user, resource_type, name, PatternType::Literal, operation, Permission::Allow)
            .await;
    }

    pub(crate) async fn add(
        &self,
        user: &str,
        resource_type: ResourceType,
        name: &str,
        pattern_type: PatternType,
        operation: Operation,
        permission: Permission,
    ) {
        let binding = AclBinding {
            resource_type,
            resource_name: name.to_owned(),
            pattern_type,
            principal: format!("User:{user}"),
            host: "*".to_owned(),
            operation,
            permission,
        };
        self.acls.create(&[binding]).await.expect("ACL stored");
    }

    /// Creates a one-partition topic as the super user.
    pub(crate) async fn create_topic(&self, name: &str) {
        let mut admin = self.login("admin").await;
        let request = CreateTopicsRequest::default().with_topics(vec![
            create_topics_request::CreatableTopic::default()
                .with_name(TopicName(text(name)))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ]);
        let response = call(&mut admin, &request, 7).await;
        assert_eq!(response.topics[0].error_code, 0, "created {name}");
    }
}

pub(crate) use common::{call, text};

/// Kafka's error codes the tests expect.
pub(crate) mod code {
    pub(crate) const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    pub(crate) const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    pub(crate) const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
    pub(crate) const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
}
