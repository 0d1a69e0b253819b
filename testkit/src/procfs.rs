//! What the long-running examples read of a process from `/proc`: memory, CPU time, open descriptors. Linux only;
//! a process that has gone reads as zeros.

/// The text of `/proc/<pid>/status`, read once so that several fields are of the same moment.
pub fn status(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default()
}

/// A field's number in a `/proc/<pid>/status` text (kB for the memory ones, e.g. `VmRSS:`), 0 when absent.
pub fn field(status: &str, name: &str) -> f64 {
    (status.lines())
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// The process's CPU time, user and system, in ticks of 1/USER_HZ s (`utime + stime` of `/proc/<pid>/stat`).
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which may hold spaces: state is the first, utime the 12th.
    let fields: Vec<u64> = stat.rsplit_once(')').map_or(Vec::new(), |(_, rest)| {
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect()
    });
    fields.get(11).unwrap_or(&0) + fields.get(12).unwrap_or(&0)
}

/// Open file descriptors.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}
