//! The acknowledgement log: an append-only file log under `<data>/log/` that a
//! delivery is written to, and made durable with one `fdatasync` per batch, before it
//! is acknowledged. Everything else follows it: the store applies its frames to redb
//! in large transactions and records, in its own durable commits, the sequence number
//! it has applied through; on start, frames after that are applied again.
//!
//! Segments are files named by the sequence number of their first frame
//! (`00000000000000000001.log`). A frame is `len: u32 | crc32: u32 | seq: u64 | payload`,
//! little-endian, the CRC over `seq` and the payload. A short or CRC-failing frame
//! at the end of the last segment is a write torn by a crash (never acknowledged:
//! its batch was not yet synced) and is cut off; one anywhere else is corruption and
//! stops the opening, since it may hold acknowledged deliveries.
//!
//! This module knows files and frames only; what a payload means is the store's.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The default size past which a segment is closed and a new one begun. Segments
/// are deleted whole once the store has applied them durably, so this bounds the
/// disk the log keeps beyond what the store already holds.
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// Larger frames are refused when read: a length beyond it is corruption (a delivery
/// is at most 25 MiB before compression).
const MAX_FRAME: u32 = 64 << 20;

const HEADER: usize = 16;
const EXTENSION: &str = "log";

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log i/o on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "the acknowledgement log is corrupt at {path} byte {offset}: {problem}; it may hold \
         acknowledged deliveries, so hookvault will not start over it (move the file aside \
         only if you accept losing what it holds)"
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        problem: String,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One frame read back: its sequence number and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub seq: u64,
    pub payload: Vec<u8>,
}

/// What opening found.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Frames after the given position, in order.
    pub frames: Vec<Frame>,
    /// Bytes cut off the end of the last segment (a torn, unacknowledged write).
    pub torn_bytes: u64,
}

struct Segment {
    path: PathBuf,
    first_seq: u64,
    /// Highest seq written to it (0 while empty).
    last_seq: u64,
}

/// The open log, owned by one writer thread.
pub struct Log {
    dir: PathBuf,
    /// Closed segments, oldest first.
    closed: Vec<Segment>,
    current: Segment,
    file: File,
    len: u64,
    segment_bytes: u64,
    buffer: Vec<u8>,
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.{EXTENSION}"))
}

fn encode_frame(out: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&seq.to_le_bytes());
    crc.update(payload);
    let len = u32::try_from(payload.len()).expect("a frame under 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Reads every whole frame of `bytes`; returns them and where the good part ends,
/// with the reason it ended early, if it did.
fn decode_frames(bytes: &[u8]) -> (Vec<Frame>, usize, Option<String>) {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let Some(header) = bytes.get(at..at + HEADER) else {
            return (frames, at, Some("a frame header is cut short".into()));
        };
        let word = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().expect("4 bytes"));
        let (len, crc) = (word(0), word(4));
        let seq = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
        if len > MAX_FRAME {
            return (frames, at, Some(format!("a frame claims {len} bytes")));
        }
        let Some(payload) = bytes.get(at + HEADER..at + HEADER + len as usize) else {
            return (frames, at, Some("a frame is cut short".into()));
        };
        let mut check = crc32fast::Hasher::new();
        check.update(&seq.to_le_bytes());
        check.update(payload);
        if check.finalize() != crc {
            return (frames, at, Some("a frame fails its checksum".into()));
        }
        frames.push(Frame {
            seq,
            payload: payload.to_vec(),
        });
        at += HEADER + len as usize;
    }
    (frames, at, None)
}

impl Log {
    /// Opens (or creates) the log in `dir`, cuts a torn tail, and returns the frames
    /// with a seq above `after`. `next_seq` names the first segment of a new log.
    pub fn open(
        dir: &Path,
        after: u64,
        next_seq: u64,
        segment_bytes: u64,
    ) -> Result<(Self, Recovered), LogError> {
        // Owner only, whatever the umask: the segments hold every payload.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_error(dir))?;
        let firsts = segment_firsts(dir)?;

        let mut recovered = Recovered::default();
        let mut segments = Vec::new();
        let count = firsts.len();
        for (i, first_seq) in firsts.into_iter().enumerate() {
            let path = segment_path(dir, first_seq);
            let mut bytes = Vec::new();
            File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .map_err(io_error(&path))?;
            let (frames, good, problem) = decode_frames(&bytes);
            if let Some(problem) = problem {
                if i + 1 < count {
                    return Err(LogError::Corrupt {
                        path,
                        offset: good as u64,
                        problem,
                    });
                }
                // The last segment: what follows the last good frame was being
                // written when the process died, and was never acknowledged.
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io_error(&path))?;
                file.set_len(good as u64).map_err(io_error(&path))?;
                file.sync_all().map_err(io_error(&path))?;
                recovered.torn_bytes = (bytes.len() - good) as u64;
            }
            let last_seq = frames.last().map_or(0, |f| f.seq);
            recovered
                .frames
                .extend(frames.into_iter().filter(|f| f.seq > after));
            segments.push(Segment {
                path,
                first_seq,
                last_seq,
            });
        }
        let current = match segments.pop() {
            Some(segment) => segment,
            None => Segment {
                path: segment_path(dir, next_seq),
                first_seq: next_seq,
                last_seq: 0,
            },
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&current.path)
            .map_err(io_error(&current.path))?;
        let len = file.metadata().map_err(io_error(&current.path))?.len();
        sync_dir(dir)?;
        let log = Self {
            dir: dir.to_owned(),
            closed: segments,
            current,
            file,
            len,
            segment_bytes,
            buffer: Vec::new(),
        };
        Ok((log, recovered))
    }

    /// Appends frames and makes them durable with one `fdatasync`. On an error
    /// nothing of the batch counts: the file is cut back to where it was.
    pub fn append<'p>(
        &mut self,
        frames: impl IntoIterator<Item = (u64, &'p [u8])>,
    ) -> Result<(), LogError> {
        if self.len >= self.segment_bytes {
            self.rotate()?;
        }
        self.buffer.clear();
        let mut last_seq = self.current.last_seq;
        for (seq, payload) in frames {
            encode_frame(&mut self.buffer, seq, payload);
            last_seq = seq;
        }
        let written = self
            .file
            .write_all(&self.buffer)
            .and_then(|()| self.file.sync_data());
        if let Err(source) = written {
            // A partial write (disk full) must not stay in front of later frames.
            let _ = self.file.set_len(self.len);
            return Err(LogError::Io {
                path: self.current.path.clone(),
                source,
            });
        }
        self.len += self.buffer.len() as u64;
        self.current.last_seq = last_seq;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), LogError> {
        let first_seq = self.current.last_seq + 1;
        let path = segment_path(&self.dir, first_seq);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_error(&path))?;
        sync_dir(&self.dir)?;
        let closed = std::mem::replace(
            &mut self.current,
            Segment {
                path,
                first_seq,
                last_seq: 0,
            },
        );
        self.closed.push(closed);
        self.file = file;
        self.len = 0;
        Ok(())
    }

    /// Deletes the closed segments whose every frame has a seq at or below
    /// `durable` (applied by the store and made durable there).
    pub fn remove_through(&mut self, durable: u64) -> Result<usize, LogError> {
        let done = self
            .closed
            .iter()
            .take_while(|s| s.last_seq <= durable)
            .count();
        for segment in self.closed.drain(..done) {
            fs::remove_file(&segment.path).map_err(io_error(&segment.path))?;
        }
        Ok(done)
    }

    /// Bytes on disk, over all segments.
    pub fn bytes(&self) -> u64 {
        let closed: u64 = self
            .closed
            .iter()
            .filter_map(|s| fs::metadata(&s.path).ok())
            .map(|m| m.len())
            .sum();
        closed + self.len
    }

    pub fn segments(&self) -> usize {
        self.closed.len() + 1
    }

    /// The first seq the current segment was opened for (for tests).
    pub fn current_first_seq(&self) -> u64 {
        self.current.first_seq
    }
}

/// The frames with a seq above `after`, read without changing anything (for a
/// reader beside the writer: a frame being written ends the reading).
pub fn read_after(dir: &Path, after: u64) -> Result<Vec<Frame>, LogError> {
    let mut frames = Vec::new();
    for first in segment_firsts(dir)? {
        let path = segment_path(dir, first);
        let bytes = fs::read(&path).map_err(io_error(&path))?;
        let (found, _, problem) = decode_frames(&bytes);
        frames.extend(found.into_iter().filter(|f| f.seq > after));
        if problem.is_some() {
            break;
        }
    }
    Ok(frames)
}

/// The first seqs of the segments in `dir`, in order.
fn segment_firsts(dir: &Path) -> Result<Vec<u64>, LogError> {
    let mut firsts: Vec<u64> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        let first: Option<u64> = path
            .extension()
            .filter(|e| *e == EXTENSION)
            .and_then(|_| path.file_stem()?.to_str()?.parse().ok());
        firsts.extend(first);
    }
    firsts.sort_unstable();
    Ok(firsts)
}

/// Makes a created or removed file name durable.
fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payloads(range: std::ops::RangeInclusive<u64>) -> Vec<(u64, Vec<u8>)> {
        range
            .map(|seq| (seq, format!("delivery {seq}").into_bytes()))
            .collect()
    }

    fn append(log: &mut Log, frames: &[(u64, Vec<u8>)]) {
        log.append(frames.iter().map(|(s, p)| (*s, p.as_slice())))
            .unwrap();
    }

    #[test]
    fn frames_after_the_position_come_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, recovered) = Log::open(dir.path(), 0, 1, SEGMENT_BYTES).unwrap();
        assert!(recovered.frames.is_empty());
        append(&mut log, &payloads(1..=3));
        append(&mut log, &payloads(4..=5));
        drop(log);
        let (_, recovered) = Log::open(dir.path(), 2, 6, SEGMENT_BYTES).unwrap();
        let seqs: Vec<u64> = recovered.frames.iter().map(|f| f.seq).collect();
        assert_eq!(seqs, [3, 4, 5]);
        assert_eq!(recovered.frames[0].payload, b"delivery 3");
        assert_eq!(recovered.torn_bytes, 0);
    }

    #[test]
    fn a_torn_tail_is_cut_and_the_log_goes_on_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(dir.path(), 0, 1, SEGMENT_BYTES).unwrap();
        append(&mut log, &payloads(1..=2));
        let path = log.current.path.clone();
        drop(log);
        let whole = fs::metadata(&path).unwrap().len();
        // A crash in the middle of the next batch: half a frame on disk.
        let mut torn = Vec::new();
        encode_frame(&mut torn, 3, b"never acknowledged");
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&torn[..torn.len() / 2]).unwrap();
        drop(file);

        let (mut log, recovered) = Log::open(dir.path(), 0, 3, SEGMENT_BYTES).unwrap();
        assert_eq!(recovered.frames.len(), 2);
        assert_eq!(recovered.torn_bytes, (torn.len() / 2) as u64);
        assert_eq!(fs::metadata(&path).unwrap().len(), whole);
        append(&mut log, &payloads(3..=3));
        drop(log);
        let (_, recovered) = Log::open(dir.path(), 0, 4, SEGMENT_BYTES).unwrap();
        assert_eq!(recovered.frames.len(), 3);
    }

    #[test]
    fn a_bad_frame_before_the_last_segment_stops_the_opening() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(dir.path(), 0, 1, SEGMENT_BYTES).unwrap();
        append(&mut log, &payloads(1..=2));
        let first = log.current.path.clone();
        log.rotate().unwrap();
        append(&mut log, &payloads(3..=3));
        drop(log);
        let mut bytes = fs::read(&first).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff; // a flipped bit in an acknowledged frame
        fs::write(&first, bytes).unwrap();
        let error = Log::open(dir.path(), 0, 4, SEGMENT_BYTES)
            .err()
            .expect("refused");
        assert!(matches!(error, LogError::Corrupt { .. }), "{error}");
        assert!(error.to_string().contains("checksum"), "{error}");
    }

    #[test]
    fn segments_are_removed_once_applied_durably() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(dir.path(), 0, 1, SEGMENT_BYTES).unwrap();
        append(&mut log, &payloads(1..=2));
        log.rotate().unwrap();
        append(&mut log, &payloads(3..=4));
        log.rotate().unwrap();
        append(&mut log, &payloads(5..=5));
        assert_eq!(log.segments(), 3);
        assert_eq!(
            log.remove_through(1).unwrap(),
            0,
            "seq 2 is not applied yet"
        );
        assert_eq!(log.remove_through(3).unwrap(), 1);
        assert_eq!(log.remove_through(9).unwrap(), 1, "the current one stays");
        assert_eq!(log.segments(), 1);
        drop(log);
        let (_, recovered) = Log::open(dir.path(), 4, 6, SEGMENT_BYTES).unwrap();
        let seqs: Vec<u64> = recovered.frames.iter().map(|f| f.seq).collect();
        assert_eq!(seqs, [5]);
    }

    #[test]
    fn a_reader_beside_the_writer_sees_what_is_synced() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(dir.path(), 0, 1, 64).unwrap();
        append(&mut log, &payloads(1..=3)); // past 64 bytes: the next append rotates
        append(&mut log, &payloads(4..=5));
        let seqs: Vec<u64> = read_after(dir.path(), 2)
            .unwrap()
            .iter()
            .map(|f| f.seq)
            .collect();
        assert_eq!(seqs, [3, 4, 5]);
        assert_eq!(log.segments(), 2);
    }

    #[test]
    fn a_failed_append_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(dir.path(), 0, 1, SEGMENT_BYTES).unwrap();
        append(&mut log, &payloads(1..=1));
        let before = log.len;
        // Stand-in for a full disk: the file is read-only underneath the log.
        log.file = File::open(&log.current.path).unwrap();
        assert!(log.append([(2, &b"x"[..])]).is_err());
        assert_eq!(fs::metadata(&log.current.path).unwrap().len(), before);
    }
}
