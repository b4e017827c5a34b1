//! LAN discovery (docs/peer-sync.md, "Finding peers on the LAN"): `td peer serve` announces
//! itself over multicast DNS (DNS-SD service `_td-sync._udp.local.`), and `td peer discover`
//! and the sync loop find the servers of a project's members on the local network.
//!
//! An announcement names neither the project nor the machine in clear: it carries a random
//! nonce, a project tag `SHA-256("td-lan-v2 project" ‖ nonce ‖ project id)[..16]` and a
//! machine tag `SHA-256("td-lan-v2 machine" ‖ nonce ‖ machine key)[..16]`, under an instance
//! name made from the nonce. A member, who knows the project id and the roster's keys,
//! recognises both; a bystander learns nothing it can link from one start of a server to the
//! next. (Whoever knows the project id and a member's public key, a hub operator for one,
//! can recognise that machine.)
//!
//! An announcement is hostile input like any other: it is bounded and checked here, escaped
//! by the CLI, and it only suggests where a machine is: the QUIC handshake proves the machine
//! key before anything is exchanged, and the roster decides who is a member. A forged
//! announcement can at worst point at an address that fails the proof.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mdns_sd::{ServiceDaemon, ServiceEvent, ServiceInfo};
use sha2::{Digest, Sha256};

use crate::error::TransportError;

/// The DNS-SD service type td servers announce.
pub const SERVICE: &str = "_td-sync._udp.local.";

/// Bytes of an announcement's nonce and tags.
const TAG: usize = 16;

/// The most addresses kept per announced machine.
const MAX_ADDRS: usize = 8;

/// The most machines one discovery reports (a network full of forged announcements).
const MAX_FOUND: usize = 256;

fn mdns_err(e: mdns_sd::Error) -> TransportError {
    TransportError::Connection(format!("LAN discovery (mDNS): {e}"))
}

fn tag(what: &str, nonce: &[u8; TAG], secret: &[u8]) -> [u8; TAG] {
    let mut h = Sha256::new();
    h.update(format!("td-lan-v2 {what}").as_bytes());
    h.update(nonce);
    h.update(secret);
    let d = h.finalize();
    let mut out = [0u8; TAG];
    out.copy_from_slice(&d[..TAG]);
    out
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
/// (addresses follow the interfaces as they change), under tags only members recognise.
pub fn announce(project: &str, key: &[u8; 32], port: u16) -> Result<Announcement, TransportError> {
    let daemon = ServiceDaemon::new().map_err(mdns_err)?;
    let nonce: [u8; TAG] = td_engine::identity::random_bytes();
    let n = hex::encode(nonce);
    let p = hex::encode(tag("project", &nonce, project.as_bytes()));
    let m = hex::encode(tag("machine", &nonce, key));
    let props = [
        ("v", "2"),
        ("n", n.as_str()),
        ("p", p.as_str()),
        ("m", m.as_str()),
    ];
    let instance = format!("td-{n}");
    let info = ServiceInfo::new(
        SERVICE,
        &instance,
        &format!("{instance}.local."),
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

/// A td server of this project found on the LAN, as checked here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The machine key its tag matches among those asked about, or `None`: a server of this
    /// project whose machine this replica does not know (not a member here).
    pub key: Option<[u8; 32]>,
    /// Its nonce (one per start of a server: tells unknown machines apart).
    pub nonce: String,
    /// Where it serves (IPv4 first).
    pub addrs: Vec<SocketAddr>,
}

fn hex_tag(info: &ServiceInfo, name: &str) -> Option<[u8; TAG]> {
    let v = info.get_property_val_str(name)?;
    if v.len() != 2 * TAG {
        return None;
    }
    hex::decode(v).ok()?.try_into().ok()
}

/// Reads an announcement of `project`, recognising its machine among `keys`; `None` for
/// anything malformed or of another project.
fn check(info: &ServiceInfo, project: &str, keys: &[[u8; 32]]) -> Option<Found> {
    let nonce = hex_tag(info, "n")?;
    // The instance name is made from the nonce: one name per start, not chosen freely.
    let instance = info
        .get_fullname()
        .strip_suffix(SERVICE)?
        .trim_end_matches('.');
    if instance != format!("td-{}", hex::encode(nonce)) {
        return None;
    }
    if hex_tag(info, "p")? != tag("project", &nonce, project.as_bytes()) {
        return None;
    }
    let m = hex_tag(info, "m")?;
    let key = keys
        .iter()
        .find(|k| tag("machine", &nonce, k.as_slice()) == m)
        .copied();
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
        nonce: hex::encode(nonce),
        addrs: ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect(),
    })
}

/// Listens for td servers of `project` on the LAN for `wait`, recognising machines among
/// `keys` (the roster's, the address book's), returning each announcement once (its
/// addresses merged). Announcements of other projects are not reported.
pub fn discover(
    project: &str,
    keys: &[[u8; 32]],
    wait: Duration,
) -> Result<Vec<Found>, TransportError> {
    let daemon = ServiceDaemon::new().map_err(mdns_err)?;
    let events = daemon.browse(SERVICE).map_err(mdns_err)?;
    let deadline = Instant::now() + wait;
    let mut found: BTreeMap<String, Found> = BTreeMap::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(event) = events.recv_timeout(left) else {
            break;
        };
        let ServiceEvent::ServiceResolved(info) = event else {
            continue;
        };
        let Some(f) = check(&info, project, keys) else {
            continue;
        };
        if found.len() >= MAX_FOUND && !found.contains_key(&f.nonce) {
            continue;
        }
        let entry = found.entry(f.nonce.clone()).or_insert_with(|| Found {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn announcement(project: &str, key: &[u8; 32], nonce: [u8; TAG]) -> ServiceInfo {
        let n = hex::encode(nonce);
        let p = hex::encode(tag("project", &nonce, project.as_bytes()));
        let m = hex::encode(tag("machine", &nonce, key));
        let props = [
            ("v", "2"),
            ("n", n.as_str()),
            ("p", p.as_str()),
            ("m", m.as_str()),
        ];
        let instance = format!("td-{n}");
        ServiceInfo::new(
            SERVICE,
            &instance,
            &format!("{instance}.local."),
            "10.0.0.7",
            7878,
            &props[..],
        )
        .unwrap()
    }

    #[test]
    fn members_recognise_announcements_that_name_nothing_in_clear() {
        let (key, other) = ([7u8; 32], [9u8; 32]);
        let info = announcement("proj-1234", &key, [1; TAG]);
        // Neither the project id nor the machine's key or fingerprint is in the announcement.
        let text = format!("{:?}", info.get_properties());
        assert!(!text.contains("proj-1234"), "{text}");
        assert!(!text.contains(&hex::encode(key)), "{text}");
        assert!(!info.get_fullname().contains(&fingerprint(&key)));
        // A member recognises project and machine.
        let f = check(&info, "proj-1234", &[other, key]).unwrap();
        assert_eq!(f.key, Some(key));
        assert_eq!(f.addrs, vec!["10.0.0.7:7878".parse().unwrap()]);
        // Another project's announcement is not reported; an unknown machine is reported
        // without a key (never dialed by the loop).
        assert!(check(&info, "proj-5678", &[key]).is_none());
        assert_eq!(check(&info, "proj-1234", &[other]).unwrap().key, None);
        // Two starts of one server cannot be linked by a bystander: different names and tags.
        let again = announcement("proj-1234", &key, [2; TAG]);
        assert_ne!(again.get_fullname(), info.get_fullname());
        assert_ne!(
            again.get_property_val_str("m"),
            info.get_property_val_str("m")
        );
        // An instance name that is not its nonce's is refused.
        let forged = ServiceInfo::new(
            SERVICE,
            "td-forged",
            "td-forged.local.",
            "10.0.0.7",
            7878,
            &[("n", hex::encode([1u8; TAG]).as_str())][..],
        )
        .unwrap();
        assert!(check(&forged, "proj-1234", &[key]).is_none());
    }

    fn fingerprint(key: &[u8; 32]) -> String {
        td_engine::identity::fingerprint_of(key)
    }
}
