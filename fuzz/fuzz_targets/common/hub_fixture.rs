//! The hub every in-process fuzz target drives: built once by `server::start` (JWKS from a
//! file, data in a temp dir, Discord REST pointed at a closed loopback port) on a
//! current-thread runtime whose clock is paused, so timeouts elapse instantly when nothing
//! else can run.

use std::sync::{Arc, LazyLock};

use hub_core::auth::TestIssuer;
use hub_core::{App, ServerHandle};
use tokio::runtime::Runtime;

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
