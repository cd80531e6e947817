//! GraphiQL served by the binary itself: a pinned release (assets/graphiql, fetched by
//! scripts/vendor-graphiql.sh) and React's production builds are embedded, so the page works on
//! a network without internet access, and its Content-Security-Policy lets it reach nothing but
//! this server. The page offers the `Authorization` header in its header editor; that header
//! also goes into the `connection_init` payload of subscriptions, which go to `<page>/ws`.
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The URL path under which the assets are served, relative to the GraphiQL page (`/graphql`),
/// so that the page also works behind a proxy that serves the API under a prefix.
pub const ASSETS: &str = "graphiql";

/// One embedded file and its gzip copy.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    gzip: &'static [u8],
    /// Vendored files carry their version in their name, so a browser may keep them for good;
    /// ours changes with the binary.
    immutable: bool,
}

macro_rules! vendored {
    ($name:literal, $file:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../../assets/graphiql/", $file)),
            gzip: include_bytes!(concat!("../../assets/graphiql/", $file, ".gz")),
            immutable: true,
        }
    };
}

const FILES: [Asset; 5] = [
    vendored!("graphiql-4.1.2.min.js", "graphiql.min.js", "text/javascript; charset=utf-8"),
    vendored!("graphiql-4.1.2.min.css", "graphiql.min.css", "text/css; charset=utf-8"),
    vendored!(
        "react-18.3.1.production.min.js",
        "react.production.min.js",
        "text/javascript; charset=utf-8"
    ),
    vendored!(
        "react-dom-18.3.1.production.min.js",
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8"
    ),
    Asset {
        name: "closedloop.js",
        content_type: "text/javascript; charset=utf-8",
        body: SETUP.as_bytes(),
        gzip: &[],
        immutable: false,
    },
];

/// The page at `GET /graphql` (without `query`).
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>closedloop GraphiQL</title>
<link rel="stylesheet" href="graphiql/graphiql-4.1.2.min.css">
<style>body { margin: 0; } #graphiql { height: 100vh; }</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="graphiql/react-18.3.1.production.min.js"></script>
<script src="graphiql/react-dom-18.3.1.production.min.js"></script>
<script src="graphiql/graphiql-4.1.2.min.js"></script>
<script src="graphiql/closedloop.js"></script>
</body>
</html>
"#;

/// Starts GraphiQL on the page.
const SETUP: &str = include_str!("graphiql.js");

/// Only this server, and `data:` URLs for GraphiQL's embedded fonts and icons; GraphiQL sets
/// inline styles. `connect-src 'self'` covers the same origin's `ws:` and `wss:`.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

pub fn page() -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
        ],
        PAGE,
    )
        .into_response();
    secure(response.headers_mut());
    response
}

/// `GET /graphiql/{name}`: an embedded file, gzipped for a client that accepts it.
pub async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = FILES.iter().find(|a| a.name == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let gzip = !asset.gzip.is_empty() && accepts_gzip(&headers);
    let cache = if asset.immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (header::VARY, HeaderValue::from_static("accept-encoding")),
        ],
        if gzip { asset.gzip } else { asset.body },
    )
        .into_response();
    if gzip {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    secure(response.headers_mut());
    response
}

fn secure(headers: &mut HeaderMap) {
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

/// Whether `Accept-Encoding` lists gzip with a non-zero weight.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(accept).unwrap());
        h
    }

    #[test]
    fn gzip_is_sent_to_clients_that_accept_it() {
        assert!(accepts_gzip(&with("gzip, deflate, br, zstd")));
        assert!(accepts_gzip(&with("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&with("*")));
        assert!(!accepts_gzip(&with("gzip;q=0")));
        assert!(!accepts_gzip(&with("identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn the_page_loads_every_file_from_this_server() {
        for asset in &FILES {
            assert!(
                PAGE.contains(&format!("\"{ASSETS}/{}\"", asset.name)),
                "{} is not on the page",
                asset.name
            );
        }
        assert!(!PAGE.contains("//"), "the page names no other host");
    }
}
