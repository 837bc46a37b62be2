//! Command-line flags of `gateway-latency` (pure parsing, no I/O).

use std::fmt;

/// The usage text printed by `--help`.
pub const USAGE: &str = "\
gateway-latency: discord-sim -> spell-coven-worker -> spell-coven-api -> WebSocket client
latency, beside the direct signed-webhook path (tool -> spell-coven-api -> client), in one run.

Starts discord-sim in-process and spell-coven-api and spell-coven-worker (found next to this
executable) on 127.0.0.1, connects the clients, then runs two phases of the same rate and
length: `gateway` (sim join/leave -> VOICE_STATE_UPDATE -> worker -> hub) and `direct`
(signed POST /internal/events). Latency = client receipt - dispatch, per delivery.

USAGE: gateway-latency [--rate N] [--seconds N] [--clients N] [--max-seconds N]
                       [--no-state-file]

  --rate N         events per second in each phase (default 500, 1..=20000)
  --seconds N      length of each phase in seconds (default 10, 1..=600)
  --clients N      WebSocket clients, each receiving every event (default 10, 1..=1000)
  --max-seconds N  hard limit on the whole run; it stops with an error past it
                   (default 120, must leave room for both phases and their drains)
  --no-state-file  start the worker without WORKER_STATE_FILE (by default it has one in a
                   temp dir and checkpoints it, with fsync, while events flow)
  --help           this text
";

/// Validated flags.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Args {
    /// Events per second in each phase.
    pub rate: u32,
    /// Length of each phase, seconds.
    pub seconds: u32,
    /// WebSocket clients.
    pub clients: u32,
    /// Hard limit on the whole run, seconds.
    pub max_seconds: u32,
    /// Whether the worker gets a `WORKER_STATE_FILE` (as in production).
    pub state_file: bool,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            rate: 500,
            seconds: 10,
            clients: 10,
            max_seconds: 120,
            state_file: true,
        }
    }
}

impl Args {
    /// Events per phase (`rate * seconds`).
    pub fn events(&self) -> u64 {
        u64::from(self.rate) * u64::from(self.seconds)
    }
}

/// Seconds the run needs besides the two phases: starting the stack, warming up, and a
/// drain per phase.
pub const OVERHEAD_SECONDS: u32 = 40;

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// Run with these flags.
    Run(Args),
    /// Print [`USAGE`] and exit 0.
    Help,
}

/// A bad command line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArgsError {
    /// A flag nobody knows.
    Unknown(String),
    /// A flag without its value.
    MissingValue(&'static str),
    /// A value that is not a number in range.
    Invalid {
        /// The flag.
        flag: &'static str,
        /// What was given.
        value: String,
        /// The accepted range, in words.
        range: &'static str,
    },
    /// `--max-seconds` leaves no room for both phases.
    TooShort {
        /// The minimum for these flags.
        needed: u32,
    },
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(a) => write!(f, "unknown argument `{a}` (see --help)"),
            Self::MissingValue(flag) => write!(f, "{flag} needs a value"),
            Self::Invalid { flag, value, range } => {
                write!(f, "{flag} `{value}` is not a whole number in {range}")
            }
            Self::TooShort { needed } => write!(
                f,
                "--max-seconds must be at least {needed} for these flags (2 phases + {OVERHEAD_SECONDS} s)"
            ),
        }
    }
}

impl std::error::Error for ArgsError {}

fn number(
    flag: &'static str,
    value: Option<&str>,
    lo: u32,
    hi: u32,
    range: &'static str,
) -> Result<u32, ArgsError> {
    let value = value.ok_or(ArgsError::MissingValue(flag))?;
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (lo..=hi).contains(n))
        .ok_or_else(|| ArgsError::Invalid {
            flag,
            value: value.to_owned(),
            range,
        })
}

/// Parses the arguments after the program name.
///
/// # Errors
/// An unknown flag, a missing or out-of-range value, or a `--max-seconds` too short for
/// two phases plus [`OVERHEAD_SECONDS`].
///
/// ```
/// use benches::gateway::args::{Parsed, parse};
/// let Parsed::Run(a) = parse(["--rate", "100", "--seconds", "2"]).unwrap() else { panic!() };
/// assert_eq!((a.rate, a.seconds, a.clients), (100, 2, 10));
/// ```
pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Parsed, ArgsError> {
    let mut out = Args::default();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a {
            "--help" | "-h" => return Ok(Parsed::Help),
            "--rate" => out.rate = number("--rate", it.next(), 1, 20_000, "1..=20000")?,
            "--seconds" => out.seconds = number("--seconds", it.next(), 1, 600, "1..=600")?,
            "--clients" => out.clients = number("--clients", it.next(), 1, 1000, "1..=1000")?,
            "--no-state-file" => out.state_file = false,
            "--max-seconds" => {
                out.max_seconds = number("--max-seconds", it.next(), 1, 7200, "1..=7200")?;
            }
            other => return Err(ArgsError::Unknown(other.to_owned())),
        }
    }
    let needed = 2 * out.seconds + OVERHEAD_SECONDS;
    if out.max_seconds < needed {
        return Err(ArgsError::TooShort { needed });
    }
    Ok(Parsed::Run(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_issue_target() {
        assert_eq!(parse([]), Ok(Parsed::Run(Args::default())));
        let a = Args::default();
        assert_eq!((a.rate, a.seconds, a.clients), (500, 10, 10));
        assert_eq!(a.events(), 5000);
    }

    #[test]
    fn every_flag_is_read() {
        let got = parse([
            "--rate",
            "200",
            "--seconds",
            "3",
            "--clients",
            "4",
            "--max-seconds",
            "60",
            "--no-state-file",
        ]);
        assert_eq!(
            got,
            Ok(Parsed::Run(Args {
                rate: 200,
                seconds: 3,
                clients: 4,
                max_seconds: 60,
                state_file: false,
            }))
        );
        assert_eq!(parse(["--rate", "1", "--help"]), Ok(Parsed::Help));
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        assert_eq!(parse(["--rate"]), Err(ArgsError::MissingValue("--rate")));
        assert!(matches!(
            parse(["--rate", "0"]),
            Err(ArgsError::Invalid { flag: "--rate", .. })
        ));
        assert!(matches!(
            parse(["--clients", "x"]),
            Err(ArgsError::Invalid {
                flag: "--clients",
                ..
            })
        ));
        assert_eq!(
            parse(["--bogus"]),
            Err(ArgsError::Unknown("--bogus".into()))
        );
        assert_eq!(
            parse(["--seconds", "60", "--max-seconds", "100"]),
            Err(ArgsError::TooShort { needed: 160 })
        );
    }
}
