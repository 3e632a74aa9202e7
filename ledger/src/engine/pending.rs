//! The answer to a request, delivered once everything it depends on is durable.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use tokio::sync::oneshot;

use super::job::Outcome;
use super::stages::{self, StageTimes};
use super::EngineError;

/// Resolves when every event emitted by this request and every earlier one is durable.
/// Await it (tokio or any executor) or [`Pending::wait`] for it on a plain thread.
#[must_use = "a request's result is only final once its Pending resolves"]
pub struct Pending<R> {
    state: State<R>,
}

enum State<R> {
    /// Boxed: only the error of a request the engine never took is ready at once, and an
    /// inline `R` would make every caller's future as large as the biggest result.
    Ready(Option<Box<Result<R, EngineError>>>),
    /// A request run on the engine thread (`Engine::execute`).
    Job(Arc<dyn Outcome<R>>),
    /// Anything else answered through a channel (snapshots).
    Waiting(oneshot::Receiver<Result<R, EngineError>>),
}

// Never pinned structurally: `R` is only moved out whole.
impl<R> Unpin for Pending<R> {}

impl<R> Pending<R> {
    pub(crate) fn ready(result: Result<R, EngineError>) -> Pending<R> {
        Pending {
            state: State::Ready(Some(Box::new(result))),
        }
    }

    pub(crate) fn job(outcome: Arc<dyn Outcome<R>>) -> Pending<R> {
        Pending {
            state: State::Job(outcome),
        }
    }

    pub(crate) fn waiting(receiver: oneshot::Receiver<Result<R, EngineError>>) -> Pending<R> {
        Pending {
            state: State::Waiting(receiver),
        }
    }

    /// This future with how long the request spent in each stage (`None` unless it completed
    /// with a result: not for a request the engine stopped before it was durable, nor for a
    /// snapshot).
    pub fn timed(self) -> Timed<R> {
        Timed(self)
    }

    /// Ready once the request is durable; its stage times taken if `with_times`.
    fn poll_result(
        &mut self,
        context: &mut Context<'_>,
        with_times: bool,
    ) -> Poll<(Result<R, EngineError>, Option<StageTimes>)> {
        match &mut self.state {
            State::Ready(result) => {
                Poll::Ready((*result.take().expect("a Pending resolves once"), None))
            }
            State::Job(outcome) => match outcome.poll_take(context) {
                Poll::Ready(result) => {
                    let times = (with_times && result.is_ok())
                        .then(|| outcome.stage_times(stages::now()))
                        .flatten();
                    self.state = State::Ready(None);
                    Poll::Ready((result, times))
                }
                Poll::Pending => Poll::Pending,
            },
            State::Waiting(receiver) => match Pin::new(receiver).poll(context) {
                Poll::Ready(result) => {
                    Poll::Ready((result.unwrap_or(Err(EngineError::Stopped)), None))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    /// Blocks the thread until the result is durable. Not for use inside an async runtime.
    pub fn wait(self) -> Result<R, EngineError> {
        match self.state {
            State::Ready(result) => *result.expect("a Pending resolves once"),
            State::Job(outcome) => {
                let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
                let mut context = Context::from_waker(&waker);
                loop {
                    if let Poll::Ready(result) = outcome.poll_take(&mut context) {
                        return result;
                    }
                    // A wake-up may be spurious: the loop polls again.
                    std::thread::park();
                }
            }
            // A dropped sender means the engine stopped before the request became durable.
            State::Waiting(receiver) => receiver
                .blocking_recv()
                .unwrap_or(Err(EngineError::Stopped)),
        }
    }
}

/// Wakes a thread blocked in [`Pending::wait`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

impl<R> Future for Pending<R> {
    type Output = Result<R, EngineError>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut()
            .poll_result(context, false)
            .map(|(result, _)| result)
    }
}

/// A [`Pending`] that also gives its request's [`StageTimes`] ([`Pending::timed`]).
#[must_use = "a request's result is only final once its Pending resolves"]
pub struct Timed<R>(Pending<R>);

impl<R> Future for Timed<R> {
    type Output = (Result<R, EngineError>, Option<StageTimes>);

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().0.poll_result(context, true)
    }
}
