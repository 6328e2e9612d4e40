//! The running project as the dashboard sees it: a weak view of [`Live`], so the control API
//! never keeps the project alive.

use std::sync::Arc;

use super::live::Live;
use crate::pubsub::subscription::Subscription;
use crate::sidecar::Shared;

/// What the dashboard reads of the running project (weakly: it never keeps it alive).
pub struct LiveInspect(pub std::sync::Weak<Live>);

impl crate::dashboard::Inspect for LiveInspect {
    fn shared(&self) -> Option<Arc<Shared>> {
        self.0.upgrade().map(|live| live.shared.clone())
    }

    fn subscriptions(&self) -> Vec<(String, Subscription)> {
        let Some(live) = self.0.upgrade() else {
            return Vec::new();
        };
        let bundles = live.bundles.lock().unwrap_or_else(|p| p.into_inner());
        bundles
            .iter()
            .flat_map(|(id, bundle)| {
                let active = bundle
                    .subscriptions
                    .read()
                    .unwrap_or_else(|p| p.into_inner());
                active
                    .iter()
                    .map(|s| (id.clone(), s.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn component_error(&self) -> Option<String> {
        let live = self.0.upgrade()?;
        let error = live
            .component_error
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        error.clone()
    }

    fn events(&self) -> Arc<crate::events::EventLog> {
        self.0
            .upgrade()
            .map(|live| live.events.clone())
            .unwrap_or_default()
    }
}
