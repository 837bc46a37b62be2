//! The dashboard's static files, compiled in so the demo runs from any directory.

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asset {
    /// `Content-Type` header value.
    pub(crate) content_type: &'static str,
    /// The file's bytes.
    pub(crate) body: &'static str,
}

/// The file served at `path`, if any.
pub(crate) fn find(path: &str) -> Option<Asset> {
    let (content_type, body) = match path {
        "/" | "/index.html" => (
            "text/html; charset=utf-8",
            include_str!("../../web/index.html"),
        ),
        "/dashboard.js" => (
            "text/javascript; charset=utf-8",
            include_str!("../../web/dashboard.js"),
        ),
        "/coven-client.js" => (
            "text/javascript; charset=utf-8",
            include_str!("../../web/coven-client.js"),
        ),
        "/style.css" => (
            "text/css; charset=utf-8",
            include_str!("../../web/style.css"),
        ),
        _ => return None,
    };
    Some(Asset { content_type, body })
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn serves_the_page_and_its_modules_only() {
        assert!(find("/").is_some_and(|a| a.body.contains("dashboard.js")));
        assert!(
            find("/coven-client.js").is_some_and(|a| a.body.contains("export class CovenClient"))
        );
        assert!(find("/../Cargo.toml").is_none());
        assert!(find("/node_modules/x").is_none());
    }
}
