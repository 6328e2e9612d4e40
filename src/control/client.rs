//! The CLI's side of the control API.

use std::time::Duration;

use super::ProjectStatus;
use crate::logs::LogLine;

/// Talking to a running daca failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("could not reach daca's control API at {address}: {source}")]
    Unreachable {
        address: String,
        source: reqwest::Error,
    },
    #[error("daca answered {status}: {message}")]
    Refused { status: u16, message: String },
}

/// A client for the daca at `address` (`127.0.0.1:PORT`).
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// A client for the daca that wrote `record`, with its token.
    pub fn of(record: &crate::project::RunRecord) -> Client {
        Client::new(&record.control, &record.token)
    }

    pub fn new(address: &str, token: &str) -> Client {
        // No overall timeout: `logs --follow` streams for as long as the user watches.
        let mut headers = reqwest::header::HeaderMap::new();
        if let Ok(value) = format!("Bearer {token}").parse() {
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .default_headers(headers)
            .build()
            .expect("UNWRAP: a client without TLS always builds");
        Client {
            http,
            base: format!("http://{address}"),
        }
    }

    fn unreachable(&self, source: reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            address: self.base.trim_start_matches("http://").to_string(),
            source,
        }
    }

    async fn check(&self, response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let message = body
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("no details")
            .to_string();
        Err(ClientError::Refused { status, message })
    }

    /// Sends a short request and checks its status.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let response = request
            .header(super::CHANGE_HEADER, "1")
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        self.check(response).await
    }

    pub async fn ps(&self) -> Result<ProjectStatus, ClientError> {
        let response = self
            .call(self.http.get(format!("{}/v1/ps", self.base)))
            .await?;
        response.json().await.map_err(|e| self.unreachable(e))
    }

    pub async fn actors(&self) -> Result<crate::actors::view::ActorsView, ClientError> {
        let response = self
            .call(self.http.get(format!("{}/v1/actors", self.base)))
            .await?;
        response.json().await.map_err(|e| self.unreachable(e))
    }

    /// A GET of the API (the dashboard's endpoints too), as JSON.
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        let response = self
            .call(self.http.get(format!("{}{path}", self.base)))
            .await?;
        response.json().await.map_err(|e| self.unreachable(e))
    }

    /// A POST with `body`, answered with JSON; waits as long as the action takes (a
    /// workflow control waits up to 10 s for the workflow to take it).
    pub async fn post_json(
        &self,
        path: &str,
        body: String,
    ) -> Result<serde_json::Value, ClientError> {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(super::CHANGE_HEADER, "1")
            .timeout(Duration::from_secs(30))
            .body(body);
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let response = self.check(response).await?;
        response.json().await.map_err(|e| self.unreachable(e))
    }

    /// A DELETE of the API (a change: it carries the change header).
    pub async fn delete(&self, path: &str) -> Result<(), ClientError> {
        let request = self
            .http
            .delete(format!("{}{path}", self.base))
            .header(super::CHANGE_HEADER, "1");
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        self.check(response).await.map(|_| ())
    }

    pub async fn down(&self) -> Result<(), ClientError> {
        self.call(self.http.post(format!("{}/v1/down", self.base)))
            .await
            .map(|_| ())
    }

    /// Calls `on_line` for each line: the backlog, then live lines when `follow`.
    pub async fn logs(
        &self,
        source: Option<&str>,
        since_ms: Option<u64>,
        follow: bool,
        mut on_line: impl FnMut(LogLine),
    ) -> Result<(), ClientError> {
        // App-ids and numbers need no percent-encoding (ids are DNS labels).
        let mut url = format!("{}/v1/logs?follow={follow}", self.base);
        if let Some(source) = source {
            url.push_str(&format!("&source={source}"));
        }
        if let Some(since) = since_ms {
            url.push_str(&format!("&since_ms={since}"));
        }
        let request = self.http.get(url);
        let mut response = self
            .check(request.send().await.map_err(|e| self.unreachable(e))?)
            .await?;
        let mut pending = Vec::new();
        // A stream that ends (daca stopped) ends the loop; that is a normal end of `logs -f`.
        while let Ok(Some(chunk)) = response.chunk().await {
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                if let Ok(line) = serde_json::from_slice::<LogLine>(&line) {
                    on_line(line);
                }
            }
        }
        Ok(())
    }
}
