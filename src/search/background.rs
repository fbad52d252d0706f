//! The search index's own thread, at a lower CPU priority than request handling and
//! the store's writer. The index is derived and may lag: on a small host under a
//! burst, the CPU goes to acknowledging deliveries first, and the index catches up
//! right after (its lag is in health, `/monitoring` and the metrics). tantivy's
//! indexing and merge threads are started from this thread and inherit its priority.

use anyhow::anyhow;
use thread_priority::{ThreadPriority, ThreadPriorityValue, set_current_thread_priority};

type Job = Box<dyn FnOnce() + Send>;

/// On Linux's 0–99 scale of `thread_priority`, 22 is a niceness of 10: the thread
/// gets about a tenth of a core's share against busy normal threads, all of an
/// idle one.
const PRIORITY: u8 = 22;

pub struct Background {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Background {
    pub fn start() -> std::io::Result<Self> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("search-index".into())
            .spawn(move || {
                lower_priority();
                for job in queue {
                    job();
                }
            })?;
        Ok(Self { jobs })
    }

    /// Runs `job` on the thread; the caller's executor thread is not blocked.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(job, move |out| {
            let _ = reply.send(out);
        })?;
        answer
            .await
            .map_err(|_| anyhow!("a search index job panicked"))
    }

    /// Runs `job` on the thread and waits for it (for setup, off the executor).
    pub fn run_blocking<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.submit(job, move |out| {
            let _ = reply.send(out);
        })?;
        answer
            .recv()
            .map_err(|_| anyhow!("a search index job panicked"))
    }

    fn submit<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
        reply: impl FnOnce(T) + Send + 'static,
    ) -> anyhow::Result<()> {
        self.jobs
            .send(Box::new(move || reply(job())))
            .map_err(|_| anyhow!("the search index thread has stopped"))
    }
}

fn lower_priority() {
    let lowered = ThreadPriorityValue::try_from(PRIORITY).and_then(|value| {
        set_current_thread_priority(ThreadPriority::Crossplatform(value)).map_err(|e| e.to_string())
    });
    if let Err(error) = lowered {
        tracing::warn!(%error, "search index thread keeps normal priority");
    }
}
