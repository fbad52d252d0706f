//! Where the search index's CPU work runs: a thread at a lower CPU priority than
//! request handling and the store's writer, and one at normal priority for when the
//! index has fallen too far behind. The index is derived and may lag: during a
//! burst, the CPU goes to acknowledging deliveries first and the index catches up
//! right after; under load that does not stop (or other busy processes on the host),
//! the indexer moves to the normal thread so search is never stale for long.
//! tantivy starts its indexing thread from the thread that commits (and its merge
//! threads from the one that makes the writer), which inherit that thread's priority.

use anyhow::anyhow;
use thread_priority::{ThreadPriority, ThreadPriorityValue, set_current_thread_priority};

type Job = Box<dyn FnOnce() + Send>;

/// On Linux's 0–99 scale of `thread_priority`, 22 is a niceness of 10: the thread
/// gets about a tenth of a core's share against busy normal threads, all of an
/// idle one. (Going back up needs privileges, hence a second thread.)
const LOW_PRIORITY: u8 = 22;

/// Which thread a job runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    Low,
    Normal,
}

pub struct Background {
    low: std::sync::mpsc::Sender<Job>,
    normal: std::sync::mpsc::Sender<Job>,
}

impl Background {
    pub fn start() -> std::io::Result<Self> {
        Ok(Self {
            low: spawn("search-index", true)?,
            normal: spawn("search-index-catch-up", false)?,
        })
    }

    /// Runs `job` on the lane's thread; the caller's executor thread is not blocked.
    pub async fn run<T: Send + 'static>(
        &self,
        lane: Lane,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(lane, job, move |out| {
            let _ = reply.send(out);
        })?;
        answer
            .await
            .map_err(|_| anyhow!("a search index job panicked"))
    }

    /// Runs `job` on the low lane and waits for it (for setup, off the executor).
    pub fn run_blocking<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.submit(Lane::Low, job, move |out| {
            let _ = reply.send(out);
        })?;
        answer
            .recv()
            .map_err(|_| anyhow!("a search index job panicked"))
    }

    fn submit<T: Send + 'static>(
        &self,
        lane: Lane,
        job: impl FnOnce() -> T + Send + 'static,
        reply: impl FnOnce(T) + Send + 'static,
    ) -> anyhow::Result<()> {
        let queue = match lane {
            Lane::Low => &self.low,
            Lane::Normal => &self.normal,
        };
        queue
            .send(Box::new(move || reply(job())))
            .map_err(|_| anyhow!("the search index thread has stopped"))
    }
}

fn spawn(name: &str, low: bool) -> std::io::Result<std::sync::mpsc::Sender<Job>> {
    let (jobs, queue) = std::sync::mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if low {
                lower_priority();
            }
            for job in queue {
                job();
            }
        })?;
    Ok(jobs)
}

fn lower_priority() {
    let lowered = ThreadPriorityValue::try_from(LOW_PRIORITY).and_then(|value| {
        set_current_thread_priority(ThreadPriority::Crossplatform(value)).map_err(|e| e.to_string())
    });
    if let Err(error) = lowered {
        tracing::warn!(%error, "search index thread keeps normal priority");
    }
}
