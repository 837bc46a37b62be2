//! Accepts gateway connections on one listener and runs each in its own task.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::connection;
use crate::introspect::Listener;
use crate::shared::Shared;

/// Open connections allowed per listener; more wait in the OS backlog.
const MAX_CONNECTIONS: usize = 4096;

/// Accepts until the sim shuts down.
pub(crate) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, kind: Listener) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut shutdown = shared.shutdown_signal();
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            () = crate::shared::stopped(&mut shutdown) => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((tcp, _peer)) => {
                let _ = tcp.set_nodelay(true);
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    connection::serve(shared, tcp, kind).await;
                    drop(permit);
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::debug!(error = %e, "gateway accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}
