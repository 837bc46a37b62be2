//! The TLS client configuration shared by the hub client and the Gateway
//! connection: rustls with the ring provider and the bundled webpki roots
//! (no OpenSSL, no aws-lc, no platform trust store).

use std::sync::Arc;

/// A rustls client configuration trusting the Mozilla roots from
/// `webpki-roots`, using the ring crypto provider.
///
/// # Errors
/// When the ring provider supports none of the default protocol versions
/// (does not happen with the features this crate enables).
pub fn client_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    #[test]
    fn builds() {
        let config = super::client_config().unwrap();
        assert!(config.alpn_protocols.is_empty());
    }
}
