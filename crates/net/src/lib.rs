//! The network layer shared by the broker and the proxy: everything between a listening socket
//! and a Kafka frame, so both speak TLS, count connections and stop the same way.
//!
//! - [`listener`]: listeners as Kafka spells them (`NAME://host:port`, a security protocol per
//!   name), bound to sockets, with a TLS acceptor where the protocol asks for one.
//! - [`tls`]: a server TLS configuration from PEM files, reloaded when the files change, so a
//!   renewed certificate needs no restart.
//! - [`stream`]: one stream type over plaintext TCP or TLS, split into read and write halves.
//! - [`server`]: accept loops over any number of listeners with one connection limit, a graceful
//!   stop that lets connections finish, and idle detection (scale to zero).
//! - [`frame`]: size-prefixed Kafka frames read into one reused buffer, with limits checked
//!   before anything is allocated.
//!
//! What a connection knows about itself (peer, listener, client certificate) is a
//! [`ConnectionInfo`], handed to the connection's handler: the broker passes it on to the
//! request handlers that need it, instead of task-local state.

pub mod frame;
pub mod listener;
pub mod server;
pub mod stream;
pub mod tls;

pub use frame::{FrameError, FrameKind, FrameReader};
pub use listener::{Listener, ListenerInfo, ListenerSpec, SecurityProtocol};
pub use server::{ConnectionInfo, Server};
pub use stream::{ReadHalf, Stream, WriteHalf};
pub use tls::{TlsError, TlsFiles};

/// Whether an I/O error means the peer went away (reset, broken pipe, aborted): a normal
/// goodbye for Kafka clients, worth a debug line, not a warning.
pub fn is_peer_gone(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    matches!(error.kind(), BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof)
}
