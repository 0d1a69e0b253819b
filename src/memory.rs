//! How the process asks the C allocator (glibc's malloc, which Rust's `System` allocator calls) to hold memory:
//! so the pod's RSS follows what is live instead of keeping every transient peak.
//!
//! glibc raises its mmap threshold each time it frees a large mmapped block, so after the first few scrapes (a
//! `/metrics` text of megabytes, its gzip copy) and the first `*` rebuild, blocks of that size come from the heap
//! arenas, where they fragment and are never returned; and each thread that allocates may get an arena of its
//! own. Fixing the threshold keeps large blocks mmapped (returned on free), and two arenas bound the spread. No
//! effect off glibc.

/// Large blocks are always mmapped from this size on, and the threshold no longer rises.
const MMAP_THRESHOLD: i32 = 128 * 1024;
/// At most this many malloc arenas, whatever the number of threads.
const ARENAS: i32 = 2;

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
