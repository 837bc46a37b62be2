//! Building the hub from its [`Config`] and driving connections.
//!
//! [`start`] builds every piece (metrics, hub, JWT verifier, webhook verifier, Discord client,
//! room registry), binds the public listener (and `METRICS_ADDR`), and spawns the accept
//! loops and the idle-room sweeper. Each connection is served by
//! `hyper::server::conn::http1` with `.timer(TokioTimer)` and a header read timeout
//! (slowloris), a bounded read buffer, a request deadline, and `.with_upgrades()` for `/ws`.
//!
//! [`ServerHandle::shutdown`] (SIGTERM): stop accepting, close every WebSocket with 1001
//! (`Hub::shutdown`, which also persists the stream), let in-flight requests finish within a
//! deadline, persist the registry, return — all within [`SHUTDOWN_BUDGET`].

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use crate::auth::{JwksError, JwtConfig, JwtVerifier, KeySource, WebhookVerifier};
use crate::config::{Config, JwtKeys};
use crate::cors::Cors;
use crate::discord::{DiscordClient, DiscordError};
use crate::error::ApiError;
use crate::hub::{Hub, HubConfig};
use crate::metrics::Metrics;
use crate::response;
use crate::rooms::{
    CreateRateLimiter, FileRoomStore, RedisRoomStore, Registry, StoreError, sweeper,
};
use crate::routes::{self, App};
use crate::ws::WsContext;

/// hyper's header read timeout: a client must send its whole request head within this.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline for handling one request (body read, Discord call with its one retry).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest connection read buffer (request line + headers); more -> 431.
pub const MAX_BUF_SIZE: usize = 32 * 1024;
/// Most request headers; more -> 431.
pub const MAX_HEADERS: usize = 64;
/// Most simultaneous HTTP connections (upgraded WebSockets are not counted here); beyond,
/// new connections are closed at once.
pub const MAX_CONNECTIONS: usize = 16_384;
/// How long shutdown may take in total (contract §3.5: exit within 10 s).
pub const SHUTDOWN_BUDGET: Duration = Duration::from_secs(9);
/// How long the replay buffer keeps events, besides `REPLAY_MAX_EVENTS`.
pub const REPLAY_MAX_AGE: Duration = Duration::from_secs(15 * 60);

/// Why the hub could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// A listener could not be bound.
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
    /// The JWT keys could not be loaded from `JWT_PUBLIC_JWKS_FILE`.
    Jwks(JwksError),
    /// The room registry could not be opened.
    Rooms(StoreError),
    /// The hub (event stream) could not start.
    Hub(String),
    /// `REDIS_URL` cannot be used.
    Redis(String),
    /// The Discord client could not be built.
    Discord(DiscordError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bind { addr, error } => write!(f, "cannot listen on {addr}: {error}"),
            Self::Jwks(e) => write!(f, "cannot load the JWT keys: {e}"),
            Self::Rooms(e) => write!(f, "{e}"),
            Self::Hub(e) => write!(f, "cannot start the hub: {e}"),
            Self::Redis(e) => write!(f, "cannot use redis: {e}"),
            Self::Discord(e) => write!(f, "cannot build the Discord client: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

impl StartError {
    /// The configuration variable whose value caused this, when there is one (the binary
    /// then exits 2 with `VARIABLE: problem`, as for any invalid value).
    pub fn variable(&self) -> Option<&'static str> {
        match self {
            Self::Jwks(_) => Some("JWT_PUBLIC_JWKS_FILE"),
            Self::Rooms(_) | Self::Hub(_) => Some("DATA_DIR"),
            Self::Redis(_) => Some("REDIS_URL"),
            Self::Bind { .. } | Self::Discord(_) => None,
        }
    }
}

/// A running hub.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    app: Arc<App>,
    stop: watch::Sender<bool>,
    conns_done: mpsc::Receiver<()>,
    tasks: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    /// The public listener's address (with the real port when `PORT=0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics listener's address, if `METRICS_ADDR` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The shared state (tests inspect the hub and the registry through it).
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Graceful shutdown: stop accepting, close WebSockets with 1001, finish in-flight
    /// requests (bounded), persist, return.
    pub async fn shutdown(mut self) {
        let deadline = tokio::time::Instant::now() + SHUTDOWN_BUDGET;
        let _ = self.stop.send(true); // accept loops and the sweeper end; connections drain
        if tokio::time::timeout(Duration::from_secs(4), self.app.hub.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("closing websockets took too long");
        }
        // Every connection task holds a sender; recv() returns None when all are done.
        let drained = tokio::time::timeout_at(deadline - Duration::from_secs(1), async {
            while self.conns_done.recv().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("in-flight requests did not finish before the shutdown deadline");
        }
        for task in self.tasks.drain(..) {
            task.abort();
        }
        if let Err(e) = self.app.rooms.flush() {
            tracing::error!(error = %e, "could not persist the room registry");
        }
        tracing::info!("hub stopped");
    }
}

fn jwt_config(config: &Config) -> JwtConfig {
    JwtConfig {
        issuer: config.jwt_issuer.clone(),
        audience: config.jwt_audience.clone(),
        keys: match &config.jwt_keys {
            JwtKeys::Url(url) => KeySource::Url(url.clone()),
            JwtKeys::File(path) => KeySource::File(path.clone()),
        },
    }
}

/// Listen backlog: the usual `somaxconn` (4096), so a reconnect storm waits in the accept
/// queue instead of retrying SYNs after 1-3 s (tokio's `TcpListener::bind` asks for 1024;
/// the fan-out load tool counted 19,927 listen overflows with it in a 10k-client storm).
const LISTEN_BACKLOG: u32 = 4096;

/// Kernel send buffer of every accepted socket (inherited from the listener). It caps the
/// kernel memory a client that stops reading can pin (autotuning would let it grow to
/// megabytes), so such a client reaches the hub's own bound (`CLIENT_QUEUE_MAX_BYTES`,
/// close 1013) after a bounded backlog.
const SOCKET_SEND_BUFFER: u32 = 128 * 1024;

/// Binds a listener with [`LISTEN_BACKLOG`] and [`SOCKET_SEND_BUFFER`].
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_send_buffer_size(SOCKET_SEND_BUFFER)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Builds every piece from `config`, binds the listeners and starts serving.
///
/// # Errors
/// [`StartError`] when a listener cannot be bound, the JWT keys cannot be loaded, the
/// registry or the hub's persisted state cannot be read, or TLS cannot be set up.
pub async fn start(config: Config) -> Result<ServerHandle, StartError> {
    let metrics = Arc::new(Metrics::default());
    let hub_config = HubConfig {
        guild_id: config.guild_id,
        replay_max_events: config.replay_max_events,
        replay_max_age: REPLAY_MAX_AGE,
        client_queue_max_bytes: config.client_queue_max_bytes,
        data_dir: Some(config.data_dir.clone()),
    };
    // With REDIS_URL the stream is shared with the other replicas (hub::redis).
    let hub = match &config.redis_url {
        Some(url) => Hub::with_redis(hub_config, Arc::clone(&metrics), url.expose())
            .map_err(|e| StartError::Redis(e.to_string()))?,
        None => Hub::new(hub_config, Arc::clone(&metrics))
            .map_err(|e| StartError::Hub(e.to_string()))?,
    };
    let rooms = match hub.redis() {
        // Shared by every replica: end-room and idempotency work across them.
        Some(redis) => Registry::Redis(RedisRoomStore::new(redis.conn())),
        None => Registry::Local(Arc::new(
            FileRoomStore::open(&config.data_dir).map_err(StartError::Rooms)?,
        )),
    };
    // The file registry is written before create-room answers, but the local stream state is
    // saved only on a clean shutdown: after a crash, put every registered room back into
    // presence so snapshots list it again (rooms already known are left as they are). With
    // Redis both live in the same store and need no repair.
    if let Registry::Local(store) = &rooms {
        let registered = store.rooms(config.guild_id).into_iter();
        hub.adopt_rooms(registered.map(|(id, room)| (id, Some(room.name))))
            .await
            .map_err(StartError::Hub)?;
    }
    let jwt = JwtVerifier::new(jwt_config(&config)).map_err(StartError::Jwks)?;
    match (jwt.load().await, &config.jwt_keys) {
        (Ok(()), _) => {}
        // A file is configuration: unreadable or invalid means the value is wrong.
        (Err(e), JwtKeys::File(_)) => return Err(StartError::Jwks(e)),
        // A URL may be down for a moment: serve anyway (webhooks, health), bearer checks
        // answer 503 until the keys load; the verifier refetches on demand.
        (Err(e), JwtKeys::Url(_)) => {
            tracing::warn!(error = %e, "JWT keys unavailable at start; will retry on demand");
        }
    }
    let webhook = WebhookVerifier::new(
        config.hub_secret.clone(),
        config.hub_secret_previous.clone(),
    );
    let discord = DiscordClient::new(
        &config.discord_api_base,
        config.bot_token.clone(),
        Arc::clone(&metrics),
    )
    .map_err(StartError::Discord)?;
    let ws = Arc::new(WsContext::new(
        hub.clone(),
        jwt.clone(),
        config.cors_origins.clone(),
        Arc::clone(&metrics),
    ));
    let app = Arc::new(App {
        guild_id: config.guild_id,
        room_parent_id: config.room_parent_id,
        hub,
        jwt,
        webhook,
        discord,
        rooms,
        create_limiter: std::sync::Mutex::new(CreateRateLimiter::new(
            config.room_create_per_minute,
        )),
        in_flight: std::sync::Mutex::default(),
        cors: Cors::new(config.cors_origins.clone()),
        ws,
        metrics: Arc::clone(&metrics),
    });

    let bind = |addr: SocketAddr| async move {
        listen(addr).map_err(|error| StartError::Bind { addr, error })
    };
    let listener = bind(config.bind_addr()).await?;
    let addr = listener.local_addr().map_err(|error| StartError::Bind {
        addr: config.bind_addr(),
        error,
    })?;
    let (stop, stop_rx) = watch::channel(false);
    let (conns_tx, conns_done) = mpsc::channel::<()>(1);
    let mut tasks = Vec::new();

    let public_app = Arc::clone(&app);
    tasks.push(tokio::spawn(accept_loop(
        listener,
        stop_rx.clone(),
        conns_tx.clone(),
        move |req| {
            let app = Arc::clone(&public_app);
            async move {
                // Method and path only: headers (tokens, signatures) are never logged.
                let method = req.method().clone();
                let path = req.uri().path().to_owned();
                let started = std::time::Instant::now();
                let res =
                    match tokio::time::timeout(REQUEST_TIMEOUT, routes::handle(req, app)).await {
                        Ok(res) => res,
                        Err(_) => response::error(&ApiError::Unavailable {
                            message: "request timed out".into(),
                            retry_after: None,
                        }),
                    };
                tracing::debug!(
                    %method,
                    path = %path.chars().take(200).collect::<String>(),
                    status = res.status().as_u16(),
                    ms = started.elapsed().as_millis() as u64,
                    "request"
                );
                res
            }
        },
    )));

    let mut metrics_addr = None;
    if let Some(maddr) = config.metrics_addr {
        let listener = bind(maddr).await?;
        metrics_addr = Some(
            listener
                .local_addr()
                .map_err(|error| StartError::Bind { addr: maddr, error })?,
        );
        let metrics = Arc::clone(&metrics);
        tasks.push(tokio::spawn(accept_loop(
            listener,
            stop_rx.clone(),
            conns_tx.clone(),
            move |req| {
                let res = routes::handle_metrics(&req, &metrics);
                async move { res }
            },
        )));
    }
    drop(conns_tx);

    if config.room_idle_timeout_secs > 0 {
        tasks.push(tokio::spawn(sweeper::run(
            Arc::clone(&app),
            Duration::from_secs(config.room_idle_timeout_secs),
            stop_rx,
        )));
    }
    tracing::info!(%addr, metrics = ?metrics_addr, "hub listening");
    Ok(ServerHandle {
        addr,
        metrics_addr,
        app,
        stop,
        conns_done,
        tasks,
    })
}

/// The HTTP/1 settings every accepted connection is served with: the header-read timeout,
/// the buffer and header-count limits, keep-alive. Public so that the fuzz targets serve
/// their in-memory connections exactly as the listener does.
pub fn http1_settings() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_BUF_SIZE)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    builder
}

/// Resolves once `stop` is true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Accepts connections until `stop` turns true; each is served on its own task.
async fn accept_loop<F, Fut>(
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    conns: mpsc::Sender<()>,
    handler: F,
) where
    F: Fn(http::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = http::Response<response::Body>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let builder = http1_settings();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(&mut stop) => break,
        };
        let (stream, _peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            drop(stream); // Over MAX_CONNECTIONS: refuse by closing.
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let service = service_fn(move |req| {
            let fut = handler(req);
            async move { Ok::<_, Infallible>(fut.await) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut stop = stop.clone();
        let done = conns.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _done = done;
            let mut conn = std::pin::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = stopped(&mut stop) => {
                    // Finish the request in flight, then close (no more keep-alive).
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C): when a binary serving this hub should call
/// [`ServerHandle::shutdown`].
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
