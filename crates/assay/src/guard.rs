//! Stopping long commands cleanly. Ctrl-C (and SIGTERM, a scheduler's stop), `--run-timeout`
//! and `--max-memory` all raise one flag; the command finishes the item in hand, keeps
//! everything finished, and says how to go on. A second Ctrl-C quits at once (finished work is
//! on disk either way).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Exit code of a command stopped by Ctrl-C.
pub const EXIT_INTERRUPTED: i32 = 130;
/// Exit code of a command stopped by `--run-timeout` or `--max-memory`.
pub const EXIT_LIMIT: i32 = 124;

/// Limits on a whole command.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LimitArgs {
    /// Stop cleanly after this long (e.g. `90s`, `45m`, `2h`), keeping finished work: run the
    /// same command again to go on. Exit code 124.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Limits")]
    pub run_timeout: Option<Duration>,
    /// Stop cleanly when this process uses more memory than this (resident, e.g. `6GiB`,
    /// `800M`), keeping finished work; refuse at once a model file that is larger. Exit code 124.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, help_heading = "Limits")]
    pub max_memory: Option<u64>,
}

impl LimitArgs {
    /// Refuses a model file that alone exceeds `--max-memory` (it is mapped into memory whole).
    pub fn check_model_file(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let (Some(max), Ok(meta)) = (self.max_memory, std::fs::metadata(path)) else {
            return Ok(());
        };
        if meta.len() > max {
            bail!(
                "{} is {} and --max-memory is {}: the model alone does not fit; raise --max-memory or use a smaller quantization",
                path.display(),
                show_size(meta.len()),
                show_size(max)
            );
        }
        Ok(())
    }
}

/// The stop flag of a command, raised by Ctrl-C or a limit.
#[derive(Clone)]
pub struct Guard {
    flag: Arc<AtomicBool>,
    reason: Arc<Mutex<Option<Stop>>>,
}

/// Why a command stopped early.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// Ctrl-C.
    Interrupted,
    /// A limit, described.
    Limit(String),
}

impl Stop {
    /// The exit code for this stop.
    pub fn exit_code(&self) -> i32 {
        match self {
            Stop::Interrupted => EXIT_INTERRUPTED,
            Stop::Limit(_) => EXIT_LIMIT,
        }
    }

    /// What stopped the command, for messages.
    pub fn describe(&self) -> String {
        match self {
            Stop::Interrupted => "interrupted".into(),
            Stop::Limit(what) => what.clone(),
        }
    }
}

impl Guard {
    /// Installs the Ctrl-C handler and, when limits are given, a watchdog thread that checks
    /// them twice a second. `what` names the item a stop waits for ("document", "prompt").
    pub fn install(limits: &LimitArgs, what: &'static str) -> anyhow::Result<Guard> {
        let guard = Guard {
            flag: Arc::new(AtomicBool::new(false)),
            reason: Arc::new(Mutex::new(None)),
        };
        let g = guard.clone();
        ctrlc::set_handler(move || {
            if g.flag.load(Ordering::SeqCst) {
                eprintln!("\ninterrupted twice: exiting now (finished work is kept)");
                std::process::exit(EXIT_INTERRUPTED);
            }
            eprintln!("\ninterrupt: stopping after the current {what} (Ctrl-C again to quit now)");
            g.raise(Stop::Interrupted);
        })
        .context("installing the Ctrl-C handler")?;
        if limits.run_timeout.is_some() || limits.max_memory.is_some() {
            let (g, limits, start) = (guard.clone(), limits.clone(), Instant::now());
            std::thread::spawn(move || loop {
                if g.flag.load(Ordering::SeqCst) {
                    return;
                }
                if let Some(limit) = limits.run_timeout.filter(|t| start.elapsed() >= *t) {
                    eprintln!(
                        "\n--run-timeout {}: stopping after the current {what}",
                        show_duration(limit)
                    );
                    g.raise(Stop::Limit(format!(
                        "--run-timeout {} reached",
                        show_duration(limit)
                    )));
                }
                if let (Some(max), Some(rss)) = (limits.max_memory, resident_bytes()) {
                    if rss > max {
                        eprintln!(
                            "\n--max-memory {}: using {}, stopping after the current {what}",
                            show_size(max),
                            show_size(rss)
                        );
                        g.raise(Stop::Limit(format!(
                            "memory use {} went over --max-memory {}",
                            show_size(rss),
                            show_size(max)
                        )));
                    }
                }
                std::thread::sleep(Duration::from_millis(500));
            });
        }
        Ok(guard)
    }

    /// The flag itself, for loops in the libraries.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.flag.clone()
    }

    /// Whether the command should stop now.
    pub fn should_stop(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Why the command was stopped, if it was.
    pub fn stopped(&self) -> Option<Stop> {
        self.reason.lock().map(|r| r.clone()).unwrap_or(None)
    }

    fn raise(&self, stop: Stop) {
        if let Ok(mut reason) = self.reason.lock() {
            reason.get_or_insert(stop);
        }
        self.flag.store(true, Ordering::SeqCst);
        // A Python hook may run for long; it is ended, not waited for.
        assay_tasks::stop_hooks();
    }
}

/// This process's resident memory, from /proc (None where there is no /proc).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A duration such as `90`, `90s`, `45m`, `2h` or `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let parsed = match t.parse::<f64>() {
        Ok(secs) => Duration::try_from_secs_f64(secs).map_err(|e| e.to_string()),
        Err(_) => humantime::parse_duration(t).map_err(|e| e.to_string()),
    };
    match parsed {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("a zero duration would stop at once".into()),
        Err(e) => Err(format!("{e}; expected e.g. 90s, 45m, 2h or 1h30m")),
    }
}

/// A size such as `800M`, `6GiB`, `1.5G` or a count of bytes (K, M, G, T are powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a size such as 800M or 6GiB"))?;
    let power = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 1,
        "m" | "mb" | "mib" => 2,
        "g" | "gb" | "gib" => 3,
        "t" | "tb" | "tib" => 4,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use K, M, G or T)"
            ))
        }
    };
    let bytes = number * 1024f64.powi(power);
    if !(bytes.is_finite() && bytes >= 1.0) {
        return Err(format!("{text:?}: expected a positive size"));
    }
    Ok(bytes as u64)
}

/// `bytes` in the largest binary unit that keeps it at least 1.
pub fn show_size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

fn show_duration(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs().max(1))).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_read_in_binary_units() {
        assert_eq!(parse_size("800M"), Ok(800 << 20));
        assert_eq!(parse_size("6GiB"), Ok(6 << 30));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_size("G").is_err());
        assert_eq!(show_size(3 << 29), "1.5 GiB");
    }

    #[test]
    fn durations_take_seconds_or_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("-3").is_err());
        assert!(parse_duration("soon").unwrap_err().contains("expected"));
    }

    #[test]
    fn this_process_has_a_resident_size() {
        assert!(resident_bytes().unwrap() > 1 << 20);
    }
}
