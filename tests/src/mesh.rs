//! Engine-level replicas for in-process multi-replica tests (no binary, no sockets).
//! Depends on the engine alone: the fuzz crate includes this file by path.

use std::path::PathBuf;

use td_engine::{MachineIdentity, Project, SessionContext};
use tempfile::TempDir;

/// One replica: its own directory and machine key, opened as one session.
pub struct Node {
    _dir: TempDir,
    /// Project root.
    pub root: PathBuf,
    /// Machine key.
    pub identity: MachineIdentity,
    /// The open project.
    pub project: Project,
}

impl Node {
    /// `td export --format json` of this replica.
    pub fn export(&self) -> String {
        td_engine::export::export_json_string(self.project.store.conn()).unwrap()
    }
}

fn ctx(name: &str) -> SessionContext {
    SessionContext {
        explicit: Some(name.to_string()),
        ..Default::default()
    }
}

/// `n` replicas of one project: node 0 founds it and adds the others to the roster; each
/// other node pins node 0 and joins by syncing with it.
pub fn project(n: usize) -> Vec<Node> {
    let mut nodes: Vec<Node> = (0..n)
        .map(|i| {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_path_buf();
            let identity = MachineIdentity::generate();
            let (project, _) =
                Project::init(&root, identity.clone(), &ctx(&format!("agent-{i}"))).unwrap();
            Node {
                _dir: dir,
                root,
                identity,
                project,
            }
        })
        .collect();
    let keys: Vec<String> = nodes.iter().map(|n| n.identity.public_key_hex()).collect();
    for (i, k) in keys.iter().enumerate().skip(1) {
        nodes[0]
            .project
            .member_add(k, &format!("node-{i}"), td_engine::authority::Role::Member)
            .unwrap();
    }
    for i in 1..n {
        nodes[i]
            .project
            .peer_add("node-0", "127.0.0.1:1", &keys[0])
            .unwrap();
        let (a, b) = nodes.split_at_mut(i);
        crate::inproc::clean_round(&mut a[0].project.store, &mut b[0].project.store);
    }
    nodes
}

/// Mutable access to two distinct nodes.
pub fn pair(nodes: &mut [Node], i: usize, j: usize) -> (&mut Node, &mut Node) {
    assert_ne!(i, j);
    if i < j {
        let (a, b) = nodes.split_at_mut(j);
        (&mut a[i], &mut b[0])
    } else {
        let (a, b) = nodes.split_at_mut(i);
        (&mut b[0], &mut a[j])
    }
}
