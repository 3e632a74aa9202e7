//! A request's one allocation: the closure the engine thread runs, then its result until the
//! caller takes it. The caller's [`Pending`](super::Pending) and the engine's [`Ticket`] share
//! it, so a request costs no boxed closure, no boxed completion and no channel of its own, and
//! its result is written once, where the caller reads it (a result carries the request's
//! message back: several hundred bytes that were copied twice more before).
//!
//! The protocol that makes the shared cell sound: only the thread holding the [`Ticket`]
//! touches the cell's stage until the ticket completes it (the engine thread runs the closure,
//! then the ticket travels with its group to the WAL thread through a channel, which orders
//! the two); completing stores `DONE` with release ordering, and the caller reads the stage
//! only after loading `DONE` with acquire ordering. A ticket dropped without completing (the
//! engine stopped, or the closure panicked) completes as [`EngineError::Stopped`].

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::stages::{StageTimes, Stamps};
use super::EngineError;
use crate::state_machine::{StateMachine, Tx};

enum Stage<F, R> {
    Queued(F),
    /// Taken out to run, or the result taken by the caller.
    Empty,
    Ran(R),
    Stopped,
}

struct Cell<F, P, R> {
    stamps: Stamps,
    done: AtomicBool,
    waker: Mutex<Option<Waker>>,
    /// Asks the CPU for what the closure will read ([`Job::prefetch`]); never changes.
    ahead: P,
    stage: UnsafeCell<Stage<F, R>>,
}

// SAFETY: the stage is only touched by one thread at a time, in the order the module's
// documentation gives (the ticket's holder until `done`, then the caller); `F` and `R` move
// between threads, hence `Send`. `ahead` is only read, hence `Sync`.
unsafe impl<F: Send, P: Send + Sync, R: Send> Sync for Cell<F, P, R> {}

/// The engine's side of a request (type-erased: the engine knows only its state machine).
pub(crate) trait Job<S: StateMachine>: Send + Sync {
    /// Runs the request's closure against the state and keeps its result. Once.
    ///
    /// # Safety
    /// Only the holder of the request's ticket may call it, before completing the ticket.
    unsafe fn run(&self, tx: &mut Tx<'_, S>);

    /// # Safety
    /// Only the holder of the request's ticket may call it, once.
    unsafe fn complete(&self, outcome: Result<(), EngineError>);

    /// Asks the CPU to fetch what the closure will read in `state`, a few requests before it
    /// runs, so that its cache misses overlap the requests before it. Changes nothing.
    fn prefetch(&self, state: &S);

    fn stamps(&self) -> &Stamps;
}

/// The caller's side of a request.
pub(crate) trait Outcome<R>: Send + Sync {
    /// The result once the request completed; otherwise registers the waker.
    fn poll_take(&self, context: &mut Context<'_>) -> Poll<Result<R, EngineError>>;

    /// How long it spent in each stage, once `poll_take` returned ready at `polled` (`None`
    /// if it never ran).
    fn stage_times(&self, polled: u64) -> Option<StageTimes>;
}

impl<S, F, P, R> Job<S> for Cell<F, P, R>
where
    S: StateMachine,
    F: FnOnce(&mut Tx<'_, S>) -> R + Send,
    P: Fn(&S) + Send + Sync,
    R: Send,
{
    unsafe fn run(&self, tx: &mut Tx<'_, S>) {
        // SAFETY (both accesses): the caller holds the ticket, so no other thread touches the
        // stage; no reference to it is held while `f` runs.
        let stage = unsafe { std::mem::replace(&mut *self.stage.get(), Stage::Empty) };
        let Stage::Queued(f) = stage else {
            unreachable!("a request runs once");
        };
        self.stamps.ran();
        let result = f(tx);
        unsafe { *self.stage.get() = Stage::Ran(result) };
    }

    unsafe fn complete(&self, outcome: Result<(), EngineError>) {
        self.stamps.released();
        if outcome.is_err() {
            // SAFETY: as in `run`; the caller does not read the stage before `done`.
            unsafe { *self.stage.get() = Stage::Stopped };
        }
        self.done.store(true, Ordering::Release);
        let waker = lock(&self.waker).take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn prefetch(&self, state: &S) {
        (self.ahead)(state)
    }

    fn stamps(&self) -> &Stamps {
        &self.stamps
    }
}

impl<F: Send, P: Send + Sync, R: Send> Outcome<R> for Cell<F, P, R> {
    fn poll_take(&self, context: &mut Context<'_>) -> Poll<Result<R, EngineError>> {
        if !self.done.load(Ordering::Acquire) {
            let mut waker = lock(&self.waker);
            // Checked again under the lock: `complete` sets `done` before it takes the waker,
            // so either this sees `done` or `complete` sees the waker stored here.
            if !self.done.load(Ordering::Acquire) {
                match waker.as_mut() {
                    Some(stored) if stored.will_wake(context.waker()) => {}
                    _ => *waker = Some(context.waker().clone()),
                }
                return Poll::Pending;
            }
        }
        // SAFETY: `done` was loaded with acquire ordering: the ticket's holder is finished
        // with the stage, and `Pending` takes the result once.
        let stage = unsafe { std::mem::replace(&mut *self.stage.get(), Stage::Empty) };
        Poll::Ready(match stage {
            Stage::Ran(result) => Ok(result),
            Stage::Stopped => Err(EngineError::Stopped),
            Stage::Queued(_) | Stage::Empty => {
                unreachable!("a request completes once, after it ran")
            }
        })
    }

    fn stage_times(&self, polled: u64) -> Option<StageTimes> {
        self.stamps.times(polled)
    }
}

fn lock(waker: &Mutex<Option<Waker>>) -> std::sync::MutexGuard<'_, Option<Waker>> {
    // Holding it cannot panic half-way (a store or a take).
    waker
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The engine's handle on a request: run it, then complete it once its events are durable.
/// Dropped without completing, it completes the request as [`EngineError::Stopped`].
pub(crate) struct Ticket<S: StateMachine> {
    job: Arc<dyn Job<S>>,
    ran: bool,
    completed: bool,
}

impl<S: StateMachine> Ticket<S> {
    /// See [`Job::prefetch`].
    pub(crate) fn prefetch(&self, state: &S) {
        self.job.prefetch(state);
    }

    pub(crate) fn run(&mut self, tx: &mut Tx<'_, S>) {
        assert!(!self.ran, "a request runs once");
        self.ran = true;
        // SAFETY: this ticket is the only one for its request, and it has not completed.
        unsafe { self.job.run(tx) };
    }

    /// Its group went to the WAL thread `at` (`stages::now`).
    pub(crate) fn stamp_handed_off(&self, at: u64) {
        self.job.stamps().handed_off(at);
    }

    /// Its group's write began `at` (`stages::now`).
    pub(crate) fn stamp_writing(&self, at: u64) {
        self.job.stamps().writing(at);
    }

    /// Releases the request's result (`Ok`), or tells the caller it will never have one.
    pub(crate) fn complete(mut self, outcome: Result<(), EngineError>) {
        assert!(
            self.ran || outcome.is_err(),
            "only a request that ran completes with its result"
        );
        self.completed = true;
        // SAFETY: as in `run`; `completed` keeps `drop` from completing again.
        unsafe { self.job.complete(outcome) };
    }
}

impl<S: StateMachine> Drop for Ticket<S> {
    fn drop(&mut self) {
        if !self.completed {
            self.completed = true;
            // SAFETY: as in `complete`.
            unsafe { self.job.complete(Err(EngineError::Stopped)) };
        }
    }
}

/// A request for closure `f`: the engine's ticket and the caller's side, in one allocation.
#[cfg(test)]
pub(crate) fn new<S, F, R>(f: F) -> (Ticket<S>, Arc<dyn Outcome<R>>)
where
    S: StateMachine,
    F: FnOnce(&mut Tx<'_, S>) -> R + Send + 'static,
    R: Send + 'static,
{
    with_prefetch(f, |_: &S| {})
}

/// [`new`], with `ahead` to prefetch what `f` will read ([`Job::prefetch`]).
pub(crate) fn with_prefetch<S, F, P, R>(f: F, ahead: P) -> (Ticket<S>, Arc<dyn Outcome<R>>)
where
    S: StateMachine,
    F: FnOnce(&mut Tx<'_, S>) -> R + Send + 'static,
    P: Fn(&S) + Send + Sync + 'static,
    R: Send + 'static,
{
    let cell = Arc::new(Cell {
        stamps: Stamps::submitted_now(),
        done: AtomicBool::new(false),
        waker: Mutex::new(None),
        ahead,
        stage: UnsafeCell::new(Stage::Queued(f)),
    });
    let ticket = Ticket {
        job: cell.clone(),
        ran: false,
        completed: false,
    };
    (ticket, cell)
}

#[cfg(test)]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::task::Wake;

    use super::*;
    use crate::book::Book;
    use crate::engine::Pending;

    struct CountWakes(AtomicUsize);

    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    fn run(ticket: &mut Ticket<Book>) {
        let (mut book, mut events) = (Book::new(), Vec::new());
        ticket.run(&mut Tx::new(&mut book, &mut events));
    }

    #[test]
    fn the_result_is_released_when_completed_and_not_before() {
        let (mut ticket, outcome) = new(|tx: &mut Tx<'_, Book>| tx.state().accounts() + 7);
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut context = Context::from_waker(&waker);
        assert!(outcome.poll_take(&mut context).is_pending());
        run(&mut ticket);
        assert!(
            outcome.poll_take(&mut context).is_pending(),
            "ran, but not durable yet"
        );
        assert_eq!(wakes.0.load(SeqCst), 0);
        ticket.complete(Ok(()));
        assert_eq!(wakes.0.load(SeqCst), 1);
        assert!(matches!(
            outcome.poll_take(&mut context),
            Poll::Ready(Ok(7))
        ));
    }

    #[test]
    fn a_blocked_caller_is_woken_by_another_thread() {
        let (mut ticket, outcome) = new(|_: &mut Tx<'_, Book>| String::from("durable"));
        let engine = std::thread::spawn(move || {
            run(&mut ticket);
            std::thread::sleep(std::time::Duration::from_millis(20));
            ticket.complete(Ok(()));
        });
        assert_eq!(Pending::job(outcome).wait().as_deref(), Ok("durable"));
        engine.join().expect("engine side");
    }

    #[test]
    fn a_ticket_dropped_unrun_ran_or_in_a_panic_answers_stopped() {
        let (ticket, outcome) = new(|_: &mut Tx<'_, Book>| 1);
        drop(ticket);
        assert_eq!(Pending::job(outcome).wait(), Err(EngineError::Stopped));

        let (mut ticket, outcome) = new(|_: &mut Tx<'_, Book>| 2);
        run(&mut ticket);
        drop(ticket);
        assert_eq!(Pending::job(outcome).wait(), Err(EngineError::Stopped));

        let (ticket, outcome) = new(|_: &mut Tx<'_, Book>| 4);
        drop(ticket);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (result, times) = runtime.block_on(Pending::job(outcome).timed());
        assert_eq!(
            (result, times),
            (Err(EngineError::Stopped), None),
            "never ran"
        );

        let (mut ticket, outcome) = new(|_: &mut Tx<'_, Book>| -> u32 { panic!("a bug") });
        let panicked = catch_unwind(AssertUnwindSafe(move || run(&mut ticket)));
        assert!(panicked.is_err());
        assert_eq!(Pending::job(outcome).wait(), Err(EngineError::Stopped));
    }
}
