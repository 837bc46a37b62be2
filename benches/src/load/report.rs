//! The human table and the one-line JSON of a `fanout` run, with ours/baseline (or
//! `redis-2`/`redis-1`) ratios.

use std::fmt::Write as _;

use super::scenario::RunResult;

/// A readable table of one run.
pub fn table(r: &RunResult) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "== {} / {} : {} clients ({} connected, {} failed) in {} processes",
        r.target, r.mode, r.clients, r.connected, r.connect_failed, r.processes
    );
    if let Some(e) = &r.first_error {
        let _ = writeln!(s, "   first connect error: {e}");
    }
    let _ = writeln!(
        s,
        "   auth rate {:.0}/s | hub RSS {:.1} -> {:.1} MiB idle = {:.0} B per connection",
        r.auth_per_s, r.hub_rss_before_mib, r.hub_rss_idle_mib, r.hub_rss_per_conn_bytes
    );
    for p in &r.phases {
        let _ = writeln!(
            s,
            "   [{}] {} events ({} post errors) at {:.1}/s: received {} of {} expected",
            p.name, p.events, p.post_errors, p.post_rate, p.received, p.expected
        );
        let _ = writeln!(
            s,
            "      delivery latency p50 {:.2} / p99 {:.2} / max {:.2} ms | fan-out completion p50 {:.2} / p99 {:.2} / max {:.2} ms",
            p.latency_ms[0],
            p.latency_ms[1],
            p.latency_ms[2],
            p.completion_ms[0],
            p.completion_ms[1],
            p.completion_ms[2]
        );
        if let Some(l) = p.slow_latency_ms {
            let _ = writeln!(
                s,
                "      slow share latency p50 {:.2} / p99 {:.2} / max {:.2} ms",
                l[0], l[1], l[2]
            );
        }
        let _ = writeln!(
            s,
            "      {:.0} deliveries/s | CPU hub {:.2} s ({:.2} s kernel), tool {:.2} s | hub {:.2} µs CPU per delivery | hub RSS max {:.1} MiB",
            p.deliveries_per_s,
            p.hub_cpu_s,
            p.hub_sys_s,
            p.tool_cpu_s,
            p.hub_cpu_us_per_delivery,
            p.hub_rss_max_mib
        );
        if let Some(per) = &p.latency_by_replica_ms {
            for (i, l) in per.iter().enumerate() {
                let via = if i == 0 {
                    "events posted here"
                } else {
                    "events posted to replica 0"
                };
                let _ = writeln!(
                    s,
                    "      replica {i} clients ({via}): latency p50 {:.2} / p99 {:.2} / max {:.2} ms",
                    l[0], l[1], l[2]
                );
            }
        }
        if let Some(c) = p.redis_cpu_s {
            let _ = writeln!(
                s,
                "      redis-server CPU {c:.2} s (not in the hub figures)"
            );
        }
    }
    let _ = writeln!(
        s,
        "   lost {} | duplicates {} | resumed {} | snapshots {} | reconnect failed {} | storm {} ms | evicted {} (hub says {}) | other closes {} | slow clients {}",
        r.lost,
        r.duplicates,
        r.resumed,
        r.snapshots,
        r.reconnect_failed,
        r.storm_ms,
        r.evicted,
        r.hub_evictions
            .map_or_else(|| "-".to_string(), |e| e.to_string()),
        r.other_closes,
        r.slow_clients
    );
    if r.replicas > 0 {
        let _ = writeln!(
            s,
            "   {} replicas through one redis-server (RSS {:.1} MiB at the end); hub figures summed over the replicas, events posted to replica 0",
            r.replicas,
            r.redis_rss_mib.unwrap_or(f64::NAN)
        );
    }
    s
}

/// `ours / baseline` (or any `a / b`) for the comparable figures (lower is better for all
/// but rates).
pub fn ratios(ours: &RunResult, base: &RunResult) -> serde_json::Value {
    let div = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    let mut m = serde_json::Map::new();
    m.insert(
        "auth_per_s".into(),
        div(ours.auth_per_s, base.auth_per_s).into(),
    );
    m.insert(
        "rss_per_conn".into(),
        div(ours.hub_rss_per_conn_bytes, base.hub_rss_per_conn_bytes).into(),
    );
    for (o, b) in ours.phases.iter().zip(&base.phases) {
        let p = &o.name;
        m.insert(
            format!("{p}.completion_p99"),
            div(o.completion_ms[1], b.completion_ms[1]).into(),
        );
        m.insert(
            format!("{p}.latency_p99"),
            div(o.latency_ms[1], b.latency_ms[1]).into(),
        );
        m.insert(
            format!("{p}.deliveries_per_s"),
            div(o.deliveries_per_s, b.deliveries_per_s).into(),
        );
        m.insert(
            format!("{p}.hub_cpu_per_delivery"),
            div(o.hub_cpu_us_per_delivery, b.hub_cpu_us_per_delivery).into(),
        );
    }
    serde_json::Value::Object(m)
}

/// Human lines for [`ratios`] of ours over the baseline.
pub fn ratio_table(r: &serde_json::Value) -> String {
    ratio_table_for(r, "ours", "baseline")
}

/// Human lines for [`ratios`] of the run named `over` over the run named `under`.
pub fn ratio_table_for(r: &serde_json::Value, over: &str, under: &str) -> String {
    let mut s = format!("== {over} / {under} (same run; < 1 is better except *_per_s)\n");
    if let Some(m) = r.as_object() {
        for (k, v) in m {
            let _ = writeln!(s, "   {k:<36} {:.3}", v.as_f64().unwrap_or(f64::NAN));
        }
    }
    s
}
