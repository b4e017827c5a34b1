//! `td serve` speaks td v0.62's HTTP API: td's own server integration tests
//! (`internal/serve/integration_test.go`, 78 tests; docs/td-serve-api.md section 7), request
//! for request, against the real binary on 127.0.0.1. Each test function is one of td's
//! families; the numbers in comments are td's tests. Statuses, envelopes, error codes and the
//! fields td's tests read are asserted; td's Go-internal tests (75, 76) are their HTTP
//! equivalents.

use serde_json::{json, Value};
use td_tests::{http_exchange, http_json, Replica, WebServer};

struct Api {
    _server: WebServer,
    port: u16,
}

impl Api {
    fn start(r: &Replica) -> Api {
        let server =
            WebServer::spawn(r.command(None, &["serve", "-p", "0", "--interval", "100ms"]));
        let port = server.port;
        Api {
            _server: server,
            port,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        http_json(self.port, method, path, &[], body)
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None)
    }

    fn post(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call("POST", path, body)
    }

    /// Creates through the API (td's helper: 201 and a non-empty `data.issue.id`).
    fn create(&self, body: Value) -> String {
        let (st, v) = self.post("/v1/issues", Some(body));
        assert_eq!(st, 201, "{v}");
        let id = v["data"]["issue"]["id"].as_str().unwrap().to_string();
        assert!(!id.is_empty());
        id
    }

    fn titled(&self, title: &str) -> String {
        self.create(json!({ "title": title }))
    }

    fn act(&self, id: &str, action: &str) -> (u16, Value) {
        self.post(&format!("/v1/issues/{id}/{action}"), None)
    }

    fn issue(&self, id: &str) -> Value {
        let (st, v) = self.get(&format!("/v1/issues/{id}"));
        assert_eq!(st, 200, "{v}");
        v["data"].clone()
    }
}

fn ok_data(r: (u16, Value), status: u16) -> Value {
    assert_eq!(r.0, status, "{}", r.1);
    assert_eq!(r.1["ok"], true, "{}", r.1);
    assert!(r.1.get("error").is_none(), "{}", r.1);
    r.1["data"].clone()
}

fn err_code(r: (u16, Value), status: u16) -> String {
    assert_eq!(r.0, status, "{}", r.1);
    assert_eq!(r.1["ok"], false, "{}", r.1);
    assert!(r.1.get("data").is_none(), "{}", r.1);
    r.1["error"]["code"].as_str().unwrap_or("").to_string()
}

fn len(v: &Value) -> usize {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .len()
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| {
            i.get("issue")
                .unwrap_or(i)
                .get("id")
                .and_then(Value::as_str)
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn health_monitor_and_events() {
    let r = Replica::init();
    let api = Api::start(&r);
    // 1, 2
    let h = ok_data(api.get("/health"), 200);
    assert_eq!(h["status"], "ok");
    assert!(
        h["session_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{h}"
    );
    assert!(h["change_token"].is_string(), "{h}");
    // 3
    let m = ok_data(api.get("/v1/monitor"), 200);
    let mon = &m["monitor"];
    assert!(mon.is_object(), "{m}");
    for k in [
        "reviewable",
        "needs_rework",
        "in_progress",
        "ready",
        "pending_review",
        "blocked",
        "closed",
    ] {
        assert!(mon["task_list"][k].is_array(), "{k}: {m}");
    }
    assert!(mon["activity"].is_array());
    assert!(mon["timestamp"].is_string());
    assert!(m["change_token"].is_string() && m["session_id"].is_string());
    // 4
    let a = api.titled("Monitor issue number one");
    api.titled("Monitor issue number two");
    let m = ok_data(api.get("/v1/monitor"), 200);
    assert!(len(&m["monitor"]["task_list"]["ready"]) >= 2, "{m}");
    // 5
    ok_data(api.act(&a, "close"), 200);
    let m = ok_data(api.get("/v1/monitor"), 200);
    assert_eq!(len(&m["monitor"]["task_list"]["closed"]), 0);
    let m = ok_data(api.get("/v1/monitor?include_closed=true"), 200);
    assert!(ids(&m["monitor"]["task_list"]["closed"]).contains(&a));
    // The close logged as the web session; a handoff made in a terminal is recent.
    assert_eq!(
        m["monitor"]["active_sessions"],
        json!([h["session_id"]]),
        "{m}"
    );
    r.ok(&["handoff", &a, "--done", "handed off"]);
    let m = ok_data(api.get("/v1/monitor"), 200);
    assert_eq!(
        m["monitor"]["recent_handoffs"][0]["issue_id"],
        a.as_str(),
        "{m}"
    );
    // 6: text mode searches the words; auto reads `type=feature` as TDQ.
    let literal = api.titled("literal type=feature token");
    let feature = api.create(json!({"title": "A feature found by TDQ", "type": "feature"}));
    let every = |m: &Value| -> Vec<String> {
        let t = &m["monitor"]["task_list"];
        t.as_object().unwrap().values().flat_map(ids).collect()
    };
    let m = ok_data(
        api.get("/v1/monitor?search=type%3Dfeature&search_mode=text"),
        200,
    );
    assert!(every(&m).contains(&literal), "{m}");
    assert!(!every(&m).contains(&feature), "{m}");
    let m = ok_data(
        api.get("/v1/monitor?search=type%3Dfeature&search_mode=auto"),
        200,
    );
    assert!(!every(&m).contains(&literal), "{m}");
    assert!(every(&m).contains(&feature), "{m}");
    assert_eq!(
        err_code(
            api.get("/v1/monitor?search=status%3A%3A%3Ainvalid&search_mode=tdq"),
            400
        ),
        "validation_error"
    );
    // td's monitor sort: created, newest first.
    let m = ok_data(api.get("/v1/monitor?sort=created"), 200);
    assert_eq!(
        m["monitor"]["task_list"]["ready"][0]["id"],
        feature.as_str(),
        "{m}"
    );
    // 59: focus shows in the monitor.
    ok_data(
        api.call("PUT", "/v1/focus", Some(json!({ "issue_id": feature }))),
        200,
    );
    let m = ok_data(api.get("/v1/monitor"), 200);
    assert_eq!(m["monitor"]["focused_issue"]["id"], feature.as_str());

    // 74: the stream starts with `id: <token>` and a ping carrying it.
    let (tx, rx) = std::sync::mpsc::channel();
    let port = api.port;
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        for line in BufReader::new(s).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait = |want: &str| -> Vec<String> {
        let mut seen = Vec::new();
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < end {
            if let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
                let hit = l.contains(want);
                seen.push(l);
                if hit {
                    return seen;
                }
            }
        }
        panic!("no {want:?} in {seen:?}");
    };
    let head = wait("event: ping");
    let status = head.first().cloned().unwrap_or_default();
    assert!(status.contains("200"), "{head:?}");
    assert!(
        head.iter().any(|l| l
            .to_ascii_lowercase()
            .contains("content-type: text/event-stream")),
        "{head:?}"
    );
    let body: Vec<&String> = head
        .iter()
        .skip_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("id:") || l.starts_with("event:") || l.starts_with("data:"))
        .collect();
    assert!(
        body[0].starts_with("id: "),
        "the first line is the id: {head:?}"
    );
    // 75: a write through the API is a refresh.
    api.titled("Written while a client listens");
    wait("event: refresh");
}

#[test]
fn listing_filters_paging_and_labels() {
    let r = Replica::init();
    let api = Api::start(&r);
    // 7
    let l = ok_data(api.get("/v1/issues"), 200);
    assert_eq!((len(&l["issues"]), l["total"].as_i64()), (0, Some(0)));
    assert_eq!(l["has_more"], false);
    // 8, 9
    let a = api.titled("Listing issue alpha one");
    let b = api.titled("Listing issue bravo two");
    let c = api.titled("Listing issue charlie three");
    let l = ok_data(api.get("/v1/issues"), 200);
    assert_eq!((len(&l["issues"]), l["total"].as_i64()), (3, Some(3)));
    ok_data(api.act(&b, "start"), 200);
    let l = ok_data(api.get("/v1/issues?status=in_progress"), 200);
    assert_eq!(ids(&l["issues"]), vec![b.clone()]);
    let l = ok_data(api.get("/v1/issues?status=open"), 200);
    assert_eq!(len(&l["issues"]), 2);
    // Unknown statuses are dropped, and repeats and commas both list several.
    let l = ok_data(api.get("/v1/issues?status=bogus&status=in-progress"), 200);
    assert_eq!(ids(&l["issues"]), vec![b.clone()]);
    assert_eq!(api.get("/v1/issues?bogus=1").0, 200);
    // 10, 11, 12
    let bug = api.create(json!({"title": "A bug to filter by type", "type": "bug"}));
    let l = ok_data(api.get("/v1/issues?type=bug"), 200);
    assert_eq!(ids(&l["issues"]), vec![bug.clone()]);
    assert_eq!(l["issues"][0]["type"], "bug");
    let p1 = api.create(json!({"title": "Priority one issue here", "priority": "P1"}));
    api.create(json!({"title": "Priority three issue here", "priority": "P3"}));
    let l = ok_data(api.get("/v1/issues?priority=P1"), 200);
    assert_eq!(ids(&l["issues"]), vec![p1]);
    let tagged = api.create(
        json!({"title": "Labelled for dispatch work", "labels": ["dispatch", "agent:codex"]}),
    );
    api.create(json!({"title": "Labelled for something else", "labels": ["other"]}));
    let l = ok_data(api.get("/v1/issues?labels=dispatch"), 200);
    assert_eq!(ids(&l["issues"]), vec![tagged.clone()]);
    let l = ok_data(api.get("/v1/issues?labels=dispatch,other"), 200);
    assert_eq!(len(&l["issues"]), 0, "every label must be carried");
    // 14
    let epic = api.create(json!({"title": "An epic with two children", "type": "epic"}));
    let k1 = api.create(json!({"title": "First child of the epic", "parent_id": epic}));
    let k2 = api.create(json!({"title": "Second child of the epic", "parent_id": epic}));
    let l = ok_data(api.get(&format!("/v1/issues?epic={epic}")), 200);
    let mut got = ids(&l["issues"]);
    got.sort();
    let mut want = vec![k1, k2];
    want.sort();
    assert_eq!(got, want);
    for i in l["issues"].as_array().unwrap() {
        assert_eq!(i["parent_id"], epic.as_str());
    }
    // 15
    let l = ok_data(api.get("/v1/issues?limit=2&offset=0"), 200);
    assert_eq!(len(&l["issues"]), 2);
    assert_eq!(l["has_more"], true);
    let total = l["total"].as_u64().unwrap() as usize;
    let l = ok_data(
        api.get(&format!("/v1/issues?limit=2&offset={}", total - 1)),
        200,
    );
    assert_eq!(
        (len(&l["issues"]), l["has_more"].clone()),
        (1, json!(false))
    );
    // 16
    let needle = api.titled("Alpha unique needle for search");
    let l = ok_data(
        api.get("/v1/issues?search=unique+needle&search_mode=text"),
        200,
    );
    assert_eq!(ids(&l["issues"]), vec![needle]);
    // 66: lists are slimmed; the detail is whole.
    let full = api.create(json!({"title": "Slim payload in lists", "description": "```\ncode\n```", "acceptance": "it works"}));
    let l = ok_data(
        api.get("/v1/issues?search=Slim+payload&search_mode=text"),
        200,
    );
    assert_eq!(l["issues"][0]["description"], "");
    assert_eq!(l["issues"][0]["acceptance"], "");
    assert_eq!(l["issues"][0]["title"], "Slim payload in lists");
    assert_eq!(api.issue(&full)["issue"]["acceptance"], "it works");
    // 77, 78
    for bad in ["limit=0", "limit=1001", "offset=-1"] {
        assert_eq!(
            err_code(api.get(&format!("/v1/issues?{bad}")), 400),
            "validation_error"
        );
    }
    let (_, v) = api.get("/v1/issues?limit=0&offset=-1");
    assert_eq!(len(&v["error"]["details"]["fields"]), 2, "{v}");
    assert_eq!(
        err_code(
            api.get("/v1/issues?search=status%3A%3A%3Ainvalid&search_mode=tdq"),
            400
        ),
        "validation_error"
    );
    // 13: labels of live issues (closed included, deleted not), sorted.
    let rr = Replica::init();
    let api = Api::start(&rr);
    api.create(
        json!({"title": "Labels catalogue number 1", "labels": ["dispatch", "agent:codex"]}),
    );
    api.create(json!({"title": "Labels catalogue number 2", "labels": ["backend", "dispatch"]}));
    let closed = api.create(json!({"title": "Labels catalogue number 3", "labels": ["release"]}));
    assert_eq!(
        api.post(&format!("/v1/issues/{closed}/close"), Some(json!({})))
            .0,
        200
    );
    let ghost = api.create(json!({"title": "Labels catalogue ghost one", "labels": ["ghost"]}));
    assert_eq!(
        api.call("DELETE", &format!("/v1/issues/{ghost}"), None).0,
        200
    );
    let v = ok_data(api.get("/v1/labels"), 200);
    assert_eq!(
        v["labels"],
        json!(["agent:codex", "backend", "dispatch", "release"])
    );
    assert_eq!(v["workflows"], json!([]));
    assert_eq!(v["default_workflow"], "standard");
    let _ = (a, c);
}

#[test]
fn creating_reading_updating_and_deleting_issues() {
    let r = Replica::init();
    let api = Api::start(&r);
    // 17, 18
    let id = api.titled("An issue to read back");
    let d = api.issue(&id);
    assert_eq!(d["issue"]["id"], id.as_str());
    for k in ["logs", "comments", "dependencies", "blocked_by"] {
        assert!(d[k].is_array(), "{k}: {d}");
    }
    assert!(d["latest_handoff"].is_null());
    assert_eq!(
        d["issue"]["available_transitions"],
        json!(["start", "review", "block", "close"])
    );
    assert_eq!(
        err_code(api.get("/v1/issues/td-nonexistent999"), 404),
        "not_found"
    );
    // 19: td's defaults, and td's nulls for what is unset.
    let v = ok_data(
        api.post(
            "/v1/issues",
            Some(json!({"title": "Minimal create request"})),
        ),
        201,
    );
    let i = &v["issue"];
    assert_eq!(
        (&i["type"], &i["priority"], &i["status"]),
        (&json!("task"), &json!("P2"), &json!("open"))
    );
    for k in [
        "implementer_session",
        "reviewer_session",
        "parent_id",
        "closed_at",
    ] {
        assert!(i[k].is_null(), "{k}: {i}");
    }
    assert_eq!(i["labels"], json!([]));
    assert!(
        i["created_at"]
            .as_str()
            .is_some_and(|t| t.len() == 20 && t.ends_with('Z') || t.len() == 25),
        "{i}"
    );
    // 20, 21, 22
    let v = ok_data(
        api.post(
            "/v1/issues",
            Some(
                json!({"title": "Every field at creation", "description": "desc",
                "type": "bug", "priority": "P1", "points": 5, "labels": ["api", "critical"],
                "acceptance": "acc", "sprint": "sprint-1", "minor": true, "unknown": 1}),
            ),
        ),
        201,
    );
    let i = &v["issue"];
    assert_eq!(i["points"], 5);
    assert_eq!(i["labels"], json!(["api", "critical"]));
    assert_eq!(i["minor"], true);
    assert_eq!(
        (&i["description"], &i["acceptance"], &i["sprint"]),
        (&json!("desc"), &json!("acc"), &json!("sprint-1"))
    );
    let v = ok_data(
        api.post(
            "/v1/issues",
            Some(json!({"title": "A story becomes a feature", "type": "story"})),
        ),
        201,
    );
    assert_eq!(v["issue"]["type"], "feature");
    let v = ok_data(
        api.post(
            "/v1/issues",
            Some(json!({"title": "Numeric priority given", "priority": "1"})),
        ),
        201,
    );
    assert_eq!(v["issue"]["priority"], "P1");
    // 23, 24 and td's field details.
    assert_eq!(
        err_code(api.post("/v1/issues", Some(json!({}))), 400),
        "validation_error"
    );
    let (st, v) = api.post(
        "/v1/issues",
        Some(json!({"title": "Invalid type given here", "type": "invalid_type"})),
    );
    assert_eq!(st, 400);
    assert_eq!(v["error"]["details"]["fields"][0]["field"], "type", "{v}");
    assert_eq!(v["error"]["details"]["fields"][0]["rule"], "enum");
    assert_eq!(
        err_code(
            api.post(
                "/v1/issues",
                Some(json!({"title": "Points that are not Fibonacci", "points": 4}))
            ),
            400
        ),
        "validation_error"
    );
    let (st, v) = api.post("/v1/issues", Some(json!({"title": "short"})));
    assert_eq!(st, 400);
    assert_eq!(v["error"]["details"]["fields"][0]["rule"], "min_length");
    let (st, v) = http_json(api.port, "POST", "/v1/issues", &[], None);
    assert_eq!(st, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid JSON"),
        "{v}"
    );
    assert_eq!(
        err_code(
            api.post(
                "/v1/issues",
                Some(json!({"title": "A parent that is missing", "parent_id": "td-000000"}))
            ),
            404
        ),
        "not_found"
    );
    // 25, 26, 27, 28
    let v = ok_data(
        api.call(
            "PATCH",
            &format!("/v1/issues/{id}"),
            Some(json!({"title": "A partial update of the title"})),
        ),
        200,
    );
    assert_eq!(v["issue"]["title"], "A partial update of the title");
    assert_eq!(v["issue"]["priority"], "P2");
    assert!(v["issue"]["available_transitions"].is_array());
    let labelled = api.create(
        json!({"title": "Labelled issue to update", "labels": ["old", "tag"], "priority": "P3"}),
    );
    let v = ok_data(
        api.call(
            "PATCH",
            &format!("/v1/issues/{labelled}"),
            Some(json!({"description": "new", "priority": "P0", "labels": ["dispatch", "agent:codex"]})),
        ),
        200,
    );
    assert_eq!(v["issue"]["description"], "new");
    assert_eq!(v["issue"]["priority"], "P0");
    assert_eq!(v["issue"]["labels"], json!(["dispatch", "agent:codex"]));
    assert_eq!(
        err_code(
            api.call(
                "PATCH",
                "/v1/issues/td-nonexistent999",
                Some(json!({"title": "A long enough title here"}))
            ),
            404
        ),
        "not_found"
    );
    assert_eq!(
        err_code(
            api.call(
                "PATCH",
                &format!("/v1/issues/{id}"),
                Some(json!({"type": "invalid_type"}))
            ),
            400
        ),
        "validation_error"
    );
    // Dates: a date sets, "" clears, null leaves.
    let v = ok_data(
        api.call(
            "PATCH",
            &format!("/v1/issues/{id}"),
            Some(json!({"due_date": "2027-01-02"})),
        ),
        200,
    );
    assert_eq!(v["issue"]["due_date"], "2027-01-02");
    let v = ok_data(
        api.call(
            "PATCH",
            &format!("/v1/issues/{id}"),
            Some(json!({"due_date": null})),
        ),
        200,
    );
    assert_eq!(v["issue"]["due_date"], "2027-01-02");
    let v = ok_data(
        api.call(
            "PATCH",
            &format!("/v1/issues/{id}"),
            Some(json!({"due_date": ""})),
        ),
        200,
    );
    assert!(v["issue"]["due_date"].is_null(), "{v}");
    // 29, 30
    let v = ok_data(api.call("DELETE", &format!("/v1/issues/{id}"), None), 200);
    assert_eq!(v, json!({"deleted": true}));
    assert!(!r.json(&["show", &id])["deleted_at"].is_null());
    // As td: a deleted issue still reads, with `deleted_at`; deleting again is 200.
    assert!(api.issue(&id)["issue"]["deleted_at"].is_string());
    assert_eq!(api.call("DELETE", &format!("/v1/issues/{id}"), None).0, 200);
    assert_eq!(
        err_code(
            api.call("DELETE", "/v1/issues/td-nonexistent999", None),
            404
        ),
        "not_found"
    );
    // Unknown routes: Go's plain-text 404.
    let (st, _, body) = http_exchange(api.port, "GET", "/v1/nothing-here", &[], None);
    assert_eq!((st, body.as_str()), (404, "404 page not found\n"));
}

#[test]
fn transitions_codes_and_cascades() {
    let r = Replica::init();
    let api = Api::start(&r);
    // 31, 32
    let a = api.titled("Transition start target");
    let v = ok_data(api.act(&a, "start"), 200);
    assert_eq!(v["issue"]["status"], "in_progress");
    assert!(!v["issue"]["implementer_session"].is_null());
    assert_eq!(
        v["cascades"],
        json!({"parent_status_updates": [], "auto_unblocked": []})
    );
    assert_eq!(err_code(api.act(&a, "start"), 409), "conflict");
    // 33: review needs no handoff.
    let b = api.titled("Reviewed without a handoff");
    assert_eq!(
        ok_data(api.act(&b, "review"), 200)["issue"]["status"],
        "in_review"
    );
    ok_data(api.act(&a, "review"), 200);
    // 34: a minor issue is approved by its implementer.
    let minor = api.create(json!({"title": "A minor issue to approve", "minor": true}));
    ok_data(api.act(&minor, "review"), 200);
    let v = ok_data(api.act(&minor, "approve"), 200);
    assert_eq!(v["issue"]["status"], "closed");
    assert!(!v["issue"]["reviewer_session"].is_null() && !v["issue"]["closed_at"].is_null());
    // 35
    let v = ok_data(api.act(&b, "reject"), 200);
    assert_eq!(v["issue"]["status"], "open");
    assert!(v["issue"]["implementer_session"].is_null(), "{v}");
    assert!(v["issue"]["reviewer_session"].is_null(), "{v}");
    // 36, 37
    let c = api.titled("Blocked from open state");
    assert_eq!(
        ok_data(api.act(&c, "block"), 200)["issue"]["status"],
        "blocked"
    );
    let d = api.titled("Blocked from in progress");
    ok_data(api.act(&d, "start"), 200);
    assert_eq!(
        ok_data(api.act(&d, "block"), 200)["issue"]["status"],
        "blocked"
    );
    assert_eq!(
        ok_data(api.act(&c, "unblock"), 200)["issue"]["status"],
        "open"
    );
    // 38, 39
    let e = api.titled("Closed directly from open");
    let v = ok_data(api.act(&e, "close"), 200);
    assert!(v["issue"]["closed_at"].is_string());
    let v = ok_data(api.act(&e, "reopen"), 200);
    assert_eq!(v["issue"]["status"], "open");
    assert!(v["issue"]["closed_at"].is_null());
    // 40: a reason is the log, verbatim.
    let f = api.titled("Transition with a reason");
    ok_data(
        api.post(
            &format!("/v1/issues/{f}/start"),
            Some(json!({"reason": "Beginning implementation work via integration"})),
        ),
        200,
    );
    let logs = api.issue(&f)["logs"].clone();
    assert!(
        logs.as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"] == "Beginning implementation work via integration"),
        "{logs}"
    );
    // 41
    let g = api.titled("Invalid transitions here");
    for action in ["approve", "unblock", "reject", "reopen"] {
        assert_eq!(err_code(api.act(&g, action), 409), "conflict", "{action}");
    }
    // As td's state machine: approve is only from in_review, minor issues included.
    let open_minor = api.create(json!({"title": "A minor issue still open", "minor": true}));
    assert_eq!(err_code(api.act(&open_minor, "approve"), 409), "conflict");
    // Close while in review is approve's job.
    assert_eq!(err_code(api.act(&a, "close"), 403), "forbidden");
    // approve's reviewed_by checks come first.
    let (st, v) = api.post(
        &format!("/v1/issues/{a}/approve"),
        Some(json!({"reviewed_by": "x", "self_review": true})),
    );
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("validation_error"))
    );
    // 42: approving the last child closes the epic.
    let epic = api.create(json!({"title": "Epic closed by its children", "type": "epic"}));
    let k1 =
        api.create(json!({"title": "Minor child number one", "parent_id": epic, "minor": true}));
    let k2 =
        api.create(json!({"title": "Minor child number two", "parent_id": epic, "minor": true}));
    ok_data(api.act(&k1, "review"), 200);
    ok_data(api.act(&k2, "review"), 200);
    let v = ok_data(api.act(&k1, "approve"), 200);
    assert_eq!(v["cascades"]["parent_status_updates"], json!([]));
    let v = ok_data(api.act(&k2, "approve"), 200);
    assert_eq!(
        ids(&v["cascades"]["parent_status_updates"]),
        vec![epic.clone()]
    );
    assert_eq!(
        v["cascades"]["parent_status_updates"][0]["status"],
        "closed"
    );
    assert_eq!(api.issue(&epic)["issue"]["status"], "closed");
    // 43: closing a blocker unblocks its dependent.
    let blocker = api.titled("The blocking issue here");
    let dependent = api.titled("The dependent issue here");
    ok_data(
        api.post(
            &format!("/v1/issues/{dependent}/dependencies"),
            Some(json!({ "depends_on": blocker })),
        ),
        201,
    );
    ok_data(api.act(&dependent, "block"), 200);
    let v = ok_data(api.act(&blocker, "close"), 200);
    assert_eq!(
        ids(&v["cascades"]["auto_unblocked"]),
        vec![dependent.clone()]
    );
    assert_eq!(api.issue(&dependent)["issue"]["status"], "open");
    // The CLI sees the same: one cascade log on the epic.
    let show = r.json(&["show", &epic]);
    let cascaded = show["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["message"] == "Auto-cascaded to closed (all children complete)")
        .count();
    assert_eq!(cascaded, 1, "{show}");
}

#[test]
fn comments_dependencies_and_focus() {
    let r = Replica::init();
    let api = Api::start(&r);
    let id = api.titled("Issue that takes comments");
    let other = api.titled("Another issue for comments");
    // 44
    let v = ok_data(
        api.post(
            &format!("/v1/issues/{id}/comments"),
            Some(json!({"text": "a comment"})),
        ),
        201,
    );
    assert_eq!(v["comment"]["text"], "a comment");
    assert_eq!(v["comment"]["issue_id"], id.as_str());
    let cid = v["comment"]["id"].as_str().unwrap().to_string();
    assert!(!cid.is_empty());
    assert_eq!(len(&api.issue(&id)["comments"]), 1);
    // 45, 46
    let (st, v) = api.post(
        &format!("/v1/issues/{id}/comments"),
        Some(json!({"text": ""})),
    );
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("validation_error"))
    );
    assert_eq!(v["error"]["details"]["fields"][0]["field"], "text");
    assert_eq!(
        err_code(
            api.post(
                "/v1/issues/td-nonexistent999/comments",
                Some(json!({"text": "x"}))
            ),
            404
        ),
        "not_found"
    );
    // 49, 47, 48
    assert_eq!(
        err_code(
            api.call(
                "DELETE",
                &format!("/v1/issues/{other}/comments/{cid}"),
                None
            ),
            404
        ),
        "not_found"
    );
    let v = ok_data(
        api.call("DELETE", &format!("/v1/issues/{id}/comments/{cid}"), None),
        200,
    );
    assert_eq!(v, json!({"deleted": true}));
    assert_eq!(len(&api.issue(&id)["comments"]), 0);
    assert_eq!(
        err_code(
            api.call(
                "DELETE",
                &format!("/v1/issues/{id}/comments/nonexistent-comment-id"),
                None
            ),
            404
        ),
        "not_found"
    );
    // 50
    let v = ok_data(
        api.post(
            &format!("/v1/issues/{id}/dependencies"),
            Some(json!({"depends_on": other})),
        ),
        201,
    );
    let dep = &v["dependency"];
    assert_eq!(
        (
            &dep["issue_id"],
            &dep["depends_on_id"],
            &dep["relation_type"]
        ),
        (&json!(id), &json!(other), &json!("depends_on"))
    );
    let dep_id = dep["dep_id"].as_str().unwrap().to_string();
    assert!(dep_id.starts_with("dep_") && dep_id.len() == 20, "{dep_id}");
    let d = api.issue(&id);
    assert_eq!(len(&d["dependencies"]), 1);
    assert_eq!(d["dependencies"][0]["dep_id"], dep_id.as_str());
    assert_eq!(api.issue(&other)["blocked_by"][0]["issue_id"], id.as_str());
    // 51, 52, a cycle
    assert_eq!(
        err_code(
            api.post(
                &format!("/v1/issues/{id}/dependencies"),
                Some(json!({"depends_on": "td-nonexistent999"}))
            ),
            404
        ),
        "not_found"
    );
    assert_eq!(
        err_code(
            api.post(
                &format!("/v1/issues/{id}/dependencies"),
                Some(json!({"depends_on": other}))
            ),
            409
        ),
        "conflict"
    );
    assert_eq!(
        err_code(
            api.post(
                &format!("/v1/issues/{other}/dependencies"),
                Some(json!({"depends_on": id}))
            ),
            400
        ),
        "validation_error"
    );
    // 55, 54, 53
    let third = api.titled("A third issue for deps");
    assert_eq!(
        err_code(
            api.call(
                "DELETE",
                &format!("/v1/issues/{third}/dependencies/{dep_id}"),
                None
            ),
            404
        ),
        "not_found"
    );
    assert_eq!(
        err_code(
            api.call(
                "DELETE",
                &format!("/v1/issues/{id}/dependencies/dep-nonexistent"),
                None
            ),
            404
        ),
        "not_found"
    );
    let v = ok_data(
        api.call(
            "DELETE",
            &format!("/v1/issues/{id}/dependencies/{dep_id}"),
            None,
        ),
        200,
    );
    assert_eq!(v, json!({"removed": true}));
    assert_eq!(len(&api.issue(&id)["dependencies"]), 0);
    // 56, 57, 58
    let v = ok_data(
        api.call("PUT", "/v1/focus", Some(json!({ "issue_id": id }))),
        200,
    );
    assert_eq!(v["focused_issue_id"], id.as_str());
    let v = ok_data(
        api.call("PUT", "/v1/focus", Some(json!({"issue_id": null}))),
        200,
    );
    assert!(v["focused_issue_id"].is_null());
    let m = ok_data(api.get("/v1/monitor"), 200);
    assert!(m["monitor"]["focused_issue"].is_null(), "{m}");
    assert_eq!(
        err_code(
            api.call(
                "PUT",
                "/v1/focus",
                Some(json!({"issue_id": "td-nonexistent999"}))
            ),
            404
        ),
        "not_found"
    );
}

#[test]
fn boards_sessions_and_stats() {
    let r = Replica::init();
    let api = Api::start(&r);
    let a = api.titled("Board issue number one");
    let b = api.titled("Board issue number two");
    let c = api.titled("Board issue number three");
    // 61, 62, 63
    let v = ok_data(
        api.post(
            "/v1/boards",
            Some(json!({"name": "Test Board", "query": "status = open"})),
        ),
        201,
    );
    assert_eq!(v["board"]["name"], "Test Board");
    assert_eq!(v["board"]["query"], "status = open");
    assert_eq!(v["board"]["is_builtin"], false);
    let board = v["board"]["id"].as_str().unwrap().to_string();
    let (st, v) = api.post(
        "/v1/boards",
        Some(json!({"name": "Bad", "query": "status::: invalid garbage (((("})),
    );
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("validation_error"))
    );
    assert_eq!(v["error"]["details"]["fields"][0]["rule"], "tdq_syntax");
    let v = ok_data(api.get("/v1/boards"), 200);
    assert!(len(&v["boards"]) >= 2);
    assert!(v["boards"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["id"] == "bd-all-issues" && b["is_builtin"] == true));
    // 64, 65: cards, with the blockers still open.
    r.ok(&["dep", "add", &a, &b]);
    r.ok(&["dep", "add", &a, &c]);
    r.ok(&["close", &c]);
    let v = ok_data(api.get(&format!("/v1/boards/{board}")), 200);
    assert_eq!(v["board"]["id"], board.as_str());
    assert!(len(&v["issues"]) >= 2);
    let card = |id: &str| -> Value {
        v["issues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["issue"]["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no card {id}: {v}"))
    };
    let ca = card(&a);
    let blockers = &ca["issue"]["dependency_summary"]["blockers"];
    assert_eq!(len(blockers), 1, "{ca}");
    assert_eq!(blockers[0]["issue_id"], b.as_str());
    assert_eq!(blockers[0]["relation_type"], "depends_on");
    assert_eq!(
        blockers[0]["dep_id"],
        td_engine::model::link_id("dep_", &format!("{a}|{b}|depends_on")).as_str()
    );
    assert!(card(&b)["issue"].get("dependency_summary").is_none());
    assert_eq!(ca["board_id"], board.as_str());
    assert_eq!(
        (&ca["has_position"], &ca["category"]),
        (&json!(false), &json!(""))
    );
    // 67
    let v = ok_data(
        api.call(
            "PATCH",
            &format!("/v1/boards/{board}"),
            Some(json!({"name": "Renamed board"})),
        ),
        200,
    );
    assert_eq!(v["board"]["name"], "Renamed board");
    assert_eq!(
        err_code(
            api.call(
                "PATCH",
                "/v1/boards/bd-all-issues",
                Some(json!({"name": "Mine"}))
            ),
            403
        ),
        "forbidden"
    );
    // 69, 70: position 0 is the top.
    let plain = ok_data(
        api.post("/v1/boards", Some(json!({"name": "Plain board"}))),
        201,
    )["board"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let v = ok_data(
        api.post(
            &format!("/v1/boards/{plain}/issues"),
            Some(json!({"issue_id": b, "position": 0})),
        ),
        200,
    );
    assert_eq!(v, json!({"positioned": true}));
    let v = ok_data(api.get(&format!("/v1/boards/{plain}")), 200);
    assert_eq!(v["issues"][0]["issue"]["id"], b.as_str());
    assert_eq!(v["issues"][0]["has_position"], true);
    let v = ok_data(
        api.call("DELETE", &format!("/v1/boards/{plain}/issues/{b}"), None),
        200,
    );
    assert_eq!(v, json!({"removed": true}));
    assert_eq!(
        err_code(
            api.call("DELETE", &format!("/v1/boards/{plain}/issues/{b}"), None),
            404
        ),
        "not_found"
    );
    // 68
    let v = ok_data(
        api.call("DELETE", &format!("/v1/boards/{board}"), None),
        200,
    );
    assert_eq!(v, json!({"deleted": true}));
    assert_eq!(
        err_code(api.get(&format!("/v1/boards/{board}")), 404),
        "not_found"
    );
    assert_eq!(
        err_code(api.call("DELETE", "/v1/boards/bd-all-issues", None), 403),
        "forbidden"
    );
    // 71
    let v = ok_data(api.get("/v1/sessions"), 200);
    assert!(len(&v["sessions"]) >= 1);
    assert!(v["current_session_id"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert!(v["sessions"][0]["started_at"].is_string(), "{v}");
    // 72, 73
    let rr = Replica::init();
    let api = Api::start(&rr);
    api.create(json!({"title": "A bug for the stats", "type": "bug"}));
    api.create(json!({"title": "A feature for the stats", "type": "feature"}));
    let t = api.titled("A task closed for stats");
    ok_data(api.act(&t, "close"), 200);
    let s = ok_data(api.get("/v1/stats"), 200);
    assert_eq!(s["total"], 3);
    assert_eq!(
        (&s["by_status"]["open"], &s["by_status"]["closed"]),
        (&json!(2), &json!(1))
    );
    assert_eq!(s["by_type"]["bug"], 1);
    assert!(s["by_priority"].is_object());
    assert!(s["completion_rate"].as_f64().unwrap() > 0.0);
}
