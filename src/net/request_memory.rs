//! A shard's memory for request frames (`queued.max.request.bytes`), shared by all its
//! connections, and who holds it.
//!
//! A frame takes budget as its bytes arrive and gives it back once answered. Frames still
//! arriving are registered with what they hold, so that when the budget is spent and a frame
//! has to wait, the frame holding the most beyond its fair share (the budget divided among the
//! frames arriving) is evicted: its connection is closed and its budget returned. Without
//! that, clients that each send part of a large frame and stop could hold the whole budget
//! until `request.frame.timeout.ms` and stall every other client; with it, a waiting frame
//! stalls others only while they are within their share.
//!
//! Owned by one shard, touched only by its thread.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use futures::channel::oneshot;
use glommio::sync::Semaphore;

use crate::constants::ARRIVING_FRAME_SILENCE_EVICT_MS;
use crate::signal::Signal;
use std::time::{Duration, Instant};

/// Units taken from a budget, given back when dropped (and, for request memory, announced
/// to frames waiting above their share).
pub struct Reservation {
    budget: Rc<Semaphore>,
    units: u64,
    released: Option<Rc<Signal>>,
}

impl Reservation {
    pub fn empty(budget: &Rc<Semaphore>) -> Reservation {
        Reservation {
            budget: budget.clone(),
            units: 0,
            released: None,
        }
    }

    pub fn units(&self) -> u64 {
        self.units
    }

    /// Waits for `units` more; Err when the budget was closed (shutdown).
    pub async fn grow(&mut self, units: u64) -> Result<(), String> {
        self.budget
            .acquire(units)
            .await
            .map_err(|e| format!("request budget: {e}"))?;
        self.units += units;
        Ok(())
    }

    /// Takes `units` more if they are free now.
    fn try_grow(&mut self, units: u64) -> Result<bool, String> {
        let taken = self
            .budget
            .try_acquire(units)
            .map_err(|e| format!("request budget: {e}"))?;
        if taken {
            self.units += units;
        }
        Ok(taken)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.units > 0 {
            // The budget first, so frames queued within their share are woken before those
            // waiting above it are told to look again.
            self.budget.signal(self.units);
            if let Some(released) = &self.released {
                released.notify_all();
            }
        }
    }
}

/// A frame still arriving: what it holds, and how to tell it it was evicted.
struct Arriving {
    held: u64,
    evict: Option<oneshot::Sender<()>>,
    /// When bytes last arrived into the frame (or it was registered).
    progressed_at: Instant,
}

pub struct RequestMemory {
    pub budget: Rc<Semaphore>,
    /// Notified whenever request memory is given back.
    released: Rc<Signal>,
    total: u64,
    arriving: RefCell<HashMap<u64, Arriving>>,
    /// Frames within their share queued for the budget: those above it wait behind them.
    within_share_waiting: Cell<usize>,
    next_id: Cell<u64>,
}

impl RequestMemory {
    pub fn new(total: u64) -> RequestMemory {
        RequestMemory {
            budget: Rc::new(Semaphore::new(total)),
            released: Rc::new(Signal::default()),
            total,
            arriving: RefCell::new(HashMap::new()),
            within_share_waiting: Cell::new(0),
            next_id: Cell::new(0),
        }
    }

    /// Registers a frame that starts arriving; it holds nothing yet.
    pub fn arriving(self: &Rc<Self>) -> ArrivingFrame {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (evict, evicted) = oneshot::channel();
        self.arriving.borrow_mut().insert(
            id,
            Arriving {
                held: 0,
                evict: Some(evict),
                progressed_at: Instant::now(),
            },
        );
        ArrivingFrame {
            memory: self.clone(),
            id,
            evicted,
            reservation: Reservation {
                budget: self.budget.clone(),
                units: 0,
                released: Some(self.released.clone()),
            },
        }
    }

    /// The budget divided evenly among the frames arriving now.
    fn fair_share(&self) -> u64 {
        self.total / self.arriving.borrow().len().max(1) as u64
    }

    /// Frames registered as arriving.
    pub fn arriving_count(&self) -> usize {
        self.arriving.borrow().len()
    }

    /// Evicts every arriving frame (other than `wanting`) that holds more than its fair share
    /// and has received nothing for [`ARRIVING_FRAME_SILENCE_EVICT_MS`], if `wanting` would
    /// itself stay within its share after taking `growth`. Returns how many were evicted.
    fn evict_for(&self, wanting: u64, growth: u64) -> usize {
        let mut arriving = self.arriving.borrow_mut();
        let fair = self.total / arriving.len().max(1) as u64;
        let own = arriving.get(&wanting).map_or(0, |a| a.held);
        if own + growth > fair {
            return 0;
        }
        let now = Instant::now();
        let silence = Duration::from_millis(ARRIVING_FRAME_SILENCE_EVICT_MS);
        let mut evicted = 0;
        for (id, frame) in arriving.iter_mut() {
            let stalled = now.duration_since(frame.progressed_at) >= silence;
            if *id != wanting && frame.held > fair && stalled {
                if let Some(evict) = frame.evict.take() {
                    let _ = evict.send(());
                    evicted += 1;
                }
            }
        }
        evicted
    }
}

/// Counts a frame queued within its share for as long as it waits, however the wait ends
/// (a frame whose read times out drops its wait midway).
struct QueuedWithinShare<'a>(&'a Cell<usize>);

impl<'a> QueuedWithinShare<'a> {
    fn new(count: &'a Cell<usize>) -> QueuedWithinShare<'a> {
        count.set(count.get() + 1);
        QueuedWithinShare(count)
    }
}

impl Drop for QueuedWithinShare<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// Why taking budget for an arriving frame failed.
pub enum GrowFailed {
    /// Another frame needed the memory and this one held more than its share.
    Evicted,
    /// The budget was closed.
    Closed(String),
}

/// A frame being read: its reservation, registered with the shard while it arrives.
pub struct ArrivingFrame {
    memory: Rc<RequestMemory>,
    id: u64,
    /// Resolves when another frame evicted this one.
    pub evicted: oneshot::Receiver<()>,
    reservation: Reservation,
}

impl ArrivingFrame {
    /// Takes `growth` more units. Within its fair share, a frame waits its turn for the budget
    /// and, when the budget is spent, evicts the arriving frame furthest above its share.
    /// Above its share, a frame takes budget only when it is free and nobody within their
    /// share waits; otherwise it waits for memory to be given back and looks again. Err(Evicted)
    /// as soon as this frame is evicted itself.
    pub async fn grow(&mut self, growth: u64) -> Result<(), GrowFailed> {
        loop {
            let own = self.reservation.units();
            if own + growth <= self.memory.fair_share() {
                let _queued = QueuedWithinShare::new(&self.memory.within_share_waiting);
                let mut acquire = std::pin::pin!(self.reservation.grow(growth));
                // While it waits, frames that stall above their share are evicted for it, each
                // time one may have newly stalled.
                loop {
                    if self.memory.budget.available() < growth {
                        self.memory.evict_for(self.id, growth);
                    }
                    let recheck = std::pin::pin!(glommio::timer::sleep(Duration::from_millis(
                        ARRIVING_FRAME_SILENCE_EVICT_MS
                    )));
                    let evicted_or_recheck = futures::future::select(&mut self.evicted, recheck);
                    let outcome = match futures::future::select(acquire.as_mut(), evicted_or_recheck).await {
                        futures::future::Either::Left((acquired, _)) => Some(Ok(acquired)),
                        futures::future::Either::Right((futures::future::Either::Left(_), _)) => Some(Err(())),
                        futures::future::Either::Right((futures::future::Either::Right(_), _)) => None,
                    };
                    match outcome {
                        Some(Ok(acquired)) => {
                            acquired.map_err(GrowFailed::Closed)?;
                            break;
                        }
                        Some(Err(())) => return Err(GrowFailed::Evicted),
                        None => {}
                    }
                }
                break;
            }
            if self.memory.within_share_waiting.get() == 0
                && self.reservation.try_grow(growth).map_err(GrowFailed::Closed)?
            {
                break;
            }
            let released = self.memory.released.wait();
            if let futures::future::Either::Right(_) = futures::future::select(released, &mut self.evicted).await {
                return Err(GrowFailed::Evicted);
            }
        }
        if let Some(entry) = self.memory.arriving.borrow_mut().get_mut(&self.id) {
            entry.held = self.reservation.units();
        }
        Ok(())
    }

    /// Bytes arrived into the frame: it is making progress.
    pub fn progressed(&self) {
        if let Some(entry) = self.memory.arriving.borrow_mut().get_mut(&self.id) {
            entry.progressed_at = Instant::now();
        }
    }

    /// The whole frame arrived: it is no longer evictable; its reservation lives on until
    /// the request is answered.
    pub fn arrived(mut self) -> Reservation {
        // The registration goes when `self` drops; the reservation moves out first.
        std::mem::replace(&mut self.reservation, Reservation::empty(&self.memory.budget))
    }
}

impl Drop for ArrivingFrame {
    fn drop(&mut self) {
        self.memory.arriving.borrow_mut().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_frame_over_its_share_is_evicted_for_one_within_it() {
        glommio::LocalExecutor::default().run(async {
            let memory = Rc::new(RequestMemory::new(1000));
            let mut big = memory.arriving();
            let mut small = memory.arriving();
            big.grow(900).await.ok().expect("fits");
            small.grow(50).await.ok().expect("fits");
            // Nothing has arrived into `big` for a while; `small` just made progress.
            memory.arriving.borrow_mut().get_mut(&big.id).unwrap().progressed_at =
                Instant::now() - Duration::from_secs(1);
            small.progressed();
            // 100 more for a third frame: the budget holds 50, the fair share is 333, and
            // `big` holds 900 of it.
            let mut third = memory.arriving();
            let waiting = glommio::spawn_local(async move {
                let grown = third.grow(100).await.is_ok();
                (grown, third)
            });
            // `big` learns it was evicted; dropping it returns its 900.
            (&mut big.evicted).await.expect("evicted");
            drop(big);
            let (grown, third) = waiting.await;
            assert!(grown);
            assert_eq!(memory.arriving_count(), 2);
            let kept = third.arrived();
            assert_eq!(kept.units(), 100);
            assert_eq!(memory.arriving_count(), 1);
            drop(small);
            drop(kept);
            assert_eq!(memory.budget.available(), 1000);
        });
    }

    #[test]
    fn a_frame_still_receiving_is_not_evicted() {
        glommio::LocalExecutor::default().run(async {
            let memory = Rc::new(RequestMemory::new(1000));
            let mut big = memory.arriving();
            big.grow(990).await.ok().expect("fits");
            let third = memory.arriving();
            // `big` holds far more than its share of 500 but bytes are arriving into it: not a
            // victim until it stalls.
            big.progressed();
            assert_eq!(memory.evict_for(third.id, 10), 0);
            memory.arriving.borrow_mut().get_mut(&big.id).unwrap().progressed_at =
                Instant::now() - Duration::from_secs(1);
            assert_eq!(memory.evict_for(third.id, 10), 1, "stalled for a second");
        });
    }

    #[test]
    fn nobody_is_evicted_while_every_frame_is_within_its_share() {
        glommio::LocalExecutor::default().run(async {
            let memory = Rc::new(RequestMemory::new(1000));
            let mut a = memory.arriving();
            let mut b = memory.arriving();
            a.grow(500).await.ok().expect("fits");
            b.grow(450).await.ok().expect("fits");
            let mut c = memory.arriving();
            // Fair share is 333: `a` holds more, but `c` asking 400 would exceed its own
            // share, so it only waits.
            memory.arriving.borrow_mut().get_mut(&a.id).unwrap().progressed_at =
                Instant::now() - Duration::from_secs(1);
            assert_eq!(memory.evict_for(c.id, 400), 0);
            assert!(a.evicted.try_recv().unwrap().is_none());
            assert!(c.evicted.try_recv().unwrap().is_none());
        });
    }
}
