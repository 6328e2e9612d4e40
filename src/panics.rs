//! One panic costs one request. A handler that panics is caught where the request is
//! answered ([`catch`]): that request gets an internal error, the panic is logged once with
//! what was being served, and every other request, connection and store goes on (daca's
//! locks cannot be poisoned: see `crate::sync`).
//!
//! The process's panic hook ([`install_hook`]) prints a panic nobody catches as daca's
//! internal error; a panic inside [`catch`] is handed to the catcher instead, so that it is
//! reported once, with the route, rather than twice.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

thread_local! {
    /// Whether this thread is polling a future inside [`catch`].
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    /// What the last caught panic said, for its catcher.
    static MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs the hook: panics inside [`catch`] are left to it; others are printed as daca's
/// internal error with a hint to report it.
pub fn install_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let payload = info.payload();
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        if CATCHING.with(Cell::get) {
            MESSAGE.with(|m| *m.borrow_mut() = Some(format!("{text}{location}")));
        } else {
            eprintln!(
                "daca: internal error: {text}{location}\n  hint: this is a bug in daca; please report it with the command you ran"
            );
        }
    }));
}

/// A request whose handler panicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caught {
    /// What the panic said, and where.
    pub message: String,
}

/// Runs `future`; if it panics, logs that once with `what()` (the route; only made then) and
/// returns [`Caught`] instead of unwinding into the connection.
pub async fn catch<F: Future>(
    what: impl FnOnce() -> String,
    future: F,
) -> Result<F::Output, Caught> {
    let outcome = Catching { inner: future }.await;
    outcome.map_err(|()| {
        let message = MESSAGE
            .with(|m| m.borrow_mut().take())
            .unwrap_or_else(|| "a panic (no hook installed to say more)".into());
        tracing::error!(
            "{}: a panic ended this request (a bug in daca; others go on): {message}",
            what()
        );
        Caught { message }
    })
}

/// The future of [`catch`]: each poll of the inner future is one `catch_unwind`.
struct Catching<F> {
    inner: F,
}

impl<F: Future> Future for Catching<F> {
    type Output = Result<F::Output, ()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `inner` is never moved out of the pinned struct (structural pinning).
        let inner = unsafe { self.map_unchecked_mut(|s| &mut s.inner) };
        let before = CATCHING.with(|c| c.replace(true));
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx)));
        CATCHING.with(|c| c.set(before));
        match polled {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_future_is_caught_with_its_message_and_the_next_one_runs() {
        install_hook();
        let caught = catch(|| "GET /boom".into(), async {
            tokio::task::yield_now().await;
            let values: Vec<u32> = Vec::new();
            values[3]
        })
        .await
        .unwrap_err();
        assert!(caught.message.contains("index out of bounds"), "{caught:?}");
        assert!(caught.message.contains("src/panics.rs:"), "{caught:?}");
        assert_eq!(catch(|| "GET /fine".into(), async { 7 }).await, Ok(7));
        assert!(!CATCHING.with(Cell::get), "the flag is put back");
    }
}
