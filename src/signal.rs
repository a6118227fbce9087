//! Wakes tasks parked on a shard-local event: fetches waiting for a partition to grow, group
//! timers waiting for a deadline to change. No locks, no atomics.

use std::cell::RefCell;

use futures::channel::oneshot;

#[derive(Default)]
pub struct Signal {
    waiters: RefCell<Vec<oneshot::Sender<()>>>,
}

impl Signal {
    /// A future that completes at the next notification. Waiters that gave up (their
    /// receiver dropped) are pruned here, so an idle signal does not collect them.
    pub fn wait(&self) -> oneshot::Receiver<()> {
        let (sender, receiver) = oneshot::channel();
        let mut waiters = self.waiters.borrow_mut();
        waiters.retain(|w| !w.is_canceled());
        waiters.push(sender);
        receiver
    }

    pub fn notify_all(&self) {
        for waiter in self.waiters.borrow_mut().drain(..) {
            let _ = waiter.send(());
        }
    }
}
