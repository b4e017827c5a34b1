//! Claims granted online (docs/sync-loop.md): while the hub answers, `td start` of an issue
//! another machine holds is refused at once, naming the holder, through one conditional
//! write on a real `tursodb` hub that learns only keyed tags; a stale claim is taken over; a
//! handed-on issue is granted at once; offline the deterministic rule stands; everyone
//! converges.

use serde_json::json;
use td_tests::hub::{sql, Fault, Hub, Proxy};
use td_tests::Replica;

fn fingerprint(r: &Replica) -> String {
    let key: [u8; 32] = hex::decode(r.public_key()).unwrap().try_into().unwrap();
    td_engine::identity::fingerprint_of(&key)
}

fn status(r: &Replica, id: &str) -> (String, String) {
    let s = r.json(&["show", id]);
    (
        s["status"].as_str().unwrap().to_string(),
        s["implementer_session"].as_str().unwrap().to_string(),
    )
}

fn claim_rows(hub: &Hub) -> Vec<serde_json::Value> {
    sql(
        hub.port,
        "SELECT hex(issue), hex(holder), length(issue), length(holder) FROM td_claims",
        json!([]),
    )
}

#[test]
fn a_claim_is_granted_once_online_and_the_other_machine_is_told_who_holds_it() {
    let hub = Hub::start();
    // A reaches the hub through a proxy that can lose its pushes: its claim lands, its change
    // does not (the window the claim exists for).
    let proxy = Proxy::start(hub.port);
    let a = Replica::init();
    let x = a.create("Both machines want this", &[]);
    let b = Replica::init();
    a.json(&["member", "add", &b.public_key(), "--name", "laptop-b"]);
    assert_eq!(
        a.json(&["sync", "init", "--hub", &proxy.url()])["action"],
        "connected"
    );
    assert_eq!(
        b.json(&["sync", "init", "--hub", &hub.url()])["action"],
        "joined"
    );
    a.autosync.set(true);
    b.autosync.set(true);

    // A starts X online; its push is lost, so B's replica knows nothing of it.
    proxy.inject_matching("INSERT OR IGNORE INTO td_changes", 0, Fault::Status500, 50);
    let r = a.run(&["start", &x]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("autosync push failed"), "{r:?}");
    let rows = claim_rows(&hub);
    assert_eq!(rows.len(), 1, "{rows:?}");
    // The hub holds 16-byte keyed tags, neither the issue id nor a fingerprint.
    assert_eq!(rows[0][2]["value"], "16", "{rows:?}");
    assert_eq!(rows[0][3]["value"], "16", "{rows:?}");
    let hub_text = serde_json::to_string(&rows).unwrap().to_lowercase();
    assert!(!hub_text.contains(&hex::encode(x.as_bytes())), "{hub_text}");
    assert!(
        !hub_text.contains(&hex::encode(fingerprint(&a).as_bytes())),
        "{hub_text}"
    );

    // B starts X at once: refused, naming A, and nothing written on B.
    let r = b.run(&["start", &x]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("through the hub") && r.stderr.contains(&fingerprint(&a)),
        "{r:?}"
    );
    assert_eq!(status(&b, &x).0, "open");
    let j = b.run(&["start", &x, "--json"]);
    assert_eq!(j.json()["error"]["code"], "conflict", "{j:?}");

    // A claim whose holder's change never came is stale after the grace period (aged here on
    // the hub itself): B takes it over.
    sql(hub.port, "UPDATE td_claims SET at = at - 600000", json!([]));
    let r = b.run(&["start", &x, "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(status(&b, &x).0, "in_progress");
    let b_holder = claim_rows(&hub)[0][1].clone();
    assert_ne!(b_holder, rows[0][1], "the claim is B's now");

    // A row planted on the hub (fresh, naming no member: what anyone with the hub's token
    // can write) keeps nobody from starting: B unstarts, the planted claim stands, B starts.
    let issue_tag = claim_rows(&hub)[0][0]["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(b.run(&["unstart", &x]).code, 0);
    assert!(claim_rows(&hub).is_empty(), "B's claim is withdrawn");
    let project = b.json(&["whoami"])["project"].as_str().unwrap().to_string();
    sql(
        hub.port,
        &format!(
            "INSERT INTO td_claims(project, issue, holder, at) VALUES (?1, x'{issue_tag}', \
             randomblob(16), CAST(unixepoch('subsec') * 1000 AS INTEGER))"
        ),
        json!([{"type": "text", "value": project}]),
    );
    assert_eq!(claim_rows(&hub).len(), 1, "a planted, fresh claim");
    let r = b.run(&["start", &x]);
    assert_eq!(r.code, 0, "a planted claim is not honoured: {r:?}");

    // A, back online, is refused in turn: the hub names B and A's pulled replica shows B
    // working it.
    proxy.inject_matching("nothing matches this", 0, Fault::Status500, 0);
    let r = a.run(&["start", &x]);
    // A's own earlier start is in A's replica: A's session holds it locally, so td says it is
    // already started; the concurrent starts meet as the offline rule decides.
    assert_eq!(r.code, 0, "{r:?}");
    a.json(&["sync"]);
    b.json(&["sync"]);
    a.json(&["sync"]);
    assert_eq!(a.export(), b.export());

    // Whoever lost the offline rule hands the issue on; the other machine is granted at once.
    let (_, holder) = status(&a, &x);
    let (winner, loser) = if holder.contains(&fingerprint(&a)) {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let y = winner.create("Second issue", &[]);
    winner.json(&["sync"]);
    loser.json(&["sync"]);
    assert_eq!(winner.run(&["start", &y]).code, 0);
    let r = loser.run(&["start", &y]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains(&fingerprint(winner)), "{r:?}");
    // The holder unstarts: its claim is withdrawn after the push, and the other is granted.
    assert_eq!(winner.run(&["unstart", &y]).code, 0);
    loser.json(&["sync"]);
    let r = loser.run(&["start", &y]);
    assert_eq!(r.code, 0, "{r:?}");
    loser.json(&["sync"]);
    winner.json(&["sync"]);
    assert_eq!(winner.export(), loser.export());
    assert!(status(winner, &y).1.contains(&fingerprint(loser)));
}

#[test]
fn offline_start_is_decided_by_the_offline_rule() {
    let mut hub = Hub::start();
    let a = Replica::init();
    let x = a.create("Started while the hub is down", &[]);
    let b = Replica::init();
    a.json(&["member", "add", &b.public_key()]);
    a.json(&["sync", "init", "--hub", &hub.url()]);
    b.json(&["sync", "init", "--hub", &hub.url()]);
    a.autosync.set(true);
    b.autosync.set(true);
    hub.stop();
    // Both start X with the hub unreachable: neither is refused.
    assert_eq!(a.run(&["start", &x]).code, 0);
    assert_eq!(b.run(&["start", &x]).code, 0);
    hub.restart();
    for r in [&a, &b, &a] {
        r.json(&["sync"]);
    }
    assert_eq!(a.export(), b.export());
    // One of the two holds it, the same on both.
    assert_eq!(status(&a, &x), status(&b, &x));
}
