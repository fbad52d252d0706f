//! A response body written by blocking code (an archive, NDJSON) on the blocking
//! pool: a `Write` whose chunks travel through a small bounded channel, so a slow
//! client slows the writer down instead of filling memory.

use std::io::{self, Write};

use axum::body::Body;
use bytes::Bytes;
use tokio::sync::mpsc;

/// Bytes gathered before a chunk is handed to the connection.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the writer and the connection: 1 MiB at most.
const AHEAD: usize = 16;

type Chunk = Result<Bytes, io::Error>;

/// A body produced by `produce` on the blocking pool. An error it returns after
/// the answer began cuts the body off, so the client sees an incomplete transfer,
/// never a short file that looks whole.
pub fn body<F>(what: &'static str, produce: F) -> Body
where
    F: FnOnce(&mut ChannelWriter) -> io::Result<()> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Chunk>(AHEAD);
    tokio::task::spawn_blocking(move || {
        let mut writer = ChannelWriter {
            tx,
            buffer: Vec::with_capacity(CHUNK),
        };
        let result = produce(&mut writer).and_then(|()| writer.flush());
        if let Err(error) = result {
            if error.kind() != io::ErrorKind::BrokenPipe {
                tracing::error!(%error, "{what} failed while streaming");
            }
            let _ = writer.tx.blocking_send(Err(error));
        }
    });
    Body::from_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

pub struct ChannelWriter {
    tx: mpsc::Sender<Chunk>,
    buffer: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}
