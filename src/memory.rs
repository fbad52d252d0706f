//! The allocator, and handing memory freed by bursts back to the system.
//!
//! jemalloc is the global allocator: the ingest path allocates and frees on every
//! request, from several threads at once, and glibc's `malloc`/`free` took a sixth
//! of the CPU there (benches/README.md, "The acknowledgement log"). After a burst
//! (hundreds of WebSocket clients that stopped reading, each with queued messages,
//! then cut off) its arenas keep the freed pages until they decay; purging every
//! arena on a timer returns them sooner, and is cheap on a heap this size.

use std::time::Duration;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How often freed memory is handed back.
pub const PURGE_EVERY: Duration = Duration::from_secs(10);

/// Runs until `stop` resolves.
pub async fn give_back_freed(stop: impl std::future::Future<Output = ()>) {
    let mut ticks = tokio::time::interval(PURGE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = ticks.tick() => {
                let _ = tokio::task::spawn_blocking(purge).await;
            }
        }
    }
}

/// Returns every arena's unused dirty pages to the system ("arena.<i>.purge" with
/// `MALLCTL_ARENAS_ALL`, 4096, for all arenas).
#[allow(unsafe_code)]
fn purge() {
    const PURGE_ALL_ARENAS: &[u8] = b"arena.4096.purge\0";
    // SAFETY: the name is NUL-terminated; "purge" reads and writes no value, so every
    // pointer may be null. jemalloc locks each arena while it purges it.
    let status = unsafe {
        tikv_jemalloc_sys::mallctl(
            PURGE_ALL_ARENAS.as_ptr().cast(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    if status != 0 {
        tracing::debug!(status, "jemalloc purge failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resident_bytes() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status
            .lines()
            .find(|line| line.starts_with("VmRSS:"))
            .unwrap();
        let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    }

    #[test]
    fn a_purge_hands_freed_memory_back() {
        // 256 MiB in 64 KiB blocks, touched, then freed: jemalloc keeps part of the
        // pages until they decay.
        let blocks: Vec<Vec<u8>> = (0..4096).map(|_| vec![1u8; 64 * 1024]).collect();
        let peak = resident_bytes();
        drop(blocks);
        purge();
        let after = resident_bytes();
        // Without the purge about 180 of the 256 MiB go back by themselves here.
        assert!(
            after + 224 * 1024 * 1024 < peak,
            "resident {peak} B with the blocks, {after} B after the purge"
        );
    }
}
