//! Reading a request body within limits: at most `max_body_bytes`, all of it within
//! `body_read_timeout`, and at no less than `min_body_bytes_per_second` over any window of
//! `body_rate_window`, so that a client sending a byte a second cannot hold a connection and a
//! task for long. Refusals are GraphQL-shaped JSON errors with a code, as everything else.
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use http_body_util::BodyExt;
use tokio::time::Instant;

use crate::config::{ConnectionLimits, Limits};
use crate::error::AppError;

/// Why a body was not read.
#[derive(Debug)]
pub enum BodyError {
    TooLarge(usize),
    TooSlow(String),
    Broken(String),
}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::TooSlow(_) => StatusCode::REQUEST_TIMEOUT,
            BodyError::Broken(_) => StatusCode::BAD_REQUEST,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            BodyError::TooLarge(_) => "PAYLOAD_TOO_LARGE",
            BodyError::TooSlow(_) => "TIMEOUT",
            BodyError::Broken(_) => AppError::BadInput(String::new()).code(),
        }
    }

    pub fn message(&self) -> String {
        match self {
            BodyError::TooLarge(max) => format!("the request body is larger than {max} bytes"),
            BodyError::TooSlow(why) => why.clone(),
            BodyError::Broken(why) => format!("the request body could not be read: {why}"),
        }
    }
}

/// The limits a body is read under.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub timeout: Duration,
    pub min_bytes_per_second: u64,
    pub window: Duration,
}

impl BodyLimits {
    pub fn of(limits: &Limits) -> Self {
        let ConnectionLimits {
            body_read_timeout,
            min_body_bytes_per_second,
            body_rate_window,
            ..
        } = limits.connections;
        Self {
            max_bytes: limits.max_body_bytes,
            timeout: body_read_timeout,
            min_bytes_per_second: min_body_bytes_per_second,
            window: body_rate_window,
        }
    }
}

/// Reads the whole body within `limits`. A `Content-Length` over the limit is refused before
/// anything is read.
pub async fn read(body: Body, content_length: Option<u64>, limits: BodyLimits) -> Result<Bytes, BodyError> {
    if content_length.is_some_and(|n| n > limits.max_bytes as u64) {
        return Err(BodyError::TooLarge(limits.max_bytes));
    }
    let mut body = body;
    let started = Instant::now();
    let deadline = started + limits.timeout;
    let mut window_end = started + limits.window;
    let mut in_window: u64 = 0;
    // A declared length is a claim, not bytes: reserve at most 64 KiB up front.
    let mut data = Vec::with_capacity(content_length.map_or(0, |n| n.min(64 * 1024) as usize));
    loop {
        match tokio::time::timeout_at(deadline.min(window_end), body.frame()).await {
            Ok(None) => return Ok(Bytes::from(data)),
            Ok(Some(Err(e))) => return Err(BodyError::Broken(e.to_string())),
            Ok(Some(Ok(frame))) => {
                if let Ok(chunk) = frame.into_data() {
                    if data.len() + chunk.len() > limits.max_bytes {
                        return Err(BodyError::TooLarge(limits.max_bytes));
                    }
                    in_window += chunk.len() as u64;
                    data.extend_from_slice(&chunk);
                }
            }
            Err(_) => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(BodyError::TooSlow(format!(
                "the request body did not arrive within {} s",
                limits.timeout.as_secs()
            )));
        }
        if now >= window_end {
            let needed = u128::from(limits.min_bytes_per_second) * limits.window.as_millis() / 1000;
            if u128::from(in_window) < needed {
                return Err(BodyError::TooSlow(format!(
                    "the request body arrived slower than {} bytes per second",
                    limits.min_bytes_per_second
                )));
            }
            in_window = 0;
            window_end = now + limits.window;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use futures_util::stream;

    use super::*;

    fn limits() -> BodyLimits {
        BodyLimits {
            max_bytes: 10,
            timeout: Duration::from_millis(600),
            min_bytes_per_second: 40,
            window: Duration::from_millis(200),
        }
    }

    /// A body that sends `chunk` every `every`, `times` times.
    fn paced(chunk: &'static [u8], every: Duration, times: usize) -> Body {
        Body::from_stream(stream::unfold(0, move |i| async move {
            tokio::time::sleep(every).await;
            (i < times).then(|| (Ok::<_, std::io::Error>(Bytes::from_static(chunk)), i + 1))
        }))
    }

    #[tokio::test]
    async fn a_body_within_the_limits_is_read_whole() {
        let body = Body::from_stream(stream::iter(["abc", "defg"].map(|s| Ok::<_, std::io::Error>(Bytes::from(s)))));
        assert_eq!(read(body, None, limits()).await.expect("read"), Bytes::from("abcdefg"));
        // 4 bytes every 40 ms for 400 ms: about 20 bytes a window of 200 ms, where 40 a second
        // asks for 8.
        let roomy = BodyLimits {
            max_bytes: 100,
            ..limits()
        };
        let steady = read(paced(b"xxxx", Duration::from_millis(40), 10), None, roomy).await;
        assert_eq!(steady.expect("read").len(), 40);
    }

    #[tokio::test]
    async fn a_body_over_the_size_is_refused_by_its_length_or_while_read() {
        let declared = read(Body::from("x"), Some(11), limits()).await;
        assert!(matches!(declared, Err(BodyError::TooLarge(10))));
        let streamed = read(Body::from("12345678901"), None, limits()).await;
        assert!(matches!(streamed, Err(BodyError::TooLarge(10))));
    }

    #[tokio::test]
    async fn a_body_that_trickles_in_is_refused_after_a_window() {
        // One byte every 100 ms is 2 bytes a window, under the 8 that 40 a second asks for.
        let started = Instant::now();
        let refused = read(paced(b"x", Duration::from_millis(100), 9), None, limits()).await;
        assert!(matches!(refused, Err(BodyError::TooSlow(_))), "{refused:?}");
        assert!(started.elapsed() < Duration::from_millis(600), "refused before the deadline");
    }

    #[tokio::test]
    async fn a_body_that_never_ends_is_refused_at_the_deadline() {
        let lenient = BodyLimits {
            min_bytes_per_second: 0,
            ..limits()
        };
        let started = Instant::now();
        let refused = read(paced(b"", Duration::from_millis(20), usize::MAX), None, lenient).await;
        assert!(matches!(refused, Err(BodyError::TooSlow(_))), "{refused:?}");
        assert!(started.elapsed() >= Duration::from_millis(600));
    }
}
