//! The summary the retail job prints at the end.

use std::fmt::{self, Display, Formatter};
use std::path::PathBuf;
use std::time::Duration;

use super::job::IngestReport;
use super::store::StoreKind;
use super::verify::Verification;

/// Rejected, malformed and failed lines, and mismatches, shown in detail per list.
pub const EXAMPLES: usize = 10;

/// Everything one run did.
#[derive(Clone, Debug)]
pub struct Report {
    /// The input file.
    pub input: PathBuf,
    /// The line limit, if any.
    pub limit: Option<u64>,
    /// The store used.
    pub store: StoreKind,
    /// The sled folder, for the sled store.
    pub data_dir: Option<PathBuf>,
    /// Whether `--fresh` deleted an existing store first.
    pub deleted_store: bool,
    /// The ingest.
    pub ingest: IngestReport,
    /// The verification, unless it was turned off.
    pub verification: Option<Verification>,
}

impl Report {
    /// Returns whether no command failed and the verification, if it ran, found no mismatch.
    pub fn is_success(&self) -> bool {
        self.ingest.failed == 0 && self.verification.as_ref().is_none_or(|v| v.is_success())
    }
}

/// Adds `item` to `examples`, which stay sorted by line number and keep the [`EXAMPLES`] items
/// with the lowest line numbers.
pub fn keep_lowest<T>(examples: &mut Vec<T>, item: T, line_of: fn(&T) -> u64) {
    let line = line_of(&item);
    let position = examples.partition_point(|kept| line_of(kept) <= line);
    if position < EXAMPLES {
        examples.insert(position, item);
        examples.truncate(EXAMPLES);
    }
}

impl Display for Report {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let limit = match self.limit {
            Some(limit) => format!("first {} lines", count(limit)),
            None => "all lines".to_owned(),
        };
        writeln!(f, "retail job")?;
        writeln!(f, "  input            {} ({limit})", self.input.display())?;
        match &self.data_dir {
            Some(folder) => {
                let fresh = if self.deleted_store {
                    ", deleted first (--fresh)"
                } else {
                    ""
                };
                writeln!(f, "  store            sled in {}{fresh}", folder.display())?;
            }
            None => writeln!(f, "  store            {}", store_name(self.store))?,
        }
        writeln!(f)?;
        write_ingest(f, &self.ingest)?;
        if let Some(verification) = &self.verification {
            writeln!(f)?;
            write_verification(f, verification)?;
        }
        writeln!(f)?;
        let result = if self.is_success() { "OK" } else { "FAILED" };
        writeln!(f, "result: {result}")?;
        let actors_differ = self
            .verification
            .as_ref()
            .is_some_and(|v| v.kinds.iter().any(|k| k.matched != k.checked));
        if actors_differ {
            writeln!(
                f,
                "hint: actors that hold more lines than expected usually come from an earlier run \
                 over other lines (another --limit or --input); rerun with --fresh to start from \
                 an empty store"
            )?;
        }
        Ok(())
    }
}

fn write_ingest(f: &mut Formatter<'_>, ingest: &IngestReport) -> fmt::Result {
    writeln!(f, "ingest")?;
    writeln!(f, "  lines read       {}", count(ingest.lines_read))?;
    writeln!(
        f,
        "  commands         {} AddLine: {} accepted, {} rejected, {} failed",
        count(ingest.commands),
        count(ingest.accepted),
        count(ingest.rejected_total()),
        count(ingest.failed),
    )?;
    let events = ingest
        .writes
        .iter()
        .map(|(kind, w)| (kind.as_str(), w.events));
    writeln!(f, "  new events       {}", by_kind(ingest.events(), events))?;
    let actors = ingest
        .active_actors
        .iter()
        .map(|(kind, n)| (kind.as_str(), *n));
    let active: u64 = ingest.active_actors.values().sum();
    writeln!(f, "  active actors    {}", by_kind(active, actors))?;

    writeln!(f, "  rejected lines   {}", count(ingest.rejected_total()))?;
    for (reason, lines) in &ingest.rejected {
        writeln!(f, "    {:<36} {}", reason.to_string(), count(*lines))?;
    }
    for (line, reason) in &ingest.rejected_examples {
        writeln!(f, "    line {line}: {reason}")?;
    }
    writeln!(f, "  malformed lines  {}", count(ingest.malformed))?;
    for malformed in &ingest.malformed_examples {
        writeln!(f, "    {malformed}")?;
    }
    if ingest.failed > 0 {
        writeln!(f, "  failed commands  {}", count(ingest.failed))?;
        for (line, error) in &ingest.failed_examples {
            writeln!(f, "    line {line}: {error}")?;
        }
    }

    let snapshots = ingest
        .writes
        .iter()
        .map(|(kind, w)| (kind.as_str(), w.snapshots));
    writeln!(
        f,
        "  snapshots        {}",
        by_kind(ingest.snapshots(), snapshots)
    )?;
    let largest = ingest.writes.values().map(|w| w.largest_snapshot).max();
    if let Some(largest) = largest.filter(|&bytes| bytes > 0) {
        writeln!(f, "  largest snapshot {} bytes", count(largest as u64))?;
    }
    writeln!(
        f,
        "  elapsed          {} ({} sending, {} waiting for policies); shutdown {}",
        seconds(ingest.ingest_time()),
        seconds(ingest.send_time),
        seconds(ingest.policy_time),
        seconds(ingest.shutdown_time),
    )?;
    writeln!(
        f,
        "  throughput       {} commands/s, {} events/s",
        count(ingest.commands_per_second().round() as u64),
        count(ingest.events_per_second().round() as u64),
    )
}

fn write_verification(f: &mut Formatter<'_>, verification: &Verification) -> fmt::Result {
    writeln!(
        f,
        "verification (new runtime, every actor read back from the store)"
    )?;
    if verification.count_mismatches.is_empty() {
        writeln!(
            f,
            "  job counts       match the expected totals (lines, rejections)"
        )?;
    } else {
        writeln!(f, "  job counts       DIFFER from the expected totals")?;
        for difference in &verification.count_mismatches {
            writeln!(f, "    {difference}")?;
        }
    }
    for kind in &verification.kinds {
        writeln!(
            f,
            "  {:<16} {} of {} match; {} events stored",
            kind.kind,
            count(kind.matched),
            count(kind.checked),
            count(kind.stored_events),
        )?;
        for mismatch in &kind.mismatches {
            writeln!(f, "    {mismatch}")?;
        }
        let unshown = (kind.checked - kind.matched).saturating_sub(kind.mismatches.len() as u64);
        if unshown > 0 {
            writeln!(f, "    and {} more", count(unshown))?;
        }
    }
    writeln!(f, "  elapsed          {}", seconds(verification.elapsed))
}

fn store_name(store: StoreKind) -> &'static str {
    match store {
        StoreKind::Memory => "memory (nothing is kept after the run)",
        StoreKind::Sled => "sled",
        StoreKind::Jetstream => "jetstream",
        StoreKind::Postgres => "postgres",
    }
}

/// Formats `total` and its parts, such as `12 (customer 2, invoice 10)`.
fn by_kind<'a>(total: u64, parts: impl Iterator<Item = (&'a str, u64)>) -> String {
    let parts: Vec<String> = parts
        .map(|(kind, n)| format!("{kind} {}", count(n)))
        .collect();
    if parts.is_empty() {
        count(total)
    } else {
        format!("{} ({})", count(total), parts.join(", "))
    }
}

/// Formats a count with thousands separators, such as `541,909`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

fn seconds(elapsed: Duration) -> String {
    format!("{:.1} s", elapsed.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_groups_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(541_909), "541,909");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn keep_lowest_keeps_lowest_lines() {
        let mut examples = Vec::new();
        for line in [30, 5, 17, 1, 29, 12, 3, 8, 25, 2, 14, 6, 9, 11, 4, 7, 10] {
            keep_lowest(&mut examples, line, |&n| n);
        }
        assert_eq!(examples, (1..=10).collect::<Vec<u64>>());
    }
}
