//! Hostile peers: each bad round ends with a clear error, the server keeps serving others, and
//! the receiver's database is unchanged.

use td_engine::sync::wire::{self, Message, WireRun};
use td_engine::MachineIdentity;
use td_tests::{Replica, Serving};
use td_transport::peer::RawConnection;

struct Setup {
    server: Replica,
    member: Replica,
    serving: Serving,
    before: String,
    project: String,
}

fn setup() -> Setup {
    let server = Replica::init();
    server.create("Must survive hostile peers", &[]);
    let member = Replica::init();
    let serving = server.serve();
    server.befriend(&member, "s", &serving.addr);
    let before = server.export();
    let project = server.json(&["whoami"])["project"]
        .as_str()
        .unwrap()
        .to_string();
    Setup {
        server,
        member,
        serving,
        before,
        project,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Sends `bytes` as the member, returns the server's frames until it ends the stream.
fn hostile_round(s: &Setup, bytes: Vec<Vec<u8>>, finish: bool) -> Vec<Message> {
    let addr = s.serving.addr.parse().unwrap();
    let identity = s.member.identity();
    rt().block_on(async move {
        let mut c = RawConnection::connect(addr, &identity)
            .await
            .expect("authenticated");
        for b in bytes {
            c.send(&b).await.unwrap();
        }
        if finish {
            c.finish();
        }
        let mut got = Vec::new();
        while let Some(f) = tokio::time::timeout(std::time::Duration::from_secs(5), c.next_frame())
            .await
            .ok()
            .flatten()
        {
            match wire::decode(&f) {
                Ok(m) => {
                    let done = matches!(m, Message::Error { .. } | Message::Ack { .. });
                    got.push(m);
                    if done {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        c.close().await;
        got
    })
}

fn hello(project: &str, min: u16, max: u16) -> Vec<u8> {
    wire::encode(&Message::Hello {
        min_version: min,
        max_version: max,
        project: project.into(),
        fresh: false,
        summary: vec![],
    })
}

/// After each attack: the server still serves a good peer, and its data is unchanged.
fn still_healthy(s: &Setup) {
    let v = s.member.json(&["peer", "sync", "s"]);
    assert!(v[0]["error"].is_null(), "server stopped serving: {v}");
    assert_eq!(
        s.server.export(),
        s.before,
        "hostile round changed the server's data"
    );
}

fn error_of(msgs: &[Message]) -> (String, String) {
    msgs.iter()
        .find_map(|m| match m {
            Message::Error { code, message } => Some((code.clone(), message.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no error frame in {msgs:?}"))
}

fn forged_record(project: &str, signer: &MachineIdentity, author: [u8; 32]) -> WireRun {
    let rec = td_tests::forge_record(project, "td-bad000", author, signer);
    WireRun {
        format: rec.body.format,
        actor: rec.body.actor,
        author,
        session: rec.body.session.clone(),
        first_seq: 1,
        changes: vec![(rec.body.doc.clone(), rec.body.change.clone())],
        signature: rec.signature.to_vec(),
    }
}

#[test]
fn garbage_truncated_and_oversized_frames() {
    let s = setup();
    // Garbage: a frame whose payload is not a message.
    let msgs = hostile_round(
        &s,
        vec![vec![0, 0, 0, 5, 0xff, 0xfe, 0xfd, 0xfc, 0xfb]],
        false,
    );
    let (code, message) = error_of(&msgs);
    assert_eq!(code, "bad_frame");
    assert!(message.contains("malformed"), "{message}");
    still_healthy(&s);
    // Truncated: a length prefix promising more than arrives before the stream ends.
    let mut t = hello(&s.project, 1, 1);
    t.truncate(t.len() - 3);
    hostile_round(&s, vec![t], true);
    still_healthy(&s);
    // Oversized: a length prefix far beyond the limit.
    hostile_round(&s, vec![vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3]], false);
    still_healthy(&s);
    let log = s.serving.stop();
    assert!(log.contains("malformed"), "{log}");
    assert!(log.contains("stream ended inside a frame"), "{log}");
    assert!(log.contains("exceeds"), "{log}");
}

#[test]
fn unsupported_protocol_version() {
    let s = setup();
    let msgs = hostile_round(&s, vec![hello(&s.project, 99, 120)], false);
    let (code, message) = error_of(&msgs);
    assert_eq!(code, "incompatible_version");
    assert!(message.contains("99..=120"), "{message}");
    still_healthy(&s);
    s.serving.stop();
}

#[test]
fn forged_signature_and_non_member_changes_are_refused() {
    let s = setup();
    let rogue = MachineIdentity::generate();
    // Claims to be the member, but signed by another key: the signature does not verify.
    let member_key = s.member.identity().public_key();
    let bad_sig = forged_record(&s.project, &rogue, member_key);
    // Properly signed, but by a machine that is not in the roster.
    let non_member = forged_record(&s.project, &rogue, rogue.public_key());
    for (rec, expect) in [
        (bad_sig, "bad signature"),
        (non_member, "held: 1 change(s)"),
    ] {
        let frames = vec![
            hello(&s.project, 1, 1),
            wire::encode(&Message::Batch { runs: vec![rec] }),
        ];
        let msgs = hostile_round(&s, frames, false);
        let rejected = msgs
            .iter()
            .find_map(|m| match m {
                Message::Ack { applied, rejected } => Some((*applied, rejected.clone())),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no ack in {msgs:?}"));
        assert_eq!(rejected.0, 0);
        assert!(
            rejected.1.iter().any(|r| r.contains(expect)),
            "{rejected:?}"
        );
        still_healthy(&s);
    }
    // The forged record is not stored; the non-member's is held (stored, never applied) until
    // an admin admits its machine.
    let conn = rusqlite::Connection::open(s.server.db()).unwrap();
    let stored: Vec<(Vec<u8>, i64)> = conn
        .prepare("SELECT author, applied FROM crdt_changes WHERE session_id = 'ses_hostile'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(stored, vec![(rogue.public_key().to_vec(), 2)]);
    assert!(!s.server.export().contains("Injected by a hostile peer"));
    s.serving.stop();
}

/// Before a peer proves its identity (issue 17, point 7): frames are limited to a few KB, and
/// at most `MAX_UNAUTHENTICATED` connections may be proving at once; more are refused at the
/// QUIC level. Once they go, members sync as before.
#[test]
fn strangers_are_bounded_before_authentication() {
    use td_transport::peer::{AUTH_FRAME_LIMIT, MAX_UNAUTHENTICATED};
    let s = setup();
    let addr: std::net::SocketAddr = s.serving.addr.parse().unwrap();
    rt().block_on(async {
        // A frame larger than a handshake is refused before it is buffered.
        let mut c = RawConnection::connect_unproven(addr).await.unwrap();
        let mut big = ((AUTH_FRAME_LIMIT + 1) as u32).to_be_bytes().to_vec();
        big.extend(vec![0u8; AUTH_FRAME_LIMIT + 1]);
        let _ = c.send(&big).await;
        // The server's own proof comes first, then its refusal with the reason.
        let mut said = String::new();
        while let Some(f) = c.next_frame().await {
            said.push_str(&String::from_utf8_lossy(&f));
        }
        assert!(said.contains("4096-byte limit"), "{said}");
        c.close().await;

        // Strangers that open a stream and say nothing hold at most MAX_UNAUTHENTICATED slots.
        // Each sends most of the largest frame allowed before proving anything, and stops.
        let mut held = Vec::new();
        for _ in 0..MAX_UNAUTHENTICATED {
            let mut c = RawConnection::connect_unproven(addr).await.unwrap();
            let mut partial = (AUTH_FRAME_LIMIT as u32).to_be_bytes().to_vec();
            partial.extend(vec![7u8; AUTH_FRAME_LIMIT - 100]);
            let _ = c.send(&partial).await;
            held.push(c);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let peak = s.serving.peak_rss_kb();
        eprintln!(
            "td peer serve peak RSS with {MAX_UNAUTHENTICATED} strangers holding partial frames: {peak} KiB"
        );
        assert!(peak < 100 * 1024, "{peak} KiB");
        assert!(
            RawConnection::connect_unproven(addr).await.is_err(),
            "one more stranger is refused"
        );
        for c in held {
            c.close().await;
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    still_healthy(&s);
    s.serving.stop();
}
