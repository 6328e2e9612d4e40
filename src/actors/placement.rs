//! Which app hosts an actor id, as Dapr's placement service decides it: each actor type has a
//! consistent-hash ring of the apps that registered it (100 points per app, as Dapr's default
//! replication factor), and an id belongs to the first point at or after its hash. Adding or
//! removing a host moves only the ids that land on its points.

use std::collections::BTreeMap;

/// Points per host on a ring.
const POINTS: u32 = 100;

/// FNV-1a, then MurmurHash3's finalizer: stable across runs and builds (std's hasher is
/// seeded per process), and spread over the whole ring (FNV alone puts `app#1`, `app#2`, …
/// side by side, so one host would own nearly every id).
fn hash(text: &str) -> u64 {
    let mut h = text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[derive(Debug, Default, Clone)]
struct Ring {
    hosts: Vec<String>,
    /// (hash, index into `hosts`), sorted by hash.
    points: Vec<(u64, usize)>,
}

impl Ring {
    fn rebuild(&mut self) {
        self.hosts.sort();
        self.points = self
            .hosts
            .iter()
            .enumerate()
            .flat_map(|(index, host)| {
                (0..POINTS).map(move |n| (hash(&format!("{host}#{n}")), index))
            })
            .collect();
        self.points.sort_unstable();
    }

    fn host(&self, id: &str) -> Option<&str> {
        if self.points.is_empty() {
            return None;
        }
        let h = hash(id);
        let at = self.points.partition_point(|(point, _)| *point < h);
        let (_, index) = self.points[at % self.points.len()];
        Some(&self.hosts[index])
    }
}

/// Every hosted type's ring.
#[derive(Debug, Default, Clone)]
pub struct Placement {
    rings: BTreeMap<String, Ring>,
}

impl Placement {
    /// `app` hosts exactly `types` from now on.
    pub fn set(&mut self, app: &str, types: &[String]) {
        for (actor_type, ring) in &mut self.rings {
            let hosts = ring.hosts.iter().any(|h| h == app);
            let should = types.contains(actor_type);
            if hosts != should {
                ring.hosts.retain(|h| h != app);
                if should {
                    ring.hosts.push(app.to_string());
                }
                ring.rebuild();
            }
        }
        for actor_type in types {
            if !self.rings.contains_key(actor_type) {
                let mut ring = Ring {
                    hosts: vec![app.to_string()],
                    points: Vec::new(),
                };
                ring.rebuild();
                self.rings.insert(actor_type.clone(), ring);
            }
        }
        self.rings.retain(|_, ring| !ring.hosts.is_empty());
    }

    /// The app that hosts `id` of `actor_type`, if any app hosts the type.
    pub fn host(&self, actor_type: &str, id: &str) -> Option<String> {
        self.rings.get(actor_type)?.host(id).map(String::from)
    }

    /// The apps hosting `actor_type`.
    #[cfg(test)]
    pub fn hosts(&self, actor_type: &str) -> &[String] {
        self.rings.get(actor_type).map_or(&[], |r| &r.hosts)
    }

    /// Every hosted type with its hosts.
    pub fn types(&self) -> impl Iterator<Item = (&String, &[String])> {
        self.rings.iter().map(|(t, r)| (t, r.hosts.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_hosts_split_ids_and_a_third_moves_only_some() {
        let mut placement = Placement::default();
        let types = vec!["Counter".to_string()];
        placement.set("actors", &types);
        placement.set("second", &types);
        let ids: Vec<String> = (0..1000).map(|n| format!("id-{n}")).collect();
        let before: Vec<String> = ids
            .iter()
            .map(|id| placement.host("Counter", id).unwrap())
            .collect();
        let on_a = before.iter().filter(|h| *h == "actors").count();
        assert!((300..700).contains(&on_a), "{on_a} of 1000 on one");
        placement.set("c", &types);
        let moved = ids
            .iter()
            .zip(&before)
            .filter(|(id, old)| placement.host("Counter", id).as_ref() != Some(*old))
            .count();
        assert!(moved < 500, "only ids landing on c's points move: {moved}");
        assert!(
            ids.iter()
                .zip(&before)
                .all(
                    |(id, old)| placement.host("Counter", id).as_deref() == Some("c")
                        || placement.host("Counter", id).as_ref() == Some(old)
                )
        );
        placement.set("actors", &[]);
        assert!(placement.hosts("Counter").iter().all(|h| h != "actors"));
        placement.set("second", &[]);
        placement.set("c", &[]);
        assert_eq!(placement.host("Counter", "id-1"), None);
    }
}
