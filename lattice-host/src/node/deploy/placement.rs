//! Where a deployment's replicas run: one deterministic function of the
//! deployment and the live hosts, computed by every host alike, so that
//! no leader decides and no reconcile loop runs.
//!
//! Hosts are ranked per deployment by rendezvous hashing (highest random
//! weight): each host's score is a hash of the deployment's name and the
//! host's id. Replica `i` of a share goes to the `i`-th host of the ranking,
//! wrapping around when there are more replicas than hosts. A host joining
//! or leaving moves only the replicas whose ranking it enters or leaves.

use std::collections::BTreeMap;

use super::spec::Deployment;

/// A live host as placement sees it.
#[derive(Debug, Clone, Copy)]
pub struct HostView<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its labels.
    pub labels: &'a BTreeMap<String, String>,
}

/// Where a deployment's replicas go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Replicas by host id; a host holding several runs the actor with as
    /// many times its instances.
    pub hosts: BTreeMap<String, u32>,
    /// Replicas with no host to go to, and why (which requirement no live
    /// host meets).
    pub waiting: Vec<(u32, String)>,
}

impl Plan {
    /// The replicas placed on `host`.
    pub fn on(&self, host: &str) -> u32 {
        self.hosts.get(host).copied().unwrap_or(0)
    }

    /// Replicas placed in all.
    pub fn placed(&self) -> u32 {
        self.hosts.values().sum()
    }
}

/// Places `deployment` on `hosts` (their order does not matter).
pub fn place(deployment: &Deployment, hosts: &[HostView<'_>]) -> Plan {
    let mut plan = Plan::default();
    let matching: Vec<HostView<'_>> = hosts
        .iter()
        .copied()
        .filter(|h| meets(h, &deployment.requirements))
        .collect();
    if deployment.daemon {
        for host in &matching {
            plan.hosts.insert(host.id.to_owned(), 1);
        }
        if matching.is_empty() {
            plan.waiting
                .push((0, no_host(&deployment.requirements, "the daemon's")));
        }
        return plan;
    }
    let replicas = deployment.replicas();
    if deployment.spread.is_empty() {
        assign(
            &deployment.name,
            replicas,
            &matching,
            &mut plan,
            &deployment.requirements,
        );
        return plan;
    }
    let weights: Vec<u32> = deployment.spread.iter().map(|s| s.weight).collect();
    for (i, (spread, share)) in deployment
        .spread
        .iter()
        .zip(shares(replicas, &weights))
        .enumerate()
    {
        if share == 0 {
            continue;
        }
        let hosts: Vec<HostView<'_>> = matching
            .iter()
            .copied()
            .filter(|h| meets(h, &spread.requirements))
            .collect();
        let mut all = deployment.requirements.clone();
        all.extend(spread.requirements.clone());
        // Each spread ranks its hosts by its own key, so that two spreads
        // over the same hosts do not pile onto the same first host.
        let key = format!("{}\u{0}{i}", deployment.name);
        assign(&key, share, &hosts, &mut plan, &all);
    }
    plan
}

/// Splits `total` by `weights` (largest remainder, ties to the first): the
/// shares add up to `total` exactly.
pub fn shares(total: u32, weights: &[u32]) -> Vec<u32> {
    let sum: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<(u64, u64)> = weights
        .iter()
        .map(|&w| {
            let product = u64::from(total) * u64::from(w);
            (product / sum, product % sum)
        })
        .collect();
    let mut out: Vec<u32> = exact.iter().map(|&(q, _)| q as u32).collect();
    let left = total - out.iter().sum::<u32>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| exact[b].1.cmp(&exact[a].1).then(a.cmp(&b)));
    for &i in order.iter().take(left as usize) {
        out[i] += 1;
    }
    out
}

fn assign(
    key: &str,
    replicas: u32,
    hosts: &[HostView<'_>],
    plan: &mut Plan,
    requirements: &BTreeMap<String, String>,
) {
    if hosts.is_empty() {
        plan.waiting.push((replicas, no_host(requirements, "its")));
        return;
    }
    let ranked = rank(key, hosts);
    let n = ranked.len() as u32;
    for (i, host) in ranked.iter().enumerate() {
        let count = replicas / n + u32::from((i as u32) < replicas % n);
        if count > 0 {
            *plan.hosts.entry((*host).to_owned()).or_default() += count;
        }
    }
}

/// The hosts in their order for `key`: highest score first, ties by id.
pub fn rank<'a>(key: &str, hosts: &[HostView<'a>]) -> Vec<&'a str> {
    let mut scored: Vec<(u64, &'a str)> = hosts.iter().map(|h| (score(key, h.id), h.id)).collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().map(|(_, id)| id).collect()
}

/// A host's score for `key`: FNV-1a over both, then splitmix64's finalizer
/// (FNV alone mixes its last bytes poorly). Part of the placement every
/// host computes: it must never change between releases that share a
/// lattice.
pub fn score(key: &str, host: &str) -> u64 {
    let mut h = lattice::method_hash(key);
    for b in std::iter::once(0u8).chain(host.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

fn meets(host: &HostView<'_>, requirements: &BTreeMap<String, String>) -> bool {
    requirements
        .iter()
        .all(|(k, v)| host.labels.get(k) == Some(v))
}

fn no_host(requirements: &BTreeMap<String, String>, whose: &str) -> String {
    if requirements.is_empty() {
        "no live host".to_owned()
    } else {
        let labels: Vec<String> = requirements
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "no live host meets {whose} requirements {}",
            labels.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::deploy::spec::Spread;

    fn deployment(replicas: u32) -> Deployment {
        Deployment {
            name: "echo".into(),
            module: "0".repeat(64),
            replicas: Some(replicas),
            daemon: false,
            requirements: BTreeMap::new(),
            spread: Vec::new(),
            limits: Default::default(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    struct Hosts(Vec<(String, BTreeMap<String, String>)>);

    impl Hosts {
        fn new(n: usize) -> Hosts {
            Hosts(
                (0..n)
                    .map(|i| (format!("host-{i}"), BTreeMap::new()))
                    .collect(),
            )
        }
        fn views(&self) -> Vec<HostView<'_>> {
            self.0
                .iter()
                .map(|(id, labels)| HostView { id, labels })
                .collect()
        }
    }

    #[test]
    fn replicas_go_to_distinct_hosts_while_there_are_enough() {
        let hosts = Hosts::new(5);
        let plan = place(&deployment(3), &hosts.views());
        assert_eq!(plan.hosts.len(), 3);
        assert!(plan.hosts.values().all(|&n| n == 1));
        let plan = place(&deployment(7), &hosts.views());
        assert_eq!(plan.placed(), 7);
        let mut counts: Vec<u32> = plan.hosts.values().copied().collect();
        counts.sort();
        assert_eq!(counts, [1, 1, 1, 2, 2]);
        assert!(plan.waiting.is_empty());
    }

    #[test]
    fn the_same_inputs_give_the_same_plan_in_any_order() {
        let hosts = Hosts::new(6);
        let mut views = hosts.views();
        let a = place(&deployment(3), &views);
        views.reverse();
        assert_eq!(a, place(&deployment(3), &views));
        // Stable across releases: the hosts every host computes.
        assert_eq!(
            a.hosts.keys().map(String::as_str).collect::<Vec<_>>(),
            ["host-0", "host-1", "host-4"]
        );
    }

    #[test]
    fn a_host_leaving_moves_only_its_own_replicas() {
        let hosts = Hosts::new(8);
        for replicas in [1, 2, 3, 5] {
            for name in ["echo", "counter", "relay", "a", "b"] {
                let mut d = deployment(replicas);
                d.name = name.into();
                let before = place(&d, &hosts.views());
                let gone = before.hosts.keys().next().unwrap().clone();
                let rest: Vec<HostView<'_>> =
                    hosts.views().into_iter().filter(|h| h.id != gone).collect();
                let after = place(&d, &rest);
                assert_eq!(after.placed(), replicas);
                for (host, n) in &before.hosts {
                    if *host != gone {
                        assert_eq!(after.on(host), *n, "{name}: {host} kept its replica");
                    }
                }
                // A host joining takes at most one replica from one host.
                let moved: u32 = before
                    .hosts
                    .iter()
                    .map(|(h, n)| n.saturating_sub(after.on(h)))
                    .sum();
                assert_eq!(moved, before.on(&gone));
            }
        }
    }

    #[test]
    fn requirements_and_spreads_choose_hosts() {
        let hosts = Hosts(vec![
            ("a".into(), labels(&[("zone", "eu"), ("tier", "edge")])),
            ("b".into(), labels(&[("zone", "eu")])),
            ("c".into(), labels(&[("zone", "us"), ("tier", "edge")])),
            ("d".into(), labels(&[("zone", "us")])),
        ]);
        let mut d = deployment(2);
        d.requirements = labels(&[("tier", "edge")]);
        let plan = place(&d, &hosts.views());
        assert_eq!(
            plan.hosts,
            BTreeMap::from([("a".into(), 1), ("c".into(), 1)])
        );

        let mut d = deployment(6);
        d.spread = vec![
            Spread {
                requirements: labels(&[("zone", "eu")]),
                weight: 2,
            },
            Spread {
                requirements: labels(&[("zone", "us")]),
                weight: 1,
            },
        ];
        let plan = place(&d, &hosts.views());
        assert_eq!(plan.on("a") + plan.on("b"), 4);
        assert_eq!(plan.on("c") + plan.on("d"), 2);

        d.spread[1].requirements = labels(&[("zone", "ap")]);
        let plan = place(&d, &hosts.views());
        assert_eq!(plan.placed(), 4);
        assert_eq!(
            plan.waiting,
            [(2, "no live host meets its requirements zone=ap".to_owned())]
        );

        let mut daemon = deployment(1);
        daemon.replicas = None;
        daemon.daemon = true;
        daemon.requirements = labels(&[("zone", "us")]);
        let plan = place(&daemon, &hosts.views());
        assert_eq!(
            plan.hosts,
            BTreeMap::from([("c".into(), 1), ("d".into(), 1)])
        );
        assert!(place(&daemon, &[]).waiting[0].1.contains("zone=us"));
    }

    #[test]
    fn shares_add_up() {
        assert_eq!(shares(6, &[2, 1]), [4, 2]);
        assert_eq!(shares(5, &[1, 1]), [3, 2]);
        assert_eq!(shares(1, &[1, 1, 1]), [1, 0, 0]);
        assert_eq!(shares(10, &[1, 2, 3, 4]), [1, 2, 3, 4]);
        assert_eq!(shares(7, &[0, 0]), [0, 0]);
        for total in 0..50 {
            for weights in [&[1, 2, 3][..], &[5], &[7, 7, 1, 9]] {
                assert_eq!(shares(total, weights).iter().sum::<u32>(), total);
            }
        }
    }

    #[test]
    fn scores_spread_evenly() {
        // 3,000 deployments over 3 hosts: each host first for about a third.
        let hosts = Hosts::new(3);
        let mut first = BTreeMap::<&str, u32>::new();
        for i in 0..3000 {
            let key = format!("actor-{i}");
            *first.entry(rank(&key, &hosts.views())[0]).or_default() += 1;
        }
        for (host, n) in first {
            assert!((850..1150).contains(&n), "{host} first {n} times of 3000");
        }
    }
}
