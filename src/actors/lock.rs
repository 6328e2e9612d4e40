//! Turn-based concurrency: one call at a time per actor, queued fairly, with Dapr's
//! reentrancy. Work runs in *flights* named by their `Dapr-Reentrancy-Id`: a call of the
//! flight that holds the actor runs at once (one level deeper), a call of a queued flight
//! waits with it, any other call queues a flight of its own. Without reentrancy every call
//! is a flight of its own.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::sync::Mutex;

/// Holding the actor; dropping it lets the next call in.
pub struct Turn {
    lock: Arc<TurnLock>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.lock.release();
    }
}

struct Flight {
    id: String,
    waiters: Vec<oneshot::Sender<Turn>>,
}

#[derive(Default)]
struct State {
    /// The flight holding the actor and how many of its calls are under way.
    running: Option<(String, u32)>,
    queue: VecDeque<Flight>,
}

/// Too deep a chain of reentrant calls.
#[derive(Debug, PartialEq, Eq)]
pub struct TooDeep;

/// One actor's lock.
#[derive(Default)]
pub struct TurnLock(Mutex<State>);

impl TurnLock {
    /// Waits for the actor's turn in `flight`; `max_depth` (reentrancy on) bounds how many
    /// calls of one flight may be under way at once.
    pub async fn acquire(
        self: &Arc<Self>,
        flight: &str,
        max_depth: Option<u32>,
    ) -> Result<Turn, TooDeep> {
        let waiting = {
            let mut state = self.0.lock();
            let State { running, queue } = &mut *state;
            match running {
                Some((id, depth)) if id == flight => {
                    if max_depth.is_some_and(|max| *depth >= max) {
                        return Err(TooDeep);
                    }
                    *depth += 1;
                    return Ok(self.turn());
                }
                None if queue.is_empty() => {
                    *running = Some((flight.to_string(), 1));
                    return Ok(self.turn());
                }
                _ => {}
            }
            let (tx, rx) = oneshot::channel();
            match queue.iter_mut().find(|f| f.id == flight) {
                Some(queued) if max_depth.is_some_and(|max| queued.waiters.len() as u32 >= max) => {
                    return Err(TooDeep);
                }
                Some(queued) => queued.waiters.push(tx),
                None => queue.push_back(Flight {
                    id: flight.to_string(),
                    waiters: vec![tx],
                }),
            }
            rx
        };
        // The sender is dropped only with the lock itself; a turn always comes.
        waiting.await.map_err(|_| TooDeep)
    }

    fn turn(self: &Arc<Self>) -> Turn {
        Turn { lock: self.clone() }
    }

    /// Whether no call holds or waits for the actor.
    pub fn is_free(&self) -> bool {
        let state = self.0.lock();
        state.running.is_none() && state.queue.is_empty()
    }

    fn release(self: &Arc<Self>) {
        let woken = {
            let mut state = self.0.lock();
            let Some((_, depth)) = &mut state.running else {
                return;
            };
            *depth -= 1;
            if *depth > 0 {
                return;
            }
            state.running = None;
            let Some(next) = state.queue.pop_front() else {
                return;
            };
            state.running = Some((next.id, next.waiters.len() as u32));
            next.waiters
        };
        // Outside the lock: a caller that gave up while waiting hands its turn back, which
        // releases it again.
        for waiter in woken {
            drop(waiter.send(self.turn()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_take_turns_in_order() {
        let lock = Arc::new(TurnLock::default());
        let first = lock.acquire("a", None).await.unwrap();
        let (l2, l3) = (lock.clone(), lock.clone());
        let second = tokio::spawn(async move { l2.acquire("b", None).await.map(|_| 2) });
        tokio::task::yield_now().await;
        let third = tokio::spawn(async move { l3.acquire("c", None).await.map(|_| 3) });
        tokio::task::yield_now().await;
        assert!(!second.is_finished() && !third.is_finished());
        drop(first);
        assert_eq!(second.await.unwrap(), Ok(2));
        assert_eq!(third.await.unwrap(), Ok(3));
        assert!(lock.is_free());
    }

    #[tokio::test]
    async fn a_flight_reenters_up_to_its_depth() {
        let lock = Arc::new(TurnLock::default());
        let mut held = vec![lock.acquire("flight", Some(3)).await.unwrap()];
        held.push(lock.acquire("flight", Some(3)).await.unwrap());
        held.push(lock.acquire("flight", Some(3)).await.unwrap());
        assert_eq!(lock.acquire("flight", Some(3)).await.err(), Some(TooDeep));
        let other = lock.clone();
        let waiting = tokio::spawn(async move { other.acquire("other", Some(3)).await.is_ok() });
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "another flight waits for the whole flight"
        );
        held.clear();
        assert!(waiting.await.unwrap());
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_does_not_block_the_next() {
        let lock = Arc::new(TurnLock::default());
        let first = lock.acquire("a", None).await.unwrap();
        let impatient = lock.clone();
        let gone = tokio::spawn(async move { impatient.acquire("b", None).await.is_ok() });
        tokio::task::yield_now().await;
        gone.abort();
        let _ = gone.await;
        let patient = lock.clone();
        let next = tokio::spawn(async move { patient.acquire("c", None).await.is_ok() });
        tokio::task::yield_now().await;
        drop(first);
        assert!(next.await.unwrap());
    }
}
