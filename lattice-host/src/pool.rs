//! An actor's instances on one host: how many may run at once, how many
//! do, and the idle ones, under one lock.
//!
//! A call to a warm instance takes the lock twice: once to take an
//! instance (or the right to create one), once to give it back. Until
//! session 11 a tokio semaphore held the limit beside a mutex for the idle
//! instances: a call took the semaphore's count, its `Arc`, the idle lock
//! twice and, on every release, the semaphore's waiters' lock (about 200
//! instructions a call more, by callgrind). Calls that find every instance
//! busy wait on a [`Notify`], woken one at a time as instances come back.

use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::time::Instant;

/// Why [`Pool::take`] returned without an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotTaken {
    /// The pool was closed: its actor was stopped or updated.
    Closed,
    /// Every instance stayed busy until the deadline.
    TimedOut,
}

/// Instances of type `T` (the host's are `Box<Warm>`).
pub(crate) struct Pool<T> {
    state: Mutex<State<T>>,
    /// Wakes a call waiting for an instance: one per instance given back
    /// (each waiter that takes one passes the wake on while room is left),
    /// all of them on close and when the limit rises.
    freed: Notify,
    /// Wakes [`Pool::drain`] when the last busy instance comes back.
    drained: Notify,
}

struct State<T> {
    idle: Vec<T>,
    /// How many instances may exist at once.
    limit: u32,
    /// Calls holding a [`Lease`].
    busy: u32,
    /// Calls waiting in [`Pool::take`]; releases wake one only when some
    /// wait.
    waiting: u32,
    /// A drain waits for `busy` and `waiting` to reach zero.
    draining: bool,
    closed: bool,
}

/// A call's right to one instance, given back on drop (without an
/// instance: the next call creates one) or by [`Pool::give_back`].
pub(crate) struct Lease<'a, T> {
    pool: &'a Pool<T>,
    /// The idle instance that came with the lease, if there was one.
    pub(crate) warm: Option<T>,
}

impl<T> Drop for Lease<'_, T> {
    fn drop(&mut self) {
        // A lease dropped with its instance (a cancelled call) keeps it.
        let warm = self.warm.take();
        drop(self.pool.release(warm));
    }
}

impl<T> Pool<T> {
    /// An empty pool that lets `limit` instances exist at once.
    pub(crate) fn new(limit: u32) -> Self {
        Self {
            state: Mutex::new(State {
                idle: Vec::new(),
                limit,
                busy: 0,
                waiting: 0,
                draining: false,
                closed: false,
            }),
            freed: Notify::new(),
            drained: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing under this lock can panic half way through a change.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts an instance that nobody holds into the pool (the first one,
    /// made when the actor starts). Dropped if the pool is full or closed.
    pub(crate) fn put(&self, instance: T) {
        let mut state = self.lock();
        if !state.closed && state.busy + (state.idle.len() as u32) < state.limit {
            state.idle.push(instance);
        }
    }

    /// A lease if an instance is free now, without waiting.
    pub(crate) fn try_take(&self) -> Result<Lease<'_, T>, NotTaken> {
        let mut state = self.lock();
        if state.closed {
            return Err(NotTaken::Closed);
        }
        if state.busy < state.limit {
            state.busy += 1;
            let warm = state.idle.pop();
            return Ok(Lease { pool: self, warm });
        }
        Err(NotTaken::TimedOut)
    }

    /// A lease, waiting until `deadline` for an instance to come back.
    pub(crate) async fn take(&self, deadline: Instant) -> Result<Lease<'_, T>, NotTaken> {
        // Counted among the waiters from its first wait until it takes an
        // instance or gives up, so that a drain does not close the pool
        // between its wake and its retry.
        let mut waiting = Waiting {
            pool: self,
            counted: false,
        };
        loop {
            // Made before the check: a release or close after it wakes it.
            let freed = self.freed.notified();
            {
                let mut state = self.lock();
                if waiting.counted {
                    state.waiting -= 1;
                    waiting.counted = false;
                }
                if state.closed {
                    return Err(NotTaken::Closed);
                }
                if state.busy < state.limit {
                    state.busy += 1;
                    let warm = state.idle.pop();
                    // Several instances came back while one wake was
                    // stored: pass it on to the next waiter.
                    let more = state.busy < state.limit && state.waiting > 0;
                    drop(state);
                    if more {
                        self.freed.notify_one();
                    }
                    return Ok(Lease { pool: self, warm });
                }
                state.waiting += 1;
                waiting.counted = true;
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(NotTaken::TimedOut);
            }
        }
    }

    /// Ends a lease, keeping `instance` for the next call if the limit
    /// has room for it.
    pub(crate) fn give_back(&self, mut lease: Lease<'_, T>, instance: T) {
        debug_assert!(lease.warm.is_none(), "the lease's instance was taken out");
        lease.warm = Some(instance);
        // `Lease::drop` keeps it.
    }

    /// Counts a lease out; returns the instance if it is not kept (the
    /// limit fell meanwhile, or the pool closed), to be dropped by the
    /// caller outside the lock.
    fn release(&self, instance: Option<T>) -> Option<T> {
        let mut state = self.lock();
        state.busy -= 1;
        let surplus = match instance {
            Some(instance)
                if !state.closed && state.busy + (state.idle.len() as u32) < state.limit =>
            {
                state.idle.push(instance);
                None
            }
            other => other,
        };
        let wake = state.waiting > 0 && state.busy < state.limit;
        let drained = self.drained(&state);
        drop(state);
        if wake {
            self.freed.notify_one();
        }
        if drained {
            self.drained.notify_waiters();
        }
        surplus
    }

    /// The limit now.
    pub(crate) fn limit(&self) -> u32 {
        self.lock().limit
    }

    /// Idle instances now.
    pub(crate) fn idle(&self) -> usize {
        self.lock().idle.len()
    }

    /// Sets the limit, returning the previous one. Raising it wakes the
    /// waiting calls; lowering it drops idle instances beyond it now and
    /// busy ones as their calls end.
    pub(crate) fn set_limit(&self, limit: u32) -> u32 {
        let mut state = self.lock();
        let previous = std::mem::replace(&mut state.limit, limit);
        let keep = (limit.saturating_sub(state.busy) as usize).min(state.idle.len());
        let surplus = state.idle.split_off(keep);
        drop(state);
        drop(surplus);
        if limit > previous {
            self.freed.notify_waiters();
        }
        previous
    }

    /// Waits up to `deadline` for the calls that hold or wait for an
    /// instance to finish, then refuses new leases and drops the idle
    /// instances (busy ones are dropped as they come back). Returns whether
    /// the calls all finished in time.
    pub(crate) async fn drain(&self, deadline: Instant) -> bool {
        let finished = loop {
            // Made before the check: a release after it wakes it.
            let drained = self.drained.notified();
            {
                let mut state = self.lock();
                if state.busy == 0 && state.waiting == 0 {
                    break true;
                }
                state.draining = true;
            }
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                break false;
            }
        };
        let idle = {
            let mut state = self.lock();
            state.closed = true;
            std::mem::take(&mut state.idle)
        };
        drop(idle);
        // Calls still waiting see the pool closed and go to the actor's
        // successor, if there is one.
        self.freed.notify_waiters();
        finished
    }

    /// Whether a drain waits and no call holds or waits for an instance.
    fn drained(&self, state: &State<T>) -> bool {
        state.draining && state.busy == 0 && state.waiting == 0
    }
}

/// A call in [`Pool::take`], counted among the pool's waiters while it
/// waits, and no longer when its future is dropped.
struct Waiting<'a, T> {
    pool: &'a Pool<T>,
    counted: bool,
}

impl<T> Drop for Waiting<'_, T> {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        let mut state = self.pool.lock();
        state.waiting -= 1;
        let drained = self.pool.drained(&state);
        drop(state);
        if drained {
            self.pool.drained.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn later(ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    #[tokio::test]
    async fn a_given_back_instance_is_the_next_calls() {
        let pool = Pool::new(2);
        pool.put(7);
        let mut first = pool.try_take().expect("room");
        assert_eq!(first.warm.take(), Some(7));
        let mut second = pool.try_take().expect("room");
        assert_eq!(second.warm, None, "none idle: the call creates one");
        assert_eq!(pool.try_take().err(), Some(NotTaken::TimedOut), "both busy");
        second.warm = None;
        pool.give_back(second, 8);
        drop(first); // without its instance: the call dropped it
        assert_eq!(pool.idle(), 1);
        // A lease dropped with its instance still in it (a call cancelled
        // before it began) keeps the instance.
        drop(pool.try_take().expect("room"));
        assert_eq!(pool.idle(), 1);
        assert_eq!(pool.try_take().expect("room").warm, Some(8));
    }

    #[tokio::test]
    async fn a_waiting_call_gets_the_instance_given_back() {
        let pool = Arc::new(Pool::new(1));
        let mut held = pool.try_take().expect("room");
        held.warm = None;
        let waiter = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.take(later(5_000)).await.map(|l| l.warm) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        pool.give_back(held, 3);
        assert_eq!(waiter.await.expect("joins"), Ok(Some(3)));
        assert_eq!(pool.lock().waiting, 0);
    }

    #[tokio::test]
    async fn several_instances_given_back_at_once_wake_as_many_waiters() {
        // Two releases while neither waiter is registered with the
        // `Notify` store one wake: the first waiter passes it on.
        let pool = Arc::new(Pool::<u8>::new(2));
        let held: Vec<_> = (0..2).map(|_| pool.try_take().expect("room")).collect();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.take(later(5_000)).await.map(drop) })
            })
            .collect();
        tokio::task::yield_now().await;
        drop(held);
        for waiter in waiters {
            assert_eq!(
                tokio::time::timeout(Duration::from_secs(5), waiter)
                    .await
                    .expect("woken")
                    .expect("joins"),
                Ok(())
            );
        }
    }

    #[tokio::test]
    async fn a_wait_ends_at_its_deadline_and_a_cancelled_one_is_not_counted() {
        let pool = Pool::<u8>::new(1);
        let _held = pool.try_take().expect("room");
        assert_eq!(pool.take(later(30)).await.err(), Some(NotTaken::TimedOut));
        let cancelled = tokio::time::timeout(Duration::from_millis(10), pool.take(later(5_000)));
        assert!(cancelled.await.is_err());
        assert_eq!(pool.lock().waiting, 0);
    }

    #[tokio::test]
    async fn a_drain_waits_for_busy_and_waiting_calls_then_closes() {
        let pool = Arc::new(Pool::new(1));
        pool.put(1);
        let held = pool.try_take().expect("room");
        let waiter = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.take(later(5_000)).await.map(|l| l.warm) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let drain = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.drain(later(5_000)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!drain.is_finished(), "a call is still busy");
        // The waiting call is served before the pool closes.
        drop(held);
        assert_eq!(waiter.await.expect("joins"), Ok(Some(1)));
        assert!(drain.await.expect("joins"), "drained in time");
        assert_eq!(pool.try_take().err(), Some(NotTaken::Closed));
        assert_eq!(pool.idle(), 0, "closing drops the idle instances");
    }

    #[tokio::test]
    async fn a_drain_that_runs_out_of_time_closes_the_pool_all_the_same() {
        let pool = Arc::new(Pool::new(1));
        let held = pool.try_take().expect("room");
        let waiter = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.take(later(5_000)).await.map(drop) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!pool.drain(later(20)).await);
        assert_eq!(
            waiter.await.expect("joins"),
            Err(NotTaken::Closed),
            "a call still waiting is told at once"
        );
        pool.give_back(held, 5);
        assert_eq!(
            pool.idle(),
            0,
            "an instance given back after close is dropped"
        );
    }

    #[tokio::test]
    async fn the_limit_moves_both_ways() {
        let pool = Arc::new(Pool::new(3));
        for i in 0..3 {
            pool.put(i);
        }
        assert_eq!(pool.idle(), 3);
        let mut busy = pool.try_take().expect("room");
        let instance = busy.warm.take().expect("idle");
        // Down to one: the two idle instances go at once, and the busy one
        // stays the only one.
        assert_eq!(pool.set_limit(1), 3);
        assert_eq!(pool.idle(), 0);
        assert_eq!(pool.try_take().err(), Some(NotTaken::TimedOut));
        pool.give_back(busy, instance);
        assert_eq!(pool.idle(), 1);
        // Up to two: a waiting call gets room at once.
        let _one = pool.try_take().expect("room");
        let waiter = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.take(later(5_000)).await.map(|l| l.warm) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(pool.set_limit(2), 1);
        assert_eq!(waiter.await.expect("joins"), Ok(None));
    }
}
