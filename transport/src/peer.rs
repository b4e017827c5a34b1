//! QUIC peers: `td peer serve` and `td peer sync`. This module only moves frames; the round
//! itself is the engine's sans-IO [`SyncSession`].

use std::net::SocketAddr;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use quinn::{Connection, Endpoint, RecvStream, SendStream};
use td_engine::identity::fingerprint_of;
use td_engine::sync::{FrameDecoder, RoundStats, SyncSession};
use td_engine::{MachineIdentity, Store};
use tokio::task::JoinSet;

use crate::auth::{self, AuthMessage, Role};
use crate::error::TransportError;
use crate::tls;

/// Longest wait for any bytes from a peer before the round is abandoned.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest frame accepted before the peer has proven its identity (a proof, an accept or a
/// refusal is well under 1 KB): nothing larger is buffered for a stranger.
pub const AUTH_FRAME_LIMIT: usize = 4 * 1024;

/// How long a connecting peer has to open its stream and prove its identity.
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

/// Connections still proving their identity at once; more are refused at once (QUIC-level),
/// so strangers cannot pile up buffers.
pub const MAX_UNAUTHENTICATED: usize = 32;
/// How long shutdown waits for rounds in flight before aborting them (their batches are
/// committed one transaction at a time, so aborting loses nothing).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

fn conn_err(e: impl std::fmt::Display) -> TransportError {
    TransportError::Connection(e.to_string())
}

fn transport_config() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.max_idle_timeout(Some(
        Duration::from_secs(20)
            .try_into()
            .expect("valid idle timeout"),
    ));
    t.keep_alive_interval(Some(Duration::from_secs(4)));
    // Rounds are short: MTU probing would cost more bytes than it saves.
    t.mtu_discovery_config(None);
    // Room for the batches in flight (engine::sync::wire::WINDOW of up to BATCH_BYTES each):
    // the sender keeps streaming while the receiver applies the previous batch, instead of
    // stalling on flow control.
    let window =
        (td_engine::sync::wire::WINDOW as u32 + 1) * td_engine::sync::wire::BATCH_BYTES as u32;
    t.stream_receive_window(quinn::VarInt::from_u32(window));
    t.receive_window(quinn::VarInt::from_u32(2 * window));
    t.send_window(2 * window as u64);
    // BBR rather than quinn's default Cubic: a loss-based controller halves its window at
    // every lost packet, so on a long path with random loss (Wi-Fi, VPNs) it settles near
    // MSS/RTT x 1.22/sqrt(p) whatever the link carries (270 KB/s at 50 ms and 1%). BBR paces
    // at the measured bottleneck rate and round trip instead, so random loss costs only the
    // retransmissions (figures: docs/benchmarks.md, `net_bench`).
    t.congestion_controller_factory(std::sync::Arc::new(quinn::congestion::BbrConfig::default()));
    t
}

/// Zero-length connection ids: a sync round is one short connection between two fixed
/// addresses, so ids buy nothing (no migration, no load balancer) and cost bytes in every
/// packet plus a NEW_CONNECTION_ID frame per spare id. quinn routes such connections by
/// address. (quinn does not re-export its random generator, hence this small one.)
struct NoConnectionIds;

impl quinn::ConnectionIdGenerator for NoConnectionIds {
    fn generate_cid(&mut self) -> quinn::ConnectionId {
        quinn::ConnectionId::new(&[])
    }

    fn cid_len(&self) -> usize {
        0
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}

/// A QUIC endpoint on `socket` (a server when `server` is given).
fn endpoint(
    socket: std::net::UdpSocket,
    server: Option<quinn::ServerConfig>,
) -> std::io::Result<Endpoint> {
    let mut cfg = quinn::EndpointConfig::default();
    cfg.cid_generator(|| Box::new(NoConnectionIds));
    let runtime =
        quinn::default_runtime().ok_or_else(|| std::io::Error::other("no async runtime found"))?;
    Endpoint::new(cfg, server, socket, runtime)
}

/// A peer to sync with.
#[derive(Debug, Clone)]
pub struct PeerTarget {
    /// Name shown in messages (address-book name, or the address).
    pub name: String,
    /// `host:port`.
    pub addr: String,
    /// The machine key the peer must present.
    pub key: [u8; 32],
}

/// Reads frames from a QUIC stream.
struct FrameReader {
    recv: RecvStream,
    decoder: FrameDecoder,
    ready: std::collections::VecDeque<Vec<u8>>,
    buf: Vec<u8>,
}

impl FrameReader {
    /// A reader that accepts only handshake-sized frames until [`FrameReader::authenticated`].
    fn new(recv: RecvStream) -> Self {
        let mut decoder = FrameDecoder::default();
        decoder.set_limit(AUTH_FRAME_LIMIT);
        FrameReader {
            recv,
            decoder,
            ready: Default::default(),
            buf: vec![0; 64 * 1024],
        }
    }

    /// The peer has proven its identity: sync-sized frames from now on.
    fn authenticated(&mut self) {
        self.decoder.set_limit(td_engine::sync::wire::MAX_FRAME);
    }

    /// The next frame's payload, or `None` at a clean end of stream.
    async fn next(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        loop {
            if let Some(p) = self.ready.pop_front() {
                return Ok(Some(p));
            }
            let n = tokio::time::timeout(READ_TIMEOUT, self.recv.read(&mut self.buf))
                .await
                .map_err(|_| {
                    TransportError::Connection(format!(
                        "peer sent nothing for {}s",
                        READ_TIMEOUT.as_secs()
                    ))
                })?
                .map_err(|e| TransportError::Connection(format!("connection lost: {e}")))?;
            match n {
                None => {
                    self.decoder
                        .finish()
                        .map_err(|e| TransportError::Protocol(format!("peer {e}")))?;
                    return Ok(None);
                }
                Some(n) => {
                    let frames = self.decoder.push(&self.buf[..n]).map_err(|e| {
                        TransportError::Protocol(format!("peer sent a bad frame: {e}"))
                    })?;
                    self.ready.extend(frames);
                }
            }
        }
    }

    async fn expect(&mut self, what: &str) -> Result<Vec<u8>, TransportError> {
        self.next().await?.ok_or_else(|| {
            TransportError::Connection(format!("peer closed the connection before {what}"))
        })
    }
}

async fn write(send: &mut SendStream, bytes: &[u8]) -> Result<(), TransportError> {
    send.write_all(bytes)
        .await
        .map_err(|e| TransportError::Connection(format!("connection lost: {e}")))
}

fn exporter(conn: &Connection) -> Result<[u8; 32], TransportError> {
    let mut out = [0u8; 32];
    conn.export_keying_material(&mut out, b"td-peer-auth-v1", b"")
        .map_err(|_| TransportError::Connection("TLS keying material unavailable".into()))?;
    Ok(out)
}

/// Sends our identity proof for `role` and reads and checks the peer's (made for the other
/// role). Returns the peer's key.
async fn exchange_proofs(
    conn: &Connection,
    send: &mut SendStream,
    reader: &mut FrameReader,
    identity: &MachineIdentity,
    role: Role,
) -> Result<[u8; 32], TransportError> {
    let ex = exporter(conn)?;
    write(send, &auth::encode(&auth::prove(identity, &ex, role))).await?;
    let theirs = auth::decode(&reader.expect("its identity proof").await?)?;
    let peer_role = match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    };
    let key = auth::verify(&theirs, &ex, peer_role)?;
    reader.authenticated();
    Ok(key)
}

/// Gives the peer a moment to read what we sent last (our side is finished) before the
/// connection closes; what it sends meanwhile is ignored.
async fn drain(reader: &mut FrameReader, limit: Duration) {
    let all = async { while let Ok(Some(_)) = reader.next().await {} };
    let _ = tokio::time::timeout(limit, all).await;
}

/// Tells the peer why it is refused, and lets it read that before the connection closes.
async fn refuse(send: &mut SendStream, reader: &mut FrameReader, message: &str) {
    let _ = write(
        send,
        &auth::encode(&AuthMessage::Refuse {
            message: message.to_string(),
        }),
    )
    .await;
    let _ = send.finish();
    drain(reader, Duration::from_secs(2)).await;
}

/// Reads the peer's verdict on our proof.
async fn await_accept(reader: &mut FrameReader) -> Result<(), TransportError> {
    match auth::decode(&reader.expect("accepting us").await?)? {
        AuthMessage::Accept => Ok(()),
        AuthMessage::Refuse { message } => Err(TransportError::Refused(message)),
        AuthMessage::Prove { .. } => {
            Err(TransportError::Protocol("peer repeated its proof".into()))
        }
    }
}

/// Runs the engine's sync round over one stream until both sides are done.
async fn run_round(
    store: Store,
    peer: [u8; 32],
    send: &mut SendStream,
    reader: &mut FrameReader,
    progress: &mut (dyn FnMut(&RoundStats) + Send),
) -> Result<RoundStats, TransportError> {
    run_session(SyncSession::with_peer(store, peer), send, reader, progress).await
}

/// How long a sync round waits for another process's write transaction: well below
/// [`READ_TIMEOUT`] and the connection's idle timeout, so a busy database ends the round with
/// a clear error instead of the peer timing out on a silent one.
pub const STORE_WAIT: Duration = Duration::from_secs(10);

/// Runs `f` on the blocking pool: SQLite work never runs on the async runtime, so QUIC keeps
/// sending acknowledgements and keep-alives (and serving other connections) meanwhile.
async fn off_runtime<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, TransportError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| TransportError::Connection(format!("store task failed: {e}")))
}

/// Opens the project's store for a sync round, off the async runtime, waiting at most
/// [`STORE_WAIT`] for other writers.
async fn open_store(root: &Path, identity: &MachineIdentity) -> Result<Store, TransportError> {
    let (root, identity) = (root.to_path_buf(), identity.clone());
    off_runtime(move || {
        let store = Store::open(&root, identity)?;
        store.set_busy_timeout(STORE_WAIT)?;
        Ok::<_, TransportError>(store)
    })
    .await?
}

/// Runs a sync session over one stream until both sides are done. The session (and the store
/// it owns) moves to the blocking pool for every step that touches the database.
async fn run_session(
    mut session: SyncSession<Store>,
    send: &mut SendStream,
    reader: &mut FrameReader,
    progress: &mut (dyn FnMut(&RoundStats) + Send),
) -> Result<RoundStats, TransportError> {
    // `TD_SYNC_PROTOCOL_MAX` caps the protocol this side offers: 1 reproduces a td from
    // before packed batches (tests of mixed teams; docs/protocol.md).
    if let Some(v) = std::env::var("TD_SYNC_PROTOCOL_MAX")
        .ok()
        .and_then(|v| v.trim().parse::<u16>().ok())
    {
        session.cap_version(v);
    }
    let (back, start) = off_runtime(move || {
        let r = session.start();
        (session, r)
    })
    .await?;
    session = back;
    let start = start.map_err(|e| e.error)?;
    for f in start {
        write(send, &f).await?;
    }
    while !session.is_finished() {
        let Some(payload) = reader.next().await? else {
            return Err(TransportError::Connection(
                "peer closed the connection in the middle of the round".into(),
            ));
        };
        let (back, received) = off_runtime(move || {
            let r = session.receive(&payload);
            (session, r, payload)
        })
        .await
        .map(|(s, r, p)| (s, (r, p)))?;
        session = back;
        let (received, payload) = received;
        match received {
            Ok(out) => {
                for f in out {
                    write(send, &f).await?;
                }
            }
            Err(e) => {
                // A server that no longer accepts us says so with an identity-layer refusal.
                if let Ok(AuthMessage::Refuse { message }) = auth::decode(&payload) {
                    return Err(TransportError::Refused(message));
                }
                if let Some(n) = e.notify {
                    let _ = write(send, &n).await;
                    let _ = send.finish();
                    drain(reader, Duration::from_secs(2)).await;
                }
                return Err(e.error.into());
            }
        }
        progress(session.stats());
    }
    let _ = send.finish();
    // Both sides hold everything now (every batch acknowledged, both `Done`s received). Give
    // the peer a moment to finish its side so our last frames land; a close racing that is
    // harmless, so errors here are not the round's.
    drain(reader, Duration::from_secs(5)).await;
    let stats = session.stats().clone();
    if let Some(peer) = session.peer() {
        // For `td monitor`'s status line; a busy database must not fail a finished round.
        let mut store = session.into_store();
        let _ = off_runtime(move || {
            store.note_peer_round(&peer)?;
            // Keys the round made necessary (a seal for a member whose key just arrived);
            // they travel in the next round.
            // So are the cascades what arrived calls for (docs/merge-rules.md, rule 11).
            let session = store.upkeep_session();
            Ok::<_, td_engine::EngineError>(
                store.maintain_keys(&session)? + store.settle_cascades(&session)?,
            )
        })
        .await;
    }
    Ok(stats)
}

/// What one client round did.
#[derive(Debug, Clone)]
pub struct SyncOutcome {
    /// The engine's round totals (records and frame bytes).
    pub stats: RoundStats,
    /// UDP payload bytes sent on the connection (QUIC and TLS overhead included).
    pub udp_sent: u64,
    /// UDP payload bytes received.
    pub udp_received: u64,
    /// Wall time of the round (for a first round, the connection set-up included).
    pub elapsed: Duration,
}

/// A QUIC connection to a peer, on its own client endpoint.
struct Dialed {
    endpoint: Endpoint,
    conn: Connection,
}

/// Opens a QUIC connection to `target` (no sync yet); `keep` asks the server to keep it for
/// further rounds.
async fn dial(target: &PeerTarget, keep: bool) -> Result<Dialed, TransportError> {
    let addr: SocketAddr = tokio::net::lookup_host(&target.addr)
        .await
        .map_err(|e| TransportError::Address(format!("cannot resolve {}: {e}", target.addr)))?
        .next()
        .ok_or_else(|| TransportError::Address(format!("cannot resolve {}", target.addr)))?;
    let bind: SocketAddr = if addr.is_ipv6() {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    }
    .parse()
    .expect("valid bind address");
    let mut endpoint = std::net::UdpSocket::bind(bind)
        .and_then(|socket| endpoint(socket, None))
        .map_err(conn_err)?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls::client_config(keep)?)
        .map_err(conn_err)?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
    cfg.transport_config(Arc::new(transport_config()));
    endpoint.set_default_client_config(cfg);
    let connecting = endpoint.connect(addr, "td-peer").map_err(conn_err)?;
    let conn = tokio::time::timeout(Duration::from_secs(10), connecting)
        .await
        .map_err(|_| {
            TransportError::Connection(format!(
                "no answer from {} within 10s (is 'td peer serve' running there?)",
                target.addr
            ))
        })?
        .map_err(|e| {
            TransportError::Connection(format!("cannot connect to {}: {e}", target.addr))
        })?;
    Ok(Dialed { endpoint, conn })
}

impl Dialed {
    /// UDP payload bytes (sent, received) on the connection so far.
    fn udp(&self) -> (u64, u64) {
        let s = self.conn.stats();
        (s.udp_tx.bytes, s.udp_rx.bytes)
    }

    /// Closes the connection (every round on it has finished) and lets the close go out.
    async fn close(self) {
        self.conn.close(0u32.into(), b"done");
        let _ = tokio::time::timeout(Duration::from_millis(300), self.endpoint.wait_idle()).await;
    }
}

/// Connects to `target`, proves our identity, checks theirs, and runs one sync round.
pub async fn sync_with(
    root: PathBuf,
    identity: MachineIdentity,
    target: PeerTarget,
    progress: &mut (dyn FnMut(&RoundStats) + Send),
) -> Result<SyncOutcome, TransportError> {
    let started = std::time::Instant::now();
    let dialed = dial(&target, false).await?;
    let result = client_round(&dialed.conn, root, identity, &target, progress).await;
    let (udp_sent, udp_received) = dialed.udp();
    let elapsed = started.elapsed();
    // The server closes once it has read our end of the stream; seeing that close means our
    // last frames arrived, and spares us the draining period of closing first.
    let peer_closed = result.is_ok()
        && tokio::time::timeout(Duration::from_secs(2), dialed.conn.closed())
            .await
            .is_ok();
    if !peer_closed {
        dialed.close().await;
    }
    result.map(|stats| SyncOutcome {
        stats,
        udp_sent,
        udp_received,
        elapsed,
    })
}

/// Keeps one authenticated connection to `target` and runs a round on it at once, then
/// whenever this replica's log grows, whenever the server says its log grew, and at least
/// every `every`, until `stop` resolves or the
/// connection fails. Each round after the first skips the QUIC/TLS handshake and the identity
/// proofs (the connection is already bound to both machine keys), so a small change costs
/// about its own bytes. `report` gets each round's outcome (bytes are that round's).
pub async fn watch(
    root: PathBuf,
    identity: MachineIdentity,
    target: PeerTarget,
    every: Duration,
    stop: impl std::future::Future<Output = ()>,
    report: &mut dyn FnMut(SyncOutcome),
) -> Result<(), TransportError> {
    let started = std::time::Instant::now();
    let dialed = dial(&target, true).await?;
    tokio::pin!(stop);
    let mut before = (0, 0); // the first round's bytes include the handshake
    let stats = client_round(
        &dialed.conn,
        root.clone(),
        identity.clone(),
        &target,
        &mut |_| {},
    )
    .await?;
    // One connection kept for looking at the log between rounds (cheap to ask, every poll).
    let local = open_store(&root, &identity).await?;
    let mut seen = local.log_position()?;
    let emit = |stats: RoundStats,
                started: std::time::Instant,
                before: &mut (u64, u64),
                report: &mut dyn FnMut(SyncOutcome)| {
        let now = dialed.udp();
        report(SyncOutcome {
            stats,
            udp_sent: now.0 - before.0,
            udp_received: now.1 - before.1,
            elapsed: started.elapsed(),
        });
        *before = now;
    };
    emit(stats, started, &mut before, report);
    let mut last = tokio::time::Instant::now();
    // The server says when its log grew (`notify_changed`): a round then runs at once.
    let mut told = false;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            uni = dialed.conn.accept_uni() => {
                let mut r = uni.map_err(conn_err)?;
                // One byte; anything longer is not a notification of ours (bounded read).
                told = matches!(r.read_to_end(16).await.as_deref(), Ok([CHANGED]));
            }
            _ = tokio::time::sleep(WATCH_POLL) => {}
        }
        let size = local.log_position()?;
        if size == seen && !told && last.elapsed() < every {
            continue;
        }
        told = false;
        let started = std::time::Instant::now();
        let (mut send, recv) = dialed.conn.open_bi().await.map_err(conn_err)?;
        let mut reader = FrameReader::new(recv);
        reader.authenticated(); // a further round on a connection already proven
        let mut store = open_store(&root, &identity).await?;
        store.pin_peer_key(target.key);
        let stats = run_round(store, target.key, &mut send, &mut reader, &mut |_| {}).await?;
        emit(stats, started, &mut before, report);
        seen = local.log_position()?;
        last = tokio::time::Instant::now();
    }
    dialed.close().await;
    Ok(())
}

/// How often `watch` looks for new local changes (one indexed read of the log's end).
const WATCH_POLL: Duration = Duration::from_millis(20);

async fn client_round(
    conn: &Connection,
    root: PathBuf,
    identity: MachineIdentity,
    target: &PeerTarget,
    progress: &mut (dyn FnMut(&RoundStats) + Send),
) -> Result<RoundStats, TransportError> {
    let (mut send, recv) = conn.open_bi().await.map_err(conn_err)?;
    let mut reader = FrameReader::new(recv);
    let key = exchange_proofs(conn, &mut send, &mut reader, &identity, Role::Client).await?;
    if key != target.key {
        let msg = format!(
            "key mismatch for peer {}: expected machine {}, the server at {} is machine {}",
            target.name,
            fingerprint_of(&target.key),
            target.addr,
            fingerprint_of(&key)
        );
        refuse(&mut send, &mut reader, &msg).await;
        return Err(TransportError::KeyMismatch(msg));
    }
    let mut store = open_store(&root, &identity).await?;
    write(&mut send, &auth::encode(&AuthMessage::Accept)).await?;
    await_accept(&mut reader).await?;
    store.pin_peer_key(target.key);
    // Both ends check: once the projects are known to match, the session sends nothing to a
    // machine this replica's roster does not admit.
    run_round(store, key, &mut send, &mut reader, progress).await
}

/// A running server: its address, and how to stop it.
pub struct Server {
    endpoint: Endpoint,
    root: PathBuf,
    identity: MachineIdentity,
}

impl Server {
    /// Binds `listen`.
    pub fn bind(
        root: PathBuf,
        identity: MachineIdentity,
        listen: SocketAddr,
    ) -> Result<Server, TransportError> {
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls::server_config()?)
            .map_err(conn_err)?;
        let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        cfg.transport_config(Arc::new(transport_config()));
        let endpoint = std::net::UdpSocket::bind(listen)
            .and_then(|socket| endpoint(socket, Some(cfg)))
            .map_err(|e| TransportError::Address(format!("cannot listen on {listen}: {e}")))?;
        Ok(Server {
            endpoint,
            root,
            identity,
        })
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> Result<SocketAddr, TransportError> {
        self.endpoint.local_addr().map_err(conn_err)
    }

    /// Serves peers until `shutdown` resolves, then finishes or aborts rounds in flight.
    /// `log` receives one line per event (round done, peer refused, round failed).
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()>,
        log: Arc<dyn Fn(String) + Send + Sync>,
    ) {
        let mut tasks = JoinSet::new();
        let proving = Arc::new(tokio::sync::Semaphore::new(MAX_UNAUTHENTICATED));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                incoming = self.endpoint.accept() => {
                    let Some(incoming) = incoming else { break };
                    let Ok(permit) = proving.clone().try_acquire_owned() else {
                        log(format!("refused {}: {MAX_UNAUTHENTICATED} connections are still proving their identity", incoming.remote_address()));
                        incoming.refuse();
                        continue;
                    };
                    let (root, identity, log) = (self.root.clone(), self.identity.clone(), log.clone());
                    tasks.spawn(async move {
                        let remote = incoming.remote_address();
                        if let Err(e) = serve_one(incoming, root, identity, log.clone(), permit).await {
                            log(format!("round with {remote} failed: {e}"));
                        }
                    });
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        tasks.abort_all();
        self.endpoint.close(0u32.into(), b"server shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
    }
}

async fn serve_one(
    incoming: quinn::Incoming,
    root: PathBuf,
    identity: MachineIdentity,
    log: Arc<dyn Fn(String) + Send + Sync>,
    proving: tokio::sync::OwnedSemaphorePermit,
) -> Result<String, TransportError> {
    let remote = incoming.remote_address();
    let deadline = tokio::time::Instant::now() + HANDSHAKE_DEADLINE;
    let late = || {
        TransportError::Connection(format!(
            "peer did not prove its identity within {}s",
            HANDSHAKE_DEADLINE.as_secs()
        ))
    };
    let conn = tokio::time::timeout_at(deadline, incoming)
        .await
        .map_err(|_| late())?
        .map_err(conn_err)?;
    let (mut send, recv) = tokio::time::timeout_at(deadline, conn.accept_bi())
        .await
        .map_err(|_| late())?
        .map_err(conn_err)?;
    let mut reader = FrameReader::new(recv);
    let proof = tokio::time::timeout_at(
        deadline,
        exchange_proofs(&conn, &mut send, &mut reader, &identity, Role::Server),
    )
    .await
    .unwrap_or_else(|_| Err(late()));
    let key = match proof {
        Ok(k) => k,
        Err(e) => {
            refuse(&mut send, &mut reader, &e.to_string()).await;
            conn.close(0u32.into(), b"refused");
            return Err(e);
        }
    };
    drop(proving);
    let store = open_store(&root, &identity).await?;
    // Its roster name where the roster gives one (the log line is escaped by its writer).
    let peer = td_engine::roster::machine_label(store.conn(), &key)?;
    let member = td_engine::roster::is_trusted(store.conn(), &key, None)?;
    // A machine joining with an invite is not a member yet: while an invite is open, it may
    // send (its join and the invite); it receives nothing until the join admits it.
    let joining = !member && td_engine::roster::has_open_invite(store.conn())?;
    if !member && !joining {
        let msg = format!("untrusted peer {peer}: this machine is not a member of the project (run 'td member add {}' on a member)", hex::encode(key));
        refuse(&mut send, &mut reader, &msg).await;
        return Err(TransportError::Refused(msg));
    }
    write(&mut send, &auth::encode(&AuthMessage::Accept)).await?;
    await_accept(&mut reader).await.map_err(|e| match e {
        TransportError::Refused(m) => {
            TransportError::Refused(format!("peer {peer} refused us: {m}"))
        }
        other => other,
    })?;
    let mut stats = if joining {
        // This machine admits the joiner: an invite expired by its clock admits no one.
        let mut store = store;
        store.admit_joins_by_own_clock();
        run_session(
            SyncSession::receive_only(store, key),
            &mut send,
            &mut reader,
            &mut |_| {},
        )
        .await?
    } else {
        run_round(store, key, &mut send, &mut reader, &mut |_| {}).await?
    };
    // A watching peer (ALPN `td-sync/1+keep`) runs further rounds on new streams of this
    // connection, already bound to both machine keys; for a one-shot peer we close at once.
    let keep = conn
        .handshake_data()
        .and_then(|h| h.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|h| h.protocol)
        .is_some_and(|p| p == tls::ALPN_KEEP);
    // One connection kept for looking at the log's end between a watching peer's rounds.
    let mut watcher = if keep {
        Some(open_store(&root, &identity).await?)
    } else {
        None
    };
    loop {
        log(format!(
            "synced with {peer} ({remote}): sent {}, received {}",
            stats.sent, stats.received
        ));
        if !keep {
            break;
        }
        // Until the peer's next round: tell it when this replica's log grows (a write here, or
        // records from another peer or the hub), so it runs a round at once instead of at its
        // next period (docs/protocol.md, "Kept connections").
        // `&mut`: held across awaits, and a store is `Send` but not `Sync`.
        let watcher = watcher.as_mut().expect("opened for a kept connection");
        let mut seen = watcher.log_position()?;
        let idle_until = tokio::time::Instant::now() + WATCH_IDLE;
        let accept = conn.accept_bi();
        tokio::pin!(accept);
        let next = loop {
            tokio::select! {
                r = &mut accept => break Some(r),
                _ = tokio::time::sleep(NOTIFY_POLL) => {
                    if tokio::time::Instant::now() >= idle_until {
                        break None;
                    }
                    let now = watcher.log_position()?;
                    if now != seen {
                        seen = now;
                        notify_changed(&conn).await;
                    }
                }
            }
        };
        let Some(Ok((mut send, recv))) = next else {
            break;
        };
        let mut reader = FrameReader::new(recv);
        reader.authenticated(); // a further round on a connection already proven
        let store = open_store(&root, &identity).await?;
        // The roster may have changed since the connection was authenticated: a machine
        // removed meanwhile gets no further round.
        if !td_engine::roster::is_trusted(store.conn(), &key, None)? {
            let msg = format!("untrusted peer {peer}: this machine was removed from the project");
            refuse(&mut send, &mut reader, &msg).await;
            conn.close(0u32.into(), b"removed");
            return Err(TransportError::Refused(msg));
        }
        stats = run_round(store, key, &mut send, &mut reader, &mut |_| {}).await?;
    }
    conn.close(0u32.into(), b"done");
    Ok(peer)
}

/// How often a server looks at its log's end for a watching peer (one indexed read).
const NOTIFY_POLL: Duration = Duration::from_millis(50);

/// Tells a watching peer that this replica's log grew: a unidirectional stream of one byte
/// (`CHANGED`). Best effort: a peer that is gone or ignores it (a td from before) still runs
/// its periodic rounds.
async fn notify_changed(conn: &Connection) {
    if let Ok(mut s) = conn.open_uni().await {
        let _ = s.write_all(&[CHANGED]).await;
        let _ = s.finish();
    }
}

/// The byte of a "my log grew" notification on a kept connection.
const CHANGED: u8 = 1;

/// How long a server keeps a connection that runs no round (a watching peer rounds at least
/// this often by default, and QUIC keep-alives hold the connection meanwhile).
pub const WATCH_IDLE: Duration = Duration::from_secs(600);

/// An authenticated connection that exchanges raw bytes, for tests that play a misbehaving
/// peer (garbage, truncated or oversized frames, forged records). Not used by `td` itself.
pub struct RawConnection {
    endpoint: Endpoint,
    conn: Connection,
    send: SendStream,
    reader: FrameReader,
}

impl RawConnection {
    /// Connects and opens the stream, proving nothing yet.
    async fn open(addr: SocketAddr) -> Result<RawConnection, TransportError> {
        let mut endpoint = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|socket| endpoint(socket, None))
            .map_err(conn_err)?;
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls::client_config(false)?)
            .map_err(conn_err)?;
        endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
        let conn = endpoint
            .connect(addr, "td-peer")
            .map_err(conn_err)?
            .await
            .map_err(conn_err)?;
        let (send, recv) = conn.open_bi().await.map_err(conn_err)?;
        Ok(RawConnection {
            endpoint,
            conn,
            send,
            reader: FrameReader::new(recv),
        })
    }

    /// Connects and completes the identity handshake as `identity`.
    pub async fn connect(
        addr: SocketAddr,
        identity: &MachineIdentity,
    ) -> Result<RawConnection, TransportError> {
        let mut c = Self::open(addr).await?;
        exchange_proofs(&c.conn, &mut c.send, &mut c.reader, identity, Role::Client).await?;
        write(&mut c.send, &auth::encode(&AuthMessage::Accept)).await?;
        await_accept(&mut c.reader).await?;
        Ok(c)
    }

    /// Connects and opens the stream without proving any identity (a stranger), to test what
    /// a server does before authentication.
    pub async fn connect_unproven(addr: SocketAddr) -> Result<RawConnection, TransportError> {
        let mut c = Self::open(addr).await?;
        c.reader.authenticated(); // read whatever the server answers
        Ok(c)
    }

    /// Writes raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        write(&mut self.send, bytes).await
    }

    /// Ends our side of the stream.
    pub fn finish(&mut self) {
        let _ = self.send.finish();
    }

    /// The next frame from the server (`None` at end of stream or on close).
    pub async fn next_frame(&mut self) -> Option<Vec<u8>> {
        self.reader.next().await.ok().flatten()
    }

    /// Closes the connection.
    pub async fn close(self) {
        self.conn.close(0u32.into(), b"done");
        self.endpoint.wait_idle().await;
    }
}
