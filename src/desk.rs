//! The learner's desk beside a live session, as the exam has it: a notepad and the tasks flagged
//! for review, kept on the server so that a reload or another browser finds them.

use app::api::{DeskView, NOTEPAD_LIMIT};

use crate::{
    domain::{Session, SessionStatus},
    sessions::Sessions,
    store::{Store, StoreError},
};

#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error("you have no started session")]
    NoSession,
    #[error("the notepad holds at most {NOTEPAD_LIMIT} characters; nothing was saved")]
    TooLong,
    #[error("there is no task {0:?}")]
    UnknownTask(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct Desk {
    store: Store,
    sessions: Sessions,
}

impl Desk {
    pub fn new(store: Store, sessions: Sessions) -> Self {
        Self { store, sessions }
    }

    async fn started(&self, user_id: &str) -> Result<Session, DeskError> {
        self.store
            .live_session_for_user(user_id)
            .await?
            .filter(|s| s.status == SessionStatus::Started)
            .ok_or(DeskError::NoSession)
    }

    pub async fn view(&self, user_id: &str) -> Result<DeskView, DeskError> {
        let session = self.started(user_id).await?;
        let (notepad, flagged) = self.store.desk(&session.id).await?;
        Ok(DeskView { notepad, flagged })
    }

    pub async fn save_notepad(&self, user_id: &str, text: &str) -> Result<(), DeskError> {
        if text.chars().count() > NOTEPAD_LIMIT {
            return Err(DeskError::TooLong);
        }
        let session = self.started(user_id).await?;
        Ok(self.store.save_notepad(&session.id, text).await?)
    }

    pub async fn flag(&self, user_id: &str, task_id: &str, flagged: bool) -> Result<(), DeskError> {
        if self.sessions.tasks().get(task_id).is_none() {
            return Err(DeskError::UnknownTask(task_id.to_owned()));
        }
        let session = self.started(user_id).await?;
        Ok(self.store.set_flag(&session.id, task_id, flagged).await?)
    }
}
