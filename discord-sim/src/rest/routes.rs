//! The REST router: a table of (method, path) pairs, each answered under the world lock.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::time::{Duration, Instant};

use super::errors::{FormErrors, plain};
use super::ratelimit::{BucketState, Decision};
use crate::config::channel_type;
use crate::faults::RestFault;
use crate::http_util::{Body, json_response, read_body};
use crate::introspect::RestCall;
use crate::json;
use crate::shared::Shared;
use crate::world::World;

/// The API prefix every route lives under.
pub(crate) const API_PREFIX: &str = "/api/v10";

/// What a route produced, before it becomes an HTTP response.
struct Answer {
    status: StatusCode,
    body: Value,
    headers: Vec<(&'static str, String)>,
}

impl Answer {
    fn new(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            body,
            headers: Vec::new(),
        }
    }
}

/// Answers one REST request.
pub(crate) async fn handle(shared: Arc<Shared>, req: http::Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let bytes = read_body(body).await;
    let latency = shared.read(|w| w.faults.rest_latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let path = parts.uri.path().to_owned();
    let body_json: Option<Value> = bytes
        .as_ref()
        .filter(|b| !b.is_empty())
        .and_then(|b| serde_json::from_slice(b).ok());
    let audit = parts
        .headers
        .get("x-audit-log-reason")
        .and_then(|v| v.to_str().ok())
        .map(percent_decode);
    let method = parts.method.clone();
    let headers = parts.headers;
    let Some(raw) = bytes else {
        // Discord refuses oversized bodies with 413 and JSON error 40005.
        let resp = to_response(Answer::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            plain("Request entity too large", 40005),
        ));
        shared.update(|w| {
            w.record_rest(RestCall {
                method: method.to_string(),
                path,
                status: 413,
                audit_log_reason: audit,
                body: None,
                at: Instant::now(),
            });
        });
        return resp;
    };
    shared.update(|w| {
        let fault = w.faults.take_rest_failure();
        let resp = match fault {
            Some(f) => fault_response(f),
            None => {
                let answer = route(w, &method, &path, &headers, &raw);
                to_response(answer)
            }
        };
        w.record_rest(RestCall {
            method: method.to_string(),
            path: path.clone(),
            status: resp.status().as_u16(),
            audit_log_reason: audit,
            body: body_json,
            at: Instant::now(),
        });
        resp
    })
}

fn to_response(a: Answer) -> Response<Body> {
    let mut resp = json_response(a.status, &a.body);
    for (name, value) in a.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    resp
}

/// The injected failures: a 429 as rate-limits.mdx shows it, or an edge 5xx with an HTML
/// body (Discord's 502/503 come from Cloudflare, not from the API, and are not JSON).
fn fault_response(fault: RestFault) -> Response<Body> {
    match fault {
        RestFault::RateLimited {
            retry_after,
            global,
        } => {
            let retry_after = retry_after.max(0.0);
            let mut a = Answer::new(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": global}),
            );
            a.headers
                .push(("retry-after", format!("{}", retry_after.ceil() as u64)));
            if global {
                a.headers.push(("x-ratelimit-global", "true".to_owned()));
                a.headers.push(("x-ratelimit-scope", "global".to_owned()));
            } else {
                a.headers.push(("x-ratelimit-scope", "user".to_owned()));
                a.headers.push(("x-ratelimit-limit", "1".to_owned()));
                a.headers.push(("x-ratelimit-remaining", "0".to_owned()));
                a.headers
                    .push(("x-ratelimit-reset-after", format!("{retry_after:.3}")));
                a.headers.push((
                    "x-ratelimit-reset",
                    format!("{:.3}", epoch_secs() + retry_after),
                ));
                a.headers.push(("x-ratelimit-bucket", "fault".to_owned()));
            }
            to_response(a)
        }
        RestFault::ServerError { status } => {
            let status = StatusCode::from_u16(status)
                .ok()
                .filter(StatusCode::is_server_error)
                .unwrap_or(StatusCode::BAD_GATEWAY);
            let html = format!(
                "<html><head><title>{status}</title></head><body><center><h1>{status}</h1></center><hr><center>cloudflare</center></body></html>"
            );
            let mut resp = Response::new(Full::new(Bytes::from(html)));
            *resp.status_mut() = status;
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
            resp
        }
    }
}

fn epoch_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn not_found() -> Answer {
    Answer::new(StatusCode::NOT_FOUND, plain("404: Not Found", 0))
}

fn method_not_allowed() -> Answer {
    Answer::new(
        StatusCode::METHOD_NOT_ALLOWED,
        plain("405: Method Not Allowed", 0),
    )
}

/// The route table.
fn route(w: &mut World, method: &Method, path: &str, headers: &HeaderMap, body: &[u8]) -> Answer {
    let Some(rest) = path.strip_prefix(API_PREFIX) else {
        return not_found();
    };
    let segs: Vec<&str> = rest.trim_end_matches('/').split('/').skip(1).collect();
    // (route template for the bucket, major parameter, allowed?)
    let (template, major): (&str, &str) = match (method, segs.as_slice()) {
        // gateway.mdx "Get Gateway": no authentication needed.
        (&Method::GET, ["gateway"]) => {
            return Answer::new(StatusCode::OK, json!({"url": w.gateway_url}));
        }
        (&Method::GET, ["gateway", "bot"]) => ("GET /gateway/bot", ""),
        (&Method::POST, ["guilds", g, "channels"]) => ("POST /guilds/{guild_id}/channels", g),
        (&Method::GET, ["guilds", g, "channels"]) => ("GET /guilds/{guild_id}/channels", g),
        (&Method::DELETE, ["channels", c]) => ("DELETE /channels/{channel_id}", c),
        (&Method::GET, ["channels", c]) => ("GET /channels/{channel_id}", c),
        (_, ["gateway"] | ["gateway", "bot"] | ["guilds", _, "channels"] | ["channels", _]) => {
            return method_not_allowed();
        }
        _ => return not_found(),
    };
    // reference.mdx "Authentication": `Authorization: Bot <token>`; else 401.
    let expected = format!("Bot {}", w.cfg.token);
    let authorized = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == expected.as_bytes());
    if !authorized {
        return Answer::new(StatusCode::UNAUTHORIZED, plain("401: Unauthorized", 0));
    }
    let bucket = match w.rest_limits.check(template, major, Instant::now()) {
        Decision::Allow(b) => b,
        Decision::Bucket(b) => return bucket_exhausted(b),
        Decision::Global { retry_after } => return global_exhausted(retry_after),
    };
    let mut answer = match (template, major) {
        ("GET /gateway/bot", _) => gateway_bot(w),
        ("POST /guilds/{guild_id}/channels", g) => create_channel(w, g, body),
        ("GET /guilds/{guild_id}/channels", g) => list_channels(w, g),
        ("DELETE /channels/{channel_id}", c) => delete_channel(w, c),
        (_, c) => get_channel(w, c),
    };
    answer.headers.extend(bucket_headers(&bucket));
    answer
}

fn bucket_headers(b: &BucketState) -> Vec<(&'static str, String)> {
    let after = b.reset_after.as_secs_f64();
    vec![
        ("x-ratelimit-limit", b.limit.to_string()),
        ("x-ratelimit-remaining", b.remaining.to_string()),
        ("x-ratelimit-reset", format!("{:.3}", epoch_secs() + after)),
        ("x-ratelimit-reset-after", format!("{after:.3}")),
        ("x-ratelimit-bucket", b.bucket.clone()),
    ]
}

/// rate-limits.mdx "Example Exceeded User Rate Limit Response".
fn bucket_exhausted(b: BucketState) -> Answer {
    let retry = b.reset_after.as_secs_f64();
    let mut a = Answer::new(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"message": "You are being rate limited.", "retry_after": round3(retry), "global": false}),
    );
    a.headers.extend(bucket_headers(&b));
    a.headers
        .push(("retry-after", format!("{}", retry.ceil() as u64)));
    a.headers.push(("x-ratelimit-scope", "user".to_owned()));
    a
}

/// rate-limits.mdx "Example Exceeded Global Rate Limit Response".
fn global_exhausted(retry_after: Duration) -> Answer {
    let retry = retry_after.as_secs_f64();
    let mut a = Answer::new(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"message": "You are being rate limited.", "retry_after": round3(retry), "global": true}),
    );
    a.headers
        .push(("retry-after", format!("{}", retry.ceil() as u64)));
    a.headers.push(("x-ratelimit-global", "true".to_owned()));
    a.headers.push(("x-ratelimit-scope", "global".to_owned()));
    a
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// gateway.mdx "Get Gateway Bot": `{url, shards, session_start_limit}`, with
/// `reset_after` in milliseconds.
fn gateway_bot(w: &mut World) -> Answer {
    let reset_after = w.start_limit_reset_after(Instant::now());
    let limits = w.cfg.session_start_limit;
    Answer::new(
        StatusCode::OK,
        json!({
            "url": w.gateway_url,
            "shards": 1,
            "session_start_limit": {
                "total": limits.total,
                "remaining": w.start_remaining,
                "reset_after": u64::try_from(reset_after.as_millis()).unwrap_or(u64::MAX),
                "max_concurrency": limits.max_concurrency,
            }
        }),
    )
}

/// Parses a snowflake path parameter; Discord answers a non-snowflake with 50035.
fn snowflake_param(field: &str, raw: &str) -> Result<u64, Answer> {
    raw.parse::<u64>()
        .ok()
        .filter(|_| raw.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            let mut e = FormErrors::default();
            e.add(
                field,
                "NUMBER_TYPE_COERCE",
                &format!("Value \"{raw}\" is not snowflake."),
            );
            Answer::new(StatusCode::BAD_REQUEST, e.into_body())
        })
}

fn check_guild(w: &World, raw: &str) -> Result<(), Answer> {
    let id = snowflake_param("guild_id", raw)?;
    if id == w.guild_id() {
        Ok(())
    } else {
        Err(Answer::new(
            StatusCode::NOT_FOUND,
            plain("Unknown Guild", 10004),
        ))
    }
}

fn channel_param(w: &World, raw: &str) -> Result<u64, Answer> {
    let id = snowflake_param("channel_id", raw)?;
    if w.channels.contains_key(&id) {
        Ok(id)
    } else {
        Err(Answer::new(
            StatusCode::NOT_FOUND,
            plain("Unknown Channel", 10003),
        ))
    }
}

/// guild.mdx "Get Guild Channels".
fn list_channels(w: &World, g: &str) -> Answer {
    if let Err(a) = check_guild(w, g) {
        return a;
    }
    let list: Vec<Value> = w
        .channels
        .values()
        .map(|c| json::channel(c, w.guild_id()))
        .collect();
    Answer::new(StatusCode::OK, Value::Array(list))
}

/// channel.mdx "Get Channel".
fn get_channel(w: &World, c: &str) -> Answer {
    match channel_param(w, c) {
        Ok(id) => match w.channels.get(&id) {
            Some(ch) => Answer::new(StatusCode::OK, json::channel(ch, w.guild_id())),
            None => Answer::new(StatusCode::NOT_FOUND, plain("Unknown Channel", 10003)),
        },
        Err(a) => a,
    }
}

/// channel.mdx "Delete/Close Channel": "Returns a channel object on success", fires
/// CHANNEL_DELETE; unknown ids get 10003 "Unknown channel".
fn delete_channel(w: &mut World, c: &str) -> Answer {
    let id = match channel_param(w, c) {
        Ok(id) => id,
        Err(a) => return a,
    };
    match w.delete_channel(id) {
        Ok(ch) => Answer::new(StatusCode::OK, json::channel(&ch, w.guild_id())),
        Err(_) => Answer::new(StatusCode::NOT_FOUND, plain("Unknown Channel", 10003)),
    }
}

/// guild.mdx "Create Guild Channel" (JSON params `name` 1-100 characters, `type`,
/// `bitrate`, `user_limit` 0-99 for voice, `parent_id` a category). Errors use code
/// 50035 with the nested `errors` object. Success is `201 Created` with the channel
/// (the docs say only "Returns the new channel object"; Discord sends 201 for creates).
fn create_channel(w: &mut World, g: &str, body: &[u8]) -> Answer {
    if let Err(a) = check_guild(w, g) {
        return a;
    }
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        // opcodes-and-status-codes.mdx JSON error 50109.
        return Answer::new(
            StatusCode::BAD_REQUEST,
            plain("The request body contains invalid JSON.", 50109),
        );
    };
    let mut errors = FormErrors::default();
    let name = match obj.get("name") {
        None | Some(Value::Null) => {
            errors.add("name", "BASE_TYPE_REQUIRED", "This field is required");
            String::new()
        }
        Some(Value::String(s)) => {
            let len = s.chars().count();
            if !(1..=100).contains(&len) {
                errors.add(
                    "name",
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                );
            }
            s.clone()
        }
        Some(_) => {
            errors.add("name", "BASE_TYPE_STRING", "Must be a string.");
            String::new()
        }
    };
    let kind = match obj.get("type") {
        None | Some(Value::Null) => channel_type::GUILD_TEXT,
        Some(v) => match v.as_u64().and_then(|n| u8::try_from(n).ok()) {
            Some(k) if channel_type::CREATABLE.contains(&k) => k,
            _ => {
                errors.add(
                    "type",
                    "BASE_TYPE_CHOICES",
                    "Value must be one of {0, 2, 4, 5, 13, 15, 16}.",
                );
                channel_type::GUILD_TEXT
            }
        },
    };
    let user_limit = int_field(&obj, "user_limit", 0, 99, 0, &mut errors);
    let bitrate = int_field(&obj, "bitrate", 8_000, 96_000, 64_000, &mut errors);
    let parent_id = match obj.get("parent_id") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let id = v
                .as_str()
                .and_then(|s| s.parse::<u64>().ok())
                .or_else(|| v.as_u64());
            match id {
                Some(id)
                    if w.channels
                        .get(&id)
                        .is_some_and(|c| c.kind == channel_type::GUILD_CATEGORY) =>
                {
                    if kind == channel_type::GUILD_CATEGORY {
                        errors.add(
                            "parent_id",
                            "CHANNEL_PARENT_INVALID",
                            "Categories cannot have subcategories",
                        );
                    }
                    Some(id)
                }
                Some(_) => {
                    errors.add(
                        "parent_id",
                        "CHANNEL_PARENT_INVALID",
                        "Category does not exist",
                    );
                    None
                }
                None => {
                    errors.add(
                        "parent_id",
                        "NUMBER_TYPE_COERCE",
                        &format!("Value \"{v}\" is not snowflake."),
                    );
                    None
                }
            }
        }
    };
    if !errors.is_empty() {
        return Answer::new(StatusCode::BAD_REQUEST, errors.into_body());
    }
    let voice = channel_type::is_voice(kind);
    let ch = w.create_channel(
        name,
        kind,
        parent_id,
        if voice { user_limit } else { 0 },
        if voice { bitrate } else { 0 },
    );
    Answer::new(StatusCode::CREATED, json::channel(&ch, w.guild_id()))
}

/// An optional integer field within `[min, max]`.
fn int_field(
    obj: &serde_json::Map<String, Value>,
    field: &str,
    min: u32,
    max: u32,
    default: u32,
    errors: &mut FormErrors,
) -> u32 {
    match obj.get(field) {
        None | Some(Value::Null) => default,
        Some(v) => match v.as_i64() {
            Some(n) if n < i64::from(min) => {
                errors.add(
                    field,
                    "NUMBER_TYPE_MIN",
                    &format!("int value should be greater than or equal to {min}."),
                );
                default
            }
            Some(n) if n > i64::from(max) => {
                errors.add(
                    field,
                    "NUMBER_TYPE_MAX",
                    &format!("int value should be less than or equal to {max}."),
                );
                default
            }
            Some(n) => u32::try_from(n).unwrap_or(default),
            None => {
                errors.add(
                    field,
                    "NUMBER_TYPE_COERCE",
                    &format!("Value \"{v}\" is not int."),
                );
                default
            }
        },
    }
}

/// Decodes `%XX` escapes (reference.mdx "Audit Log Reason": the header value is
/// URL-encoded); malformed escapes are kept as they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%E2%9C%93"), "\u{2713}");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
