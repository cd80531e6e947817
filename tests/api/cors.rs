//! Browsers on other origins: a preflight and the request after it, for an allowed origin, for
//! another one, and with no origins configured (the default).
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// A second server over the test's database with these CORS origins.
async fn serve_with_origins(app: &TestApp, origins: &[&str]) -> String {
    let addr = app
        .serve_with(|c| c.cors_origins = origins.iter().map(|o| (*o).to_owned()).collect())
        .await;
    format!("http://{addr}/graphql")
}

/// The preflight a browser sends before a POST with a key and a JSON body.
async fn preflight(url: &str, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(Method::OPTIONS, url)
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization,content-type")
        .send()
        .await
        .unwrap()
}

async fn post(url: &str, origin: &str, key: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .header("Origin", origin)
        .bearer_auth(key)
        .json(&json!({ "query": "{ viewer { role } }" }))
        .send()
        .await
        .unwrap()
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn an_allowed_origin_passes_the_preflight_and_reads_the_answer(app: TestApp) {
    let url = serve_with_origins(&app, &["https://app.example.com"]).await;
    let pre = preflight(&url, "https://app.example.com").await;
    assert!(pre.status().is_success(), "{}", pre.status());
    assert_eq!(header(&pre, "access-control-allow-origin"), Some("https://app.example.com"));
    let methods = header(&pre, "access-control-allow-methods").unwrap_or_default().to_lowercase();
    assert!(methods.contains("post") && methods.contains("get"), "{methods}");
    let headers = header(&pre, "access-control-allow-headers").unwrap_or_default().to_lowercase();
    assert!(headers.contains("authorization") && headers.contains("content-type"), "{headers}");
    assert_eq!(header(&pre, "access-control-allow-credentials"), None, "keys are not cookies");

    let resp = post(&url, "https://app.example.com", &app.keys.analyst).await;
    assert_eq!(header(&resp, "access-control-allow-origin"), Some("https://app.example.com"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["viewer"]["role"], "ANALYST");

    // Another origin gets no permission; the browser withholds the answer from its page.
    let pre = preflight(&url, "https://evil.example").await;
    assert_eq!(header(&pre, "access-control-allow-origin"), None);
    let resp = post(&url, "https://evil.example", &app.keys.analyst).await;
    assert_eq!(header(&resp, "access-control-allow-origin"), None);
}
both!(an_allowed_origin_passes_the_preflight_and_reads_the_answer);

async fn any_origin_with_a_wildcard_and_none_by_default(app: TestApp) {
    let any = serve_with_origins(&app, &["*"]).await;
    let pre = preflight(&any, "http://localhost:5173").await;
    assert!(pre.status().is_success(), "{}", pre.status());
    assert_eq!(header(&pre, "access-control-allow-origin"), Some("*"));

    // The default: no origin but the server's own, so no CORS headers at all.
    let resp = post(&app.url("/graphql"), "http://localhost:5173", &app.keys.analyst).await;
    assert_eq!(header(&resp, "access-control-allow-origin"), None);
    let pre = preflight(&app.url("/graphql"), "http://localhost:5173").await;
    assert_eq!(header(&pre, "access-control-allow-origin"), None);
}
both!(any_origin_with_a_wildcard_and_none_by_default);
