//! Progress bars on standard output, and a log writer that keeps them intact.

use std::io::{self, IsTerminal, Write};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::fmt::MakeWriter;

/// The target of the job's progress bars: standard output, or none.
#[derive(Clone, Debug)]
pub struct Progress {
    bars: Option<MultiProgress>,
}

impl Progress {
    /// Bars on standard output when `enabled` and standard output is a terminal, else none.
    pub fn on_terminal(enabled: bool) -> Self {
        if enabled && io::stdout().is_terminal() {
            Progress {
                bars: Some(MultiProgress::with_draw_target(ProgressDrawTarget::stdout())),
            }
        } else {
            Progress::hidden()
        }
    }

    /// No bars at all.
    pub fn hidden() -> Self {
        Progress { bars: None }
    }

    /// Returns whether bars are drawn.
    pub fn is_shown(&self) -> bool {
        self.bars.is_some()
    }

    /// Starts a bar counting `unit` up to `length`, showing the rate and the time left.
    pub fn bar(&self, length: u64, unit: &str) -> ProgressBar {
        let Some(bars) = &self.bars else {
            return ProgressBar::hidden();
        };
        let template = format!(
            "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{human_pos}}/{{human_len}} {unit} \
             ({{per_sec:0}}, {{eta}} left)"
        );
        let style = ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bars.add(ProgressBar::new(length).with_style(style))
    }

    /// Starts a spinner showing `message`, for a step whose length is not known.
    pub fn spinner(&self, message: &'static str) -> ProgressBar {
        let Some(bars) = &self.bars else {
            return ProgressBar::hidden();
        };
        let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let spinner = bars.add(
            ProgressBar::new_spinner()
                .with_style(style)
                .with_message(message),
        );
        spinner.enable_steady_tick(std::time::Duration::from_millis(120));
        spinner
    }

    /// Runs `write` with the bars cleared, so that text printed meanwhile does not mix with them.
    pub fn suspend<R>(&self, write: impl FnOnce() -> R) -> R {
        match &self.bars {
            Some(bars) => bars.suspend(write),
            None => write(),
        }
    }

    /// Creates a log writer to standard error that clears the bars while it writes.
    pub fn log_writer(&self) -> LogWriter {
        LogWriter {
            progress: self.clone(),
        }
    }
}

/// Writes log lines to standard error around the progress bars; see [`Progress::log_writer`].
#[derive(Clone, Debug)]
pub struct LogWriter {
    progress: Progress,
}

impl Write for LogWriter {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        self.progress.suspend(|| io::stderr().write(buffer))
    }

    fn write_all(&mut self, buffer: &[u8]) -> io::Result<()> {
        self.progress.suspend(|| io::stderr().write_all(buffer))
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
