//! The documentation against the code: the README stays short and keeps the two commands CI depends on; every
//! relative link and anchor in the Markdown files resolves; every metric, variable, alert and value the README and
//! docs/reference.md name exists; the README's `curl` excerpts have the shape of the real binary's answers, and its
//! `--check-config` example passes. No network: the binary runs against closed loopback ports.

use marketfeed_testkit as support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Component, Path, PathBuf};

use marketfeed_exporter::freshness::{Feed, Status};
use serde_json::Value;
use support::exporter::{Exporter, run};
use support::http::get;

/// "README under about 15 kB".
const README_MAX_BYTES: usize = 15_000;
/// The two commands of the README's quick start, verbatim: `.ci/run` and people copy them.
const RUN_LINE: &str = "cargo run --release     # serves http://localhost:10066/metrics";
const TEST_LINE: &str = "./scripts/test.sh       # every test";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: impl AsRef<Path>) -> String {
    let path = root().join(path);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The Markdown files whose links must resolve, relative to the repository root.
fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![
        PathBuf::from("README.md"),
        PathBuf::from("deploy/README.md"),
        PathBuf::from("grafana/README.md"),
    ];
    let mut docs: Vec<PathBuf> = fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .map(|path| path.strip_prefix(root()).unwrap().to_path_buf())
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

// ---------------------------------------------------------------------------------------------------------------
// A little Markdown

/// One fenced code block: its info string and its lines.
struct Block {
    info: String,
    lines: Vec<String>,
}

/// Splits a document into prose lines (outside code fences, with their 1-based numbers) and fenced blocks. A fence
/// may be indented, as inside a list item.
fn parse(text: &str) -> (Vec<(usize, String)>, Vec<Block>) {
    let mut prose = Vec::new();
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            match open.take() {
                Some(block) => blocks.push(block),
                None => {
                    open = Some(Block {
                        info: info.trim().to_owned(),
                        lines: Vec::new(),
                    })
                }
            }
        } else if let Some(block) = open.as_mut() {
            block.lines.push(line.to_owned());
        } else {
            prose.push((i + 1, line.to_owned()));
        }
    }
    assert!(open.is_none(), "an unclosed code fence");
    (prose, blocks)
}

/// The line without its inline code spans, so a `[x](y)` shown as code is not taken for a link.
fn without_code_spans(line: &str) -> String {
    line.split('`').step_by(2).collect()
}

/// GitHub's anchor for a heading: lowercase; letters, digits, `-` and `_` kept; spaces to `-`; the rest dropped.
/// A link inside the heading counts by its text.
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    while let Some(at) = rest.find("](") {
        text.push_str(&rest[..at]);
        rest = rest[at + 2..]
            .split_once(')')
            .map_or("", |(_, after)| after);
    }
    text.push_str(rest);
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every anchor a Markdown file offers: its headings' slugs (repeats get `-1`, `-2`...) and explicit HTML ids.
fn anchors(text: &str) -> BTreeSet<String> {
    let (prose, _) = parse(text);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    for (_, line) in &prose {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
            let title = line[hashes..].trim().trim_end_matches('#').trim();
            let base = slug(title);
            let n = seen.entry(base.clone()).or_insert(0);
            anchors.insert(if *n == 0 {
                base.clone()
            } else {
                format!("{base}-{n}")
            });
            *n += 1;
        }
        for attribute in ["id=\"", "name=\""] {
            for (at, _) in line.match_indices(&format!("<a {attribute}")) {
                let start = at + 3 + attribute.len();
                if let Some(end) = line[start..].find('"') {
                    anchors.insert(line[start..start + end].to_owned());
                }
            }
        }
    }
    anchors
}

/// Every link target in the prose, with its line: inline `[text](target "title")` and `[label]: target`.
fn links(text: &str) -> Vec<(usize, String)> {
    let (prose, _) = parse(text);
    let mut links = Vec::new();
    for (number, line) in prose {
        let line = without_code_spans(&line);
        for (at, _) in line.match_indices("](") {
            let target = &line[at + 2..];
            let end = target.find(')').unwrap_or(target.len());
            let target = target[..end].split_whitespace().next().unwrap_or("");
            links.push((number, target.trim_matches(['<', '>']).to_owned()));
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with('[')
            && let Some((label, target)) = trimmed.split_once("]:")
            && !label.contains(']')
        {
            let target = target.split_whitespace().next().unwrap_or("");
            links.push((number, target.to_owned()));
        }
    }
    links
}

/// `base/relative`, with `.` and `..` resolved lexically; `None` when it leaves the repository.
fn resolve(base: &Path, relative: &str) -> Option<PathBuf> {
    let joined = base.join(relative);
    let mut parts: Vec<Component> = Vec::new();
    for component in joined.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.iter().collect())
}

/// Tokens `prefix[allowed]*` in `text` that are not part of a longer identifier.
fn tokens(text: &str, prefix: &str, allowed: impl Fn(char) -> bool) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices(prefix) {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &text[at + prefix.len()..];
        let end = rest.find(|c: char| !allowed(c)).unwrap_or(rest.len());
        found.push(format!("{prefix}{}", &rest[..end]));
    }
    found
}

// ---------------------------------------------------------------------------------------------------------------
// The README itself

#[test]
fn the_readme_is_short() {
    let size = read("README.md").len();
    assert!(
        size < README_MAX_BYTES,
        "README.md is {size} bytes; keep it under {README_MAX_BYTES} and move reference material to docs/reference.md"
    );
}

#[test]
fn the_readme_keeps_the_two_commands_verbatim() {
    let readme = read("README.md");
    let (_, blocks) = parse(&readme);
    let quick_start = blocks
        .iter()
        .find(|b| b.lines.iter().any(|l| l == RUN_LINE))
        .unwrap_or_else(|| panic!("README.md has no code block with the line {RUN_LINE:?}"));
    assert_eq!(
        quick_start.lines,
        [RUN_LINE, TEST_LINE],
        "the quick start block holds exactly the two commands"
    );
    assert_eq!(quick_start.info, "sh");
    // It comes before anything else the README asks the reader to run.
    let first_block = blocks.first().expect("a code block");
    assert_eq!(first_block.lines, quick_start.lines);
}

#[test]
fn ci_runs_exactly_the_readme_test_command() {
    let command = TEST_LINE.split('#').next().unwrap().trim();
    let ci = read(".ci/run");
    let commands: Vec<&str> = ci
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| !l.starts_with("set ") && !l.starts_with("cd "))
        .collect();
    assert_eq!(
        commands,
        [format!("exec {command}")],
        ".ci/run must run the README's test command and nothing else"
    );
    let script = root().join(command.trim_start_matches("./"));
    let mode = fs::metadata(&script)
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()))
        .permissions();
    assert!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o111 != 0,
        "{command} is executable"
    );
    // What the README says the script does, it does.
    let test_sh = read("scripts/test.sh");
    assert!(test_sh.contains("apt-get install"));
    assert!(test_sh.contains("cargo test --locked"));
    assert!(read("README.md").contains("cargo test --locked"));
}

// ---------------------------------------------------------------------------------------------------------------
// Links

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut anchor_cache: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for file in markdown_files() {
        let text = read(&file);
        let dir = file.parent().unwrap_or(Path::new(""));
        for (line, target) in links(&text) {
            if target.is_empty() {
                problems.push(format!("{}:{line}: empty link", file.display()));
                continue;
            }
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let resolved = if path.is_empty() {
                Some(file.clone())
            } else {
                resolve(dir, path)
            };
            let Some(resolved) = resolved else {
                problems.push(format!(
                    "{}:{line}: {target} leaves the repository",
                    file.display()
                ));
                continue;
            };
            if !root().join(&resolved).exists() {
                problems.push(format!(
                    "{}:{line}: {target}: no such file ({})",
                    file.display(),
                    resolved.display()
                ));
                continue;
            }
            if anchor.is_empty() || resolved.extension().is_none_or(|ext| ext != "md") {
                continue;
            }
            let known = anchor_cache
                .entry(resolved.clone())
                .or_insert_with(|| anchors(&read(&resolved)));
            if !known.contains(anchor) {
                problems.push(format!(
                    "{}:{line}: {target}: {} has no heading #{anchor}",
                    file.display(),
                    resolved.display()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

#[test]
fn slugs_follow_github() {
    assert_eq!(slug("Use it from your bot"), "use-it-from-your-bot");
    assert_eq!(slug("Every trading symbol (`*`)"), "every-trading-symbol-");
    assert_eq!(
        slug("1. Default channels per market"),
        "1-default-channels-per-market"
    );
    assert_eq!(
        slug("Heartbeat (per venue, from `Policy`)"),
        "heartbeat-per-venue-from-policy"
    );
    assert_eq!(slug("REST side (`rest`)"), "rest-side-rest");
    assert_eq!(slug("MarketfeedSymbolStale"), "marketfeedsymbolstale");
    let doc = "# A\n## Rules\n```\n# not a heading\n```\n### Rules\n";
    assert_eq!(
        anchors(doc),
        ["a", "rules", "rules-1"].map(str::to_owned).into()
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Names the docs use

/// Metric families: the golden exposition's, and every `"marketfeed_..."` string literal in the sources (so a
/// family that exists in code before the golden file catches up counts too).
fn known_metrics() -> BTreeSet<String> {
    let mut known: BTreeSet<String> = read("tests/golden/metrics.prom")
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    let mut stack = vec![root().join("src")];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let source = fs::read_to_string(&path).unwrap();
                for token in tokens(&source, "\"marketfeed_", |c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
                }) {
                    if source.contains(&format!("{token}\"")) {
                        known.insert(token.trim_start_matches('"').to_owned());
                    }
                }
            }
        }
    }
    known
}

/// `marketfeed_*` names in a document: not the crate's own name, not a pattern such as `marketfeed_*_threshold_seconds`.
fn metric_names(text: &str) -> BTreeSet<String> {
    tokens(text, "marketfeed_", |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
    })
    .into_iter()
    .filter(|name| name != "marketfeed_exporter" && !name.ends_with('_'))
    .collect()
}

#[test]
fn every_metric_the_docs_name_exists() {
    let known = known_metrics();
    let rules = read("alerting-rules/marketfeed.rules.yml");
    for file in ["README.md", "docs/reference.md"] {
        let text = read(file);
        let unknown: Vec<String> = metric_names(&text)
            .into_iter()
            .filter(|name| {
                let base = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .unwrap_or(name);
                !known.contains(name) && !known.contains(base)
            })
            .collect();
        assert!(
            unknown.is_empty(),
            "{file} names metrics that are neither in tests/golden/metrics.prom nor in src/: {unknown:?}"
        );
        // Recording rules by their names in the rule file.
        for rule in tokens(&text, "marketfeed:", |c| {
            c.is_ascii_alphanumeric() || c == '_' || c == ':'
        }) {
            assert!(
                rules.contains(&format!("record: {rule}")),
                "{file} names the recording rule {rule}, which alerting-rules/marketfeed.rules.yml does not define"
            );
        }
    }
}

#[test]
fn the_reference_lists_every_metric() {
    let reference = read("docs/reference.md");
    let golden = read("tests/golden/metrics.prom");
    for family in golden
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
    {
        assert!(
            reference.contains(&format!("`{family}`")),
            "docs/reference.md#metrics does not describe {family}"
        );
    }
}

/// Every `MARKETFEED_*` name the exporter knows, from `--help`'s list, which is the list the unknown-variable check
/// uses.
fn known_variables() -> BTreeMap<String, String> {
    let help = marketfeed_exporter::config::help_text();
    let mut variables = BTreeMap::new();
    let mut lines = help.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .split_whitespace()
            .next()
            .filter(|n| n.starts_with("MARKETFEED_"))
        else {
            continue;
        };
        let default = lines
            .peek()
            .and_then(|next| next.trim().strip_prefix("default: "))
            .unwrap_or("")
            .to_owned();
        variables.insert(name.to_owned(), default);
    }
    assert!(variables.len() > 30, "{help}");
    variables
}

/// The shapes Kubernetes service links give a Service named `marketfeed-...`, which the exporter ignores.
fn is_service_link(name: &str) -> bool {
    name.ends_with("_SERVICE_HOST")
        || name.ends_with("_SERVICE_PORT")
        || name.contains("_SERVICE_PORT_")
        || name.ends_with("_PORT")
        || name.contains("_PORT_")
}

#[test]
fn every_variable_the_docs_name_exists() {
    let known = known_variables();
    for file in ["README.md", "docs/reference.md"] {
        let text = read(file);
        let mut unknown = BTreeSet::new();
        for line in text.lines() {
            // The exit-code example shows a misspelt name on purpose.
            if line.contains("unknown variable") {
                continue;
            }
            for name in tokens(line, "MARKETFEED_", |c| {
                c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'
            }) {
                // `MARKETFEED_*`, `MARKETFEED_<EXCHANGE>_...`: patterns, not names.
                if name.ends_with('_') || is_service_link(&name) {
                    continue;
                }
                if !known.contains_key(&name) {
                    unknown.insert(name);
                }
            }
        }
        assert!(
            unknown.is_empty(),
            "{file} names variables the exporter does not know (see src/config): {unknown:?}"
        );
    }
}

#[test]
fn the_reference_documents_every_variable_with_its_default() {
    let known = known_variables();
    let reference = read("docs/reference.md");
    for (name, default) in &known {
        let per_market = ["_DEGRADED_AFTER", "_STALE_AFTER", "_CRITICAL_AFTER"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
            && name.matches('_').count() > 3;
        if per_market {
            assert!(reference.contains("`MARKETFEED_<EXCHANGE>_<MARKET>_DEGRADED_AFTER`"));
            continue;
        }
        let row = reference
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("docs/reference.md#variables has no row for {name}"));
        // The documented default is the code's, where the row spells one out.
        let cell = row.split('|').nth(2).unwrap().trim();
        if let Some(value) = cell.strip_prefix('`').and_then(|c| c.split('`').next()) {
            assert!(
                default.starts_with(value),
                "docs/reference.md gives {name} the default {value:?}; --help says {default:?}"
            );
        }
    }
}

#[test]
fn the_readme_lists_every_alert_and_status() {
    let readme = read("README.md");
    let rules = read("alerting-rules/marketfeed.rules.yml");
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(!alerts.is_empty());
    for alert in &alerts {
        assert!(
            readme.contains(&format!("`{alert}`")),
            "README.md#alerts does not list {alert}"
        );
    }
    for name in tokens(&readme, "Marketfeed", char::is_alphanumeric) {
        assert!(
            alerts.contains(&name.as_str()),
            "README.md names the alert {name}, which the rules do not define"
        );
    }
    // The bot's table covers every status and feed value the API can answer, and no other.
    for value in Status::ALL.map(Status::as_str) {
        assert!(readme.contains(&format!("| status `{value}` |")), "{value}");
    }
    for value in Feed::ALL.map(Feed::as_str) {
        assert!(readme.contains(&format!("| feed `{value}` |")), "{value}");
    }
    let rows = readme
        .lines()
        .filter(|l| l.starts_with("| status `") || l.starts_with("| feed `"))
        .count();
    assert_eq!(rows, Status::ALL.len() + Feed::ALL.len());
}

// ---------------------------------------------------------------------------------------------------------------
// The README's commands and excerpts against the real binary

/// The code lines of the README's console blocks: `(command, output lines)` per `$ ` prompt.
fn console_commands(text: &str) -> Vec<(String, Vec<String>)> {
    let (_, blocks) = parse(text);
    let mut commands: Vec<(String, Vec<String>)> = Vec::new();
    for block in blocks.iter().filter(|b| b.info == "console") {
        for line in &block.lines {
            match line.strip_prefix("$ ") {
                Some(command) => commands.push((command.to_owned(), Vec::new())),
                None => commands
                    .last_mut()
                    .expect("a console block starts with a $ command")
                    .1
                    .push(line.clone()),
            }
        }
    }
    commands
}

/// The path and query of every exporter URL in a text (`localhost:10066/...`, `127.0.0.1:10066/...`), except the
/// templates with `{exchange}` placeholders.
fn exporter_paths(text: &str) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for host in ["localhost:10066", "127.0.0.1:10066"] {
        for (at, _) in text.match_indices(host) {
            let rest = &text[at + host.len()..];
            let end = rest
                .find(|c: char| c.is_whitespace() || "'\"`)<>".contains(c))
                .unwrap_or(rest.len());
            let path = rest[..end].trim_end_matches(['.', ',', ';', ':']);
            let path = if path.is_empty() { "/" } else { path };
            if path.starts_with('/') && !path.contains('{') {
                paths.insert(path.to_owned());
            }
        }
    }
    paths
}

/// A `metric{labels}` sample line's series, without its value.
fn series(line: &str) -> &str {
    line.rsplit_once(' ').map_or(line, |(series, _)| series)
}

/// Object keys, recursively: `channels.channel` for a key inside the array `channels`.
fn keys(value: &Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let path = format!("{prefix}{key}");
                out.push(path.clone());
                keys(inner, &format!("{path}."), out);
            }
        }
        Value::Array(items) => {
            if let Some(first) = items.first() {
                keys(first, prefix, out);
            }
        }
        _ => {}
    }
}

fn key_list(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    keys(value, "", &mut out);
    out
}

/// Applies what the README's `jq` filters do to a real answer: `.`, `del(.channels)`, or `-c '{a, b}'`.
fn jq(command: &str, answer: &Value) -> Value {
    let filter = command
        .split_once("| jq")
        .map(|(_, filter)| filter.trim())
        .unwrap_or(".");
    let filter = filter.trim_start_matches("-c").trim().trim_matches('\'');
    match filter {
        "." => answer.clone(),
        "del(.channels)" => {
            let mut answer = answer.clone();
            answer.as_object_mut().unwrap().remove("channels");
            answer
        }
        pick if pick.starts_with('{') => {
            let mut picked = serde_json::Map::new();
            for key in pick.trim_matches(['{', '}']).split(',') {
                let key = key.trim();
                picked.insert(key.to_owned(), answer[key].clone());
            }
            Value::Object(picked)
        }
        other => panic!("no model of the jq filter {other:?} in this test"),
    }
}

/// The variables of the README's example: the markets and symbols its URLs use, on closed loopback ports.
const TEST_ENV: &[(&str, &str)] = &[
    ("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "BTCUSDT,ETHUSDT"),
    ("MARKETFEED_BINANCE_USDM_SYMBOLS", "BTCUSDT"),
    (
        "MARKETFEED_BYBIT_LINEAR_URL",
        "ws://127.0.0.1:9/v5/public/linear",
    ),
    ("MARKETFEED_BINANCE_USDM_URL", "ws://127.0.0.1:9"),
    ("MARKETFEED_BINANCE_SPOT_REST_URL", "http://127.0.0.1:9"),
    ("MARKETFEED_BINANCE_USDM_REST_URL", "http://127.0.0.1:9"),
    ("MARKETFEED_BYBIT_REST_URL", "http://127.0.0.1:9"),
];

#[tokio::test]
async fn the_readme_excerpts_match_the_real_answers() {
    let exporter = Exporter::start(TEST_ENV).await;
    let addr = exporter.addr;
    let readme = read("README.md");
    let reference = read("docs/reference.md");

    // Every exporter URL the README and the reference show answers 200.
    for path in exporter_paths(&readme)
        .into_iter()
        .chain(exporter_paths(&reference))
    {
        let (status, body) = get(addr, &path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
    }

    let commands: Vec<(String, Vec<String>)> = console_commands(&readme)
        .into_iter()
        .chain(console_commands(&reference))
        .collect();
    assert!(
        commands
            .iter()
            .any(|(c, _)| c == "curl -s localhost:10066/metrics"),
        "README.md shows a /metrics excerpt"
    );
    let mut json_excerpts = 0;
    for (command, output) in &commands {
        let paths = exporter_paths(command);
        let path = paths
            .first()
            .unwrap_or_else(|| panic!("{command}: no exporter URL"));
        let (status, body) = get(addr, path).await;
        assert_eq!(status, 200, "{command}: {body}");
        if path == "/metrics" {
            // HELP and TYPE lines verbatim, every series as the exporter names it, in the exposition's order.
            let real: Vec<&str> = body.lines().collect();
            let mut at = 0;
            for line in output.iter().filter(|l| l.as_str() != "...") {
                let wanted = if line.starts_with('#') {
                    line.as_str()
                } else {
                    series(line)
                };
                let found = real[at..]
                    .iter()
                    .position(|r| {
                        if line.starts_with('#') {
                            *r == wanted
                        } else {
                            series(r) == wanted
                        }
                    })
                    .unwrap_or_else(|| {
                        panic!("the /metrics excerpt's line is not in the real exposition (or out of order): {line}")
                    });
                at += found + 1;
            }
        } else {
            // The excerpt has the keys of the real answer run through the same jq filter.
            let shown: Value = serde_json::from_str(&output.join("\n"))
                .unwrap_or_else(|e| panic!("{command}: the excerpt is not JSON ({e})"));
            let answer: Value = serde_json::from_str(&body).unwrap();
            let expected = jq(command, &answer);
            assert_eq!(
                key_list(&shown),
                key_list(&expected),
                "{command}: the excerpt's fields differ from the real answer's"
            );
            for field in ["status", "feed"] {
                for value in [&shown[field], &shown["channels"][0][field]] {
                    if let Some(value) = value.as_str() {
                        let known = Status::ALL.map(Status::as_str).contains(&value)
                            || Feed::ALL.map(Feed::as_str).contains(&value);
                        assert!(known, "{command}: {field} {value:?}");
                    }
                }
            }
            json_excerpts += 1;
        }
    }
    assert!(
        json_excerpts >= 3,
        "the README and the reference show API answers"
    );

    // The error bodies the docs quote are the real ones.
    for (path, status) in [
        ("/api/v1/symbols/bybit/linear/DOGEUSDT", 404),
        ("/nope", 404),
        ("/api/v1/symbols?max_staleness=soon", 400),
        ("/api/v1/symbols?feed=dead", 400),
    ] {
        let (code, body) = get(addr, path).await;
        assert_eq!(code, status, "{path}: {body}");
        let quoted = body.replace('"', "\\\"");
        assert!(
            reference.contains(&format!("`{body}`")) || reference.contains(&quoted),
            "docs/reference.md#http-status-codes does not quote the real {path} answer: {body}"
        );
    }
    let (_, body) = get(addr, "/api/v1/symbols/bybit/linear/DOGEUSDT").await;
    let message = serde_json::from_str::<Value>(&body).unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    let (head, tail) = message.split_once("bybit/linear/DOGEUSDT").unwrap();
    assert!(
        readme.contains(&format!("{head}...{tail}")),
        "README.md quotes the 404 message as {head}...{tail}"
    );
    drop(exporter);
}

#[test]
fn the_readme_check_config_example_passes() {
    let readme = read("README.md");
    let (_, blocks) = parse(&readme);
    let lines: Vec<String> = blocks
        .iter()
        .flat_map(|b| {
            b.lines
                .join("\n")
                .replace("\\\n", " ")
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|l| l.contains("--check-config"))
        .collect();
    assert!(
        !lines.is_empty(),
        "README.md shows a --check-config example"
    );
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        let split = words
            .iter()
            .position(|w| !w.contains('='))
            .expect("a program");
        let vars: Vec<(&str, &str)> = words[..split]
            .iter()
            .map(|w| w.split_once('=').unwrap())
            .collect();
        assert!(
            words[split].ends_with("marketfeed_exporter"),
            "{line}: runs the exporter"
        );
        let out = run(&vars, &words[split + 1..]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{line}\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for (_, value) in vars.iter().filter(|(name, _)| name.ends_with("_SYMBOLS")) {
            assert!(stdout.contains(value), "{line}: {stdout}");
        }
    }
}
