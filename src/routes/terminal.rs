//! The terminal socket. `POST /api/terminal/ticket` mints a single-use ticket for the signed-in
//! user's started session; `GET /ws/terminal?ticket=…&cols=…&rows=…` spends it and bridges the
//! socket to a TTY in the session's terminal. Binary frames carry bytes both ways; small JSON
//! text frames carry `{"type":"resize","cols":…,"rows":…}` and `{"type":"ping"}` (answered
//! `{"type":"pong"}`). Before the server closes a socket it sends
//! `{"type":"session_ended"|"signed_out"|"server_shutdown","message":…}`.

use std::time::{Duration, Instant};

use app::api::{ErrorBody, TerminalControl, TerminalNotice, TerminalTicket};
use axum::{
    extract::{
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
        Query, State,
    },
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{extract::CurrentUser, ApiError};
use crate::{
    sessions::SessionError,
    terminals::{CloseReason, Grant, TermSize, TerminalError, TerminalIo, TICKET_LIFETIME},
    AppState,
};

/// How often the server pings; a socket silent for two of these is dead.
const PING_EVERY: Duration = Duration::from_secs(20);
/// How long a closing socket waits for the client's Close in answer to ours.
const CLOSING_HANDSHAKE: Duration = Duration::from_secs(2);

/// `/api/terminal/ticket`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ticket))
}

/// `/ws/terminal`.
pub fn socket() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(open))
}

/// A single-use ticket, valid for 30 seconds, to open the terminal of the user's started session.
#[utoipa::path(post, path = "/ticket", tag = "terminal", responses(
    (status = 200, body = TerminalTicket), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
))]
async fn ticket(user: CurrentUser, State(state): State<AppState>) -> Result<Json<TerminalTicket>, ApiError> {
    let session = state
        .sessions
        .started_for_user(&user.id)
        .await
        .map_err(|error| match error {
            SessionError::NoSession | SessionError::NotStarted => {
                ApiError::new(StatusCode::NOT_FOUND, "you have no started session")
            }
            error => error.into(),
        })?;
    let ticket = state.tickets.mint(Grant {
        user_id: user.id,
        session_id: session.id,
    });
    Ok(Json(TerminalTicket {
        ticket,
        expires_in: TICKET_LIFETIME.as_secs(),
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Open {
    /// From `POST /api/terminal/ticket`; spent by this request.
    ticket: String,
    /// The terminal's width (default 80).
    cols: Option<u16>,
    /// The terminal's height (default 24).
    rows: Option<u16>,
}

/// Upgrades to the terminal's WebSocket: binary frames carry bytes both ways; text frames carry
/// a `TerminalControl` from the client and a `TerminalNotice` from the server.
#[utoipa::path(get, path = "/ws/terminal", tag = "terminal", params(Open), responses(
    (status = 101, description = "Switching to the WebSocket"),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 410, body = ErrorBody), (status = 503, body = ErrorBody),
))]
pub async fn open(
    ws: WebSocketUpgrade,
    headers: HeaderMap,
    Query(open): Query<Open>,
    State(state): State<AppState>,
) -> Response {
    let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    if origin != Some(state.settings.http.public_origin.as_str()) {
        return ApiError::new(StatusCode::FORBIDDEN, "this socket opens from the site only").into_response();
    }
    let Some(grant) = state.tickets.redeem(&open.ticket) else {
        return ApiError::new(StatusCode::UNAUTHORIZED, "the ticket is unknown, used or expired")
            .into_response();
    };
    let cluster = match state.sessions.attachable(&grant.user_id, &grant.session_id).await {
        Ok(cluster) => cluster,
        Err(SessionError::NoSession) => {
            return ApiError::new(StatusCode::GONE, "the session has ended").into_response()
        }
        Err(error) => return ApiError::from(error).into_response(),
    };
    let size = TermSize {
        cols: open.cols.unwrap_or(80),
        rows: open.rows.unwrap_or(24),
    };
    if !size.is_sane() {
        return ApiError::new(StatusCode::BAD_REQUEST, "the terminal size is out of range").into_response();
    }
    let io = match state.terminals.attach(&cluster, size).await {
        Ok(io) => io,
        // Ended between the ticket and now: its terminal is gone.
        Err(TerminalError::NotFound(_)) => {
            return ApiError::new(StatusCode::GONE, "the session has ended").into_response()
        }
        // A stopped terminal was started again by `attach`; one that still cannot run is the
        // engine's trouble, said as such (never a 500), and the reconciler fails its session.
        Err(error) => {
            tracing::warn!(session = %grant.session_id, %error, "the terminal cannot be attached");
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the terminal is not available right now; try again in a moment",
            )
            .into_response();
        }
    };
    let guard = state.sockets.register(&grant.user_id, &grant.session_id);
    let stopping = state.stopping.clone();
    ws.on_upgrade(move |socket| async move {
        let reason = bridge(socket, io, guard.closed.clone(), stopping).await;
        tracing::debug!(session = %grant.session_id, ?reason, "terminal socket closed");
        drop(guard);
    })
}

/// Why a bridge ended.
#[derive(Debug)]
enum Ended {
    ClientLeft,
    ShellExited,
    Silent,
    Closed(CloseReason),
    Failed(String),
}

async fn bridge(
    socket: WebSocket,
    mut io: TerminalIo,
    mut closed: tokio::sync::watch::Receiver<Option<CloseReason>>,
    stopping: CancellationToken,
) -> Ended {
    let (mut to_client, mut from_client) = socket.split();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut heard = Instant::now();
    let ended = loop {
        tokio::select! {
            output = io.output.next() => match output {
                Some(Ok(bytes)) => {
                    if to_client.send(Message::Binary(bytes)).await.is_err() {
                        break Ended::ClientLeft;
                    }
                }
                Some(Err(error)) => break Ended::Failed(error.to_string()),
                None => break Ended::ShellExited,
            },
            message = from_client.next() => {
                heard = Instant::now();
                match message {
                    Some(Ok(Message::Binary(keys))) => {
                        if let Err(error) = io.input.write_all(&keys).await {
                            break Ended::Failed(error.to_string());
                        }
                    }
                    Some(Ok(Message::Text(text))) => match serde_json::from_str::<TerminalControl>(&text) {
                        Ok(TerminalControl::Resize { cols, rows }) if (TermSize { cols, rows }).is_sane() => {
                            if let Err(error) = io.control.resize(TermSize { cols, rows }).await {
                                tracing::warn!(%error, "resize failed");
                            }
                        }
                        Ok(TerminalControl::Ping) => {
                            if to_client.send(notice(&TerminalNotice::Pong)).await.is_err() {
                                break Ended::ClientLeft;
                            }
                        }
                        // A malformed or out-of-range control frame is ignored, not fatal.
                        Ok(TerminalControl::Resize { .. }) | Err(_) => {}
                    },
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break Ended::ClientLeft,
                    Some(Ok(_)) => {}
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() > 2 * PING_EVERY {
                    break Ended::Silent;
                }
                if to_client.send(Message::Ping(Default::default())).await.is_err() {
                    break Ended::ClientLeft;
                }
            }
            Ok(()) = closed.changed() => {
                if let Some(reason) = *closed.borrow() {
                    break Ended::Closed(reason);
                }
            }
            () = stopping.cancelled() => break Ended::Closed(CloseReason::ServerShutdown),
        }
    };
    if !matches!(ended, Ended::ShellExited) {
        io.control.detach().await;
    }
    let close = match &ended {
        Ended::Closed(reason) => {
            let message = reason.message().to_owned();
            let goodbye = match reason {
                CloseReason::SessionEnded => TerminalNotice::SessionEnded { message },
                CloseReason::SignedOut => TerminalNotice::SignedOut { message },
                CloseReason::ServerShutdown => TerminalNotice::ServerShutdown { message },
            };
            let _ = to_client.send(notice(&goodbye)).await;
            Some((reason.code(), reason.kind()))
        }
        Ended::ShellExited => Some((1000, "shell_exited")),
        Ended::Silent => Some((1001, "silent")),
        Ended::Failed(error) => {
            tracing::warn!(%error, "terminal bridge failed");
            Some((1011, "terminal_error"))
        }
        Ended::ClientLeft => None,
    };
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        if to_client.send(Message::Close(Some(frame))).await.is_ok() {
            // The closing handshake: wait (briefly) for the client's Close, so that the socket is
            // not dropped with unread bytes, which resets the connection and loses our frames.
            let drained = async {
                while let Some(Ok(message)) = from_client.next().await {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(CLOSING_HANDSHAKE, drained).await;
        }
    }
    ended
}

fn notice(notice: &TerminalNotice) -> Message {
    Message::Text(serde_json::to_string(notice).unwrap_or_default().into())
}
