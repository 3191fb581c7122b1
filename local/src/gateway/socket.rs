//! An open connection: frames in go to their route ([`super::messages`]), posts from the
//! Management API go out, limits end it; then `$disconnect` with the real close code and reason.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use chrono::Utc;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::{Error as WsError, error::CapacityError};

use super::messages::route;
use super::registry::{Connection, Outbound};
use crate::events::Handshake;
use crate::http;
use crate::state::App;

/// Why a connection ended: what `$disconnect` reports.
type Ending = (u16, String);

const GOING_AWAY: u16 = 1001;
const MESSAGE_TOO_BIG: u16 = 1009;
const UNSUPPORTED_DATA: u16 = 1003;
const BINARY_REFUSED: &str = "Binary frames are not supported";

/// The open connection until it ends, then `$disconnect`.
pub(super) async fn run(app: Arc<App>, handshake: Arc<Handshake>, ws: WebSocket) {
    let (tx, mut rx) = mpsc::channel(256);
    let connection = Arc::new(Connection::open(&handshake, tx));
    app.connections.insert(Arc::clone(&connection));
    let limits = app.settings.limits;
    let (mut sink, mut stream) = ws.split();
    let ends_at = Instant::now() + limits.max_duration;
    let mut idle_at = Instant::now() + limits.idle_timeout;
    let mut shutdown = app.shutdown_signal();

    let close = |code: u16, reason: &str| Message::Close(Some(CloseFrame { code, reason: reason.into() }));
    let mut cut = false;
    let (code, reason): Ending = loop {
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(message)) => {
                    idle_at = Instant::now() + limits.idle_timeout;
                    connection.touch();
                    connection.note(true, &message);
                    match message {
                        Message::Text(text) => route(&app, &handshake, &connection, text.as_str().to_owned()),
                        // API Gateway rejects binary frames and disconnects with 1003:
                        // https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-develop-binary-media-types.html
                        Message::Binary(_) => {
                            let _ = sink.send(close(UNSUPPORTED_DATA, BINARY_REFUSED)).await;
                            break (UNSUPPORTED_DATA, BINARY_REFUSED.into());
                        }
                        Message::Close(frame) => {
                            break frame.map_or((1005, String::new()), |f| (f.code, f.reason.to_string()));
                        }
                        Message::Ping(_) | Message::Pong(_) => {}
                    }
                }
                Some(Err(error)) if too_long(&error) => {
                    let _ = sink.send(close(MESSAGE_TOO_BIG, "Message too big")).await;
                    break (MESSAGE_TOO_BIG, "Message too big".into());
                }
                Some(Err(_)) | None => break (1006, String::new()),
            },
            out = rx.recv() => match out {
                Some(Outbound::Message(message)) => {
                    // Write whatever else is queued before one flush: one syscall for a burst.
                    connection.note(false, &message);
                    let mut written = sink.feed(message).await.is_ok();
                    while written {
                        match rx.try_recv() {
                            Ok(Outbound::Message(more)) => {
                                connection.note(false, &more);
                                written = sink.feed(more).await.is_ok();
                            }
                            Ok(Outbound::Close(code, reason)) => {
                                let _ = sink.send(close(code, &reason)).await;
                                written = false;
                            }
                            Ok(Outbound::Drop) => {
                                cut = true;
                                written = false;
                            }
                            Err(_) => break,
                        }
                    }
                    if !written || sink.flush().await.is_err() {
                        break (1006, String::new());
                    }
                }
                Some(Outbound::Close(code, reason)) => {
                    let _ = sink.send(close(code, &reason)).await;
                    break (code, reason);
                }
                Some(Outbound::Drop) => {
                    cut = true;
                    break (1006, String::new());
                }
                None => break (1006, String::new()),
            },
            () = sleep_until(idle_at) => {
                let _ = sink.send(close(GOING_AWAY, "Going away")).await;
                break (GOING_AWAY, "Going away".into());
            }
            () = sleep_until(ends_at) => {
                let _ = sink.send(close(GOING_AWAY, "Going away")).await;
                break (GOING_AWAY, "Going away".into());
            }
            () = http::stopped(&mut shutdown) => {
                let _ = sink.send(close(GOING_AWAY, "Going away")).await;
                break (GOING_AWAY, "Going away".into());
            }
        }
    };
    app.connections.remove(&connection.id);
    if cut {
        // The TCP connection goes without a close frame: the client sees an abnormal closure.
        drop((sink, stream));
    } else {
        // Finish the closing handshake briefly; the socket is gone either way.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
            let _ = sink.close().await;
            while let Some(Ok(_)) = stream.next().await {}
        })
        .await;
    }
    app.logs().local(&format!("closed {} ({code} {reason})", connection.id));
    disconnect(&app, &handshake, code, &reason).await;
}

async fn disconnect(app: &App, handshake: &Handshake, code: u16, reason: &str) {
    let Some(function) = app.manifest.route("$disconnect") else { return };
    if app.settings.lose_disconnects {
        app.logs().local(&format!("$disconnect {} lost on purpose (--lose-disconnects)", handshake.connection_id));
        return;
    }
    let event = handshake.disconnect_event(code, reason, &http::random_id(), Utc::now());
    if let Some(Err(e)) = app.lambda.invoke(&function.name, Bytes::from(event.to_string())).await {
        // Best effort, as in API Gateway: nobody is left to tell.
        app.logs().local(&format!("$disconnect {} failed: {e}", handshake.connection_id));
    }
}

/// A frame or message over the limits: axum wraps tungstenite's error (the same tungstenite
/// version; see the workspace `Cargo.toml`).
fn too_long(error: &axum::Error) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<WsError>())
        .is_some_and(|e| matches!(e, WsError::Capacity(CapacityError::MessageTooLong { .. })))
}
