//! The direct path: signed `voice.joined`/`voice.left` posted straight to the hub's
//! `/internal/events` (contract §4), as the worker would, over one keep-alive connection.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::ledger::Key;
use crate::webhook::WebhookConn;

/// Posts the direct path's events over one signed keep-alive connection.
#[derive(Debug)]
pub struct Poster {
    conn: WebhookConn,
    guild_id: u64,
    run: u128,
    count: u64,
}

/// The webhook body of one event (contract §4: `{"id","event","payload"}`; the payload as
/// in the §3 event table). `id` is unique per post, so the hub's retry de-duplication never
/// swallows one.
pub fn body(id: &str, guild_id: u64, channel_id: u64, key: Key) -> String {
    serde_json::json!({
        "id": id,
        "event": key.kind.event(),
        "payload": {
            "guildId": guild_id.to_string(),
            "channelId": channel_id.to_string(),
            "userId": key.user.to_string(),
        },
    })
    .to_string()
}

impl Poster {
    /// Connects to the hub.
    ///
    /// # Errors
    /// When the connection or the HTTP handshake fails.
    pub async fn connect(target: SocketAddr, secret: &[u8], guild_id: u64) -> Result<Self, String> {
        let run = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(Self {
            conn: WebhookConn::connect(target, secret).await?,
            guild_id,
            run,
            count: 0,
        })
    }

    /// Reconnects if the hub closed the idle connection, so the next post does not pay for
    /// a handshake.
    ///
    /// # Errors
    /// When reconnecting fails.
    pub async fn ensure_open(&mut self) -> Result<(), String> {
        self.conn.ensure_open().await
    }

    /// Posts one event into `channel_id`; `Ok(true)` when the hub applied it. A failed
    /// send is retried once on a new connection with the same `id`, so a retry of a post
    /// that did arrive is answered `duplicate` (contract §4) and counts as applied.
    ///
    /// # Errors
    /// When the request cannot be sent or answered, twice.
    pub async fn post(&mut self, channel_id: u64, key: Key) -> Result<bool, String> {
        self.count += 1;
        let id = format!("gwlat-{}-{}", self.run, self.count);
        let body = Bytes::from(body(&id, self.guild_id, channel_id, key));
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        match self.conn.post(body.clone(), ts).await {
            Ok(answer) => Ok(answer.applied()),
            Err(_) => {
                self.conn.reconnect().await?;
                let answer = self.conn.post(body, ts).await?;
                Ok(answer.status == http::StatusCode::OK)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::ledger::Kind;

    #[test]
    fn body_follows_the_contract() {
        let b = body(
            "x-1",
            7,
            8,
            Key {
                kind: Kind::Left,
                user: 9,
            },
        );
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["id"], "x-1");
        assert_eq!(v["event"], "voice.left");
        assert_eq!(v["payload"]["guildId"], "7");
        assert_eq!(v["payload"]["channelId"], "8");
        assert_eq!(v["payload"]["userId"], "9");
    }
}
