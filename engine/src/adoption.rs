//! Which project a replica belongs to when it first meets a peer or a hub: one rule for both
//! (docs/peer-sync.md, docs/hub.md). A replica with no changes yet ("fresh") adopts the other
//! side's project; a replica with changes never does, so nobody founds a second project on a
//! team's hub or merges two projects by accident.

/// What to do about the project when two sides meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adoption {
    /// Both sides hold the same project (or the other side holds none yet, or will adopt
    /// ours): go on with this replica's project.
    Keep,
    /// This fresh replica adopts the named project.
    Adopt(String),
    /// This fresh replica must be told which project to adopt: the other side holds several.
    Choose(Vec<String>),
    /// The sides hold different projects and this replica has changes of its own.
    Mismatch,
}

/// Decides the project on meeting another side.
///
/// - `local`, `local_fresh`: this replica's project and whether it has no changes yet.
/// - `remote`: the projects the other side holds (a peer: its one project; a hub: every
///   project it stores, none when it is empty).
/// - `remote_fresh`: the other side has no changes yet (a fresh peer, whose project id only
///   matters when both sides are fresh: then both take the smaller id, so they agree).
/// - `chosen`: a project named by the user (`--project`).
pub fn decide(
    local: &str,
    local_fresh: bool,
    remote: &[String],
    remote_fresh: bool,
    chosen: Option<&str>,
) -> Adoption {
    if let Some(p) = chosen {
        return if p == local {
            Adoption::Keep
        } else if local_fresh {
            Adoption::Adopt(p.to_string())
        } else {
            Adoption::Mismatch
        };
    }
    if remote.iter().any(|p| p == local) {
        return Adoption::Keep;
    }
    if remote.is_empty() {
        return Adoption::Keep; // the other side takes this replica's project
    }
    if remote_fresh {
        // The other side adopts ours, unless both are fresh and its id is the smaller.
        return match remote {
            [theirs] if local_fresh && theirs.as_str() < local => Adoption::Adopt(theirs.clone()),
            _ => Adoption::Keep,
        };
    }
    match (local_fresh, remote) {
        (true, [only]) => Adoption::Adopt(only.clone()),
        (true, several) => Adoption::Choose(several.to_vec()),
        (false, _) => Adoption::Mismatch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// local, local fresh, remote projects, remote fresh, chosen, expected.
    type Case = (
        &'static str,
        bool,
        Vec<String>,
        bool,
        Option<&'static str>,
        Adoption,
    );

    fn v(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn one_rule_for_peers_and_hubs() {
        use Adoption::*;
        let cases: Vec<Case> = vec![
            // Peers: one remote project.
            ("p1", false, v(&["p1"]), false, None, Keep),
            ("p1", true, v(&["p2"]), false, None, Adopt("p2".into())),
            ("p1", false, v(&["p2"]), false, None, Mismatch),
            ("p1", false, v(&["p2"]), true, None, Keep), // the fresh peer adopts ours
            ("p2", true, v(&["p1"]), true, None, Adopt("p1".into())), // both fresh: smaller
            ("p1", true, v(&["p2"]), true, None, Keep),
            // Hubs: any number of projects.
            ("p1", false, v(&[]), false, None, Keep), // an empty hub takes ours
            ("p1", true, v(&[]), false, None, Keep),
            ("p1", false, v(&["p0", "p1"]), false, None, Keep),
            (
                "p1",
                true,
                v(&["p2", "p3"]),
                false,
                None,
                Choose(v(&["p2", "p3"])),
            ),
            ("p1", false, v(&["p2", "p3"]), false, None, Mismatch),
            // A project named by the user.
            ("p1", false, v(&["p2"]), false, Some("p1"), Keep),
            (
                "p1",
                true,
                v(&["p2", "p3"]),
                false,
                Some("p3"),
                Adopt("p3".into()),
            ),
            ("p1", false, v(&["p2"]), false, Some("p2"), Mismatch),
        ];
        for (local, fresh, remote, remote_fresh, chosen, want) in cases {
            assert_eq!(
                decide(local, fresh, &remote, remote_fresh, chosen),
                want,
                "{local} fresh={fresh} remote={remote:?} remote_fresh={remote_fresh} chosen={chosen:?}"
            );
        }
    }
}
