//! Wakes fetches parked on a partition when it grows. Shard-local: no locks, no atomics.

use std::cell::RefCell;

use futures::channel::oneshot;

#[derive(Default)]
pub struct AppendSignal {
    waiters: RefCell<Vec<oneshot::Sender<()>>>,
}

impl AppendSignal {
    /// A future that completes at the next append. Waiters whose fetch has given up (their
    /// receiver dropped) are pruned here, so an idle partition does not collect them.
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
