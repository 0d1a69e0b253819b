//! The standard `process_*` metrics: rust-prometheus' `ProcessCollector`, except `process_cpu_seconds_total`,
//! which that collector keeps in an integer counter (whole seconds). An exporter that uses a few hundredths of a
//! core would show a CPU rate of 0 most of the time and a spike of one second now and then; here the counter
//! advances by clock ticks (10 ms), as the Go client's does.
//!
//! Owns that one substitution; every other `process_*` family is the collector's own.

use prometheus::core::{Collector, Desc};
use prometheus::process_collector::ProcessCollector;
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Opts};

const CPU: &str = "process_cpu_seconds_total";

/// `process_*` for this process, CPU time to the clock tick.
pub struct ProcessMetrics {
    inner: ProcessCollector,
    cpu: Counter,
}

impl ProcessMetrics {
    /// The collector for the calling process.
    pub fn for_self() -> prometheus::Result<Self> {
        Ok(ProcessMetrics {
            inner: ProcessCollector::for_self(),
            // The same name and help as the collector's own, so the registered description stays true.
            cpu: Counter::with_opts(Opts::new(
                CPU,
                "Total user and system CPU time spent in seconds.",
            ))?,
        })
    }
}

impl Collector for ProcessMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.inner.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut families = self.inner.collect();
        if let Some(seconds) = cpu_seconds() {
            // A counter only goes up; CPU time never goes back, but two scrapes may race here.
            let delta = seconds - self.cpu.get();
            if delta > 0.0 {
                self.cpu.inc_by(delta);
            }
            families.retain(|family| family.name() != CPU);
            families.extend(self.cpu.collect());
        }
        families
    }
}

#[cfg(target_os = "linux")]
fn cpu_seconds() -> Option<f64> {
    let stat = procfs::process::Process::myself().ok()?.stat().ok()?;
    Some((stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64)
}

#[cfg(not(target_os = "linux"))]
fn cpu_seconds() -> Option<f64> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn cpu_total(collector: &ProcessMetrics) -> f64 {
        let families = collector.collect();
        let cpu: Vec<_> = families.iter().filter(|f| f.name() == CPU).collect();
        assert_eq!(cpu.len(), 1, "exactly one {CPU} family");
        cpu[0].get_metric()[0].get_counter().get_value()
    }

    #[test]
    fn cpu_time_has_sub_second_precision_and_never_goes_back() {
        let collector = ProcessMetrics::for_self().unwrap();
        // Burn a little CPU so the process has used some, almost surely not a whole number of seconds.
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(150) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let first = cpu_total(&collector);
        assert!(first > 0.0, "{first}");
        // The integer collector would report whole seconds only; ticks are 1/100 s.
        assert!(first.fract() != 0.0 || first >= 1.0, "{first}");
        let second = cpu_total(&collector);
        assert!(second >= first, "{first} then {second}");
        assert!(
            collector
                .collect()
                .iter()
                .any(|f| f.name() == "process_resident_memory_bytes"),
            "the other process metrics stay"
        );
    }
}
