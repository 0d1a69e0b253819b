//! How the process asks the C allocator (glibc's malloc, which Rust's `System` allocator calls) to hold memory:
//! so the pod's RSS follows what is live instead of keeping every transient peak.
//!
//! glibc raises its mmap threshold each time it frees a large mmapped block, so after the first few scrapes (a
//! `/metrics` text of megabytes, its gzip copy) and the first `*` rebuild, blocks of that size come from the heap
//! arenas, where they fragment and are never returned; and each thread that allocates may get an arena of its
//! own. Fixing the threshold keeps large blocks mmapped (returned on free), and one arena keeps what is left in one
//! heap. No effect off glibc.
//!
//! Both figures follow the soak (docs/benchmarks.md, "Leak or allocator?" and run 6): with 128 KiB and two arenas
//! the process's own memory crept by a sixth over the hour while its live heap stayed flat (heaptrack): pages held
//! by scattered blocks, among them the HTTP side's 32 to 128 KiB buffers (gzip state, request and WebSocket
//! buffers), in two heaps.

/// Large blocks are always mmapped from this size on, and the threshold no longer rises.
const MMAP_THRESHOLD: i32 = 32 * 1024;
/// At most this many malloc arenas, whatever the number of threads.
const ARENAS: i32 = 1;

/// Sets the allocator's policy: call before any thread starts.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocation policy; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}

/// Returns freed heap pages to the system. glibc keeps a freed peak in its arenas for reuse; after a `*` rebuild
/// (two trackers and two sets of connections for a few seconds) that peak would stay in the pod's RSS for good.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds free; it touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How often freed memory is handed back while the process runs.
pub const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Hands freed memory back every [`TRIM_EVERY`] until `stop` turns true. Between `*` rebuilds the HTTP side's
/// connections (scrapes, probes, the API) free small blocks all over the arenas; glibc returns only the top of a
/// heap by itself, so without this the process's own memory crept up by about a megabyte an hour in the soak, all
/// of it free and given back by one trim (docs/benchmarks.md, run 4). The trim walks a few megabytes of arenas on
/// the blocking pool, once a minute.
pub async fn trim_periodically(mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(TRIM_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: nothing to give back yet.
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let _ = tokio::task::spawn_blocking(release_free_memory).await;
            }
            () = crate::shutdown::stopped(&mut stop) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_periodic_trim_ends_with_the_process() {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(trim_periodically(stopped));
        // Several trims go by (paused time jumps to each tick); the task is still there.
        tokio::time::sleep(TRIM_EVERY * 3 + TRIM_EVERY / 2).await;
        assert!(!task.is_finished());
        stop.send_replace(true);
        tokio::time::timeout(std::time::Duration::from_secs(1), task)
            .await
            .expect("ends at the stop")
            .unwrap();
    }
}
