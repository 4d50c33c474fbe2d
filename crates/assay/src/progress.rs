//! The live progress bar: documents done of total, tokens per second, ETA.

use std::time::Instant;

use assay_eval::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub struct Bar {
    bar: ProgressBar,
    start: Instant,
}

impl Bar {
    /// A bar for `total` documents.
    pub fn new(total: u64) -> Bar {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>24} [{bar:30}] {pos}/{len} docs  {msg}  {elapsed} < {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        Bar {
            bar,
            start: Instant::now(),
        }
    }

    /// Clears the bar and prints a one-line summary.
    pub fn finish(&self, seconds: f64, tokens: u64) {
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

impl Progress for Bar {
    fn task_started(&mut self, task: &str, _docs: usize) {
        self.bar.set_prefix(task.to_string());
    }

    fn doc_done(&mut self, tokens: u64) {
        self.bar.inc(1);
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        self.bar
            .set_message(format!("{:.0} tok/s", tokens as f64 / secs));
    }
}
