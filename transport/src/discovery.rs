//! LAN discovery (docs/peer-sync.md, "Finding peers on the LAN"): `td peer serve` announces
//! itself over multicast DNS (DNS-SD service `_td-sync._udp.local.`) with its project and
//! machine key, and `td peer discover` lists the servers of a project on the local network.
//!
//! An announcement is hostile input like any other: it is bounded and checked here (a key of
//! 64 hex digits whose fingerprint is the instance name, a short printable project id, at most
//! a few addresses), escaped by the CLI, and it only suggests where a machine is: the QUIC
//! handshake proves the machine key before anything is exchanged, and the roster decides who
//! is a member. A forged announcement can at worst point at an address that fails the proof.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mdns_sd::{ServiceDaemon, ServiceEvent, ServiceInfo};
use td_engine::identity::fingerprint_of;

use crate::error::TransportError;

/// The DNS-SD service type td servers announce.
pub const SERVICE: &str = "_td-sync._udp.local.";

/// The longest project id read from an announcement.
const MAX_PROJECT: usize = 128;

/// The most addresses kept per announced machine.
const MAX_ADDRS: usize = 8;

/// The most machines one discovery reports (a network full of forged announcements).
const MAX_FOUND: usize = 256;

fn mdns_err(e: mdns_sd::Error) -> TransportError {
    TransportError::Connection(format!("LAN discovery (mDNS): {e}"))
}

/// This server's announcement; withdrawn when dropped.
pub struct Announcement {
    daemon: ServiceDaemon,
    fullname: String,
}

impl Drop for Announcement {
    fn drop(&mut self) {
        if let Ok(done) = self.daemon.unregister(&self.fullname) {
            let _ = done.recv_timeout(Duration::from_secs(1));
        }
        let _ = self.daemon.shutdown();
    }
}

/// Announces the server of `project` for the machine `key` on `port`, on every interface
/// (addresses follow the interfaces as they change).
pub fn announce(project: &str, key: &[u8; 32], port: u16) -> Result<Announcement, TransportError> {
    let daemon = ServiceDaemon::new().map_err(mdns_err)?;
    let fp = fingerprint_of(key);
    let key_hex = hex::encode(key);
    let props = [("v", "1"), ("project", project), ("key", key_hex.as_str())];
    let info = ServiceInfo::new(
        SERVICE,
        &fp,
        &format!("td-{fp}.local."),
        "",
        port,
        &props[..],
    )
    .map_err(mdns_err)?
    .enable_addr_auto();
    let fullname = info.get_fullname().to_string();
    daemon.register(info).map_err(mdns_err)?;
    Ok(Announcement { daemon, fullname })
}

/// A td server found on the LAN, as checked here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The machine key it announces (the handshake proves it).
    pub key: [u8; 32],
    /// Its project id.
    pub project: String,
    /// Where it serves (IPv4 first).
    pub addrs: Vec<SocketAddr>,
}

/// Why an announcement is not read, if it is not.
fn check(info: &ServiceInfo) -> Option<Found> {
    let key_hex = info.get_property_val_str("key")?;
    if key_hex.len() != 64 {
        return None;
    }
    let key: [u8; 32] = hex::decode(key_hex).ok()?.try_into().ok()?;
    // The instance name is the key's fingerprint: one name per machine, not chosen freely.
    let instance = info
        .get_fullname()
        .strip_suffix(SERVICE)?
        .trim_end_matches('.');
    if instance != fingerprint_of(&key) {
        return None;
    }
    let project = info.get_property_val_str("project")?;
    if project.is_empty()
        || project.len() > MAX_PROJECT
        || !project
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return None;
    }
    let port = info.get_port();
    if port == 0 {
        return None;
    }
    // A link-local IPv6 address is useless without its interface, which DNS-SD does not carry.
    let mut ips: Vec<IpAddr> = info
        .get_addresses()
        .iter()
        .copied()
        .filter(|ip| !matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80))
        .collect();
    ips.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    ips.truncate(MAX_ADDRS);
    Some(Found {
        key,
        project: project.to_string(),
        addrs: ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect(),
    })
}

/// Listens for td servers on the LAN for `wait`, returning each machine once (its addresses
/// merged), of `project` only when given.
pub fn discover(project: Option<&str>, wait: Duration) -> Result<Vec<Found>, TransportError> {
    let daemon = ServiceDaemon::new().map_err(mdns_err)?;
    let events = daemon.browse(SERVICE).map_err(mdns_err)?;
    let deadline = Instant::now() + wait;
    let mut found: BTreeMap<[u8; 32], Found> = BTreeMap::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(event) = events.recv_timeout(left) else {
            break;
        };
        let ServiceEvent::ServiceResolved(info) = event else {
            continue;
        };
        let Some(f) = check(&info) else {
            continue;
        };
        if project.is_some_and(|p| p != f.project) {
            continue;
        }
        if found.len() >= MAX_FOUND && !found.contains_key(&f.key) {
            continue;
        }
        let entry = found.entry(f.key).or_insert_with(|| Found {
            addrs: Vec::new(),
            ..f.clone()
        });
        for a in f.addrs {
            if !entry.addrs.contains(&a) && entry.addrs.len() < MAX_ADDRS {
                entry.addrs.push(a);
            }
        }
    }
    let _ = daemon.stop_browse(SERVICE);
    let _ = daemon.shutdown();
    Ok(found
        .into_values()
        .filter(|f| !f.addrs.is_empty())
        .map(|mut f| {
            // IPv4 first: the address a round dials.
            f.addrs.sort_by_key(|a| (a.is_ipv6(), *a));
            f
        })
        .collect())
}
