//! The search index's own thread: document building, commits and dropping writers
//! run here, off the async executor. tantivy starts its indexing thread from the
//! thread that commits and its merge threads from the one that makes the writer.
//!
//! It runs at normal priority. At niceness 10 the whole pipeline took 10–20 % more
//! deliveries/s on a saturated 2-core host, but the index starved for as long as
//! the CPU stayed busy (20–30 s behind under the parallel test suite, and a host
//! busy with anything else would do the same to search), so it was taken out.

use anyhow::anyhow;

type Job = Box<dyn FnOnce() + Send>;

pub struct Background {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Background {
    pub fn start() -> std::io::Result<Self> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("search-index".into())
            .spawn(move || {
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
