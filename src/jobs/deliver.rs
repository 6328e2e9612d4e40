//! A due job delivered to its app: `POST /job/<name>` with its data as JSON (HTTP), or
//! `OnJobEvent` (gRPC, `OnJobEventAlpha1` for apps on an older SDK). 2xx and 404 are
//! delivered (a 404 is not tried again, as daprd); an app that is away is waited for.

use std::future::Future;
use std::pin::Pin;

use prost::Message;

use crate::channel::JobEvent;
use crate::scheduler::{Delivered, Job, Target};
use crate::sidecar::Directory;

/// The jobs' target: the apps' channels.
pub struct Deliver(pub Directory);

impl Target for Deliver {
    fn deliver(&self, job: Job) -> Pin<Box<dyn Future<Output = Delivered> + Send + '_>> {
        Box::pin(async move {
            // app||<namespace>||<app-id>||<name>
            let mut parts = job.key.splitn(4, "||").skip(2);
            let (Some(app_id), Some(name)) = (parts.next(), parts.next()) else {
                return Delivered::Failed(format!("{} is not a job key", job.key));
            };
            let Some(channel) = self.0.get(app_id).filter(|c| c.is_ready()) else {
                return Delivered::NotThere;
            };
            let data = job
                .data
                .as_deref()
                .and_then(|bytes| prost_types::Any::decode(bytes).ok());
            let event = JobEvent {
                name,
                data: data.as_ref(),
            };
            match channel.job_event(&event).await {
                Ok(status) if (200..300).contains(&status) || status == 404 => Delivered::Done,
                Ok(status) => Delivered::Failed(format!("{app_id} answered {status}")),
                Err(_) => Delivered::NotThere,
            }
        })
    }
}
