//! What every app's sidecar shares: the component instances, the channel to every app, and
//! the actor runtime.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::actors::Actors;
use crate::channel::AppChannel;
use crate::components::stores::StateEntry;
use crate::components::{Component, SecretStore};
use crate::pubsub::PubsubEntry;
use crate::pubsub::subscription::Subscription;
use crate::scheduler::Scheduler;
use crate::sync::RwLock;

/// The component instances, replaced as a whole when the resources folder changes.
pub struct Components {
    pub stores: BTreeMap<String, Arc<StateEntry>>,
    /// Shared by the sidecars and the subscribers; an entry is looked up on every publish.
    pub pubsubs: Arc<BTreeMap<String, Arc<PubsubEntry>>>,
    pub secrets: BTreeMap<String, (Component, SecretStore)>,
    /// Declarative subscriptions from the resources folder.
    pub declarative: Vec<Subscription>,
    /// Preview features a Configuration turns on (`ActorStateTTL`).
    pub features: std::collections::BTreeSet<String>,
    /// Input and output bindings.
    pub bindings: Arc<crate::bindings::Bindings>,
    /// The Resiliency resources, and each sidecar's policies and breakers.
    pub resiliency: Arc<crate::resiliency::Resiliency>,
}

/// Why a resources folder could not be turned into components.
#[derive(Debug, thiserror::Error)]
pub enum ComponentsLoadError {
    #[error(transparent)]
    Files(#[from] crate::components::ComponentsError),
    #[error(transparent)]
    Setup(#[from] crate::components::stores::StoreSetupError),
    #[error("{0}")]
    Bindings(String),
}

impl Components {
    /// Reads a resources folder (or daca's defaults) and makes its component instances, on
    /// `plan`'s Redis; also returns notices for the user (Kubernetes names mapped, ...).
    pub fn load(
        resources: Option<&std::path::Path>,
        root: &std::path::Path,
        plan: &crate::redis::RedisPlan,
    ) -> Result<(Components, Vec<String>), ComponentsLoadError> {
        Self::load_with(resources, root, plan, None)
    }

    /// [`Components::load`] for a project that may have a PostgreSQL server too.
    pub fn load_with(
        resources: Option<&std::path::Path>,
        root: &std::path::Path,
        plan: &crate::redis::RedisPlan,
        postgres: Option<&crate::pgserver::PgPlan>,
    ) -> Result<(Components, Vec<String>), ComponentsLoadError> {
        let mut resources = crate::components::load_resources(resources, root)?;
        let pointed = crate::pgserver::point(&mut resources.components, postgres);
        let (stores, mut notices) =
            crate::components::stores::state_stores(&resources.components, plan)?;
        notices.extend(pointed);
        notices.extend(resources.notices.iter().cloned());
        let (pubsubs, more) = crate::pubsub::brokers(&resources.components, plan)?;
        notices.extend(more);
        notices.dedup();
        let secrets = resources
            .components
            .iter()
            .filter_map(|c| {
                let store = resources.secret_stores.get(&c.name)?;
                Some((c.name.clone(), (c.clone(), store.clone())))
            })
            .collect();
        let bindings = crate::bindings::Bindings::make(&resources.components)
            .map_err(ComponentsLoadError::Bindings)?;
        let mut loaded = Components::with_stores(stores);
        loaded.bindings = Arc::new(bindings);
        loaded.pubsubs = Arc::new(pubsubs.into_iter().map(|(k, v)| (k, Arc::new(v))).collect());
        loaded.secrets = secrets;
        loaded.declarative = resources.subscriptions;
        loaded.features = resources.features;
        loaded.resiliency = Arc::new(crate::resiliency::Resiliency::new(resources.resiliency));
        Ok((loaded, notices))
    }

    /// Only state stores (tests and tools that need nothing else).
    pub fn with_stores(stores: BTreeMap<String, StateEntry>) -> Components {
        Components {
            stores: stores.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
            pubsubs: Arc::new(BTreeMap::new()),
            secrets: BTreeMap::new(),
            declarative: Vec::new(),
            features: Default::default(),
            bindings: Arc::default(),
            resiliency: Arc::default(),
        }
    }

    /// The actor state store: the state store with `actorStateStore` on (one at most; the
    /// loader refuses a second).
    pub fn actor_store(&self) -> Option<(&str, &Arc<StateEntry>)> {
        self.stores
            .iter()
            .find(|(_, entry)| {
                entry
                    .component
                    .get("actorStateStore")
                    .is_some_and(crate::components::truthy)
            })
            .map(|(name, entry)| (name.as_str(), entry))
    }
}

/// The components now, shared by the sidecars and the actor runtime; swapped whole.
#[derive(Clone)]
pub struct ComponentSet(Arc<RwLock<Arc<Components>>>);

impl ComponentSet {
    pub fn new(components: Components) -> ComponentSet {
        ComponentSet(Arc::new(RwLock::new(Arc::new(components))))
    }

    /// The components now (a request keeps the set it started with).
    pub fn get(&self) -> Arc<Components> {
        self.0.read().clone()
    }

    fn set(&self, components: Components) {
        *self.0.write() = Arc::new(components);
    }
}

/// The channel to every instance of every app: published whole by the project after each
/// change.
#[derive(Clone, Default)]
pub struct Directory {
    apps: Arc<RwLock<Instances>>,
    /// Turns through an app's instances, call by call.
    next: Arc<std::sync::atomic::AtomicUsize>,
}

#[derive(Default)]
struct Instances {
    /// By instance name.
    channels: BTreeMap<String, AppChannel>,
    /// Each app-id's instances.
    of_app: BTreeMap<String, Vec<String>>,
}

impl Directory {
    /// A channel to app `id`: with replicas, its ready instances in turn (as a Kubernetes
    /// Service spreads calls over its pods); when none is ready, one that may become so.
    pub fn get(&self, id: &str) -> Option<AppChannel> {
        let apps = self.apps.read();
        let names = apps.of_app.get(id)?;
        let all: Vec<&AppChannel> = names.iter().filter_map(|n| apps.channels.get(n)).collect();
        if all.len() < 2 {
            return all.first().map(|c| (*c).clone());
        }
        let ready: Vec<&AppChannel> = all.iter().copied().filter(|c| c.is_ready()).collect();
        let pool = if ready.is_empty() { &all } else { &ready };
        let turn = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(pool[turn % pool.len()].clone())
    }

    /// The channel to one instance (the host an actor was placed on).
    pub fn instance(&self, name: &str) -> Option<AppChannel> {
        self.apps.read().channels.get(name).cloned()
    }

    fn insert(&self, channel: AppChannel) {
        let mut apps = self.apps.write();
        let names = apps.of_app.entry(channel.app_id.clone()).or_default();
        if !names.contains(&channel.instance) {
            names.push(channel.instance.clone());
        }
        apps.channels.insert(channel.instance.clone(), channel);
    }

    fn set(&self, channels: impl IntoIterator<Item = AppChannel>) {
        let mut next = Instances::default();
        for channel in channels {
            let names = next.of_app.entry(channel.app_id.clone()).or_default();
            names.push(channel.instance.clone());
            next.channels.insert(channel.instance.clone(), channel);
        }
        *self.apps.write() = next;
    }
}

/// What every app's sidecar shares: the components (so Redis connection pools are shared too),
/// the channels to every app (for invocation), and the actor runtime. The first two can change
/// while daca runs.
pub struct Shared {
    components: ComponentSet,
    apps: Directory,
    /// `DAPR_API_TOKEN`, when set.
    pub api_token: Option<String>,
    /// Pub/sub counts and recent messages, for the dashboard.
    pub pubsub_stats: Arc<crate::pubsub::stats::PubsubStats>,
    /// Placement, active actors, timers and reminders, for every app.
    pub actors: Arc<Actors>,
    /// Every app's workflow instances and connected workers.
    pub workflows: Arc<crate::workflow::Workflows>,
    /// Reminders, workflow timers and the apps' jobs.
    pub scheduler: Scheduler,
}

impl Shared {
    /// Shared parts whose actor reminders last only as long as daca runs (tests, tools).
    pub fn new(components: Components, api_token: Option<String>) -> Shared {
        let runtime = crate::actors::Background::detached();
        Shared::with_scheduler(components, api_token, Scheduler::in_memory(), runtime)
    }

    /// Shared parts whose reminders live in `scheduler`, with the actor runtime's tasks on
    /// `background`.
    pub fn with_scheduler(
        components: Components,
        api_token: Option<String>,
        scheduler: Scheduler,
        background: crate::actors::Background,
    ) -> Shared {
        let (components, apps) = (ComponentSet::new(components), Directory::default());
        let workflows = crate::workflow::Workflows::new(
            components.clone(),
            scheduler.clone(),
            background.clone(),
        );
        scheduler.serve(
            crate::jobs::PREFIX,
            Arc::new(crate::jobs::Deliver(apps.clone())),
        );
        let actors = Actors::new(
            apps.clone(),
            components.clone(),
            scheduler.clone(),
            background,
        );
        Shared {
            scheduler,
            components,
            apps,
            api_token,
            pubsub_stats: Arc::default(),
            actors,
            workflows,
        }
    }

    /// Shared parts with only state stores.
    pub fn with_stores(stores: BTreeMap<String, StateEntry>, api_token: Option<String>) -> Shared {
        Shared::new(Components::with_stores(stores), api_token)
    }

    /// The components now (a request keeps the set it started with).
    pub fn components(&self) -> Arc<Components> {
        self.components.get()
    }

    pub fn set_components(&self, components: Components) {
        self.components.set(components);
    }

    /// The channel to app `id`.
    pub fn app(&self, id: &str) -> Option<AppChannel> {
        self.apps.get(id)
    }

    /// The channel to one instance: a sidecar's own app (with replicas, [`Shared::app`] may
    /// give another instance).
    pub fn instance(&self, name: &str) -> Option<AppChannel> {
        self.apps.instance(name)
    }

    /// Adds (or replaces) one app's channel, under its app-id and instance (tests, tools).
    pub fn set_app(&self, channel: AppChannel) {
        self.apps.insert(channel);
    }

    /// Replaces every instance's channel: the project publishes its registry here after each
    /// change.
    pub fn set_apps(&self, channels: impl IntoIterator<Item = AppChannel>) {
        self.apps.set(channels);
    }
}
