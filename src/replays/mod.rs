//! Terminal recordings: what a session's terminal showed, as an asciicast v2 file
//! (`<state>/replays/<user>/<session>.cast`) that asciinema-player plays back, with a marker
//! (`"m"`, a chapter in the player) whenever the learner switches task or presses Check.
//!
//! Recording must cost the learner nothing: the bridge hands each chunk to a bounded channel
//! (`try_send`, never waiting) and a writer task of the session does the encoding and the disk.
//! A writer that falls behind loses the recording, never the terminal. A session's file stops
//! growing at `REPLAY_MAX_BYTES`; files older than `REPLAY_RETENTION_DAYS`, or whose session is
//! gone from the database (its user deleted), are removed by [`Recordings::sweep`].
//!
//! One socket of a session at a time records its output: the first to speak, or the one whose
//! tab the learner brought to the front (each terminal tab is a shell of its own); another
//! takes over when it closes.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Weak,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use app::api::{CastEvent, CastHeader};
use bytes::Bytes;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufWriter},
    sync::mpsc,
};

use crate::{store::Store, terminals::TermSize};

/// `REPLAY_*`: whether practice is recorded (exams always are), how long files are kept and
/// how large one may grow.
#[derive(Debug, Clone)]
pub struct ReplaySettings {
    pub practice: bool,
    pub retention: Duration,
    pub max_bytes: u64,
}

impl Default for ReplaySettings {
    fn default() -> Self {
        Self {
            practice: true,
            retention: Duration::from_secs(30 * 24 * 3600),
            max_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Chunks waiting for the writer; a writer this far behind has lost the race.
const QUEUE: usize = 1024;
/// The writer flushes after this much quiet, so a file read during a session is nearly current.
const FLUSH_AFTER: Duration = Duration::from_millis(500);
/// The longest marker label kept (a task title, "Check: …").
const LABEL_LIMIT: usize = 80;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// No such recording, or not the asker's: the same answer, so that ids reveal nothing.
    #[error("there is no recording of this session")]
    NotFound,
    #[error("the recording cannot be read: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Who asks for a recording.
pub struct Viewer<'a> {
    pub user_id: &'a str,
    pub admin: bool,
}

#[derive(Clone)]
pub struct Recordings {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    settings: ReplaySettings,
    store: Store,
    /// The sessions recorded since the server started.
    slots: tokio::sync::Mutex<HashMap<String, Slot>>,
    next_tap: AtomicU64,
}

/// A session's recording across its sockets: when its clock started, the writer while a socket
/// is open, and the file's lock (a closing writer finishes before the next appends).
struct Slot {
    origin: Instant,
    live: Weak<Recording>,
    file: Arc<tokio::sync::Mutex<()>>,
}

struct Recording {
    events: mpsc::Sender<Event>,
    origin: Instant,
    /// The tap whose output is recorded; 0 when none.
    owner: AtomicU64,
    /// Set when the recording has stopped (behind, or full): taps send nothing more.
    stopped: Arc<AtomicBool>,
}

#[derive(Debug)]
enum Event {
    Output(Duration, Bytes),
    Resize(Duration, TermSize),
    Marker(Duration, String),
}

/// One socket's end of its session's recording. Every call returns at once.
pub struct Tap {
    id: u64,
    size: TermSize,
    recording: Arc<Recording>,
}

impl Tap {
    fn send(&self, event: Event) {
        if self.recording.stopped.load(Ordering::Relaxed) {
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(_)) = self.recording.events.try_send(event) {
            self.recording.stopped.store(true, Ordering::Relaxed);
            tracing::warn!("the recording fell behind the terminal and stops");
        }
    }

    fn at(&self) -> Duration {
        self.recording.origin.elapsed()
    }

    /// What the shell printed, if this socket is the one recording.
    pub fn output(&self, bytes: &Bytes) {
        let owner = &self.recording.owner;
        if owner.load(Ordering::Relaxed) != self.id {
            if owner
                .compare_exchange(0, self.id, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                return;
            }
            self.follow_size();
        }
        self.send(Event::Output(self.at(), bytes.clone()));
    }

    /// This socket's tab came to the front: the recording follows it from here. Whether it was
    /// following another (then this screen must be drawn again for the recording).
    pub fn take_over(&self) -> bool {
        let taken = self.recording.owner.swap(self.id, Ordering::AcqRel) != self.id;
        if taken {
            self.follow_size();
        }
        taken
    }

    /// Taking over: the player follows this socket's size from here.
    fn follow_size(&self) {
        self.send(Event::Resize(self.at(), self.size));
    }

    pub fn resize(&mut self, size: TermSize) {
        self.size = size;
        if self.recording.owner.load(Ordering::Relaxed) == self.id {
            self.send(Event::Resize(self.at(), size));
        }
    }

    /// A chapter: the learner switched task or pressed Check.
    pub fn marker(&self, label: &str) {
        let label: String = label
            .chars()
            .filter(|c| !c.is_control())
            .take(LABEL_LIMIT)
            .collect();
        self.send(Event::Marker(self.at(), label));
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        let _ = self
            .recording
            .owner
            .compare_exchange(self.id, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// Session and user ids are UUID text; anything else never becomes a path.
fn is_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl Recordings {
    pub fn new(dir: PathBuf, settings: ReplaySettings, store: Store) -> Self {
        Self {
            inner: Arc::new(Inner {
                dir,
                settings,
                store,
                slots: Default::default(),
                next_tap: AtomicU64::new(1),
            }),
        }
    }

    fn path(&self, user_id: &str, session_id: &str) -> Option<PathBuf> {
        (is_id(user_id) && is_id(session_id))
            .then(|| self.inner.dir.join(user_id).join(format!("{session_id}.cast")))
    }

    /// A tap for a socket opening on the session, or `None` when the session is not recorded
    /// (practice with recording off) or the recording cannot be set up (logged: the terminal
    /// works without it).
    pub async fn tap(&self, user_id: &str, session_id: &str, size: TermSize) -> Option<Tap> {
        let recorded = match self.inner.store.session_by_id(session_id).await {
            Ok(Some(session)) => session.exam_id.is_some() || self.inner.settings.practice,
            Ok(None) => false,
            Err(error) => {
                tracing::warn!(%error, "the recording cannot start");
                false
            }
        };
        let path = self.path(user_id, session_id).filter(|_| recorded)?;
        let mut slots = self.inner.slots.lock().await;
        let recording = match slots.get(session_id).and_then(|slot| slot.live.upgrade()) {
            Some(recording) => recording,
            None => {
                let (origin, file) = match slots.get(session_id) {
                    Some(slot) => (slot.origin, slot.file.clone()),
                    None => (
                        origin_of(&path).await.unwrap_or_else(Instant::now),
                        Arc::default(),
                    ),
                };
                let (events, queue) = mpsc::channel(QUEUE);
                let recording = Arc::new(Recording {
                    events,
                    origin,
                    owner: AtomicU64::new(0),
                    stopped: Arc::default(),
                });
                tokio::spawn(write(Writer {
                    path,
                    size,
                    origin,
                    file: file.clone(),
                    cap: self.inner.settings.max_bytes,
                    stopped: recording.stopped.clone(),
                    queue,
                }));
                slots.insert(
                    session_id.to_owned(),
                    Slot {
                        origin,
                        live: Arc::downgrade(&recording),
                        file,
                    },
                );
                recording
            }
        };
        Some(Tap {
            id: self.inner.next_tap.fetch_add(1, Ordering::Relaxed),
            size,
            recording,
        })
    }

    /// The recording of a session, for its learner or an administrator.
    pub async fn cast(&self, viewer: &Viewer<'_>, session_id: &str) -> Result<Vec<u8>, ReplayError> {
        let session = self
            .inner
            .store
            .session_by_id(session_id)
            .await?
            .filter(|s| viewer.admin || s.user_id == viewer.user_id)
            .ok_or(ReplayError::NotFound)?;
        let path = self
            .path(&session.user_id, &session.id)
            .ok_or(ReplayError::NotFound)?;
        match tokio::fs::read(&path).await {
            Ok(cast) => Ok(cast),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(ReplayError::NotFound),
            Err(error) => Err(error.into()),
        }
    }

    /// Removes recordings past their retention and those whose session is gone (a deleted
    /// user's); what it removed.
    pub async fn sweep(&self) -> Result<usize, ReplayError> {
        let mut removed = 0;
        let mut users = match tokio::fs::read_dir(&self.inner.dir).await {
            Ok(users) => users,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(error) => return Err(error.into()),
        };
        let now = SystemTime::now();
        while let Some(user) = users.next_entry().await? {
            let mut files = tokio::fs::read_dir(user.path()).await?;
            let mut left = 0;
            while let Some(file) = files.next_entry().await? {
                let session_id = file
                    .file_name()
                    .to_string_lossy()
                    .trim_end_matches(".cast")
                    .to_owned();
                let age = file
                    .metadata()
                    .await?
                    .modified()
                    .ok()
                    .and_then(|modified| now.duration_since(modified).ok())
                    .unwrap_or_default();
                let recording_now = self
                    .inner
                    .slots
                    .lock()
                    .await
                    .get(&session_id)
                    .is_some_and(|slot| slot.live.strong_count() > 0);
                let gone = self.inner.store.session_by_id(&session_id).await?.is_none();
                if !recording_now && (gone || age > self.inner.settings.retention) {
                    tokio::fs::remove_file(file.path()).await?;
                    self.inner.slots.lock().await.remove(&session_id);
                    removed += 1;
                } else {
                    left += 1;
                }
            }
            if left == 0 {
                // A recording that starts meanwhile makes the folder again.
                let _ = tokio::fs::remove_dir(user.path()).await;
            }
        }
        Ok(removed)
    }

    /// Sweeps every `every` until `stopping`.
    pub async fn keep_tidy(self, every: Duration, stopping: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => match self.sweep().await {
                    Ok(0) => {}
                    Ok(removed) => tracing::info!(removed, "old recordings removed"),
                    Err(error) => tracing::warn!(%error, "recordings could not be swept"),
                },
                () = stopping.cancelled() => return,
            }
        }
    }
}

/// The clock of a recording already on disk (the server restarted meanwhile), from its header.
async fn origin_of(path: &Path) -> Option<Instant> {
    let file = tokio::fs::File::open(path).await.ok()?;
    let mut header = String::new();
    tokio::io::BufReader::new(file)
        .read_line(&mut header)
        .await
        .ok()?;
    let started = serde_json::from_str::<CastHeader>(&header).ok()?.timestamp;
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH + Duration::from_secs(started))
        .ok()?;
    Instant::now().checked_sub(since)
}

struct Writer {
    path: PathBuf,
    size: TermSize,
    origin: Instant,
    file: Arc<tokio::sync::Mutex<()>>,
    cap: u64,
    stopped: Arc<AtomicBool>,
    queue: mpsc::Receiver<Event>,
}

async fn write(writer: Writer) {
    let path = writer.path.clone();
    if let Err(error) = try_write(writer).await {
        tracing::warn!(%error, path = %path.display(), "the recording could not be written");
    }
}

async fn try_write(mut writer: Writer) -> std::io::Result<()> {
    let _one_writer = writer.file.lock().await;
    if let Some(folder) = writer.path.parent() {
        tokio::fs::create_dir_all(folder).await?;
    }
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&writer.path)
        .await?;
    let mut written = file.metadata().await?.len();
    let mut out = BufWriter::new(file);
    if written == 0 {
        let started = SystemTime::now()
            .checked_sub(writer.origin.elapsed())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        let header = CastHeader {
            version: 2,
            width: writer.size.cols,
            height: writer.size.rows,
            timestamp: started.as_secs(),
            env: [("TERM".to_owned(), "xterm-256color".to_owned())].into(),
        };
        let line = format!("{}\n", serde_json::to_string(&header)?);
        out.write_all(line.as_bytes()).await?;
        written += line.len() as u64;
    }
    // Bytes of a character split between two chunks, kept for the next.
    let mut partial = Vec::new();
    let mut last = Duration::ZERO;
    loop {
        let event = match tokio::time::timeout(FLUSH_AFTER, writer.queue.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => break,
            Err(_) => {
                out.flush().await?;
                continue;
            }
        };
        let (at, code, data) = match event {
            Event::Output(at, bytes) => (at, "o", decode(&mut partial, &bytes)),
            Event::Resize(at, size) => (at, "r", format!("{}x{}", size.cols, size.rows)),
            Event::Marker(at, label) => (at, "m", label),
        };
        // The file's clock never runs back (two sockets' events can cross in the queue).
        last = last.max(at);
        let line = event_line(last, code, &data);
        if written + line.len() as u64 > writer.cap {
            writer.stopped.store(true, Ordering::Relaxed);
            let end = event_line(last, "m", "Recording stopped: size limit reached");
            out.write_all(end.as_bytes()).await?;
            break;
        }
        out.write_all(line.as_bytes()).await?;
        written += line.len() as u64;
        if writer.stopped.load(Ordering::Relaxed) {
            let end = event_line(last, "m", "Recording stopped: the server fell behind");
            out.write_all(end.as_bytes()).await?;
            break;
        }
    }
    out.flush().await?;
    out.into_inner().sync_data().await
}

fn event_line(at: Duration, code: &str, data: &str) -> String {
    // Microseconds, as asciinema writes them.
    let seconds = (at.as_secs_f64() * 1e6).round() / 1e6;
    let event = CastEvent(seconds, code.to_owned(), data.to_owned());
    format!("{}\n", serde_json::to_string(&event).unwrap_or_default())
}

/// The text of `chunk` after what `partial` held; an incomplete character at its end waits in
/// `partial` for the next chunk, and invalid bytes become U+FFFD.
fn decode(partial: &mut Vec<u8>, chunk: &[u8]) -> String {
    partial.extend_from_slice(chunk);
    let complete = match std::str::from_utf8(partial) {
        Ok(_) => partial.len(),
        // At most three bytes can start a character still arriving.
        Err(error) if error.error_len().is_none() => error.valid_up_to(),
        Err(_) => partial.len(),
    };
    let rest = partial.split_off(complete);
    let text = String::from_utf8_lossy(partial).into_owned();
    *partial = rest;
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_split_between_chunks_is_written_whole() {
        let mut partial = Vec::new();
        let snowman = "☃".as_bytes();
        assert_eq!(decode(&mut partial, &[b'a', snowman[0]]), "a");
        assert_eq!(decode(&mut partial, &snowman[1..]), "☃");
        assert_eq!(decode(&mut partial, b"\xffb"), "\u{fffd}b");
        assert!(partial.is_empty());
    }

    #[test]
    fn events_are_asciicast_lines() {
        assert_eq!(
            event_line(Duration::from_millis(1500), "o", "a\"\r\n"),
            "[1.5,\"o\",\"a\\\"\\r\\n\"]\n"
        );
    }

    #[test]
    fn only_ids_become_paths() {
        assert!(is_id("0b9d7a6e-5a34-4e0c-9a9e-2f4c1f0b8f11"));
        assert!(!is_id("../etc"));
        assert!(!is_id(""));
    }
}
