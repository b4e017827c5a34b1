//! A real headless browser for testing `td serve`'s web board: Debian's `chromium`, driven
//! over the Chrome DevTools Protocol (a websocket; `Runtime.evaluate` reads the live page).
//! Installed with apt on a machine that lacks it (as CI's fresh machine does), once.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The chromium binary, installed with apt-get when missing.
pub fn chromium() -> PathBuf {
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if std::path::Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    crate::apt_binary(
        "chromium",
        "chromium",
        "the web board test needs a real browser",
    )
}

/// A headless chromium showing one page.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    ws: tungstenite::WebSocket<TcpStream>,
    next: u64,
}

/// A GET to chromium's DevTools HTTP endpoint (which keeps connections open: the body is
/// read by its Content-Length).
fn http_get(port: u16, path: &str) -> String {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = s.try_clone().unwrap();
    write!(w, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).unwrap();
    String::from_utf8_lossy(&body).into_owned()
}

impl Browser {
    /// Opens `url` in a fresh headless chromium.
    pub fn open(url: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--window-size=1280,800",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/…"
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("ws://127.0.0.1:").nth(1) {
                    let port: u16 = rest.split('/').next().unwrap().parse().unwrap();
                    let _ = tx.send(port);
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("chromium printed its DevTools port");
        // The page target's websocket.
        let deadline = Instant::now() + Duration::from_secs(20);
        let page_ws = loop {
            let list: Value =
                serde_json::from_str(&http_get(port, "/json/list")).unwrap_or(json!([]));
            let ours = |t: &&Value| {
                t["type"] == "page" && t["url"].as_str().is_some_and(|u| u.starts_with(url))
            };
            if let Some(ws) = list
                .as_array()
                .and_then(|l| l.iter().find(ours))
                .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            {
                break ws.to_string();
            }
            assert!(Instant::now() < deadline, "no page target");
            std::thread::sleep(Duration::from_millis(100));
        };
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        // A page that stops answering fails the test instead of hanging it.
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let (ws, _) =
            tungstenite::client::client(page_ws.as_str(), stream).expect("devtools websocket");
        Browser {
            child,
            _profile: profile,
            ws,
            next: 1,
        }
    }

    /// Evaluates `js` in the page and returns its (JSON) value.
    pub fn eval(&mut self, js: &str) -> Value {
        let id = self.next;
        self.next += 1;
        let msg = json!({"id": id, "method": "Runtime.evaluate",
            "params": {"expression": js, "returnByValue": true, "awaitPromise": true}});
        self.ws
            .send(tungstenite::Message::Text(msg.to_string().into()))
            .unwrap();
        loop {
            let m = self.ws.read().expect("devtools message");
            if let tungstenite::Message::Text(t) = m {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["id"] == id {
                    return v["result"]["result"]["value"].clone();
                }
            }
        }
    }

    /// Saves a PNG of the page (a test artefact) to `path`.
    pub fn screenshot(&mut self, path: &std::path::Path) {
        let id = self.next;
        self.next += 1;
        let msg =
            json!({"id": id, "method": "Page.captureScreenshot", "params": {"format": "png"}});
        self.ws
            .send(tungstenite::Message::Text(msg.to_string().into()))
            .unwrap();
        loop {
            if let tungstenite::Message::Text(t) = self.ws.read().expect("devtools message") {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["id"] == id {
                    use base64::Engine;
                    let png = base64::engine::general_purpose::STANDARD
                        .decode(v["result"]["data"].as_str().expect("screenshot data"))
                        .unwrap();
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir).unwrap();
                    }
                    std::fs::write(path, png).unwrap();
                    return;
                }
            }
        }
    }

    /// Waits until `js` evaluates to true (or panics after `secs`), returning how long it took.
    pub fn wait_for(&mut self, js: &str, secs: u64) -> Duration {
        let t = Instant::now();
        loop {
            if self.eval(js) == Value::Bool(true) {
                return t.elapsed();
            }
            assert!(
                t.elapsed() < Duration::from_secs(secs),
                "the page never satisfied: {js}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
