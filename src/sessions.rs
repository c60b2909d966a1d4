//! A practice session's life: recorded before anything is made, then its cluster, then its
//! terminal, then `started`; destroyed in the reverse order by whoever ends it first (the user, the
//! clock, an admin). Any failure on the way rolls back what was made and leaves the row `failed`
//! with the reason.

use std::{sync::Arc, time::Duration};

use chrono::Utc;

use crate::{
    clusters::{ClusterError, ClusterName, ClusterProvider, ClusterSpec},
    store::{bound_on_host, NewSession, PortRanges, Session, SessionStatus, Store, StoreError},
    terminals::{CloseReason, TerminalError, TerminalRuntime, TerminalSockets, TerminalSpec},
};

#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// `SESSION_TTL_MINUTES`: how long a session lives before its extension.
    pub ttl: Duration,
    /// `MAX_CONCURRENT_SESSIONS`: live sessions on this host at most.
    pub max_concurrent: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("you already have a session running")]
    AlreadyRunning,
    #[error("all {0} practice seats are taken; try again in a few minutes")]
    Full(usize),
    #[error("you have no session running")]
    NoSession,
    #[error("the cluster could not start: {0}")]
    Cluster(#[from] ClusterError),
    #[error("the terminal could not start: {0}")]
    Terminal(#[from] TerminalError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct Sessions {
    store: Store,
    clusters: Arc<dyn ClusterProvider>,
    terminals: Arc<dyn TerminalRuntime>,
    sockets: TerminalSockets,
    settings: Arc<SessionSettings>,
    ports: Arc<PortRanges>,
}

impl Sessions {
    pub fn new(
        store: Store,
        clusters: Arc<dyn ClusterProvider>,
        terminals: Arc<dyn TerminalRuntime>,
        sockets: TerminalSockets,
        settings: SessionSettings,
        ports: PortRanges,
    ) -> Self {
        Self {
            store,
            clusters,
            terminals,
            sockets,
            settings: Arc::new(settings),
            ports: Arc::new(ports),
        }
    }

    /// Starts a session for the user and returns it `started`.
    pub async fn start(&self, user_id: &str) -> Result<Session, SessionError> {
        if self.store.live_session_for_user(user_id).await?.is_some() {
            return Err(SessionError::AlreadyRunning);
        }
        let cap = self.settings.max_concurrent;
        if self.store.count_live_sessions().await? >= cap as i64 {
            return Err(SessionError::Full(cap));
        }
        let name = ClusterName::generate();
        let start_time = Utc::now();
        let ttl = chrono::Duration::from_std(self.settings.ttl).unwrap_or(chrono::Duration::hours(1));
        let session = self
            .store
            .insert_session(NewSession {
                user_id,
                cluster_name: name.as_str(),
                start_time,
                expires_at: start_time + ttl,
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => SessionError::AlreadyRunning,
                other => other.into(),
            })?;
        match self.provision(&session, &name).await {
            Ok(()) => Ok(self.store.session_by_id(&session.id).await?.unwrap_or(session)),
            Err(error) => {
                tracing::warn!(session = %session.id, %error, "start failed; rolling back");
                self.destroy(&session, SessionStatus::Failed, &format!("start failed: {error}"))
                    .await;
                Err(error)
            }
        }
    }

    async fn provision(&self, session: &Session, name: &ClusterName) -> Result<(), SessionError> {
        let ports = self
            .store
            .allocate_ports(&session.id, &self.ports, bound_on_host)
            .await?;
        let cluster = self
            .clusters
            .create(&ClusterSpec {
                name: name.clone(),
                ports,
            })
            .await?;
        self.terminals
            .create(&TerminalSpec {
                cluster: name,
                network: &cluster.network,
                kubeconfig: &cluster.terminal_kubeconfig,
                session_id: &session.id,
                user_id: &session.user_id,
            })
            .await?;
        if !self
            .store
            .set_session_status(&session.id, SessionStatus::Started, "")
            .await?
        {
            // Stopped while starting: whoever stopped it could not see what we were making.
            return Err(SessionError::NoSession);
        }
        Ok(())
    }

    /// Ends the user's live session (stopped by the user).
    pub async fn stop_for_user(&self, user_id: &str) -> Result<(), SessionError> {
        let session = self
            .store
            .live_session_for_user(user_id)
            .await?
            .ok_or(SessionError::NoSession)?;
        self.destroy(&session, SessionStatus::Ended, "stopped by the user")
            .await;
        Ok(())
    }

    /// Closes sockets, removes the terminal and the cluster, releases the ports and records how
    /// it ended. Every step is idempotent; a step that fails is noted and the rest still run (the
    /// reconciler removes whatever is left).
    pub async fn destroy(&self, session: &Session, status: SessionStatus, note: &str) {
        self.sockets.close_session(&session.id, CloseReason::SessionEnded);
        let mut notes = vec![note.to_owned()];
        let name = ClusterName::parse(&session.cluster_name);
        if let Ok(name) = &name {
            if let Err(error) = self.terminals.remove(name).await {
                notes.push(format!("terminal removal failed: {error}"));
            }
            if let Err(error) = self.clusters.delete(name).await {
                notes.push(format!("cluster removal failed: {error}"));
            }
        }
        if let Err(error) = self.store.release_ports(&session.id).await {
            notes.push(format!("port release failed: {error}"));
        }
        match self
            .store
            .set_session_status(&session.id, status, &notes.join("; "))
            .await
        {
            Ok(_) => tracing::info!(session = %session.id, ?status, "session ended"),
            Err(error) => tracing::error!(session = %session.id, %error, "could not record the end"),
        }
    }
}
