//! `td peer`: the address book, serving and syncing over QUIC.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use serde_json::{json, Value};
use td_engine::roster;
use td_engine::Project;
use td_transport::peer::{PeerTarget, Server};
use td_transport::TransportError;

use clap::Subcommand;

use super::Cx;
use crate::output::{emit, invalid};

/// `td peer`.
#[derive(Debug, Subcommand)]
pub(crate) enum PeerCommand {
    /// This machine's fingerprint and public key (the key is what other machines paste).
    Id,
    /// Add a peer to the address book: where it serves and the key it must prove. This admits
    /// nobody: admitting a machine is 'td member add' (admins).
    Add {
        /// A local name for the peer.
        name: String,
        /// Where it serves: host:port.
        addr: String,
        /// Its machine public key (from 'td peer id' on that machine).
        #[arg(long)]
        key: String,
    },
    /// List the address book.
    List,
    /// Remove a peer from the address book (the roster is unchanged).
    Remove {
        /// The peer's name.
        name: String,
    },
    /// Serve this project to peers until interrupted (SIGINT/SIGTERM).
    Serve {
        /// Address to listen on (port 0 picks a free port; the first output line names it).
        #[arg(long, default_value = "0.0.0.0:7878")]
        listen: String,
        /// Do not announce this server on the LAN (mDNS; a server on a loopback address is
        /// never announced).
        #[arg(long)]
        no_announce: bool,
    },
    /// Find td servers of this project on the local network (mDNS): each machine with its
    /// addresses, whether it is a member here and under which name the address book knows it.
    /// --add puts the members found in the address book (or updates their address).
    Discover {
        /// How long to listen (e.g. 3s, 500ms).
        #[arg(long, default_value = "3s")]
        wait: String,
        /// Add (or update) every member found in the address book, named as the roster names it.
        #[arg(long)]
        add: bool,
    },
    /// One sync round with each named peer (all peers when none is named), or with
    /// <host:port> --key <public-key>.
    Sync {
        /// Peer names, or one host:port with --key.
        peers: Vec<String>,
        /// The public key of an ad-hoc peer given as host:port.
        #[arg(long)]
        key: Option<String>,
        /// Keep one connection to the peer and sync whenever this replica changes (and at
        /// least every --every seconds) until Ctrl-C. Prints one line per round (one JSON
        /// object per line with --json). Rounds after the first skip the QUIC/TLS handshake.
        #[arg(long)]
        watch: bool,
        /// With --watch: the longest wait between rounds, in seconds (pulls the peer's news).
        #[arg(long, value_name = "SECONDS", default_value_t = 30, requires = "watch")]
        every: u64,
    },
}

/// `td peer id`: works without a project.
pub(crate) fn peer_id(json: bool) -> Result<()> {
    let id = td_transport::identity::machine_identity()?;
    let v = json!({"machine": id.fingerprint(), "public_key": id.public_key_hex()});
    emit(json, &v, || {
        format!(
            "machine     {}\npublic key  {}",
            id.fingerprint(),
            id.public_key_hex()
        )
    });
    Ok(())
}

/// Runs one `td peer` subcommand (`id` runs without a project: [`peer_id`]).
pub(crate) fn run(c: &PeerCommand, cx: &mut Cx<'_>) -> Result<()> {
    let (p, root, json) = (&mut *cx.p, cx.root, cx.json);
    match c {
        PeerCommand::Id => peer_id(json)?,
        PeerCommand::Add { name, addr, key } => {
            p.peer_add(name, addr, key)?;
            let v =
                json!({"action": "added", "name": name, "addr": addr, "public_key": key.trim()});
            emit(json, &v, || format!("ADDED peer {name} at {addr}"));
        }
        PeerCommand::List => {
            let peers: Vec<Value> = p.peers()?.iter().map(|x| x.to_json()).collect();
            let human = crate::output::listing(
                &peers,
                "No peers. Add one with: td peer add <name> <host:port> --key <public-key>",
                |x| crate::output::columns(x, &["name", "addr", "machine"]),
            );
            emit(json, &Value::Array(peers), || human);
        }
        PeerCommand::Remove { name } => {
            p.peer_remove(name)?;
            emit(json, &json!({"action": "removed", "name": name}), || {
                format!("REMOVED peer {name}")
            });
        }
        PeerCommand::Serve {
            listen,
            no_announce,
        } => serve(
            p,
            root,
            listen,
            !*no_announce && crate::config::discovery_on(root),
        )?,
        PeerCommand::Discover { wait, add } => super::peer_discover::run(p, wait, *add, json)?,
        PeerCommand::Sync {
            peers,
            key,
            watch: true,
            every,
        } => watch(p, root, peers, key.as_deref(), *every, json)?,
        PeerCommand::Sync { peers, key, .. } => sync(p, root, peers, key.as_deref(), json)?,
    }
    Ok(())
}

fn serve(p: &Project, root: &Path, listen: &str, announce: bool) -> Result<()> {
    let addr = listen.parse().map_err(|_| {
        invalid(format!(
            "invalid --listen address '{listen}': expected ip:port, e.g. 0.0.0.0:7878"
        ))
    })?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let identity = p.store.identity().clone();
    let project = p.store.project_id()?;
    rt.block_on(async move {
        let server = Server::bind(root.to_path_buf(), identity.clone(), addr)?;
        let bound = server.local_addr()?;
        println!("listening on {bound}");
        use std::io::Write;
        std::io::stdout().flush()?;
        // Teammates on the LAN find this server with 'td peer discover' (withdrawn on exit).
        let _announced = if announce && !bound.ip().is_loopback() {
            match td_transport::discovery::announce(&project, &identity.public_key(), bound.port())
            {
                Ok(a) => {
                    eprintln!(
                        "{} announced on the LAN as {} (mDNS; --no-announce to stop)",
                        td_transport::sync_loop::log_time(),
                        identity.fingerprint()
                    );
                    Some(a)
                }
                Err(e) => {
                    eprintln!(
                        "{} not announced on the LAN: {}",
                        td_transport::sync_loop::log_time(),
                        crate::output::escape(&e.to_string())
                    );
                    None
                }
            }
        } else {
            None
        };
        // Each line begins with the time, as `td sync watch`'s do.
        let log: Arc<dyn Fn(String) + Send + Sync> = Arc::new(|line| {
            eprintln!(
                "{} {}",
                td_transport::sync_loop::log_time(),
                crate::output::escape(&line)
            )
        });
        server.run(shutdown_signal(), log).await;
        eprintln!("{} stopped", td_transport::sync_loop::log_time());
        Ok::<(), anyhow::Error>(())
    })
}

/// Resolves on Ctrl-C or SIGTERM (graceful shutdown of `td peer serve` and `td serve`).
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn targets(
    p: &Project,
    names: &[String],
    key: Option<&str>,
) -> Result<Vec<std::result::Result<PeerTarget, (String, String)>>> {
    if let Some(k) = key {
        let [addr] = names else {
            return Err(invalid("--key needs exactly one host:port, e.g. td peer sync 10.0.0.5:7878 --key <public-key>".into()));
        };
        let key = roster::parse_public_key(k)?;
        return Ok(vec![Ok(PeerTarget {
            name: addr.clone(),
            addr: addr.clone(),
            key,
        })]);
    }
    let book = p.peers()?;
    if names.is_empty() {
        if book.is_empty() {
            return Err(invalid("no peers to sync with: add one with 'td peer add <name> <host:port> --key <public-key>'".into()));
        }
        return Ok(book
            .iter()
            .map(|b| crate::hub::target_of(b).map_err(|e| (b.name.clone(), e.to_string())))
            .collect());
    }
    Ok(names
        .iter()
        .map(|n| match book.iter().find(|b| &b.name == n) {
            Some(b) => crate::hub::target_of(b).map_err(|e| (n.clone(), e.to_string())),
            None => Err((
                n.clone(),
                format!("unknown peer '{n}' (see 'td peer list'; for an address use --key)"),
            )),
        })
        .collect())
}

/// One round's result as td prints it.
fn round_json(name: &str, o: &td_transport::peer::SyncOutcome) -> (Value, bool) {
    let s = &o.stats;
    let conflicts = s.conflicts.len();
    let mut v = json!({"peer": name, "sent": s.sent, "received": s.received, "duplicates": s.duplicates, "conflicts": conflicts,
        "bytes": {"frames_out": s.bytes_out, "frames_in": s.bytes_in, "udp_out": o.udp_sent, "udp_in": o.udp_received},
        "ms": o.elapsed.as_millis() as u64});
    if s.held > 0 {
        v["held"] = Value::from(s.held);
    }
    if !s.rejected_by_peer.is_empty() {
        v["refused_by_peer"] = json!(s.rejected_by_peer);
    }
    let ok = s.rejected_here.is_empty();
    if !ok {
        v["error"] = Value::from(format!(
            "refused {} change(s): {}",
            s.rejected_here.len(),
            s.rejected_here.join("; ")
        ));
    }
    (v, ok)
}

fn round_line(r: &Value) -> String {
    let peer = crate::output::escape(r["peer"].as_str().unwrap_or(""));
    let mut line = match r["error"].as_str() {
        None => format!(
            "peer {peer}: sent {}, received {}",
            r["sent"], r["received"]
        ),
        Some(e) => format!("peer {peer}: FAILED: {}", crate::output::escape(e)),
    };
    if let Some(h) = r["held"].as_u64() {
        line.push_str(&format!(
            "\n  held {h} change(s) of machines that are not members here (see 'td sync status')"
        ));
    }
    for why in r["refused_by_peer"].as_array().into_iter().flatten() {
        line.push_str(&format!(
            "\n  peer {peer}: {}",
            crate::output::escape(why.as_str().unwrap_or(""))
        ));
    }
    line
}

/// `td peer sync <peer> --watch`: one kept connection, a round per local change (and at least
/// every `every` seconds), a line per round, until Ctrl-C or SIGTERM.
fn watch(
    p: &mut Project,
    root: &Path,
    names: &[String],
    key: Option<&str>,
    every: u64,
    json: bool,
) -> Result<()> {
    let mut list = targets(p, names, key)?;
    if list.len() != 1 {
        return Err(crate::output::invalid(
            "--watch keeps one connection: name exactly one peer".into(),
        ));
    }
    let target = list
        .pop()
        .expect("one target")
        .map_err(|(name, reason)| crate::output::invalid(format!("peer {name}: {reason}")))?;
    if every == 0 {
        return Err(crate::output::invalid(
            "--every must be at least 1 second".into(),
        ));
    }
    let name = target.name.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(td_transport::peer::watch(
        root.to_path_buf(),
        p.store.identity().clone(),
        target,
        std::time::Duration::from_secs(every),
        shutdown_signal(),
        &mut |o| {
            let (v, _) = round_json(&name, &o);
            crate::output::emit_line(json, &v, || round_line(&v));
        },
    ));
    if let Err(e) = result {
        let v =
            json!({"peer": name, "sent": 0, "received": 0, "conflicts": 0, "error": e.to_string()});
        crate::output::emit_line(json, &v, || round_line(&v));
        std::process::exit(1);
    }
    Ok(())
}

/// Sync rounds with the address-book peer `name` until one moves nothing (at most three): a
/// joining machine's first round makes it a member on the peer, the next brings the project.
/// Returns records sent and received, and the peer's reasons for records it refused.
pub(crate) fn sync_one(
    p: &mut Project,
    root: &Path,
    name: &str,
) -> Result<(u64, u64, Vec<String>)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut sent, mut received, mut refused) = (0, 0, Vec::new());
    for _ in 0..3 {
        let Some(Ok(target)) = targets(p, &[name.to_string()], None)?.pop() else {
            return Err(invalid(format!("unknown peer '{name}'")));
        };
        let o = rt.block_on(td_transport::peer::sync_with(
            root.to_path_buf(),
            p.store.identity().clone(),
            target,
            &mut |_| {},
        ))?;
        sent += o.stats.sent;
        received += o.stats.received;
        refused.extend(o.stats.rejected_by_peer.iter().cloned());
        if o.stats.sent == 0 && o.stats.received == 0 {
            break;
        }
    }
    Ok((sent, received, refused))
}

fn sync(
    p: &mut Project,
    root: &Path,
    names: &[String],
    key: Option<&str>,
    json: bool,
) -> Result<()> {
    let list = targets(p, names, key)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut results = Vec::new();
    let mut failed = false;
    for t in list {
        let (name, outcome) = match t {
            Err((name, reason)) => (name, Err(reason)),
            Ok(target) => {
                let name = target.name.clone();
                let mut prog = crate::progress::Progress::new(json, name.clone());
                let r = rt.block_on(td_transport::peer::sync_with(
                    root.to_path_buf(),
                    p.store.identity().clone(),
                    target,
                    &mut |s| {
                        let total = (s.expected_in > 0).then_some(s.expected_in);
                        prog.update("received", s.received, total, s.bytes_in + s.bytes_out)
                    },
                ));
                prog.finish();
                (name, r.map_err(|e: TransportError| e.to_string()))
            }
        };
        let v = match outcome {
            Ok(o) => {
                let (v, ok) = round_json(&name, &o);
                failed |= !ok;
                v
            }
            Err(reason) => {
                failed = true;
                json!({"peer": name, "sent": 0, "received": 0, "conflicts": 0, "error": reason})
            }
        };
        results.push(v);
    }
    let human = results
        .iter()
        .map(round_line)
        .collect::<Vec<_>>()
        .join("\n");
    emit(json, &Value::Array(results), || human);
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
