//! The per-run token that lets only daca's owner drive it. Every local user can reach
//! 127.0.0.1, so the control API and the dashboard ask for a token that only the run record
//! (`.daca/run.json`, mode 0600) and the URL `daca up` prints hold: `daca ps`, `logs`, `down`
//! and `dashboard` read it from the record; a browser opens the printed URL once and keeps
//! the token as a same-site cookie.

use std::io::Read;
use std::sync::Arc;

use axum::http::HeaderMap;

/// The cookie a browser keeps the token in.
pub const COOKIE: &str = "daca-token";

/// One run's token (its `Debug` never shows it).
#[derive(Clone, PartialEq, Eq)]
pub struct RunToken(Arc<str>);

impl std::fmt::Debug for RunToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunToken(…)")
    }
}

impl RunToken {
    /// 128 random bits from the kernel, in hex.
    pub fn new() -> std::io::Result<RunToken> {
        let mut bytes = [0u8; 16];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(RunToken(hex.into()))
    }

    /// A token read back from the run record.
    pub fn from_record(text: &str) -> RunToken {
        RunToken(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this token, compared in constant time.
    pub fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// Whether a request carries this token: `Authorization: Bearer` (the CLI) or the cookie
    /// (a browser).
    pub fn carried_by(&self, headers: &HeaderMap) -> bool {
        let bearer = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let cookies = headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='));
        bearer.into_iter().chain(cookies).any(|t| self.matches(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_carried_by_a_bearer_header_or_the_cookie() {
        let token = RunToken::new().unwrap();
        assert_eq!(token.as_str().len(), 32);
        assert_ne!(token, RunToken::new().unwrap());
        assert!(!format!("{token:?}").contains(token.as_str()));
        let mut headers = HeaderMap::new();
        assert!(!token.carried_by(&headers));
        headers.insert("authorization", "Bearer nope".parse().unwrap());
        assert!(!token.carried_by(&headers));
        let cookie = format!("theme=dark; {COOKIE}={}", token.as_str());
        headers.insert("cookie", cookie.parse().unwrap());
        assert!(token.carried_by(&headers));
        let bearer = format!("Bearer {}", token.as_str());
        let mut headers = HeaderMap::new();
        headers.insert("authorization", bearer.parse().unwrap());
        assert!(token.carried_by(&headers));
        assert!(!token.matches(&token.as_str()[..31]));
    }
}
