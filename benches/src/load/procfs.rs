//! Memory and CPU of a process, read from `/proc` (Linux).

use std::time::Duration;

/// Resident set size (`VmRSS`) of `pid`, bytes; `None` if it cannot be read.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// User + system CPU time of `pid` (`utime` + `stime` of `/proc/<pid>/stat`).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    cpu_split(pid).map(|(u, s)| u + s)
}

/// User and system CPU time of `pid`, apart (system time is mostly socket syscalls here).
pub fn cpu_split(pid: u32) -> Option<(Duration, Duration)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (u, s) = parse_cpu_split(&stat)?;
    let d = |t: u64| Duration::from_micros(t * 1_000_000 / clock_ticks());
    Some((d(u), d(s)))
}

/// `utime + stime` in clock ticks from the text of `/proc/<pid>/stat`.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    parse_cpu_split(stat).map(|(u, s)| u + s)
}

/// `(utime, stime)` in clock ticks from the text of `/proc/<pid>/stat`.
pub fn parse_cpu_split(stat: &str) -> Option<(u64, u64)> {
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the whole line; `rest` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime, stime))
}

/// `CLK_TCK` (from `getconf`, else the Linux default of 100).
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|t| *t > 0)
            .unwrap_or(100)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "42 (we (ird) cmd) S 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 1 0";
        assert_eq!(parse_cpu_ticks(line), Some(175));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_bytes(me).is_some_and(|b| b > 0));
        assert!(cpu_time(me).is_some());
    }
}
