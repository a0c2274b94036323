//! A small, bounded HTTP/1.1 server for the metrics endpoints.
//!
//! Used by [`crate::start_http`] (in the pipeline process) and by the
//! `gst-stream-exporter` sidecar; both differ only in the function that
//! renders the `/metrics` body.
//!
//! Routes:
//!
//! | request | response |
//! |---|---|
//! | `GET`/`HEAD /metrics` | 200, `Content-Type:` [`CONTENT_TYPE_TEXT_0_0_4`], body from the renderer |
//! | `GET`/`HEAD /healthz` | 200, `ok\n` |
//! | other method on those paths | 405 with `Allow: GET, HEAD` |
//! | any other path | 404 |
//! | a request with a body (`Content-Length` > 0 or chunked) on those paths | 413, connection closed |
//! | unparsable request | 400 (from hyper), connection closed |
//! | request head larger than [`Limits::max_header_bytes`] | 431 (from hyper), connection closed |
//!
//! The server runs on its own thread with a current-thread tokio runtime and
//! never stops; it dies with the process.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONNECTION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

/// `Content-Type` of the `/metrics` body: the Prometheus text exposition format 0.0.4.
pub const CONTENT_TYPE_TEXT_0_0_4: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The path of the metrics body.
pub const METRICS_PATH: &str = "/metrics";

/// The path of the liveness check (`200 ok`).
pub const HEALTHZ_PATH: &str = "/healthz";

/// hyper's smallest allowed read buffer, in bytes.
const MIN_BUF_BYTES: usize = 8192;

/// Resource limits of one server. [`Limits::default`] gives the values below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time a client has to send a complete request head (request line and
    /// headers), also the idle time allowed between keep-alive requests.
    /// Default 5 s.
    pub header_read_timeout: Duration,
    /// Largest request head accepted, in bytes; larger heads get 431.
    /// Default 8192 (8 KiB).
    pub max_header_bytes: usize,
    /// Connections served at once; connections beyond this are accepted and
    /// closed at once without a response. Default 64.
    pub max_connections: usize,
    /// Total lifetime of one connection, however busy; it is closed when this
    /// expires. Default 30 s.
    pub connection_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(5),
            max_header_bytes: 8 * 1024,
            max_connections: 64,
            connection_timeout: Duration::from_secs(30),
        }
    }
}

/// A running server: its bound address and its thread.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    thread: JoinHandle<()>,
}

impl Server {
    /// The address the server actually listens on (the real port when port 0
    /// was requested).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Blocks the calling thread for as long as the server runs (forever,
    /// unless its thread panics).
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

/// Binds `addr` and serves `/metrics` with the body returned by `render` and
/// `/healthz`, on a new thread named `gst-metrics-http`.
///
/// `render` is called once per `GET`/`HEAD /metrics` and must return text in
/// the exposition format 0.0.4; it runs on the server thread, so it should be
/// quick. `addr` is used as given: pass a loopback address (`127.0.0.1:…`)
/// unless other hosts must scrape. Port 0 picks a free port; see
/// [`Server::local_addr`].
///
/// # Errors
/// The bind error (address in use, permission denied, address not available)
/// or a failure to create the runtime or the thread.
pub fn serve<F>(addr: SocketAddr, limits: Limits, render: F) -> io::Result<Server>
where
    F: Fn() -> String + Send + Sync + 'static,
{
    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    let local = std_listener.local_addr()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let listener = {
        let _guard = rt.enter();
        tokio::net::TcpListener::from_std(std_listener)?
    };
    let render: Arc<Renderer> = Arc::new(render);
    let thread = std::thread::Builder::new()
        .name("gst-metrics-http".into())
        .spawn(move || rt.block_on(accept_loop(listener, limits, render)))?;
    Ok(Server {
        addr: local,
        thread,
    })
}

type Renderer = dyn Fn() -> String + Send + Sync;

/// Decrements the live connection count when a connection task ends.
struct ConnSlot(Arc<AtomicUsize>);

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, limits: Limits, render: Arc<Renderer>) {
    let active = Arc::new(AtomicUsize::new(0));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .max_buf_size(limits.max_header_bytes.max(MIN_BUF_BYTES))
        .keep_alive(true);

    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(_) => {
                // Out of file descriptors or an aborted handshake: back off
                // briefly instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if active.fetch_add(1, Ordering::AcqRel) >= limits.max_connections {
            active.fetch_sub(1, Ordering::AcqRel);
            drop(stream);
            continue;
        }
        let slot = ConnSlot(active.clone());
        let _ = stream.set_nodelay(true);
        let render = render.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let response = respond(&req, &*render);
            async move { Ok::<_, Infallible>(response) }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let lifetime = limits.connection_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            // Errors (bad requests, resets, header timeouts) only end this
            // connection; hyper already sent a 4xx where one applies.
            let _ = tokio::time::timeout(lifetime, conn).await;
        });
    }
}

fn text_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn respond(req: &Request<Incoming>, render: &Renderer) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if path != METRICS_PATH && path != HEALTHZ_PATH {
        return text_response(StatusCode::NOT_FOUND, "not found\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = text_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    if !req.body().is_end_stream() {
        // The body is never read: refuse it and close the connection so its
        // bytes are not taken for the next request.
        let mut resp = text_response(StatusCode::PAYLOAD_TOO_LARGE, "request body not allowed\n");
        resp.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        return resp;
    }
    if path == HEALTHZ_PATH {
        return text_response(StatusCode::OK, "ok\n");
    }
    let mut resp = text_response(StatusCode::OK, render());
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE_TEXT_0_0_4),
    );
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
