//! graphql-transport-ws, the protocol of the `graphql-ws` client (PROTOCOL.md of
//! enisdenjo/graphql-ws): the message loop of one socket.
//!
//! Clients decide from the close code whether to connect again, so each breach of the protocol
//! closes with the code the protocol gives it: 4400 for an invalid message, 4401 for an operation
//! before `connection_ack`, 4403 for a refused `connection_init`, 4408 when it does not come in
//! time, 4409 for an operation id already running, 4429 for a second `connection_init`.
//! async-graphql's loop (7.2) closes with 1002 or 1011 instead and lets a duplicate id replace
//! the running operation, and offers no way to change either; the legacy graphql-ws protocol
//! (subscriptions-transport-ws), which has no close codes, is still served by it.
use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_graphql::futures_util::stream::BoxStream;
use async_graphql::{Data, Executor, Request, Response};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, Stream, StreamExt};
use serde::Serialize;
use serde_json::Value;

use crate::graphql::errors::coded;

/// How long a socket closed by the server waits for the client's close frame, so that the close
/// frame is read before the connection ends (an early end can reset it away).
const CLOSING_WAIT: Duration = Duration::from_secs(2);

/// A close frame of the protocol: code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: String,
}

impl Close {
    fn new(code: u16, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }

    fn invalid(why: impl std::fmt::Display) -> Self {
        Self::new(4400, format!("Invalid message received: {why}"))
    }

    /// `connection_init` refused: the client must not retry with the same payload.
    pub fn forbidden(why: impl std::fmt::Display) -> Self {
        Self::new(4403, format!("Forbidden: {why}"))
    }

    /// The server could not decide on `connection_init` (its database failed): 1013 (Try Again
    /// Later) is a code after which graphql-ws clients do connect again.
    pub fn try_again_later() -> Self {
        Self::new(1013, "Try again later")
    }

    fn frame(self) -> Message {
        Message::Close(Some(CloseFrame {
            code: self.code,
            reason: truncated(&self.reason, MAX_REASON_BYTES).into(),
        }))
    }
}

/// A close frame's reason has at most 123 bytes (RFC 6455, 5.5: 125 with the code).
const MAX_REASON_BYTES: usize = 123;

/// `text` cut to at most `max` bytes at a character boundary.
fn truncated(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A message from the client.
#[derive(Debug)]
enum ClientMessage {
    ConnectionInit(Value),
    Ping,
    Pong,
    Subscribe { id: String, request: Box<Request> },
    Complete { id: String },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerMessage<'a> {
    ConnectionAck,
    Pong,
    Next { id: &'a str, payload: &'a Response },
    Complete { id: &'a str },
}

/// Reads a message as the protocol writes it, or the 4400 that refuses it.
fn parse(bytes: &[u8]) -> Result<ClientMessage, Close> {
    let Ok(Value::Object(mut message)) = serde_json::from_slice::<Value>(bytes) else {
        return Err(Close::invalid("not a JSON object"));
    };
    let Some(Value::String(kind)) = message.remove("type") else {
        return Err(Close::invalid("no `type`"));
    };
    let payload = message.remove("payload").unwrap_or(Value::Null);
    let id = |message: &mut serde_json::Map<String, Value>| match message.remove("id") {
        Some(Value::String(id)) if !id.is_empty() => Ok(id),
        _ => Err(Close::invalid(format!("`{kind}` needs a non-empty `id` string"))),
    };
    let object_or_null = |payload: Value| match payload {
        Value::Object(_) | Value::Null => Ok(payload),
        _ => Err(Close::invalid(format!("`{kind}` payload must be an object"))),
    };
    match kind.as_str() {
        "connection_init" => object_or_null(payload).map(ClientMessage::ConnectionInit),
        "ping" => object_or_null(payload).map(|_| ClientMessage::Ping),
        "pong" => object_or_null(payload).map(|_| ClientMessage::Pong),
        "subscribe" => {
            let id = id(&mut message)?;
            if !payload.get("query").is_some_and(Value::is_string) {
                return Err(Close::invalid("`subscribe` needs a payload with a `query` string"));
            }
            let request = serde_json::from_value(payload).map_err(|_| Close::invalid("`subscribe` has a malformed payload"))?;
            Ok(ClientMessage::Subscribe {
                id,
                request: Box::new(request),
            })
        }
        "complete" => id(&mut message).map(|id| ClientMessage::Complete { id }),
        other => Err(Close::invalid(format!("unknown type `{}`", truncated(other, 32)))),
    }
}

/// Serves one graphql-transport-ws socket until either side closes it. `on_init` turns the
/// `connection_init` payload into the data every operation of the socket sees, or refuses it
/// with a close; a socket without `connection_init` after `init_timeout` is closed with 4408.
/// What one socket may take.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// `connection_init` must come within this (4408 otherwise).
    pub init_timeout: Duration,
    /// Operations running at once; one more is answered with an error.
    pub max_operations: usize,
    /// How often a Ping frame goes out; silence for two of these, or a message the client does not
    /// take within one, ends the socket.
    pub keepalive: Duration,
}

pub async fn serve<E, I, F>(socket: WebSocket, executor: E, settings: Settings, on_init: I)
where
    E: Executor,
    I: FnOnce(Value) -> F,
    F: Future<Output = Result<Data, Close>>,
{
    let (mut sink, mut stream) = socket.split();
    let close = match run(&mut sink, &mut stream, executor, settings, on_init).await {
        Err(Stop::Close(close)) => close,
        // The client's close frame is answered on the next write or close, not when it is read:
        // without this the client sees 1006 (abnormal closure) instead of its own code.
        Ok(()) => return drop(sink.close().await),
        Err(Stop::Gone) => return,
    };
    if sink.send(close.frame()).await.is_err() {
        return;
    }
    // The closing handshake: read on until the client's close frame (or the end), for a while.
    let _ = tokio::time::timeout(CLOSING_WAIT, async {
        while let Some(Ok(message)) = stream.next().await {
            if let Message::Close(_) = message {
                break;
            }
        }
    })
    .await;
}

/// Why the message loop ended, when not because the client closed the socket.
enum Stop {
    /// The server closes the socket with this.
    Close(Close),
    /// The socket cannot be written to any more.
    Gone,
}

impl From<Close> for Stop {
    fn from(close: Close) -> Self {
        Stop::Close(close)
    }
}

/// The message loop, until the client closes the socket or the server must.
async fn run<E, I, F, Tx, Rx>(sink: &mut Tx, stream: &mut Rx, executor: E, settings: Settings, on_init: I) -> Result<(), Stop>
where
    E: Executor,
    I: FnOnce(Value) -> F,
    F: Future<Output = Result<Data, Close>>,
    Tx: futures_util::Sink<Message> + Unpin,
    Rx: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let mut on_init = Some(on_init);
    let mut session: Option<Arc<Data>> = None;
    let mut operations = Operations::default();
    let Settings {
        init_timeout,
        max_operations,
        keepalive,
    } = settings;
    let deadline = tokio::time::sleep(init_timeout);
    tokio::pin!(deadline);
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
    let mut last_heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = &mut deadline, if on_init.is_some() => {
                return Err(Close::new(4408, "Connection initialisation timeout").into());
            }
            _ = pings.tick() => {
                // A peer gone without closing, or one that stopped reading, frees its slot.
                if last_heard.elapsed() >= keepalive * 2 {
                    return Err(Stop::Gone);
                }
                send(sink, Message::Ping(Default::default()), keepalive).await?;
            }
            message = stream.next() => {
                last_heard = tokio::time::Instant::now();
                let parsed = match &message {
                    Some(Ok(Message::Text(text))) => parse(text.as_str().as_bytes()),
                    Some(Ok(Message::Binary(bytes))) => parse(bytes),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return Ok(()),
                };
                match parsed? {
                    ClientMessage::ConnectionInit(payload) => {
                        let init = on_init.take().ok_or_else(|| Close::new(4429, "Too many initialisation requests"))?;
                        session = Some(Arc::new(init(payload).await?));
                        reply(sink, &ServerMessage::ConnectionAck).await?;
                    }
                    ClientMessage::Ping => reply(sink, &ServerMessage::Pong).await?,
                    ClientMessage::Pong => {}
                    ClientMessage::Subscribe { id, request } => {
                        let data = session.clone().ok_or_else(|| Close::new(4401, "Unauthorized"))?;
                        if operations.0.contains_key(&id) {
                            return Err(Close::new(4409, format!("Subscriber for {id} already exists")).into());
                        }
                        if operations.0.len() >= max_operations {
                            // Refused like an operation that fails before it runs: an error, then
                            // complete; the socket and its other operations go on.
                            let e = coded(
                                "BAD_USER_INPUT",
                                format!("at most {max_operations} operations run at once on one connection"),
                            );
                            reply(sink, &ServerMessage::Next { id: &id, payload: &Response::from_errors(vec![e]) }).await?;
                            reply(sink, &ServerMessage::Complete { id: &id }).await?;
                            continue;
                        }
                        let results = executor.execute_stream(*request, Some(data));
                        operations.0.insert(id, results);
                    }
                    // Dropping the operation's stream ends it; the client expects nothing back.
                    ClientMessage::Complete { id } => {
                        operations.0.remove(&id);
                    }
                }
            }
            (id, result) = poll_fn(|cx| operations.poll_next(cx)) => {
                match result {
                    Some(payload) => reply(sink, &ServerMessage::Next { id: &id, payload: &payload }).await?,
                    None => {
                        operations.0.remove(&id);
                        reply(sink, &ServerMessage::Complete { id: &id }).await?;
                    }
                }
            }
        }
    }
}

/// Sends `message`.
async fn reply<Tx>(sink: &mut Tx, message: &ServerMessage<'_>) -> Result<(), Stop>
where
    Tx: futures_util::Sink<Message> + Unpin,
{
    let text = serde_json::to_string(message).expect("a server message serializes");
    send(sink, Message::text(text), SEND_TIMEOUT).await
}

/// How long a client may leave a message untaken before the socket is given up.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends a frame, giving up on a client that does not take it `within`.
async fn send<Tx>(sink: &mut Tx, frame: Message, within: Duration) -> Result<(), Stop>
where
    Tx: futures_util::Sink<Message> + Unpin,
{
    match tokio::time::timeout(within, sink.send(frame)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(Stop::Gone),
    }
}

/// The running operations of a socket by id: each is a stream of results, a query's of one.
#[derive(Default)]
struct Operations(HashMap<String, BoxStream<'static, Response>>);

impl Operations {
    /// The next result of any operation, `None` for one that has ended (it stays in the map).
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<(String, Option<Response>)> {
        for (id, results) in &mut self.0 {
            if let Poll::Ready(result) = results.poll_next_unpin(cx) {
                return Poll::Ready((id.clone(), result));
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::{ClientMessage, MAX_REASON_BYTES, parse, truncated};

    #[test]
    fn messages_are_read_as_the_protocol_writes_them() {
        let m = parse(br#"{"type":"subscribe","id":"1","payload":{"query":"{ a }","variables":null,"operationName":null}}"#);
        assert!(matches!(m, Ok(ClientMessage::Subscribe { ref id, .. }) if id == "1"), "{m:?}");
        assert!(matches!(
            parse(br#"{"type":"connection_init"}"#),
            Ok(ClientMessage::ConnectionInit(serde_json::Value::Null))
        ));
        assert!(matches!(
            parse(br#"{"type":"complete","id":"1"}"#),
            Ok(ClientMessage::Complete { .. })
        ));
        assert!(matches!(parse(br#"{"type":"pong","payload":{}}"#), Ok(ClientMessage::Pong)));
        let long = format!(r#"{{"type":"{}"}}"#, "x".repeat(500));
        let close = parse(long.as_bytes()).unwrap_err();
        assert_eq!(
            (close.code, close.reason.len()),
            (4400, "Invalid message received: unknown type ``".len() + 32)
        );
    }

    #[test]
    fn reasons_fit_a_close_frame_at_a_character_boundary() {
        let reason = "é".repeat(100);
        let cut = truncated(&reason, MAX_REASON_BYTES);
        assert_eq!(cut.len(), 122);
        assert_eq!(truncated("short", MAX_REASON_BYTES), "short");
    }
}
