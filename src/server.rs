//! The HTTP server: the routes on hyper connections we accept ourselves, so that every
//! connection has deadlines and their number is capped.
//!
//! poem's own `Server` offers only an inactivity timeout, which cannot tell a client that
//! drips its headers from a long-poll that waits in silence for its answer. Here each
//! connection is always in one phase, and each phase has its own limit:
//!
//! - idle (no request in flight, nothing of the next one received): `HTTP_IDLE_TIMEOUT_SECS`;
//! - headers (part of a request received, not yet dispatched): `HTTP_HEADER_TIMEOUT_SECS`;
//! - body (a request in flight still sending its body): `HTTP_BODY_TIMEOUT_SECS`;
//! - waiting (requests in flight, their bodies read): no limit, so a long-poll is never cut.
//!
//! A connection past its limit is closed. The limits are enforced where the connection
//! reads, so they cost no task and no timer wheel entry beyond one `Sleep` each.

use std::{
    convert::Infallible,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll, Waker},
    time::Duration,
};

use http_body_util::{BodyExt, combinators::BoxBody};
use hyper::body::{Body as _, Bytes, Frame, Incoming, SizeHint};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use poem::{
    Addr, Endpoint, Response,
    endpoint::BoxEndpoint,
    http::uri::Scheme,
    web::{LocalAddr, RemoteAddr},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, watch},
    time::{Instant, Sleep},
};

use crate::config::HttpSettings;

type Routes = Arc<BoxEndpoint<'static, Response>>;

/// Serves `routes` on `listener` until `shutdown` resolves, then lets the connections
/// finish their requests for at most `grace`.
///
/// Over `MAX_CONNECTIONS`, new connections are not accepted: they wait in the kernel's
/// listen backlog and are served as soon as a connection closes. A burst is then answered
/// late rather than refused, and what waits costs the kernel's bounded backlog, not our
/// memory; when the backlog is full too, the kernel drops the SYN and the client retries.
pub async fn serve(
    listener: TcpListener,
    routes: BoxEndpoint<'static, Response>,
    limits: HttpSettings,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> io::Result<()> {
    let routes: Routes = Arc::new(routes);
    let local = listener.local_addr()?;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => permit.map_err(io::Error::other)?,
        };
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before we took it:
                    // pause briefly instead of spinning on the same error.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Small JSON answers: do not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            routes: routes.clone(),
            local,
            remote,
            limits: limits.clone(),
        };
        tokio::spawn(connection.serve(stream, permit, stopping.clone()));
    }
    drop(listener);
    let _ = stop.send(true);
    // Every permit back means every connection has closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(grace, slots.acquire_many(all)).await;
    Ok(())
}

struct Connection {
    routes: Routes,
    local: SocketAddr,
    remote: SocketAddr,
    limits: HttpSettings,
}

impl Connection {
    async fn serve(
        self,
        stream: TcpStream,
        permit: OwnedSemaphorePermit,
        mut stopping: watch::Receiver<bool>,
    ) {
        let phase = Arc::new(PhaseClock::new(&self.limits));
        let io = GuardedStream {
            stream,
            phase: phase.clone(),
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: None,
            _slot: permit,
        };
        let local = LocalAddr(Addr::SocketAddr(self.local));
        let remote = RemoteAddr(Addr::SocketAddr(self.remote));
        let routes = self.routes;
        let service = hyper::service::service_fn(move |request: poem::http::Request<Incoming>| {
            let has_body = !request.body().is_end_stream();
            phase.request_started(has_body);
            let finished = RequestFinished(phase.clone());
            let mut request =
                poem::Request::from((request, local.clone(), remote.clone(), Scheme::HTTP));
            if has_body {
                let body = WatchedBody {
                    inner: request.take_body().into(),
                    phase: Some(phase.clone()),
                };
                request.set_body(poem::Body::from(body.boxed()));
            }
            let routes = routes.clone();
            async move {
                let response = routes.get_response(request).await;
                drop(finished);
                Ok::<_, Infallible>(poem::http::Response::<BoxBody<Bytes, io::Error>>::from(
                    response,
                ))
            }
        });
        let builder = auto::Builder::new(TokioExecutor::new());
        let connection = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection closed with an error");
                }
                return;
            }
            _ = stopping.wait_for(|stopping| *stopping) => {}
        }
        connection.as_mut().graceful_shutdown();
        let _ = connection.await;
    }
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// No request in flight and nothing of the next one received.
    Idle { since: Instant },
    /// Part of a request's headers received.
    Headers { since: Instant },
    /// Requests in flight; `body_since` while one of them still sends its body.
    Busy {
        requests: usize,
        bodies: usize,
        body_since: Option<Instant>,
    },
}

/// Where a connection is, shared by its stream (which enforces the deadline) and its
/// request handling (which moves it along).
struct PhaseClock {
    phase: Mutex<Phase>,
    /// The connection task, last seen waiting to read. A phase change wakes it so that
    /// its stream arms the new deadline: hyper may have polled the read side before the
    /// change (while the request was in flight) and would otherwise sleep until the
    /// client sends something, which an idle client never does.
    reader: Mutex<Option<Waker>>,
    header: Duration,
    body: Duration,
    idle: Duration,
}

impl PhaseClock {
    fn new(limits: &HttpSettings) -> Self {
        Self {
            phase: Mutex::new(Phase::Idle {
                since: Instant::now(),
            }),
            reader: Mutex::new(None),
            header: limits.header_timeout,
            body: limits.body_timeout,
            idle: limits.idle_timeout,
        }
    }

    fn update(&self, change: impl FnOnce(&mut Phase)) {
        change(&mut self.phase.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Moves the phase along and has the stream look at the new deadline.
    fn advance(&self, change: impl FnOnce(&mut Phase)) {
        self.update(change);
        let reader = self
            .reader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(reader) = reader {
            reader.wake();
        }
    }

    fn waiting_to_read(&self, waker: &Waker) {
        let mut reader = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        match reader.as_ref() {
            Some(known) if known.will_wake(waker) => {}
            _ => *reader = Some(waker.clone()),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match *self.phase.lock().unwrap_or_else(PoisonError::into_inner) {
            Phase::Idle { since } => Some(since + self.idle),
            Phase::Headers { since } => Some(since + self.header),
            Phase::Busy {
                body_since: Some(since),
                ..
            } => Some(since + self.body),
            Phase::Busy { .. } => None,
        }
    }

    fn bytes_received(&self) {
        self.update(|phase| {
            if let Phase::Idle { .. } = phase {
                *phase = Phase::Headers {
                    since: Instant::now(),
                };
            }
        });
    }

    fn request_started(&self, has_body: bool) {
        let now = Instant::now();
        self.advance(|phase| {
            *phase = match *phase {
                Phase::Busy {
                    requests,
                    bodies,
                    body_since,
                } => Phase::Busy {
                    requests: requests + 1,
                    bodies: bodies + usize::from(has_body),
                    body_since: body_since.or(has_body.then_some(now)),
                },
                Phase::Idle { .. } | Phase::Headers { .. } => Phase::Busy {
                    requests: 1,
                    bodies: usize::from(has_body),
                    body_since: has_body.then_some(now),
                },
            }
        });
    }

    fn body_finished(&self) {
        self.advance(|phase| {
            if let Phase::Busy {
                bodies, body_since, ..
            } = phase
            {
                *bodies = bodies.saturating_sub(1);
                if *bodies == 0 {
                    *body_since = None;
                }
            }
        });
    }

    fn request_finished(&self) {
        self.advance(|phase| {
            if let Phase::Busy { requests, .. } = phase {
                *requests = requests.saturating_sub(1);
                if *requests == 0 {
                    *phase = Phase::Idle {
                        since: Instant::now(),
                    };
                }
            }
        });
    }
}

/// Marks the request finished when its handling ends, even when it is cancelled.
struct RequestFinished(Arc<PhaseClock>);

impl Drop for RequestFinished {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A request body that tells the clock when it has been read (or given up on).
struct WatchedBody {
    inner: BoxBody<Bytes, io::Error>,
    phase: Option<Arc<PhaseClock>>,
}

impl WatchedBody {
    fn finish(&mut self) {
        if let Some(phase) = self.phase.take() {
            phase.body_finished();
        }
    }
}

impl hyper::body::Body for WatchedBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            self.finish();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for WatchedBody {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The accepted socket, closed (as a read error) once its phase's deadline passes. It
/// holds the connection's slot under `MAX_CONNECTIONS` until it is dropped.
struct GuardedStream {
    stream: TcpStream,
    phase: Arc<PhaseClock>,
    timer: Pin<Box<Sleep>>,
    armed: Option<Instant>,
    _slot: OwnedSemaphorePermit,
}

impl GuardedStream {
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.phase.waiting_to_read(cx.waker());
        let Some(deadline) = self.phase.deadline() else {
            return Poll::Pending;
        };
        if self.armed != Some(deadline) {
            self.timer.as_mut().reset(deadline);
            self.armed = Some(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client did not send in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.phase.bytes_received();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => self.poll_deadline(cx),
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
