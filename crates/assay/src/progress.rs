//! The live progress bar: documents done of total, tokens per second (or, for a served model,
//! requests per second, in flight and retries), ETA.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use assay_backend::RequestStats;
use assay_eval::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub struct Bar {
    bar: ProgressBar,
    start: Instant,
    /// Set to stop the thread that refreshes the HTTP counters.
    stop_ticker: Arc<AtomicBool>,
    live: bool,
}

impl Bar {
    /// A bar for `total` documents; with `requests`, its message shows the HTTP counters,
    /// refreshed four times a second.
    pub fn new(total: u64, requests: Option<Arc<RequestStats>>) -> Bar {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>24} [{bar:30}] {pos}/{len} docs  {msg}  {elapsed} < {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        let stop_ticker = Arc::new(AtomicBool::new(false));
        let live = requests.is_some();
        if let Some(stats) = requests {
            let (bar, stop) = (bar.clone(), stop_ticker.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    bar.set_message(stats.line());
                    std::thread::sleep(Duration::from_millis(250));
                }
            });
        }
        Bar {
            bar,
            start: Instant::now(),
            stop_ticker,
            live,
        }
    }

    /// Clears the bar and prints a one-line summary.
    pub fn finish(&self, seconds: f64, tokens: u64) {
        self.stop_ticker.store(true, Ordering::Relaxed);
        self.bar.finish_and_clear();
        eprintln!(
            "{} docs in {:.1}s ({:.2} docs/s, {:.0} tokens/s)",
            self.bar.position(),
            seconds,
            self.bar.position() as f64 / seconds.max(1e-9),
            tokens as f64 / seconds.max(1e-9)
        );
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl Progress for Bar {
    fn task_started(&mut self, task: &str, _docs: usize) {
        self.bar.set_prefix(task.to_string());
    }

    fn doc_done(&mut self) {
        self.bar.inc(1);
    }

    fn tokens(&mut self, total: u64) {
        if !self.live {
            let secs = self.start.elapsed().as_secs_f64().max(1e-9);
            self.bar
                .set_message(format!("{:.0} tok/s", total as f64 / secs));
        }
    }
}
