//! Dapr's resiliency policies (`kind: Resiliency`): timeouts, retries and circuit breakers,
//! applied where daprd applies them: service invocation in the caller's sidecar (`apps`),
//! actor calls (`actors`), and components, outbound (state, publish, output bindings) and
//! inbound (pub/sub and input binding deliveries).
//!
//! `load.rs` reads a document, `retry.rs` and `breaker.rs` are the two stateful parts, and
//! `run.rs` runs one operation under a [`Policy`]. Each app's sidecar gets its own
//! [`AppPolicies`] (the documents in its scopes, merged, with its own breakers), as each
//! daprd has its own.

pub mod breaker;
mod load;
pub mod retry;
mod run;
pub mod view;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

pub use load::read;
pub use run::{Failure, Interrupted, Policy, Verdict, ok_or_retry, run};

use breaker::{Breaker, BreakerSpec};
use retry::Retry;

use crate::sync::Mutex;

/// A policy name a target refers to, and where (line, column in its file).
#[derive(Debug, Clone, PartialEq)]
pub struct Ref {
    pub name: String,
    pub at: (u64, u64),
}

/// The policies one target uses, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Names {
    pub timeout: Option<Ref>,
    pub retry: Option<Ref>,
    pub circuit_breaker: Option<Ref>,
}

impl Names {
    fn refs(&self) -> impl Iterator<Item = (&'static str, &Ref)> {
        [
            ("timeout", &self.timeout),
            ("retry", &self.retry),
            ("circuit breaker", &self.circuit_breaker),
        ]
        .into_iter()
        .filter_map(|(kind, r)| r.as_ref().map(|r| (kind, r)))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AppTarget {
    pub names: Names,
    /// How many of the app's methods keep a breaker of their own.
    pub cache_size: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorScope {
    Type,
    Id,
    Both,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActorTarget {
    pub names: Names,
    pub scope: ActorScope,
    pub cache_size: usize,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComponentTarget {
    pub inbound: Names,
    pub outbound: Names,
}

/// One checked Resiliency resource.
#[derive(Debug, Clone, Default)]
pub struct Document {
    pub name: String,
    /// The file it came from.
    pub origin: String,
    /// App-ids that load it; empty = all.
    pub scopes: Vec<String>,
    pub timeouts: BTreeMap<String, Duration>,
    pub retries: BTreeMap<String, Arc<Retry>>,
    pub breakers: BTreeMap<String, BreakerSpec>,
    pub apps: BTreeMap<String, AppTarget>,
    pub actors: BTreeMap<String, ActorTarget>,
    pub components: BTreeMap<String, ComponentTarget>,
}

/// The kind of component an operation uses, as Dapr names it in default policy names
/// (`DefaultStatestoreComponentOutboundRetryPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentType {
    Statestore,
    Pubsub,
    Binding,
    Secretstore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

/// Every target naming a policy no document defines: `(file, line, column, message)`.
/// Documents are merged, so a target may use a policy another document defines.
pub fn unknown_references(documents: &[Document]) -> Vec<(String, u64, u64, String)> {
    let defined = |kind: &str, name: &str| {
        (kind == "retry" && load::BUILT_IN.contains(&name))
            || documents.iter().any(|d| match kind {
                "timeout" => d.timeouts.contains_key(name),
                "retry" => d.retries.contains_key(name),
                _ => d.breakers.contains_key(name),
            })
    };
    let mut unknown = Vec::new();
    for document in documents {
        let names = document
            .apps
            .values()
            .map(|t| &t.names)
            .chain(document.actors.values().map(|t| &t.names))
            .chain(
                document
                    .components
                    .values()
                    .flat_map(|t| [&t.inbound, &t.outbound]),
            );
        for (kind, r) in names.flat_map(Names::refs) {
            if !defined(kind, &r.name) {
                let message = format!("no {kind} policy is named `{}`", r.name);
                unknown.push((document.origin.clone(), r.at.0, r.at.1, message));
            }
        }
    }
    unknown
}

/// A project's Resiliency resources, and each app's policies made from them on first use.
#[derive(Default)]
pub struct Resiliency {
    documents: Vec<Document>,
    apps: Mutex<HashMap<String, Arc<AppPolicies>>>,
}

impl Resiliency {
    pub fn new(documents: Vec<Document>) -> Resiliency {
        Resiliency {
            documents,
            apps: Mutex::default(),
        }
    }

    pub fn documents(&self) -> &[Document] {
        &self.documents
    }

    /// The policies `app_id`'s sidecar applies.
    pub fn for_app(&self, app_id: &str) -> Arc<AppPolicies> {
        if let Some(found) = self.apps.lock().get(app_id) {
            return found.clone();
        }
        let made =
            Arc::new(AppPolicies::merge(self.documents.iter().filter(|d| {
                d.scopes.is_empty() || d.scopes.iter().any(|s| s == app_id)
            })));
        self.apps
            .lock()
            .entry(app_id.to_string())
            .or_insert(made)
            .clone()
    }

    /// Every breaker made so far, by the app whose sidecar holds it.
    pub fn breakers(&self) -> Vec<(String, Vec<Arc<Breaker>>)> {
        let apps: Vec<(String, Arc<AppPolicies>)> = self
            .apps
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut out: Vec<_> = apps
            .into_iter()
            .map(|(app, policies)| (app, policies.breakers()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// The breakers of one target, bounded by its cache size (least recently used leaves).
#[derive(Default)]
struct Instances {
    tick: u64,
    map: HashMap<String, (Arc<Breaker>, u64)>,
}

/// One sidecar's policies: the merged documents in its scopes, and its live breakers.
#[derive(Default)]
pub struct AppPolicies {
    merged: Document,
    /// Whether a document is in this app's scopes.
    applied: bool,
    instances: Mutex<HashMap<String, Instances>>,
}

impl AppPolicies {
    fn merge<'a>(documents: impl Iterator<Item = &'a Document>) -> AppPolicies {
        let mut merged = Document::default();
        let mut applied = false;
        for document in documents {
            applied = true;
            // A later document's name wins, as daprd decodes them one after another.
            merged.timeouts.extend(document.timeouts.clone());
            merged.retries.extend(document.retries.clone());
            merged.breakers.extend(document.breakers.clone());
            merged.apps.extend(document.apps.clone());
            merged.actors.extend(document.actors.clone());
            merged.components.extend(document.components.clone());
        }
        // Dapr's built-in retries, which a target may name without defining them.
        for name in load::BUILT_IN {
            if !merged.retries.contains_key(*name) {
                merged
                    .retries
                    .insert(name.to_string(), Arc::new(load::built_in(name)));
            }
        }
        AppPolicies {
            merged,
            applied,
            instances: Mutex::default(),
        }
    }

    /// Whether any document applies to this app (the fast path: nothing to look up).
    pub fn is_empty(&self) -> bool {
        !self.applied
    }

    /// Service invocation of `app`'s `method`, in the caller's sidecar; a breaker per method.
    pub fn endpoint(&self, app: &str, method: &str) -> Policy {
        if self.is_empty() {
            return Policy::default();
        }
        let endpoint = format!("{app}:{method}");
        match self.merged.apps.get(app) {
            Some(target) => self.policy(
                &target.names,
                &format!("app {app}"),
                &endpoint,
                target.cache_size,
            ),
            None => {
                let names = self.defaults(&["App"]);
                self.policy(&names, &format!("app {app}"), &endpoint, 100)
            }
        }
    }

    /// A call to an actor (retry and breaker around it, the timeout per attempt).
    pub fn actor(&self, actor_type: &str, id: &str) -> Policy {
        if self.is_empty() {
            return Policy::default();
        }
        match self.merged.actors.get(actor_type) {
            Some(target) => {
                let instance = match target.scope {
                    ActorScope::Type => actor_type.to_string(),
                    ActorScope::Id | ActorScope::Both => format!("{actor_type}-{id}"),
                };
                let group = format!("actor {actor_type}");
                self.policy(&target.names, &group, &instance, target.cache_size)
            }
            None => {
                let names = self.defaults(&["Actor"]);
                self.policy(&names, &format!("actor {actor_type}"), actor_type, 5000)
            }
        }
    }

    /// An operation on a component: outbound (the app's call) or inbound (a delivery).
    pub fn component(&self, name: &str, kind: ComponentType, direction: Direction) -> Policy {
        if self.is_empty() {
            return Policy::default();
        }
        let target = self.merged.components.get(name).map(|t| match direction {
            Direction::Inbound => &t.inbound,
            Direction::Outbound => &t.outbound,
        });
        let names = match target {
            Some(names) => names.clone(),
            None => {
                let (kind, dir) = (format!("{kind:?}"), format!("{direction:?}"));
                self.defaults(&[
                    &format!("{kind}Component{dir}"),
                    &format!("Component{dir}"),
                    "Component",
                ])
            }
        };
        self.policy(&names, &format!("component {name}"), name, 1)
    }

    /// `Default<level>{Retry,Timeout,CircuitBreaker}Policy`, most specific level first, then
    /// `Default…Policy`: used only where no named target matches.
    fn defaults(&self, levels: &[&str]) -> Names {
        let find = |kind: &str, has: &dyn Fn(&str) -> bool| {
            levels
                .iter()
                .copied()
                .chain([""])
                .map(|level| format!("Default{level}{kind}Policy"))
                .find(|name| has(name))
                .map(|name| Ref { name, at: (0, 0) })
        };
        let m = &self.merged;
        Names {
            timeout: find("Timeout", &|n| m.timeouts.contains_key(n)),
            retry: find("Retry", &|n| m.retries.contains_key(n)),
            circuit_breaker: find("CircuitBreaker", &|n| m.breakers.contains_key(n)),
        }
    }

    fn policy(&self, names: &Names, group: &str, instance: &str, cache_size: usize) -> Policy {
        let m = &self.merged;
        let timeout = names.timeout.as_ref().and_then(|r| m.timeouts.get(&r.name));
        let retry = names.retry.as_ref().and_then(|r| m.retries.get(&r.name));
        let breaker = names.circuit_breaker.as_ref().and_then(|r| {
            let spec = m.breakers.get(&r.name)?;
            Some(self.breaker(group, instance, &r.name, spec, cache_size))
        });
        Policy {
            timeout: timeout.copied().filter(|t| !t.is_zero()),
            retry: retry.cloned(),
            breaker,
        }
    }

    fn breaker(
        &self,
        group: &str,
        instance: &str,
        policy: &str,
        spec: &BreakerSpec,
        cache_size: usize,
    ) -> Arc<Breaker> {
        let mut all = self.instances.lock();
        let instances = all.entry(group.to_string()).or_default();
        instances.tick += 1;
        let tick = instances.tick;
        if let Some((breaker, used)) = instances.map.get_mut(instance) {
            *used = tick;
            return breaker.clone();
        }
        if instances.map.len() >= cache_size
            && let Some(oldest) = instances
                .map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
        {
            instances.map.remove(&oldest);
        }
        let breaker = Arc::new(Breaker::new(instance.to_string(), policy, spec));
        instances
            .map
            .insert(instance.to_string(), (breaker.clone(), tick));
        breaker
    }

    /// The breakers made so far, by name.
    pub fn breakers(&self) -> Vec<Arc<Breaker>> {
        let all = self.instances.lock();
        let mut out: Vec<_> = all
            .values()
            .flat_map(|i| i.map.values().map(|(b, _)| b.clone()))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

#[cfg(test)]
mod tests;
