//! `naive-hub`: the tutorial-style baseline hub (see `benches::baseline`), a yardstick for
//! `fanout --target baseline`. Configured like `spell-coven-api` (the subset it needs):
//! `HOST` (loopback only), `PORT`, `PRIMARY_GUILD_ID`, `HUB_SECRET`, `JWT_ISSUER`,
//! `JWT_AUDIENCE`, `JWT_PUBLIC_JWKS_FILE`. Exit status 2 on bad configuration.

use std::process::ExitCode;

use benches::baseline::{Naive, bind_addr};
use hub_core::Secret;
use hub_core::auth::{JwtConfig, JwtVerifier, KeySource, WebhookVerifier};

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name}: missing"))
}

fn setup() -> Result<(std::net::SocketAddr, u64, JwtVerifier, WebhookVerifier), String> {
    let addr = bind_addr(
        std::env::var("HOST").ok().as_deref(),
        std::env::var("PORT").ok().as_deref(),
    )?;
    let guild: u64 = var("PRIMARY_GUILD_ID")?
        .parse()
        .map_err(|_| "PRIMARY_GUILD_ID: not a snowflake".to_string())?;
    let secret = var("HUB_SECRET")?;
    let jwt = JwtVerifier::new(JwtConfig {
        issuer: var("JWT_ISSUER")?,
        audience: var("JWT_AUDIENCE")?,
        keys: KeySource::File(var("JWT_PUBLIC_JWKS_FILE")?.into()),
    })
    .map_err(|e| format!("JWT_PUBLIC_JWKS_FILE: {e}"))?;
    Ok((
        addr,
        guild,
        jwt,
        WebhookVerifier::new(Secret::new(secret), None),
    ))
}

fn main() -> ExitCode {
    let (addr, guild, jwt, webhook) = match setup() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("naive-hub: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        if let Err(e) = jwt.load().await {
            eprintln!("JWT_PUBLIC_JWKS_FILE: {e}");
            return ExitCode::from(2);
        }
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("naive-hub: bind {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        match Naive::new(guild, jwt, webhook).serve(listener).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("naive-hub: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
