//! `td serve`: td's HTTP API and live events for this project (`docs/serve.md`).

use std::net::{IpAddr, SocketAddr};

use anyhow::Result;
use clap::Args as ClapArgs;
use td_engine::{Project, SessionContext};
use td_transport::serve::{serve, ServeConfig};

use super::Cx;
use crate::output::invalid;

/// Arguments of `td serve`.
#[derive(Debug, ClapArgs)]
#[command(after_help = "Examples:
  td serve                         http://127.0.0.1:<auto port>, port in .todos/serve-port
  td serve -p 8080 --cors http://localhost:3000
  td serve -a 0.0.0.0 -p 8080 --token \"$TD_SERVE_TOKEN\"   (a token is required off loopback)

Routes: GET /health; /v1/issues (GET ?status=&type=&labels=&q=&query=<TDQ>&limit=, POST),
/v1/issues/{id} (GET, PATCH, DELETE; If-Match: <version> → 409 when stale),
POST /v1/issues/{id}/start|review|approve|reject|block|unblock|close|reopen, /comments,
/dependencies; PUT /v1/focus; GET /v1/boards[/{id}], /v1/sessions, /v1/stats, /v1/labels;
GET /v1/events (server-sent events: refresh, records, conflicts, members).")]
pub(crate) struct Args {
    /// Port to listen on (0: any free port).
    #[arg(short = 'p', long, default_value_t = 0)]
    pub port: u16,
    /// Address to bind (127.0.0.1 by default; any other needs --token).
    #[arg(short = 'a', long, default_value = "127.0.0.1")]
    pub addr: String,
    /// Bearer token every /v1 request must carry (Authorization: Bearer <token>).
    #[arg(long, env = "TD_SERVE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Browser origins allowed to call the API (repeatable or comma-separated; * for any).
    #[arg(long, value_delimiter = ',')]
    pub cors: Vec<String>,
    /// How often to look at the change log's end for changes made by other processes, peer
    /// rounds and hub pulls, for /v1/events (e.g. 50ms, 2s). One look is one indexed read, so
    /// the default is short (td's is 2s).
    #[arg(long, default_value = "50ms")]
    pub interval: String,
}

/// Runs `td serve` until Ctrl-C or SIGTERM.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let host = if a.addr == "localhost" {
        "127.0.0.1"
    } else {
        a.addr.as_str()
    };
    let ip: IpAddr = host.parse().map_err(|_| {
        invalid(format!(
            "invalid --addr '{}': expected an IP address",
            a.addr
        ))
    })?;
    let token = a.token.clone().filter(|t| !t.is_empty());
    if !ip.is_loopback() && token.is_none() {
        return Err(invalid(format!(
            "td serve binds {ip} only with a token: pass --token <secret> (or TD_SERVE_TOKEN), or bind 127.0.0.1"
        )));
    }
    let cfg = ServeConfig {
        addr: SocketAddr::new(ip, a.port),
        token,
        cors: a.cors.clone(),
        interval: crate::output::parse_interval(&a.interval)?,
        port_file: cx.root.join(".todos").join("serve-port"),
    };
    // The API acts as td's web session, as td's server does.
    let web = SessionContext {
        explicit: Some("td-serve-web".into()),
        ..Default::default()
    };
    let project = Project::open(cx.root, cx.p.store.identity().clone(), &web)?;
    let json = cx.json;
    // The project's sync loop, unless another process runs it: teammates' changes reach the
    // board and the events without anyone typing `td sync` (docs/sync-loop.md).
    let _sync_loop = crate::hub::background_loop(cx.p, cx.root, "td serve", |line| {
        eprintln!("{}", crate::output::escape(line))
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        serve(project, cfg, super::peer::shutdown_signal(), move |bound| {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"action": "listening", "url": format!("http://{bound}"), "port": bound.port()})
                );
            } else {
                println!("td serve listening on http://{bound}");
            }
            use std::io::Write;
            let _ = std::io::stdout().flush();
        })
        .await
    })?;
    eprintln!("stopped");
    Ok(())
}
