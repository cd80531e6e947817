//! The examples of README.md and docs/*.md run on a fresh demo exactly as written.
//!
//! Every ```graphql block is cut into its operations (`{ ... }` or `mutation { ... }` at the top
//! level; `#` comments between them), and the operations of all files run in file order on ONE
//! fresh demo database per backend, loaded on today's date as `serve --demo` loads it, with an
//! ADMIN key. Each answer must have no `errors`, every top-level field non-null, every list the
//! example asks for non-empty somewhere in the answer, and every `userErrors` empty. The
//! export URLs quoted in the text (`/export/leads.csv?...`) and the queries of `curl -d '...'`
//! lines run in the same order and must answer with rows.
//!
//! **Quoted figures.** Comment lines that follow an operation directly (no blank line between)
//! quote its answer, e.g.
//!
//! ```text
//! { scoringMatrix { total cells { cell count } } }
//! # total 1985: ...
//! ```
//!
//! Every number in them (digits with an optional decimal part, not glued to a letter, so `A1`
//! and `Q4` are names, not numbers) must appear in the answer: an integer as an integer or an
//! exact string, a decimal as a number or decimal string that rounds to it at the quoted
//! places. A comment after a blank line introduces the next operation and is not checked. The
//! figures hold on every day: the demo moves by whole days with the day it is loaded on, and the
//! examples' ranges (`lastDays`, `asOf` now) move with it, so an answer is the same on any day
//! as long as the example does not cut time at calendar boundaries (weeks, months, quarters) or
//! at the time of day (decayed scores, SLA breaches); such examples quote no figures. A run
//! that crosses midnight UTC is not judged (the ranges moved, the demo did not).
//!
//! Blocks fenced with another language (```graphql-schema, ```text, ```sh, ...) are not run; the
//! test prints which. `EXAMPLES_PRINT=1` prints every operation with its answer, to regenerate
//! the quoted figures.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, run_demo};

/// One thing to run, where it was written.
#[derive(Debug)]
enum Example {
    Graphql { at: String, query: String, quoted: String },
    Export { at: String, path: String },
    Curl { at: String, body: Value },
}

/// README.md, then docs/*.md by name.
fn files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    let mut all = vec![root.join("README.md")];
    all.extend(docs);
    all
}

/// The examples of one Markdown file in order, and the fenced blocks that are not run.
fn examples_of(name: &str, text: &str) -> (Vec<Example>, Vec<String>) {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(info) = line.trim_start().strip_prefix("```") {
            let start = i + 1;
            let mut end = start;
            while end < lines.len() && !lines[end].trim_start().starts_with("```") {
                end += 1;
            }
            let body = &lines[start..end.min(lines.len())];
            match info.trim() {
                "graphql" => out.extend(operations(name, start, body)),
                other => {
                    for (n, l) in body.iter().enumerate() {
                        if let Some(b) = curl_body(l) {
                            out.push(Example::Curl {
                                at: format!("{name}:{}", start + n + 1),
                                body: b,
                            });
                        }
                    }
                    skipped.push(format!("{name}:{} ```{other}", start));
                }
            }
            i = end + 1;
            continue;
        }
        for path in export_paths(line) {
            out.push(Example::Export {
                at: format!("{name}:{}", i + 1),
                path,
            });
        }
        i += 1;
    }
    (out, skipped)
}

/// The operations of a ```graphql block (its first line is line `first` + 1 of the file), each
/// with the comment lines right after it.
fn operations(name: &str, first: usize, body: &[&str]) -> Vec<Example> {
    let mut out = Vec::new();
    let mut depth = 0_i32;
    let mut current: Option<(usize, String)> = None;
    let mut i = 0;
    while i < body.len() {
        let line = body[i];
        let code = strip_comment(line);
        if current.is_none() && code.trim().is_empty() {
            i += 1;
            continue;
        }
        let (at, query) = current.get_or_insert_with(|| (first + i + 1, String::new()));
        query.push_str(line);
        query.push('\n');
        depth += braces(code);
        i += 1;
        if depth == 0 && query.contains('{') {
            let mut quoted = String::new();
            while i < body.len() && body[i].trim_start().starts_with('#') {
                quoted.push_str(body[i].trim_start().trim_start_matches('#'));
                quoted.push('\n');
                i += 1;
            }
            out.push(Example::Graphql {
                at: format!("{name}:{at}"),
                query: std::mem::take(query),
                quoted,
            });
            current = None;
        }
    }
    assert!(current.is_none() && depth == 0, "{name}:{first}: a block ends inside an operation");
    out
}

/// A line without its `#` comment (a `#` inside a string stays).
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_string = !in_string,
            '#' if !in_string => return &line[..i],
            _ => {}
        }
    }
    line
}

/// `{` minus `}` outside strings.
fn braces(code: &str) -> i32 {
    let mut in_string = false;
    let mut n = 0;
    for c in code.chars() {
        match c {
            '"' => in_string = !in_string,
            '{' if !in_string => n += 1,
            '}' if !in_string => n -= 1,
            _ => {}
        }
    }
    n
}

/// The paths of the export URLs (`http://host/export/...?...`) quoted in a line of text.
fn export_paths(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("http://") {
        let url = &rest[i + "http://".len()..];
        let end = url.find(['\'', '"', '`', ' ']).unwrap_or(url.len());
        if let Some(path) = url[..end].find('/').map(|p| &url[p..end])
            && path.starts_with("/export/")
            && path.contains('?')
        {
            out.push(path.to_owned());
        }
        rest = &url[end..];
    }
    out
}

/// The JSON body of a `curl ... -d '{...}'` line.
fn curl_body(line: &str) -> Option<Value> {
    let i = line.find("-d '")?;
    let body = &line[i + 4..];
    serde_json::from_str(&body[..body.find('\'')?]).ok()
}

/// The numbers of a comment that quotes an answer, as written.
fn numbers(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let glued = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_' || chars[i - 1] == '.');
        if chars[i].is_ascii_digit() && !glued {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let token: String = chars[start..i].iter().collect::<String>().trim_end_matches('.').to_owned();
            if i >= chars.len() || !(chars[i].is_alphabetic() || chars[i] == '_') {
                out.push(token);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Every number and string of an answer.
fn leaves(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| leaves(x, out)),
        Value::Object(o) => o.values().for_each(|x| leaves(x, out)),
        Value::Number(_) | Value::String(_) => out.push(v.clone()),
        _ => {}
    }
}

/// Whether a quoted number is in the answer (see the module doc).
fn quoted_in(token: &str, leaves: &[Value]) -> bool {
    let places = token.split_once('.').map_or(0, |(_, d)| d.len());
    leaves.iter().any(|v| match v {
        Value::Number(n) if places == 0 => n.as_i64().is_some_and(|i| i.to_string() == token),
        Value::Number(n) => n.as_f64().is_some_and(|f| format!("{f:.places$}") == token),
        Value::String(s) if places == 0 => s == token,
        Value::String(s) => s.parse::<f64>().is_ok_and(|f| format!("{f:.places$}") == token),
        _ => false,
    })
}

/// Which list paths of an answer hold an item somewhere (list indexes left out of the path),
/// and which `userErrors` are not empty.
fn lists(v: &Value, path: &str, seen: &mut BTreeMap<String, bool>, user_errors: &mut Vec<String>) {
    match v {
        Value::Array(a) => {
            let any = seen.entry(path.to_owned()).or_insert(false);
            *any |= !a.is_empty();
            a.iter().for_each(|x| lists(x, path, seen, user_errors));
        }
        Value::Object(o) => {
            for (k, x) in o {
                if k == "userErrors" {
                    if x.as_array().is_none_or(|a| !a.is_empty()) {
                        user_errors.push(format!("{path}.{k}: {x}"));
                    }
                    continue;
                }
                lists(x, &format!("{path}.{k}"), seen, user_errors);
            }
        }
        _ => {}
    }
}

/// Checks one answer; the problems found.
fn check(answer: &Value, quoted: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(errors) = answer.get("errors").filter(|e| e.as_array().is_none_or(|a| !a.is_empty())) {
        problems.push(format!("errors: {errors}"));
    }
    let data = &answer["data"];
    match data.as_object() {
        Some(fields) if !fields.is_empty() => {
            for (k, v) in fields {
                if v.is_null() {
                    problems.push(format!("{k} is null"));
                }
            }
        }
        _ => problems.push("no data".into()),
    }
    let mut seen = BTreeMap::new();
    let mut user_errors = Vec::new();
    lists(data, "", &mut seen, &mut user_errors);
    problems.extend(user_errors);
    problems.extend(seen.into_iter().filter(|(_, any)| !any).map(|(path, _)| format!("{path} is empty")));
    let mut all = Vec::new();
    leaves(data, &mut all);
    for token in numbers(quoted) {
        if !quoted_in(&token, &all) {
            problems.push(format!("the quoted {token} is not in the answer"));
        }
    }
    problems
}

/// Runs the examples on `app`, whose demo was loaded as of `day`.
async fn examples_run_on_a_fresh_demo(app: TestApp, day: chrono::NaiveDate) {
    let print = std::env::var_os("EXAMPLES_PRINT").is_some();
    let key = app.keys.admin.clone();
    let (mut ran, mut exports) = (0, 0);
    let mut failures = Vec::new();
    for file in files() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).expect("read the Markdown");
        let (examples, skipped) = examples_of(&name, &text);
        for s in skipped {
            eprintln!("examples: not run: {s}");
        }
        for example in examples {
            match example {
                Example::Graphql { at, query, quoted } => {
                    let answer = app.gql(&key, &query, json!({})).await;
                    if print {
                        eprintln!("--- {at}\n{query}=> {answer:#}\n");
                    }
                    ran += 1;
                    let problems = check(&answer, &quoted);
                    if !problems.is_empty() {
                        failures.push(format!("{at}: {}\n  answer: {answer}", problems.join("; ")));
                    }
                }
                Example::Curl { at, body } => {
                    let answer = app.gql(&key, body["query"].as_str().expect("a query"), json!({})).await;
                    if print {
                        eprintln!("--- {at} (curl)\n=> {answer:#}\n");
                    }
                    ran += 1;
                    let problems = check(&answer, "");
                    if !problems.is_empty() {
                        failures.push(format!("{at}: {}", problems.join("; ")));
                    }
                }
                Example::Export { at, path } => {
                    let resp = app
                        .client
                        .get(app.url(&path))
                        .bearer_auth(&key)
                        .send()
                        .await
                        .expect("GET the export");
                    let status = resp.status();
                    let csv = resp.text().await.expect("the CSV");
                    let rows = csv.lines().count().saturating_sub(1);
                    if print {
                        eprintln!(
                            "--- {at} {path}: {status}, {rows} rows\n{}\n",
                            csv.lines().take(3).collect::<Vec<_>>().join("\n")
                        );
                    }
                    exports += 1;
                    if !status.is_success() || rows == 0 {
                        failures.push(format!("{at}: {path} answered {status} with {rows} rows"));
                    }
                }
            }
        }
    }
    eprintln!("examples: {ran} operations and {exports} exports run");
    assert!(ran >= 20 && exports >= 1, "{ran} operations and {exports} exports found");
    if !failures.is_empty() && today() != day {
        // `lastDays` moved at midnight while the demo stayed: not a fault of the examples.
        eprintln!("examples: the day changed during the run; not judged:\n{}", failures.join("\n"));
        return;
    }
    assert!(failures.is_empty(), "{} examples failed:\n{}", failures.len(), failures.join("\n"));
}

/// The day a user who starts `serve --demo` now gets: today (UTC).
fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

mod readme_and_docs_examples_run {
    use super::*;

    #[tokio::test]
    async fn sqlite() {
        let day = today();
        run_demo(Backend::Sqlite, day, move |app| examples_run_on_a_fresh_demo(app, day)).await
    }

    #[tokio::test]
    async fn postgres() {
        let day = today();
        run_demo(Backend::Postgres, day, move |app| examples_run_on_a_fresh_demo(app, day)).await
    }
}

#[test]
fn operations_are_cut_at_the_top_level_with_their_quoted_figures() {
    let block = [
        "# 1. The first",
        "{ a(s: \"}#\") { b } }",
        "# total 12: A1 3, rate 0.25.",
        "",
        "# The second, on two lines",
        "mutation { c(input: {x: 1}) {",
        "  d } }",
    ];
    let ops = operations("X.md", 10, &block);
    let got: Vec<(String, String, String)> = ops
        .into_iter()
        .map(|e| match e {
            Example::Graphql { at, query, quoted } => (at, query, quoted),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "X.md:12");
    assert_eq!(got[0].1, "{ a(s: \"}#\") { b } }\n");
    assert_eq!(numbers(&got[0].2), vec!["12", "3", "0.25"]);
    assert_eq!(got[1].0, "X.md:16");
    assert_eq!(got[1].2, "");
    assert!(quoted_in("0.25", &[json!(0.2512)]) && quoted_in("3", &[json!("3")]) && !quoted_in("12", &[json!(12.5)]));
    assert_eq!(
        export_paths("`curl 'http://h/export/leads.csv?cell=A1&x=y'`"),
        vec!["/export/leads.csv?cell=A1&x=y"]
    );
}

/// `lastDays` alone is a range; beside `from` or out of bounds it is refused with
/// BAD_USER_INPUT, on a list filter as on a report.
async fn last_days_is_a_range_of_its_own(app: TestApp) {
    let key = &app.keys.analyst;
    let report = "query($range: DateTimeRangeInput!) { handoffStats(range: $range) { total } }";
    let data = app.data(key, report, json!({ "range": { "lastDays": 30 } })).await;
    assert_eq!(data["handoffStats"]["total"], 0);
    let list = "query($range: DateTimeRangeInput) { leads(first: 1, filter: { createdAt: $range }) { totalCount } }";
    app.lead("new@example.com").await;
    let data = app.data(key, list, json!({ "range": { "lastDays": 1 } })).await;
    assert_eq!(data["leads"]["totalCount"], 1);
    for bad in [json!({ "lastDays": 7, "from": "2026-01-01T00:00:00Z" }), json!({ "lastDays": 0 })] {
        for q in [report, list] {
            let resp = app.gql(key, q, json!({ "range": bad })).await;
            assert_eq!(resp["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{q} {bad}: {resp}");
        }
    }
}
both!(last_days_is_a_range_of_its_own);
