//! Gives memory freed by bursts back to the system. glibc's malloc keeps freed
//! chunks in its per-thread arenas; after a burst (hundreds of WebSocket clients
//! that stopped reading, each with queued messages, then cut off) the process would
//! stay at its peak size. `malloc_trim` returns the free pages of every arena; it is
//! cheap on a heap this size, so it runs on a timer rather than on guesses about
//! when a burst ended.

use std::time::Duration;

/// How often freed memory is handed back.
pub const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Runs until `stop` resolves.
pub async fn give_back_freed(stop: impl std::future::Future<Output = ()>) {
    let mut ticks = tokio::time::interval(TRIM_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = ticks.tick() => {
                let _ = tokio::task::spawn_blocking(trim).await;
            }
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() {
    // SAFETY: malloc_trim only walks and shrinks the allocator's own free lists;
    // it is thread-safe (each arena is locked while trimmed).
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
