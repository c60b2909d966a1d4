//! The terminal socket. `POST /api/terminal/ticket` mints a single-use ticket for the signed-in
//! user's started session; `GET /ws/terminal?ticket=…&cols=…&rows=…` spends it and bridges the
//! socket to a TTY in the session's terminal. Binary frames carry bytes both ways; small JSON
//! text frames carry `{"type":"resize","cols":…,"rows":…}` and `{"type":"ping"}` (answered
//! `{"type":"pong"}`), `{"type":"marker","label":…}` (a chapter in the session's recording,
//! see [`crate::replays`]) and `{"type":"front"}` (the recording follows this socket's tab).
//! `tab=N` picks which of the session's shells the socket attaches to (the page's tabs). Before
//! the server closes a socket it sends
//! `{"type":"session_ended"|"signed_out"|"server_shutdown","message":…}`.
//!
//! Limits: messages and frames of at most 64 KiB, at most three open sockets per session,
//! resizes applied at most ten times a second (the last size wins), and a client that takes no
//! bytes for 10 s is dropped (its shell stays).

use std::time::{Duration, Instant};

use app::api::{
    ErrorBody, TerminalControl, TerminalNotice, TerminalTicket, TERMINAL_MESSAGE_LIMIT, TERMINAL_TABS,
};
use axum::{
    extract::{
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
        Query, State,
    },
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use futures_util::{stream::SplitSink, SinkExt, StreamExt};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{extract::CurrentUser, ApiError};
use crate::{
    replays::Tap,
    sessions::SessionError,
    store::TicketGrant,
    terminals::{CloseReason, ShellTab, TermSize, TerminalError, TerminalIo, TICKET_LIFETIME},
    AppState,
};

/// How often the server pings; a socket silent for two of these is dead.
const PING_EVERY: Duration = Duration::from_secs(20);
/// How long a closing socket waits for the client's Close in answer to ours.
const CLOSING_HANDSHAKE: Duration = Duration::from_secs(2);
/// A client that takes nothing for this long is dropped: its unread output would pile up in the
/// server's memory and hold the shell's output back.
pub const SEND_LIMIT: Duration = Duration::from_secs(10);
/// Resizes closer together than this are applied once, with the last size (a dragged window
/// sends dozens; each is an Engine API call).
const RESIZE_SETTLE: Duration = Duration::from_millis(100);
/// Open sockets a session may hold (a few tabs, not a flood of execs).
pub const SOCKETS_PER_SESSION: usize = 3;

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
    let ticket = state
        .tickets
        .mint(&TicketGrant {
            user_id: user.id,
            session_id: session.id,
        })
        .await
        .map_err(ApiError::internal)?;
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
    /// Which of the session's shells, from 1 (the default) to `TERMINAL_TABS`: the page's tabs.
    tab: Option<u8>,
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
    let grant = match state.tickets.redeem(&open.ticket).await {
        Ok(Some(grant)) => grant,
        Ok(None) => {
            return ApiError::new(StatusCode::UNAUTHORIZED, "the ticket is unknown, used or expired")
                .into_response()
        }
        Err(error) => return ApiError::internal(error).into_response(),
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
    let Some(tab) = ShellTab::new(open.tab.unwrap_or(1)) else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the terminal tab is a number from 1 to {TERMINAL_TABS}"),
        )
        .into_response();
    };
    let Some(guard) = state
        .sockets
        .register(&grant.user_id, &grant.session_id, SOCKETS_PER_SESSION)
    else {
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("this session has {SOCKETS_PER_SESSION} terminals open already; close one first"),
        )
        .into_response();
    };
    let io = match state.terminals.attach(&cluster, tab, size).await {
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
    let tap = state
        .recordings
        .tap(&grant.user_id, &grant.session_id, size)
        .await;
    let stopping = state.stopping.clone();
    let resizes = state.metrics.terminal_resizes.clone();
    let ws = ws
        .max_message_size(TERMINAL_MESSAGE_LIMIT)
        .max_frame_size(TERMINAL_MESSAGE_LIMIT);
    ws.on_upgrade(move |socket| async move {
        let reason = bridge(socket, io, tap, guard.closed.clone(), stopping, resizes).await;
        tracing::debug!(session = %grant.session_id, ?reason, "terminal socket closed");
        drop(guard);
    })
}

/// Why a bridge ended.
#[derive(Debug)]
enum Ended {
    ClientLeft,
    /// Took nothing for [`SEND_LIMIT`].
    ClientStalled,
    ShellExited,
    Silent,
    Closed(CloseReason),
    Failed(String),
}

async fn bridge(
    socket: WebSocket,
    mut io: TerminalIo,
    mut tap: Option<Tap>,
    mut closed: tokio::sync::watch::Receiver<Option<CloseReason>>,
    stopping: CancellationToken,
    resizes: prometheus_client::metrics::counter::Counter,
) -> Ended {
    let (mut to_client, mut from_client) = socket.split();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut heard = Instant::now();
    // The size to apply when `resize_at` comes; the first resize of a burst sets the time.
    let mut pending_size: Option<TermSize> = None;
    let resize_at = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(resize_at);
    let ended = loop {
        tokio::select! {
            output = io.output.next() => match output {
                Some(Ok(bytes)) => {
                    if let Some(tap) = &tap {
                        tap.output(&bytes);
                    }
                    if let Err(ended) = send(&mut to_client, Message::Binary(bytes)).await {
                        break ended;
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
                            if pending_size.replace(TermSize { cols, rows }).is_none() {
                                resize_at.as_mut().reset(tokio::time::Instant::now() + RESIZE_SETTLE);
                            }
                        }
                        Ok(TerminalControl::Marker { label }) => {
                            if let Some(tap) = &tap {
                                tap.marker(&label);
                            }
                        }
                        Ok(TerminalControl::Front) => {
                            if tap.as_ref().is_some_and(Tap::take_over) {
                                io.control.redraw().await;
                            }
                        }
                        Ok(TerminalControl::Ping) => {
                            if let Err(ended) = send(&mut to_client, notice(&TerminalNotice::Pong)).await {
                                break ended;
                            }
                        }
                        // A malformed or out-of-range control frame is ignored, not fatal.
                        Ok(TerminalControl::Resize { .. }) | Err(_) => {}
                    },
                    // An error is also a message over the size limit: the socket goes.
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break Ended::ClientLeft,
                    Some(Ok(_)) => {}
                }
            }
            () = &mut resize_at, if pending_size.is_some() => {
                if let Some(size) = pending_size.take() {
                    resizes.inc();
                    if let Some(tap) = &mut tap {
                        tap.resize(size);
                    }
                    if let Err(error) = io.control.resize(size).await {
                        tracing::warn!(%error, "resize failed");
                    }
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() > 2 * PING_EVERY {
                    break Ended::Silent;
                }
                if let Err(ended) = send(&mut to_client, Message::Ping(Default::default())).await {
                    break ended;
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
            let _ = send(&mut to_client, notice(&goodbye)).await;
            Some((reason.code(), reason.kind()))
        }
        Ended::ShellExited => Some((1000, "shell_exited")),
        Ended::Silent => Some((1001, "silent")),
        Ended::Failed(error) => {
            tracing::warn!(%error, "terminal bridge failed");
            Some((1011, "terminal_error"))
        }
        Ended::ClientLeft | Ended::ClientStalled => None,
    };
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        if send(&mut to_client, Message::Close(Some(frame))).await.is_ok() {
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

/// Sends `message`, or says why the client is gone: it left, or it took nothing for
/// [`SEND_LIMIT`].
async fn send(to_client: &mut SplitSink<WebSocket, Message>, message: Message) -> Result<(), Ended> {
    match tokio::time::timeout(SEND_LIMIT, to_client.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Ended::ClientLeft),
        Err(_) => Err(Ended::ClientStalled),
    }
}

fn notice(notice: &TerminalNotice) -> Message {
    Message::Text(serde_json::to_string(notice).unwrap_or_default().into())
}
