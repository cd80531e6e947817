//! Progress of a long command (`import`, `seed`, `export`) on stderr: a bar with rows per second
//! redrawn in place on a terminal, and a plain line every few seconds (and at the end of each
//! step) when stderr is a file or a pipe, so logs of a scheduled import show where it is.
//!
//! Hand-written: a bar is forty lines, and a crate for it would bring a terminal library along.
//! Steps run one after another; [`Progress::inc`] is an atomic add, cheap enough per row.
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a terminal's bar is redrawn.
const REDRAW: Duration = Duration::from_millis(200);
/// How often a plain line is written while a step runs, unless `CLOSEDLOOP_PROGRESS_EVERY`
/// (seconds) says otherwise.
const LINE_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Hidden,
    Terminal,
    Lines(Duration),
}

/// The progress of one command, and the time each of its steps took.
pub struct Progress {
    /// Names the command in plain lines (`import: touchpoints ...`).
    command: &'static str,
    output: Output,
    current: Mutex<Option<Step>>,
    timings: Mutex<Vec<(&'static str, u64, Duration)>>,
}

/// The step running now; its ticker thread draws it until the step ends.
struct Step {
    name: &'static str,
    started: Instant,
    done: Arc<AtomicU64>,
    stop: Option<Sender<()>>,
    ticker: Option<JoinHandle<()>>,
}

impl Progress {
    /// Counts and times, but shows nothing (library callers, tests).
    pub fn hidden() -> Self {
        Self::with_output("", Output::Hidden)
    }

    /// On stderr: a bar on a terminal, plain lines otherwise.
    pub fn stderr(command: &'static str) -> Self {
        let output = if std::io::stderr().is_terminal() {
            Output::Terminal
        } else {
            let every = std::env::var("CLOSEDLOOP_PROGRESS_EVERY")
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s > 0.0)
                .map_or(LINE_EVERY, Duration::from_secs_f64);
            Output::Lines(every)
        };
        Self::with_output(command, output)
    }

    fn with_output(command: &'static str, output: Output) -> Self {
        Self {
            command,
            output,
            current: Mutex::new(None),
            timings: Mutex::new(Vec::new()),
        }
    }

    /// Begins step `name` (ending the one before) of `total` rows, if known.
    pub fn start(&self, name: &'static str, total: Option<u64>) {
        self.finish();
        let done = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let (stop, ticker) = match self.output {
            Output::Hidden => (None, None),
            Output::Terminal | Output::Lines(_) => {
                let (tx, rx) = std::sync::mpsc::channel::<()>();
                let (output, command, counter) = (self.output, self.command, Arc::clone(&done));
                let every = match output {
                    Output::Lines(every) => every,
                    _ => REDRAW,
                };
                let ticker = std::thread::spawn(move || {
                    while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                        let line = status(name, counter.load(Ordering::Relaxed), total, started.elapsed());
                        match output {
                            Output::Terminal => draw(&format!("\r\x1b[2K{line}")),
                            _ => draw(&format!("{command}: {line}\n")),
                        }
                    }
                });
                (Some(tx), Some(ticker))
            }
        };
        *self.lock_current() = Some(Step {
            name,
            started,
            done,
            stop,
            ticker,
        });
    }

    /// `n` more rows of the current step done.
    pub fn inc(&self, n: u64) {
        if let Some(step) = self.lock_current().as_ref() {
            step.done.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Ends the current step, which did `rows` rows in all (more than counted so far when its
    /// rows were not counted one by one).
    pub fn done(&self, rows: u64) {
        if let Some(step) = self.lock_current().as_ref() {
            step.done.fetch_max(rows, Ordering::Relaxed);
        }
        self.finish();
    }

    /// Ends the current step, if any: its ticker stops and its last line is written.
    pub fn finish(&self) {
        let Some(mut step) = self.lock_current().take() else {
            return;
        };
        let elapsed = step.started.elapsed();
        drop(step.stop.take());
        if let Some(t) = step.ticker.take() {
            let _ = t.join();
        }
        let rows = step.done.load(Ordering::Relaxed);
        let line = summary(step.name, rows, elapsed);
        match self.output {
            Output::Hidden => {}
            Output::Terminal => draw(&format!("\r\x1b[2K{line}\n")),
            Output::Lines(_) => draw(&format!("{}: {line}\n", self.command)),
        }
        self.timings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((step.name, rows, elapsed));
    }

    /// The steps so far, with their rows and time: `users 12 rows 0.01 s, touchpoints ...`.
    pub fn timings(&self) -> String {
        self.finish();
        let timings = self.timings.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let parts: Vec<String> = timings
            .iter()
            .map(|(name, rows, t)| format!("{name} {rows} rows {:.2} s", t.as_secs_f64()))
            .collect();
        parts.join(", ")
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<Step>> {
        self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

fn draw(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

fn rate(rows: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { (rows as f64 / secs).round() as u64 } else { 0 }
}

/// A running step: `touchpoints [=========>          ] 450000/1000000 rows, 61234 rows/s`.
fn status(name: &str, rows: u64, total: Option<u64>, elapsed: Duration) -> String {
    const WIDTH: u64 = 24;
    match total.filter(|t| *t > 0) {
        Some(total) => {
            let filled = (rows.min(total) * WIDTH / total) as usize;
            let bar = format!("{}{}", "=".repeat(filled), " ".repeat(WIDTH as usize - filled));
            format!("{name} [{bar}] {rows}/{total} rows, {} rows/s", rate(rows, elapsed))
        }
        None => format!("{name} {rows} rows, {} rows/s", rate(rows, elapsed)),
    }
}

/// A finished step: `touchpoints 1000000 rows in 16.33 s (61236 rows/s)`.
fn summary(name: &str, rows: u64, elapsed: Duration) -> String {
    format!(
        "{name} {rows} rows in {:.2} s ({} rows/s)",
        elapsed.as_secs_f64(),
        rate(rows, elapsed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_show_the_bar_and_the_rate() {
        let s = status("touchpoints", 500, Some(1000), Duration::from_secs(2));
        assert_eq!(s, "touchpoints [============            ] 500/1000 rows, 250 rows/s");
        assert_eq!(status("leads", 30, None, Duration::from_secs(3)), "leads 30 rows, 10 rows/s");
        assert_eq!(
            summary("users", 7, Duration::from_millis(500)),
            "users 7 rows in 0.50 s (14 rows/s)"
        );
    }

    #[test]
    fn steps_are_timed_one_after_another() {
        let p = Progress::hidden();
        p.start("users", Some(3));
        p.inc(2);
        p.done(3);
        p.start("touchpoints", None);
        p.inc(5);
        p.inc(5);
        let t = p.timings();
        assert!(t.starts_with("users 3 rows "), "{t}");
        assert!(t.contains(", touchpoints 10 rows "), "{t}");
    }
}
