//! What the edge asks about sessions beyond their lifecycle: one session by id, where its parts
//! are, the ports it holds, whether a terminal may attach to it, and whether hints may be shown.

use app::api::Routing;

use super::{SessionError, Sessions};
use crate::{
    clusters::ClusterName,
    domain::{PortSet, Session, SessionStatus},
    store::StoreError,
};

/// A recorded cluster name that does not parse is a damaged row.
fn cluster_of(session: &Session) -> Result<ClusterName, SessionError> {
    ClusterName::parse(&session.cluster_name)
        .map_err(|e| StoreError::Corrupt(format!("session {}: {e}", session.id)).into())
}

impl Sessions {
    /// Any session, live or over; [`SessionError::NoSession`] when there is none with that id.
    pub async fn find(&self, session_id: &str) -> Result<Session, SessionError> {
        self.store
            .session_by_id(session_id)
            .await?
            .ok_or(SessionError::NoSession)
    }

    /// The host ports the session's cluster holds, while it holds any.
    pub async fn ports_of(&self, session_id: &str) -> Result<Option<PortSet>, SessionError> {
        self.find(session_id).await?;
        Ok(self.store.ports_of(session_id).await?)
    }

    /// Where the session's parts are, with the network as the cluster provider names it.
    pub async fn routing(&self, session_id: &str) -> Result<Routing, SessionError> {
        let session = self.find(session_id).await?;
        let ports = self.store.ports_of(session_id).await?;
        let network = self.clusters.network_of(&cluster_of(&session)?);
        Ok(Routing {
            api_endpoint: ports.map(|p| format!("https://127.0.0.1:{}", p.api)),
            network,
            cluster: session.cluster_name,
            terminal: session.terminal_container_id,
        })
    }

    /// The cluster of a session a terminal may attach to: still started and still `user_id`'s.
    pub async fn attachable(&self, user_id: &str, session_id: &str) -> Result<ClusterName, SessionError> {
        let session = self
            .store
            .session_by_id(session_id)
            .await?
            .filter(|s| s.user_id == user_id && s.status == SessionStatus::Started)
            .ok_or(SessionError::NoSession)?;
        cluster_of(&session)
    }

    /// The user's live session if it is an exam: its tasks carry the names chosen for it, and
    /// hints are for practice (a learner with a mock exam under way gets none, as on the day).
    pub async fn exam_under_way(&self, user_id: &str) -> Result<Option<Session>, SessionError> {
        let live = self.store.live_session_for_user(user_id).await?;
        Ok(live.filter(|session| session.exam_id.is_some()))
    }
}
