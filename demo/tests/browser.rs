//! The browser-side tests, run by `cargo test --workspace`:
//!
//! - `node --test web/test/`: coven-client.js unit tests (fake WebSocket, fake timers).
//! - `web/e2e/dashboard.e2e.mjs`: the real demo binary, and the dashboard in headless
//!   Chromium driven by playwright-core. Screenshot: `out/dashboard-e2e.png`, demo log:
//!   `out/demo-e2e.log`.
//!
//! They need node, `/usr/bin/chromium` and `web/node_modules` (`scripts/setup-browser.sh`
//! installs the last two). When one is missing the test prints
//! `skipped: run scripts/setup-browser.sh` and passes, unless `CI` or
//! `REQUIRE_BROWSER_TESTS` is set: then it fails.

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

fn required() -> bool {
    ["CI", "REQUIRE_BROWSER_TESTS"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty() && v != "0" && v != "false"))
}

/// `Ok(())` when everything is there; otherwise skips (returns `Err`) or panics if required.
fn prerequisites(need_browser: bool) -> Result<(), ()> {
    let root = repo_root();
    let mut missing = Vec::new();
    if Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .map_or(true, |s| !s.success())
    {
        missing.push("node".to_owned());
    }
    if need_browser {
        let chromium =
            std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
        if !Path::new(&chromium).exists() {
            missing.push(chromium);
        }
        if !root.join("web/node_modules/playwright-core").is_dir() {
            missing.push("web/node_modules (npm ci --prefix web)".to_owned());
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let line = format!("missing {}", missing.join(", "));
    assert!(
        !required(),
        "{line}: run scripts/setup-browser.sh (CI/REQUIRE_BROWSER_TESTS is set)"
    );
    println!("skipped: run scripts/setup-browser.sh ({line})");
    Err(())
}

/// Waits for `child` up to `limit`, polling; kills it past the limit.
fn wait_with_limit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

#[test]
fn coven_client_unit_tests_pass_under_node() {
    if prerequisites(false).is_err() {
        return;
    }
    let output = Command::new("node")
        .args(["--test", "web/test/"])
        .current_dir(repo_root())
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "node --test web/test/ failed: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Kills the demo if the test panics before stopping it.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn dashboard_survives_faults_in_headless_chromium() {
    if prerequisites(true).is_err() {
        return;
    }
    let root = repo_root();
    let out = root.join("out");
    std::fs::create_dir_all(&out).expect("create out/");
    let log = File::create(out.join("demo-e2e.log")).expect("create out/demo-e2e.log");

    let mut demo = Demo(
        Command::new(env!("CARGO_BIN_EXE_spell-coven-demo"))
            .args(["--port", "0", "--hub-port", "0"])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start the demo"),
    );
    let stdout = demo.0.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("dashboard: ") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the demo prints its dashboard url (see out/demo-e2e.log)");

    let mut e2e = Command::new("node")
        .arg(root.join("web/e2e/dashboard.e2e.mjs"))
        .arg(&url)
        .arg(out.join("dashboard-e2e.png"))
        .current_dir(&root)
        .spawn()
        .expect("start node");
    let status = wait_with_limit(&mut e2e, Duration::from_secs(300));
    assert!(
        status.is_some_and(|s| s.success()),
        "browser e2e failed ({status:?}); see its output above, out/dashboard-e2e.png and out/demo-e2e.log"
    );

    // Ctrl-C: the demo stops the worker, the hub and the sim, and exits 0.
    let pid = demo.0.id().to_string();
    let signalled = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .is_ok_and(|s| s.success());
    assert!(signalled, "could not send SIGINT to the demo");
    let exit = wait_with_limit(&mut demo.0, Duration::from_secs(30));
    assert!(
        exit.is_some_and(|s| s.success()),
        "the demo did not exit 0 after SIGINT: {exit:?}"
    );
}
