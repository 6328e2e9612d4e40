//! Locks that no panic can poison: the one way daca takes a lock (clippy's
//! `disallowed-types` refuses `std::sync::Mutex` and `RwLock` elsewhere).
//!
//! A poisoned std lock turns one panic into a failure of every later caller, so one bad
//! request would break a store for everybody until daca restarts. These locks hand out the
//! guard whatever happened before. That is only sound when no critical section can leave
//! the data half-changed: compute the new value first, then store it under the lock, and
//! never hold a guard across an `.await` (they are `std` locks, not tokio's: cheap, and
//! right for sections that never wait).

use std::sync::PoisonError;

pub use std::sync::{MutexGuard, RwLockReadGuard, RwLockWriteGuard};

/// A mutual-exclusion lock whose `lock` never fails.
#[derive(Debug, Default)]
#[allow(
    clippy::disallowed_types,
    reason = "this is the wrapper the rule points to"
)]
pub struct Mutex<T>(std::sync::Mutex<T>);

impl<T> Mutex<T> {
    pub const fn new(value: T) -> Mutex<T> {
        #[allow(clippy::disallowed_types, reason = "this is the wrapper")]
        Mutex(std::sync::Mutex::new(value))
    }

    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn into_inner(self) -> T {
        self.0.into_inner().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A reader-writer lock whose `read` and `write` never fail.
#[derive(Debug, Default)]
#[allow(
    clippy::disallowed_types,
    reason = "this is the wrapper the rule points to"
)]
pub struct RwLock<T>(std::sync::RwLock<T>);

impl<T> RwLock<T> {
    pub const fn new(value: T) -> RwLock<T> {
        #[allow(clippy::disallowed_types, reason = "this is the wrapper")]
        RwLock(std::sync::RwLock::new(value))
    }

    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_while_holding_the_lock_does_not_break_the_next_caller() {
        let lock = std::sync::Arc::new(Mutex::new(1));
        let held = lock.clone();
        let _ = std::thread::spawn(move || {
            let _guard = held.lock();
            panic!("a handler panicked");
        })
        .join();
        *lock.lock() += 1;
        assert_eq!(*lock.lock(), 2);
        let rw = RwLock::new(vec![1]);
        rw.write().push(2);
        assert_eq!(rw.read().len(), 2);
    }
}
