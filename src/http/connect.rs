//! Connection attempts bounded by the pool, not by the requests.
//!
//! hyper's pool races each request's new connection against an idle one
//! coming back; when the idle one wins, the connection being made is left
//! to finish in the background (to fill the pool). Against an upstream that
//! accepts slowly, every request starts one such attempt and each lives
//! until the connect timeout: 16 workers held 770–980 descriptors, and
//! under a limit of 1024 the run failed with "Too many open files". So
//! every attempt first takes a permit of a semaphore as large as the
//! client's in-flight limit ([`ConnectLimit`]), and reqwest's connect
//! timeout covers the wait and the attempt together: at most that many
//! sockets are ever being connected, whatever the peer does.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::Semaphore;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A connector layer: at most `permits` connection attempts at once.
#[derive(Clone)]
pub(crate) struct ConnectLimit {
    permits: Arc<Semaphore>,
}

impl ConnectLimit {
    pub(crate) fn new(permits: usize) -> ConnectLimit {
        ConnectLimit {
            permits: Arc::new(Semaphore::new(permits.max(1))),
        }
    }
}

impl<S> tower_layer::Layer<S> for ConnectLimit {
    type Service = Limited<S>;

    fn layer(&self, inner: S) -> Limited<S> {
        Limited {
            inner,
            permits: self.permits.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Limited<S> {
    inner: S,
    permits: Arc<Semaphore>,
}

impl<S, R> tower_service::Service<R> for Limited<S>
where
    S: tower_service::Service<R> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    R: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: R) -> Self::Future {
        // The service made ready above is the one to call (tower's rule); a
        // clone stays behind for the next request.
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let permits = self.permits.clone();
        Box::pin(async move {
            // Held while the socket is being connected, released once it is
            // (or the attempt is dropped by the connect timeout).
            let _permit = permits
                .acquire_owned()
                .await
                .map_err(|e| -> BoxError { Box::new(e) })?;
            ready.call(request).await.map_err(Into::into)
        })
    }
}
