//! `docs/openapi.json` documents exactly the routes of the router table.

use std::collections::BTreeSet;

use hub_core::router::{ROUTES, route};

#[test]
fn openapi_paths_match_the_router() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
    let text = std::fs::read_to_string(path).expect("docs/openapi.json");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("valid json");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "delete", "options", "patch", "head"] {
            if item.get(method).is_some() {
                documented.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, routed);
    // And every documented pair really routes.
    for (method, path) in &documented {
        let concrete = path.replace("{channelId}", "81384788765712384");
        let method = http::Method::from_bytes(method.as_bytes()).unwrap();
        assert!(route(&method, &concrete).is_ok(), "{method} {path}");
    }
}
