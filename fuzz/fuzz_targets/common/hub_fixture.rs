//! The hub every in-process fuzz target drives: built once by `server::start` (JWKS from a
//! file, data in a temp dir, Discord REST pointed at a closed loopback port) on a
//! current-thread runtime whose clock is paused, so timeouts elapse instantly when nothing
//! else can run.

use std::convert::Infallible;
use std::sync::{Arc, LazyLock};

use hub_core::auth::TestIssuer;
use hub_core::{App, ServerHandle};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::DuplexStream;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

pub(crate) struct Fixture {
    pub(crate) rt: Runtime,
    pub(crate) app: Arc<App>,
    /// Owns the listener's tasks; kept (reachable, so not reported as a leak) for the run.
    _server: ServerHandle,
    _dir: tempfile::TempDir,
}

pub(crate) static FIXTURE: LazyLock<Fixture> = LazyLock::new(fixture);

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, TestIssuer::jwks(&[&TestIssuer::new("fuzz-key")])).expect("jwks file");
    let data = dir.path().join("data");
    let vars = [
        ("HOST", "127.0.0.1".to_owned()),
        ("PORT", "0".to_owned()),
        ("PRIMARY_GUILD_ID", "81384788765712384".to_owned()),
        (
            "HUB_SECRET",
            "fuzz-hub-secret-0123456789abcdef0123".to_owned(),
        ),
        ("DISCORD_BOT_TOKEN", "fuzz-bot-token".to_owned()),
        ("DISCORD_API_BASE", "http://127.0.0.1:9/api/v10".to_owned()),
        ("JWT_ISSUER", "https://issuer.example".to_owned()),
        ("JWT_AUDIENCE", "spell-coven".to_owned()),
        ("JWT_PUBLIC_JWKS_FILE", jwks.display().to_string()),
        ("CORS_ORIGINS", "https://app.example".to_owned()),
        ("DATA_DIR", data.display().to_string()),
    ];
    let config = hub_core::Config::from_vars(vars).expect("fixed config");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    let handle = rt.block_on(hub_core::start(config)).expect("hub starts");
    let app = Arc::clone(handle.app());
    Fixture {
        rt,
        app,
        _server: handle,
        _dir: dir,
    }
}

/// Serves one connection to the hub's real service (`routes::handle`) with the listener's
/// HTTP/1 settings, over an in-memory duplex instead of a socket. Returns the client's end
/// and the connection's task. Call on the fixture's runtime.
pub(crate) fn connect(app: Arc<App>) -> (DuplexStream, JoinHandle<Result<(), hyper::Error>>) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let service = service_fn(move |req| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Infallible>(hub_core::routes::handle(req, app).await) }
    });
    let conn = hub_core::server::http1_settings()
        .serve_connection(TokioIo::new(server), service)
        .with_upgrades();
    (client, tokio::spawn(conn))
}
