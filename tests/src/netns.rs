//! A small LAN for tests of what crosses a network (LAN discovery): two hosts, each a network
//! namespace of its own, joined by a veth pair (10.77.0.1 and 10.77.0.2), made with iproute2
//! (installed when missing; needs root, as CI runs) and removed when dropped. Commands run on
//! a host through `ip netns exec`, with the environment and directory the test gave them.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Two hosts on one link.
pub struct Lan {
    names: [String; 2],
}

/// The hosts' addresses on the link.
pub const ADDRS: [&str; 2] = ["10.77.0.1", "10.77.0.2"];

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Lan {
    /// Makes the two hosts and the link between them.
    pub fn start() -> Lan {
        if !std::path::Path::new("/usr/sbin/ip").exists()
            && !std::path::Path::new("/usr/bin/ip").exists()
        {
            crate::apt_binary("ip", "iproute2", "tests across network namespaces");
        }
        static N: AtomicUsize = AtomicUsize::new(0);
        // Names are global (the namespaces' own addresses are not): unique per process and pair.
        let tag = format!(
            "{}{}",
            std::process::id() % 100_000,
            N.fetch_add(1, Ordering::Relaxed)
        );
        let names = [format!("tdlan{tag}a"), format!("tdlan{tag}b")];
        let veth = [format!("tv{tag}a"), format!("tv{tag}b")];
        let lan = Lan { names };
        for n in &lan.names {
            ip(&["netns", "add", n]);
        }
        ip(&[
            "link", "add", &veth[0], "type", "veth", "peer", "name", &veth[1],
        ]);
        for i in 0..2 {
            let ns = &lan.names[i];
            ip(&["link", "set", &veth[i], "netns", ns]);
            let on = |args: &[&str]| {
                let mut a = vec!["netns", "exec", ns, "ip"];
                a.extend_from_slice(args);
                ip(&a);
            };
            on(&["addr", "add", &format!("{}/24", ADDRS[i]), "dev", &veth[i]]);
            on(&["link", "set", &veth[i], "up", "multicast", "on"]);
            on(&["link", "set", "lo", "up"]);
            on(&["route", "add", "224.0.0.0/4", "dev", &veth[i]]);
        }
        lan
    }

    /// `cmd` as run on host `host` (0 or 1): the same program, arguments, environment and
    /// directory, inside that host's namespace.
    pub fn on(&self, host: usize, cmd: &Command) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.names[host]])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        if let Some(d) = cmd.get_current_dir() {
            c.current_dir(d);
        }
        c
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}
