//! Which port each proxy listener binds (binding is `skiff_net::listener::bind`, as the broker
//! binds).
//!
//! The proxy serves every upstream broker on a port of its own (see `topology`). By default each
//! of those listeners takes any free port the kernel offers (port 0): clients learn broker
//! addresses from Metadata, so fixed numbers are not needed, and a fixed range next to the
//! bootstrap port collides with whatever else uses those ports (ephemeral ports of outgoing
//! connections included). Deployments that must know the ports in advance (firewalls, NAT, port
//! mappings) choose them with a list, a base port, or both.

use std::collections::HashSet;

use crate::error::ProxyError;

/// Which port the proxy listens on for each upstream broker it serves.
///
/// Route *n* is the *n*-th upstream broker address the proxy knows: the `--upstream` list first,
/// in order, then brokers discovered in Metadata, FindCoordinator and DescribeCluster answers, in
/// the order they are seen. Route *n* listens on `list[n]` if the list is that long, else on
/// `base + n` if `base` is not 0, else on any free port. A 0 in the list also means any free port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerPorts {
    /// Ports of the first routes, in route order (`--broker-ports`).
    pub list: Vec<u16>,
    /// Routes beyond the list listen on `base` + route number; 0 means any free port
    /// (`--broker-port-base`).
    pub base: u16,
}

/// The port a route asks for, and which setting chose it (so a bind error can name the flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PortChoice {
    /// A port from `--broker-ports`.
    Listed(u16),
    /// `--broker-port-base` + route number.
    FromBase(u16),
    /// Any free port (port 0).
    Any,
}

impl PortChoice {
    pub(crate) fn port(self) -> u16 {
        match self {
            Self::Listed(port) | Self::FromBase(port) => port,
            Self::Any => 0,
        }
    }

    /// What to change when this port cannot be bound.
    pub(crate) fn hint(self) -> &'static str {
        match self {
            Self::Listed(_) => {
                "the port comes from --broker-ports: choose a free one there, or 0 for any free port"
            }
            Self::FromBase(_) => {
                "the port is --broker-port-base plus the broker's number: choose another base, \
                 or 0 for any free ports"
            }
            Self::Any => "no free port was left on that address",
        }
    }
}

impl BrokerPorts {
    /// Refuses settings that cannot work whatever else runs on the machine.
    pub(crate) fn validate(&self) -> Result<(), ProxyError> {
        let mut seen = HashSet::new();
        for port in self.list.iter().filter(|port| **port != 0) {
            if !seen.insert(port) {
                return Err(ProxyError::Config(format!("--broker-ports lists port {port} twice")));
            }
        }
        Ok(())
    }

    /// The port route number `route` (0-based) asks for.
    pub(crate) fn choose(&self, route: usize) -> Result<PortChoice, ProxyError> {
        if let Some(&port) = self.list.get(route) {
            return Ok(if port == 0 { PortChoice::Any } else { PortChoice::Listed(port) });
        }
        if self.base == 0 {
            return Ok(PortChoice::Any);
        }
        match u16::try_from(usize::from(self.base).saturating_add(route)) {
            Ok(port) => Ok(PortChoice::FromBase(port)),
            Err(_) => Err(ProxyError::Config(format!(
                "--broker-port-base {} leaves no port for upstream broker number {route} \
                 (the ports end at 65535)",
                self.base
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_any_free_port_for_every_broker() {
        let ports = BrokerPorts::default();
        for route in [0, 1, 63, 10_000] {
            assert_eq!(ports.choose(route).ok(), Some(PortChoice::Any));
        }
    }

    #[test]
    fn the_list_comes_first_then_the_base() {
        let ports = BrokerPorts { list: vec![40001, 0, 40003], base: 50000 };
        let chosen: Vec<_> = (0..5).map(|route| ports.choose(route).ok()).collect();
        assert_eq!(
            chosen,
            vec![
                Some(PortChoice::Listed(40001)),
                Some(PortChoice::Any),
                Some(PortChoice::Listed(40003)),
                Some(PortChoice::FromBase(50003)),
                Some(PortChoice::FromBase(50004)),
            ]
        );
        let list_only = BrokerPorts { list: vec![40001], base: 0 };
        assert_eq!(list_only.choose(1).ok(), Some(PortChoice::Any));
    }

    #[test]
    fn a_base_near_the_end_runs_out_with_a_message_naming_the_flag() {
        let ports = BrokerPorts { list: vec![], base: 65534 };
        assert_eq!(ports.choose(1).ok(), Some(PortChoice::FromBase(65535)));
        let error = ports.choose(2).map_err(|error| error.to_string());
        assert!(
            matches!(&error, Err(message) if message.contains("--broker-port-base")),
            "{error:?}"
        );
    }

    #[test]
    fn a_port_listed_twice_is_refused() {
        let twice = BrokerPorts { list: vec![40001, 0, 0, 40001], base: 0 };
        let error = twice.validate().map_err(|error| error.to_string());
        assert!(matches!(&error, Err(message) if message.contains("--broker-ports")), "{error:?}");
        let zeros = BrokerPorts { list: vec![0, 0, 40001], base: 0 };
        assert!(zeros.validate().is_ok());
    }
}
