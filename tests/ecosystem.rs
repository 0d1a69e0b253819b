//! The shipped alerting rules, Alertmanager configuration and Grafana dashboards, checked with the real
//! Prometheus tools (`promtool`, `amtool`, `prometheus`, `prometheus-alertmanager`) and run end to end against
//! the exporter fed by a fake venue.

// Needs programs from outside Rust: the external-tools tier (`./scripts/test.sh`).
#![cfg(feature = "external-tools")]

use marketfeed_testkit as support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use support::fake::FakeKind;
use support::prom::{self, TempDir};
use support::stack::{self, BotOptions, Market, Options, Stack, read, repo};
use support::tool::run_ok;

/// The rule files with their promtool unit tests and their least number of alerts: the sidecar's, and the sharded
/// deployment's.
const RULE_FILES: [(&str, &str, usize); 2] = [
    (
        "alerting-rules/marketfeed.rules.yml",
        "alerting-rules/tests/marketfeed.rules.test.yml",
        9,
    ),
    (
        "alerting-rules/marketfeed-sharded.rules.yml",
        "alerting-rules/tests/marketfeed-sharded.rules.test.yml",
        5,
    ),
];

#[test]
fn rules_pass_promtool_check_and_unit_tests() {
    for (rules, tests, _) in RULE_FILES {
        let check = run_ok("promtool", &["check", "rules", rules]).text;
        assert!(check.contains("SUCCESS"), "{check}");
        assert!(!check.to_lowercase().contains("warning"), "{check}");
        let test = run_ok("promtool", &["test", "rules", tests]).text;
        assert!(test.contains("SUCCESS"), "{test}");
    }
}

#[test]
fn every_alert_has_a_runbook_section_and_the_mixin_fields() {
    let runbook = read("docs/runbook.md");
    for (file, _, least) in RULE_FILES {
        let rules = read(file);
        let alerts: Vec<&str> = rules
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- alert: "))
            .collect();
        assert!(alerts.len() >= least, "{file}: {alerts:?}");
        for alert in &alerts {
            assert!(alert.starts_with("Marketfeed"), "{alert}");
            assert!(
                runbook
                    .lines()
                    .any(|l| l.trim_start_matches('#').trim() == *alert),
                "docs/runbook.md lacks a section for {alert}"
            );
            let anchor = format!("docs/runbook.md#{}", alert.to_lowercase());
            assert!(rules.contains(&anchor), "{alert}: runbook_url {anchor}");
        }
        for field in ["severity:", "summary:", "description:", "runbook_url:"] {
            assert_eq!(
                rules.matches(field).count(),
                alerts.len(),
                "{file}: every alert has one {field}"
            );
        }
    }
}

/// Thresholds live in the exporter only: the rules compare each series with its own exporter's threshold gauge,
/// never with a number of their own (which would disagree with the API the day someone changes one side).
#[test]
fn the_rules_hold_no_threshold_of_their_own() {
    for (file, _, _) in RULE_FILES {
        let rules = read(file);
        for written in ["scalar(", "vector(", "180", "300", "3600"] {
            assert!(!rules.contains(written), "{file} writes {written:?}");
        }
    }
    let rules = read("alerting-rules/marketfeed.rules.yml");
    for gauge in [
        "marketfeed_stale_threshold_seconds",
        "marketfeed_degraded_threshold_seconds",
        "marketfeed_channel_late_after_seconds",
    ] {
        assert!(
            rules.contains(&format!("group_left () {gauge}")),
            "{gauge} is compared by label matching"
        );
    }
}

#[test]
fn prometheus_rule_resource_carries_the_rule_file_unchanged() {
    for (resource, rules) in [
        (
            "alerting-rules/prometheusrule.yaml",
            "alerting-rules/marketfeed.rules.yml",
        ),
        (
            "deploy/kubernetes/sharded/prometheusrule.yaml",
            "alerting-rules/marketfeed-sharded.rules.yml",
        ),
    ] {
        let text = read(resource);
        let (header, spec) = text.split_once("\nspec:\n").expect("a spec: line");
        assert!(
            header.contains("kind: PrometheusRule")
                && header.contains("apiVersion: monitoring.coreos.com/v1")
        );
        let unindented: String = spec
            .lines()
            .map(|l| {
                l.strip_prefix("  ").unwrap_or_else(|| {
                    assert!(l.is_empty(), "spec line not indented by two spaces: {l:?}");
                    l
                })
            })
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            unindented,
            read(rules),
            "{resource} is stale: run alerting-rules/generate-prometheusrule.sh"
        );
    }
}

/// One place sets every alert's runbook link: the generator's RUNBOOK_URL, each alert keeping its own section. Run on
/// a copy of the two directories it writes, so the repository is left alone.
#[test]
fn runbook_links_have_one_base_set_by_the_generator() {
    let dir = TempDir::new("runbook");
    for file in [
        "alerting-rules/generate-prometheusrule.sh",
        "alerting-rules/marketfeed.rules.yml",
        "alerting-rules/marketfeed-sharded.rules.yml",
        "alerting-rules/prometheusrule.yaml",
        "deploy/kubernetes/common/prometheusrule.yaml",
        "deploy/kubernetes/sharded/prometheusrule.yaml",
    ] {
        let to = dir.path().join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(repo(file), &to).unwrap();
    }
    let script = dir.path().join("alerting-rules/generate-prometheusrule.sh");
    let generate = |runbook: Option<&str>| {
        let mut command = std::process::Command::new("bash");
        command.arg(&script).env_remove("RUNBOOK_URL");
        if let Some(url) = runbook {
            command.env("RUNBOOK_URL", url);
        }
        command.output().unwrap()
    };
    let base = "https://wiki.example.com/ops/marketfeed-runbook";
    let out = generate(Some(base));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rules =
        std::fs::read_to_string(dir.path().join("alerting-rules/marketfeed.rules.yml")).unwrap();
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&rules).unwrap();
    let mut alerts = 0;
    for rule in yaml["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap())
    {
        if let Some(alert) = rule["alert"].as_str() {
            alerts += 1;
            assert_eq!(
                rule["annotations"]["runbook_url"].as_str(),
                Some(format!("{base}#{}", alert.to_lowercase()).as_str()),
                "{alert}"
            );
        }
    }
    assert!(alerts >= 13, "{alerts} alerts");
    for copy in [
        "alerting-rules/prometheusrule.yaml",
        "deploy/kubernetes/common/prometheusrule.yaml",
    ] {
        let resource = std::fs::read_to_string(dir.path().join(copy)).unwrap();
        assert_eq!(
            resource.matches(base).count(),
            alerts,
            "{copy} carries the new links"
        );
    }
    let sharded = std::fs::read_to_string(
        dir.path()
            .join("deploy/kubernetes/sharded/prometheusrule.yaml"),
    )
    .unwrap();
    assert_eq!(
        sharded.matches(base).count(),
        sharded.matches("- alert: ").count(),
        "the sharded rules carry the new links"
    );
    // Without RUNBOOK_URL: the links in this repository, byte for byte what is committed.
    assert!(generate(None).status.success());
    for file in [
        "alerting-rules/marketfeed.rules.yml",
        "alerting-rules/marketfeed-sharded.rules.yml",
        "alerting-rules/prometheusrule.yaml",
        "deploy/kubernetes/common/prometheusrule.yaml",
        "deploy/kubernetes/sharded/prometheusrule.yaml",
    ] {
        assert_eq!(
            std::fs::read_to_string(dir.path().join(file)).unwrap(),
            read(file),
            "{file}: the default is the committed state"
        );
    }
    let bad = generate(Some("https://wiki.example.com/runbook#top"));
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RUNBOOK_URL must not contain #"));
}

#[test]
fn alertmanager_config_passes_amtool() {
    let dir = TempDir::new("amtool");
    // Debian 12's amtool 0.25 does not know telegram's bot_token_file (0.26); everything else is checked as shipped.
    let config = stack::replace(
        &read("alerting-rules/alertmanager.yml"),
        "bot_token_file: /etc/alertmanager/secrets/telegram-bot-token",
        "bot_token: placeholder",
        1,
    );
    // The templates where a user mounts them: here, the repository's file (a glob that matched nothing would pass).
    let config = stack::replace(
        &config,
        "/etc/alertmanager/templates/marketfeed.tmpl",
        &repo("alerting-rules/marketfeed.tmpl").display().to_string(),
        1,
    );
    let path = dir.write("alertmanager.yml", &config);
    let out = run_ok("amtool", &["check-config", path.to_str().unwrap()]).text;
    assert!(
        out.contains("SUCCESS") && out.contains("5 inhibit rules") && out.contains("1 templates"),
        "{out}"
    );
    // Every template the receivers name is defined in the file.
    let templates = read("alerting-rules/marketfeed.tmpl");
    for used in config
        .match_indices("{{ template \"")
        .map(|(at, _)| &config[at..])
    {
        let name = used.split('"').nth(1).unwrap();
        assert!(
            templates.contains(&format!("{{{{ define \"{name}\" -}}}}")),
            "{name} is used by a receiver but not defined"
        );
    }
}

/// Every panel of every dashboard, with its targets' expressions.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in panels.as_array().into_iter().flatten() {
            out.push(panel);
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out.into_iter().filter(|p| p["type"] != "row").collect()
}

fn dashboards() -> Vec<(String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(repo("grafana/dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "overview and per-symbol dashboards");
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                serde_json::from_str(&text).unwrap(),
            )
        })
        .collect()
}

/// A target's expression with Grafana's variables replaced by what a user with "All" selected would send.
fn concrete(expr: &str) -> String {
    expr.replace("$__rate_interval", "30s")
        .replace("$__interval", "5s")
        .replace("$__range", "1h")
        .replace("$job", ".*")
        .replace("$instance", ".*")
        .replace("$namespace", ".*")
        .replace("$pod", ".*")
        .replace("${exchange}", ".*")
        .replace("${market}", ".*")
        .replace("${symbol}", ".*")
        .replace("$exchange", ".*")
        .replace("$market", ".*")
        .replace("$symbol", ".*")
        .replace("${channel}", ".*")
        .replace("$channel", ".*")
}

fn exprs(dashboard: &Value) -> Vec<String> {
    panels(dashboard)
        .into_iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn dashboards_follow_the_conventions() {
    let mut uids = BTreeSet::new();
    for (file, d) in dashboards() {
        let uid = d["uid"].as_str().unwrap_or_else(|| panic!("{file}: uid"));
        assert!(uids.insert(uid.to_owned()), "{file}: duplicate uid {uid}");
        let vars: Vec<&str> = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        for var in [
            "datasource",
            "job",
            "instance",
            "namespace",
            "pod",
            "exchange",
            "market",
            "symbol",
        ] {
            assert!(vars.contains(&var), "{file}: template variable {var}");
        }
        let ds = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "datasource")
            .unwrap();
        assert_eq!(
            (ds["type"].as_str(), ds["query"].as_str()),
            (Some("datasource"), Some("prometheus")),
            "{file}"
        );
        let mut ids = BTreeSet::new();
        for panel in panels(&d) {
            let title = panel["title"].as_str().unwrap_or("?");
            assert!(
                ids.insert(panel["id"].as_u64().unwrap()),
                "{file}: duplicate panel id at {title}"
            );
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{file}/{title}: panel datasource"
            );
            let unit = panel["fieldConfig"]["defaults"]["unit"]
                .as_str()
                .unwrap_or("");
            assert!(!unit.is_empty(), "{file}/{title}: no unit");
            let targets = panel["targets"]
                .as_array()
                .unwrap_or_else(|| panic!("{file}/{title}: no targets"));
            assert!(!targets.is_empty(), "{file}/{title}: no targets");
            for target in targets {
                assert_eq!(
                    target["datasource"]["uid"], "${datasource}",
                    "{file}/{title}: target datasource"
                );
                let expr = target["expr"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{file}/{title}: no expr"));
                for function in ["rate(", "increase(", "irate("] {
                    for (i, _) in expr.match_indices(function) {
                        let rest = &expr[i..];
                        let range = rest.find('[').map(|s| &rest[s..]).unwrap_or("");
                        // $__range: a total over the dashboard's time range (a table of causes).
                        assert!(
                            range.starts_with("[$__rate_interval]")
                                || range.starts_with("[$__range]"),
                            "{file}/{title}: {function} without $__rate_interval: {expr}"
                        );
                    }
                }
                if expr.contains("marketfeed_") {
                    // The clock offset is per exchange: it has no market to filter on.
                    let per_exchange = expr.contains("marketfeed_clock_offset_seconds");
                    assert!(
                        expr.contains("exchange=~\"$exchange\"")
                            && (per_exchange || expr.contains("market=~\"$market\"")),
                        "{file}/{title}: not filtered by the variables: {expr}"
                    );
                }
                if expr.contains("marketfeed_") || expr.contains("process_") {
                    let exporter = "job=~\"$job\", instance=~\"$instance\", namespace=~\"$namespace\", pod=~\"$pod\"";
                    assert!(
                        expr.contains(exporter),
                        "{file}/{title}: not filtered by exporter: {expr}"
                    );
                }
                // Several exporters are never summed into one number: every aggregation keeps the exporter,
                // except a heatmap's `by (le)`, which the exporter variables narrow.
                for function in ["sum", "count", "max", "min", "avg"] {
                    for (at, _) in expr.match_indices(&format!("{function}(")) {
                        let before = expr[..at].chars().last();
                        assert!(
                            before.is_some_and(|c| c.is_alphanumeric() || c == '_'),
                            "{file}/{title}: {function}() across exporters: {expr}"
                        );
                    }
                    for (at, _) in expr.match_indices(&format!("{function} by (")) {
                        let list = &expr[at..][..expr[at..].find(')').unwrap()];
                        assert!(
                            list.ends_with("(le") || list.contains("job, instance, namespace, pod"),
                            "{file}/{title}: {list}) merges exporters: {expr}"
                        );
                    }
                }
            }
        }
    }
}

/// Every dashboard expression is valid PromQL: promtool parses it as a recording rule.
#[test]
fn dashboard_queries_parse_as_promql() {
    let dir = TempDir::new("promql");
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    for (_, d) in dashboards() {
        for (i, expr) in exprs(&d).iter().enumerate() {
            rules.push_str(&format!(
                "      - record: dashboard:q{i}\n        expr: {}\n",
                serde_json::to_string(&concrete(expr)).unwrap()
            ));
        }
    }
    let path = dir.write("dashboards.rules.yml", &rules);
    run_ok("promtool", &["check", "rules", path.to_str().unwrap()]);
}

/// The venue stops serving both ETHUSDT streams (`on`), on any connection and through the exporter's resubscribes,
/// or serves them again (`!on`).
fn mute_eth(stack: &Stack, on: bool) {
    for key in ["orderbook.1.ETHUSDT", "tickers.ETHUSDT"] {
        stack.bot().fake().set_muted(key, on);
    }
}

/// Every dashboard query returns data from a real Prometheus scraping two bots' exporters of different health: bot-a
/// lost ETHUSDT (stale, then late), bot-b is healthy and watches AGIXUSDT, which the venue has halted. The per-exporter
/// counts the overview shows are then each exporter's own, as its `/api/v1/symbols` says, never a mix of the two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_queries_return_data_from_a_real_prometheus() {
    let bot = |pod, symbols, closed| BotOptions {
        pod,
        markets: vec![Market {
            kind: FakeKind::BybitLinear,
            symbols,
            thresholds: Some(("2s", "4s")),
            closed,
        }],
    };
    let stack = Stack::start(Options {
        bots: vec![
            bot("bot-a", "BTCUSDT,ETHUSDT", &[]),
            bot("bot-b", "BTCUSDT,ETHUSDT,AGIXUSDT", &["AGIXUSDT"]),
        ],
        ..Options::fast()
    })
    .await;
    let (bot_a, bot_b) = (&stack.bots[0], &stack.bots[1]);
    stack
        .until_series(
            "marketfeed:symbol_staleness_seconds < 1",
            5,
            Duration::from_secs(30),
        )
        .await;
    // A reconnect, so the reconnect panels have something to show.
    let accepted = bot_a.fake().connections_accepted();
    bot_a.fake().close_all();
    bot_a
        .fake()
        .wait_for("the reconnect", Duration::from_secs(10), |f| {
            f.connections_accepted() > accepted
        })
        .await;
    stack
        .until_series(
            "marketfeed:symbol_staleness_seconds < 1",
            5,
            Duration::from_secs(30),
        )
        .await;
    for key in ["orderbook.1.ETHUSDT", "tickers.ETHUSDT"] {
        bot_a.fake().set_muted(key, true);
    }
    // Stale after 4 s, late after 17 s (orderbook.1's deadline), cross-checked over REST within the 15 s scan.
    stack
        .until_series(
            "marketfeed_symbols{feed=\"late\"} > 0",
            1,
            Duration::from_secs(40),
        )
        .await;
    stack
        .until_series(
            "marketfeed_rest_crosscheck_timestamp_seconds",
            1,
            Duration::from_secs(30),
        )
        .await;
    // The halted symbol, read from the venue's instrument list.
    stack
        .until_series("marketfeed_symbol_trading == 0", 1, Duration::from_secs(30))
        .await;
    // A few more scrapes so every rate window holds samples.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut empty = Vec::new();
    for (file, d) in dashboards() {
        for expr in exprs(&d) {
            if prom::query(stack.prometheus.addr, &concrete(&expr))
                .await
                .is_empty()
            {
                empty.push(format!("{file}: {expr}"));
            }
        }
    }
    assert!(
        empty.is_empty(),
        "queries without data:\n{}",
        empty.join("\n")
    );

    // Per exporter, the overview's counts are the exporter's own API answer.
    let overview = dashboards()
        .into_iter()
        .find(|(file, _)| file == "marketfeed-overview.json")
        .unwrap()
        .1;
    let stat = |title: &str| -> String {
        let panel = panels(&overview)
            .into_iter()
            .find(|p| p["title"] == title)
            .unwrap_or_else(|| panic!("no panel {title}"));
        concrete(panel["targets"][0]["expr"].as_str().unwrap())
    };
    let mut expected: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut shown: BTreeSet<(String, String, String)> = BTreeSet::new();
    let panels_by_verdict = [
        ("Healthy symbols", "status", "healthy"),
        ("Degraded symbols", "status", "degraded"),
        ("Stale symbols", "status", "stale"),
        ("Critical symbols", "status", "critical"),
        ("Live symbols", "feed", "live"),
        ("Quiet symbols", "feed", "quiet"),
        ("Late symbols", "feed", "late"),
        ("No data", "feed", "no_data"),
    ];
    for bot in [bot_a, bot_b] {
        let (_, body) = support::http::get(bot.exporter.addr, "/api/v1/symbols").await;
        let api: Value = serde_json::from_str(&body).unwrap();
        let symbols = api["symbols"].as_array().unwrap();
        for (title, field, verdict) in panels_by_verdict {
            // The status counts leave out what the venue closed, as the alerts do; the feed counts are the exporter's.
            let n = symbols
                .iter()
                .filter(|s| s[field] == verdict)
                .filter(|s| {
                    field == "feed" || !matches!(s["listing"].as_str(), Some("halted" | "unlisted"))
                })
                .count();
            expected.insert((bot.pod.to_owned(), title.to_owned(), n.to_string()));
        }
    }
    for (title, _, _) in panels_by_verdict {
        for series in prom::query(stack.prometheus.addr, &stat(title)).await {
            shown.insert((
                series["metric"]["pod"].as_str().unwrap_or("?").to_owned(),
                title.to_owned(),
                series["value"][1].as_str().unwrap().to_owned(),
            ));
        }
    }
    assert_eq!(
        shown, expected,
        "dashboard counts (left) against each exporter's API (right)"
    );
    // What those are, so the comparison above cannot pass on two empty sets.
    for row in [
        ("bot-a", "Stale symbols", "1"),
        ("bot-a", "Late symbols", "1"),
        ("bot-b", "Healthy symbols", "2"),
        ("bot-b", "Live symbols", "3"),
    ] {
        assert!(
            expected.contains(&(row.0.to_owned(), row.1.to_owned(), row.2.to_owned())),
            "{row:?} in {expected:#?}"
        );
    }
    let closed = prom::query(
        stack.prometheus.addr,
        &concrete(
            panels(&overview)
                .into_iter()
                .find(|p| p["title"] == "Halted and delisted symbols")
                .unwrap()["targets"][0]["expr"]
                .as_str()
                .unwrap(),
        ),
    )
    .await;
    assert_eq!(closed.len(), 1, "{closed:#?}");
    assert_eq!(
        (
            &closed[0]["metric"]["pod"],
            &closed[0]["metric"]["symbol"],
            &closed[0]["value"][1]
        ),
        (
            &Value::from("bot-b"),
            &Value::from("AGIXUSDT"),
            &Value::from("1")
        ),
        "halted: listed, not trading"
    );
}

fn alerts_in(notification: &Value) -> Vec<&Value> {
    notification["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .collect()
}

/// Notifications on the generic webhook that carry `alertname` with `status`.
fn notified<'a>(notifications: &'a [Value], alertname: &str, status: &str) -> Vec<&'a Value> {
    notifications
        .iter()
        .flat_map(alerts_in)
        .filter(|a| a["labels"]["alertname"] == alertname && a["status"] == status)
        .collect()
}

/// Polls the generic webhook's notifications received after the first `from` until `cond` holds on them.
async fn wait(
    stack: &Stack,
    from: usize,
    what: &str,
    cond: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    wait_for(stack, from, Duration::from_secs(40), what, cond).await
}

/// [`wait`] for at most `timeout`.
async fn wait_for(
    stack: &Stack,
    from: usize,
    timeout: Duration,
    what: &str,
    cond: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let received = stack.webhook.received("/marketfeed").split_off(from);
        if cond(&received) {
            return received;
        }
        if tokio::time::Instant::now() >= deadline {
            let staleness =
                prom::query(stack.prometheus.addr, "marketfeed:symbol_staleness_seconds").await;
            let alerts = prom::query(stack.prometheus.addr, "ALERTS").await;
            panic!(
                "timed out waiting for {what}; notifications: {received:#?}\nstaleness: {staleness:#?}\n\
                 ALERTS: {alerts:#?}\nalertmanager log:\n{}",
                stack.alertmanager.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn labels(alert: &Value) -> BTreeSet<(String, String)> {
    alert["labels"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The feed-down case runs first, while Alertmanager has no critical group yet: a new group waits group_wait,
/// long enough for the feed-down alert that Prometheus sends a few milliseconds after the per-symbol alerts of
/// the same evaluation. (An existing group flushes new alerts at its next group_interval tick instead, and
/// Alertmanager keeps an emptied group for up to 30 s; with production intervals the window between the two
/// sends is milliseconds in five minutes.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_the_webhook_end_to_end() {
    let stack = Stack::start(Options::fast()).await;
    let fresh = "marketfeed:symbol_staleness_seconds < 2";
    stack.until_series(fresh, 2, Duration::from_secs(30)).await;
    let instance = stack.bot().instance.as_str();
    let common = [
        ("exchange", "bybit"),
        ("market", "linear"),
        ("job", "marketfeed"),
        ("instance", instance),
        ("namespace", "trading"),
        ("pod", "bot-0"),
    ];

    // The whole feed goes silent: one feed-down notification, the per-symbol alerts inhibited.
    stack.bot().fake().set_silent(true);
    wait(&stack, 0, "the feed-down alert", |n| {
        !notified(n, "MarketfeedFeedDown", "firing").is_empty()
    })
    .await;
    // Long enough for any per-symbol notification that was not inhibited to arrive.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let received = stack.webhook.received("/marketfeed");
    let feed_down: Vec<&Value> = received
        .iter()
        .filter(|n| {
            alerts_in(n)
                .iter()
                .any(|a| a["labels"]["alertname"] == "MarketfeedFeedDown")
        })
        .collect();
    assert_eq!(
        feed_down.len(),
        1,
        "exactly one feed-down notification: {received:#?}"
    );
    let down = notified(&received, "MarketfeedFeedDown", "firing")[0];
    let mut expected = pairs(&common);
    expected.extend(pairs(&[
        ("alertname", "MarketfeedFeedDown"),
        ("severity", "critical"),
    ]));
    assert_eq!(
        labels(down),
        expected,
        "one alert for the market, not per symbol"
    );
    assert!(
        notified(&received, "MarketfeedSymbolStale", "firing").is_empty(),
        "per-symbol alerts inhibited: {received:#?}"
    );
    // Alertmanager itself says they are firing but inhibited by the feed-down alert.
    let alerts = alerts_in_alertmanager(&stack, "MarketfeedSymbolStale").await;
    assert_eq!(alerts.len(), 2, "both symbols stale: {alerts:#?}");
    for alert in &alerts {
        assert!(
            !alert["status"]["inhibitedBy"]
                .as_array()
                .unwrap()
                .is_empty(),
            "{alert}"
        );
    }
    let oncall = stack
        .webhook
        .received("/slack")
        .into_iter()
        .filter(|m| m["channel"] == "#trading-oncall")
        .count();
    assert!(
        oncall >= 1,
        "critical alerts also go to the on-call Slack channel"
    );

    // The feed comes back: the feed-down alert resolves.
    stack.bot().fake().set_silent(false);
    wait(&stack, 0, "the feed-down resolution", |n| {
        !notified(n, "MarketfeedFeedDown", "resolved").is_empty()
    })
    .await;
    stack.until_series(fresh, 2, Duration::from_secs(30)).await;

    // One symbol goes silent: its stale alert arrives with the right labels and nothing else pages.
    let from = stack.webhook.received("/marketfeed").len();
    mute_eth(&stack, true);
    let received = wait(&stack, from, "the stale alert", |n| {
        !notified(n, "MarketfeedSymbolStale", "firing").is_empty()
    })
    .await;
    let stale = notified(&received, "MarketfeedSymbolStale", "firing");
    let mut expected = pairs(&common);
    expected.extend(pairs(&[
        ("alertname", "MarketfeedSymbolStale"),
        ("severity", "critical"),
        ("symbol", "ETHUSDT"),
    ]));
    assert!(
        stale.iter().all(|a| labels(a) == expected),
        "only the silent symbol is stale: {stale:#?}"
    );
    assert!(
        stale[0]["annotations"]["runbook_url"]
            .as_str()
            .unwrap()
            .ends_with("docs/runbook.md#marketfeedsymbolstale")
    );
    assert!(
        notified(&received, "MarketfeedFeedDown", "firing").is_empty(),
        "one silent symbol is not a dead feed"
    );

    // The venue serves it again: its resolved notification arrives. (BTCUSDT's stale alert from the feed-down
    // phase, inhibited while it fired, may report its resolution here too.)
    mute_eth(&stack, false);
    let resolved_eth = |n: &[Value]| {
        notified(n, "MarketfeedSymbolStale", "resolved")
            .into_iter()
            .any(|a| a["labels"]["symbol"] == "ETHUSDT")
    };
    let received = wait(&stack, from, "the resolved notification", resolved_eth).await;
    let resolved = notified(&received, "MarketfeedSymbolStale", "resolved");
    let eth = resolved
        .iter()
        .find(|a| a["labels"]["symbol"] == "ETHUSDT")
        .unwrap();
    assert_eq!(labels(eth), expected);
}

/// One exporter, two markets: bybit/linear with its own thresholds (MARKETFEED_BYBIT_LINEAR_DEGRADED_AFTER=20s,
/// _STALE_AFTER=30s), bybit/spot with the defaults (3 and 5 minutes). The venue stops serving ETHUSDT on both, for
/// good; BTCUSDT trades no more on linear (its tickers are silent, its orderbook.1 goes on). Through the shipped
/// rules and Alertmanager configuration: linear's stale alert arrives about 30 s after the silence began, spot's
/// not at all; spot's ETHUSDT orderbook.1 raises the early warning a minute after the exporter's repair failed
/// (linear's is inhibited by its stale alert); the quiet BTCUSDT raises nothing, and is never resubscribed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_market_threshold_and_the_early_warning_end_to_end() {
    let market = |kind, thresholds| Market {
        kind,
        symbols: "BTCUSDT,ETHUSDT",
        thresholds,
        closed: &[],
    };
    let stack = Stack::start(Options {
        bots: vec![BotOptions {
            pod: "bot-0",
            markets: vec![
                market(FakeKind::BybitLinear, Some(("20s", "30s"))),
                market(FakeKind::BybitSpot, None),
            ],
        }],
        ..Options::fast()
    })
    .await;
    let fresh = "marketfeed:symbol_staleness_seconds < 2";
    stack.until_series(fresh, 4, Duration::from_secs(30)).await;
    let thresholds = prom::query(stack.prometheus.addr, "marketfeed_stale_threshold_seconds").await;
    let by_market: BTreeSet<(String, String)> = thresholds
        .iter()
        .map(|s| {
            (
                s["metric"]["market"].as_str().unwrap().to_owned(),
                s["value"][1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        by_market,
        pairs(&[("linear", "30"), ("spot", "300")]),
        "each market's own threshold, as Prometheus sees it"
    );

    let silenced = std::time::Instant::now();
    for fake in &stack.bot().fakes {
        for key in ["orderbook.1.ETHUSDT", "tickers.ETHUSDT"] {
            fake.set_muted(key, true);
        }
    }
    stack.bot().fake().set_muted("tickers.BTCUSDT", true);

    let received = wait_for(
        &stack,
        0,
        Duration::from_secs(60),
        "linear's stale alert",
        |n| !notified(n, "MarketfeedSymbolStale", "firing").is_empty(),
    )
    .await;
    let took = silenced.elapsed();
    assert!(
        took >= Duration::from_secs(29),
        "stale after {took:?}, before its 30 s threshold"
    );
    let stale = notified(&received, "MarketfeedSymbolStale", "firing");
    let mut expected = pairs(&[
        ("alertname", "MarketfeedSymbolStale"),
        ("severity", "critical"),
        ("exchange", "bybit"),
        ("market", "linear"),
        ("symbol", "ETHUSDT"),
        ("job", "marketfeed"),
        ("namespace", "trading"),
        ("pod", "bot-0"),
    ]);
    expected.insert(("instance".to_owned(), stack.bot().instance.clone()));
    assert!(
        stale.iter().all(|a| labels(a) == expected),
        "only linear's ETHUSDT: {stale:#?}"
    );

    // A minute after the repair at 17 s failed, spot's ETHUSDT orderbook.1 warns; spot's 5 minutes have not passed.
    let received = wait_for(
        &stack,
        0,
        Duration::from_secs(90),
        "the early warning",
        |n| !notified(n, "MarketfeedChannelLate", "firing").is_empty(),
    )
    .await;
    let took = silenced.elapsed();
    assert!(
        took >= Duration::from_secs(17 + 60 - 1),
        "late after {took:?}, before its deadline and the minute after the repair"
    );
    let late = notified(&received, "MarketfeedChannelLate", "firing");
    let mut expected = pairs(&[
        ("alertname", "MarketfeedChannelLate"),
        ("severity", "warning"),
        ("exchange", "bybit"),
        ("market", "spot"),
        ("channel", "orderbook.1"),
        ("symbol", "ETHUSDT"),
        ("job", "marketfeed"),
        ("namespace", "trading"),
        ("pod", "bot-0"),
    ]);
    expected.insert(("instance".to_owned(), stack.bot().instance.clone()));
    assert!(
        late.iter().all(|a| labels(a) == expected),
        "spot's ETHUSDT orderbook.1 only (linear's is inhibited by its stale alert): {late:#?}"
    );
    assert!(
        late[0]["annotations"]["runbook_url"]
            .as_str()
            .unwrap()
            .ends_with("docs/runbook.md#marketfeedchannellate")
    );
    // Linear's late channel fires in Prometheus too, inhibited in Alertmanager by the stale alert.
    let inhibited = alerts_in_alertmanager(&stack, "MarketfeedChannelLate").await;
    assert!(
        inhibited.iter().any(|a| a["labels"]["market"] == "linear"
            && !a["status"]["inhibitedBy"].as_array().unwrap().is_empty()),
        "{inhibited:#?}"
    );

    let received = stack.webhook.received("/marketfeed");
    let spot_stale = notified(&received, "MarketfeedSymbolStale", "firing")
        .into_iter()
        .any(|a| a["labels"]["market"] == "spot");
    assert!(!spot_stale, "spot keeps its 5 minutes: {received:#?}");
    let firing = prom::query(stack.prometheus.addr, "ALERTS{symbol=\"BTCUSDT\"}").await;
    assert!(
        firing.is_empty(),
        "a quiet symbol raises nothing: {firing:#?}"
    );
    let quiet = prom::query(
        stack.prometheus.addr,
        "marketfeed_resubscribes_total{market=\"linear\",channel=\"tickers\",symbol=\"BTCUSDT\"}",
    )
    .await;
    assert_eq!(quiet.len(), 1);
    assert_eq!(
        quiet[0]["value"][1], "0",
        "a quiet market is never resubscribed"
    );
    // Repairs at 17 s, then 34 s and 68 s later (51 s, 119 s): two or three by now. Without the back-off, a repair
    // every 17 s would have made four or more.
    let repairs = prom::query(
        stack.prometheus.addr,
        "marketfeed_resubscribes_total{channel=\"orderbook.1\",symbol=\"ETHUSDT\"}",
    )
    .await;
    assert_eq!(repairs.len(), 2, "{repairs:#?}");
    for series in &repairs {
        let n: f64 = series["value"][1].as_str().unwrap().parse().unwrap();
        assert!(
            (2.0..=3.0).contains(&n),
            "the dead books were resubscribed with back-off, {n} times in {:?}: {series}",
            silenced.elapsed()
        );
    }
}

/// Alertmanager's own view of the alerts named `alertname`, inhibited ones included.
async fn alerts_in_alertmanager(stack: &Stack, alertname: &str) -> Vec<Value> {
    let (_, body) = support::http::get(
        stack.alertmanager.addr,
        &format!(
            "/api/v2/alerts?filter={}",
            prom::urlencode(&format!("alertname=\"{alertname}\""))
        ),
    )
    .await;
    serde_json::from_str(&body).unwrap()
}

/// Telegram's sendMessage requests the webhook received (Alertmanager posts to `<api_url>/bot<token>/sendMessage`).
fn telegram_texts(stack: &Stack) -> Vec<String> {
    stack
        .webhook
        .received("/telegram/bottest-token/sendMessage")
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Two bots' exporters, bot-a and bot-b, watch bybit/linear. ETHUSDT dies on bot-a only: exactly one page, from
/// bot-a, and what a human reads on a phone (Telegram, Slack) names the pod, the exchange and market, the symbol and
/// how long it has been silent, with the runbook. Then eleven more of bot-a's symbols die while BTCUSDT stays fresh
/// (so no feed-down): one notification lists ten of them and "and 2 more". bot-b appears in no notification at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_name_the_pod_market_symbol_and_age() {
    let many: String = (1..=11).map(|i| format!(",S{i:02}USDT")).collect();
    let bot_a_symbols: &'static str = Box::leak(format!("BTCUSDT,ETHUSDT{many}").into_boxed_str());
    let bot = |pod, symbols| BotOptions {
        pod,
        markets: vec![Market {
            kind: FakeKind::BybitLinear,
            symbols,
            thresholds: Some(("2s", "4s")),
            closed: &[],
        }],
    };
    let stack = Stack::start(Options {
        bots: vec![bot("bot-a", bot_a_symbols), bot("bot-b", "BTCUSDT,ETHUSDT")],
        ..Options::fast()
    })
    .await;
    stack
        .until_series(
            "marketfeed:symbol_staleness_seconds < 2",
            15,
            Duration::from_secs(30),
        )
        .await;
    let bot_a = &stack.bots[0];
    for key in ["orderbook.1.ETHUSDT", "tickers.ETHUSDT"] {
        bot_a.fake().set_muted(key, true);
    }
    wait(&stack, 0, "bot-a's stale page", |n| {
        !notified(n, "MarketfeedSymbolStale", "firing").is_empty()
    })
    .await;
    // Long enough for any second page to arrive.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let received = stack.webhook.received("/marketfeed");
    let pages: Vec<&Value> = received
        .iter()
        .filter(|n| n["commonLabels"]["severity"] == "critical")
        .collect();
    assert_eq!(pages.len(), 1, "exactly one page: {received:#?}");
    assert_eq!(pages[0]["commonLabels"]["pod"], "bot-a");
    assert_eq!(pages[0]["commonLabels"]["symbol"], "ETHUSDT");
    assert!(
        pages[0]["alerts"][0]["annotations"]["age"]
            .as_str()
            .is_some_and(|age| age.ends_with('s')),
        "the age annotation: {:#?}",
        pages[0]
    );
    let telegram = telegram_texts(&stack);
    assert_eq!(telegram.len(), 1, "one Telegram message: {telegram:#?}");
    let text = &telegram[0];
    assert!(
        text.starts_with(
            "<b>[FIRING:1] MarketfeedSymbolStale critical · bybit/linear · trading/bot-a</b>\n"
        ),
        "{text}"
    );
    let age = regex_like_age(text).unwrap_or_else(|| panic!("no age in {text}"));
    assert!(
        text.contains(&format!("bybit/linear ETHUSDT on {} (pod trading/bot-a) has had no update on any of its channels for {age}", bot_a.instance)),
        "{text}"
    );
    assert!(
        text.contains("<a href=\"https://")
            && text.contains("#marketfeedsymbolstale\">Runbook</a>"),
        "{text}"
    );
    let oncall: Vec<Value> = stack
        .webhook
        .received("/slack")
        .into_iter()
        .filter(|m| m["channel"] == "#trading-oncall")
        .collect();
    assert_eq!(oncall.len(), 1, "{oncall:#?}");
    let attachment = &oncall[0]["attachments"][0];
    assert_eq!(
        attachment["title"],
        "[FIRING:1] MarketfeedSymbolStale critical · bybit/linear · trading/bot-a"
    );
    let slack_text = attachment["text"].as_str().unwrap();
    assert!(
        slack_text.contains("ETHUSDT")
            && slack_text.contains("(pod trading/bot-a)")
            && slack_text.contains("|Runbook>"),
        "{slack_text}"
    );

    // A large outage of one exporter's market, short of a feed-down: one group, capped at ten lines.
    for i in 1..=11 {
        for channel in ["orderbook.1", "tickers"] {
            bot_a
                .fake()
                .set_muted(&format!("{channel}.S{i:02}USDT"), true);
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let capped = loop {
        if let Some(text) = telegram_texts(&stack)
            .into_iter()
            .find(|t| t.contains("and 2 more"))
        {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no capped notification: {:#?}",
            telegram_texts(&stack)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        capped.starts_with(
            "<b>[FIRING:12] MarketfeedSymbolStale critical · bybit/linear · trading/bot-a</b>\n"
        ),
        "{capped}"
    );
    let lines: Vec<&str> = capped
        .lines()
        .filter(|l| l.starts_with("• bybit/linear "))
        .collect();
    assert_eq!(lines.len(), 10, "{capped}");
    assert!(lines.iter().all(|l| l.contains(" silent ")), "{capped}");
    assert!(capped.contains("… and 2 more\n"), "{capped}");
    assert!(
        notified(
            &stack.webhook.received("/marketfeed"),
            "MarketfeedFeedDown",
            "firing"
        )
        .is_empty(),
        "BTCUSDT is fresh: no feed-down"
    );

    // Nothing ever named bot-b.
    for path in [
        "/marketfeed",
        "/slack",
        "/telegram/bottest-token/sendMessage",
    ] {
        for message in stack.webhook.received(path) {
            assert!(!message.to_string().contains("bot-b"), "{path}: {message}");
        }
    }
}

/// The first `for <number>s` (or `m`/`h` form) age in a description, e.g. `5s` or `1m 2s`.
fn regex_like_age(text: &str) -> Option<String> {
    let start = text.find("channels for ")? + "channels for ".len();
    let rest = &text[start..];
    let end = rest.find('.')?;
    let age = &rest[..end];
    age.chars()
        .all(|c| c.is_ascii_digit() || "hms ".contains(c))
        .then(|| age.to_owned())
}

/// Prometheus asks for gzip and gets it: a recording TCP proxy between a real Prometheus and the real exporter
/// sees `Accept-Encoding: gzip` go one way and `content-encoding: gzip` come back, and the series are in
/// Prometheus all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_a_gzip_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let fake = support::fake::FakeVenue::start(FakeKind::BybitLinear).await;
    let url = fake.base_url();
    let exporter = support::exporter::Exporter::start(&[
        ("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "BTCUSDT"),
        ("MARKETFEED_BYBIT_LINEAR_URL", &url),
        ("MARKETFEED_BYBIT_REST_URL", "http://127.0.0.1:9"),
    ])
    .await;
    let upstream = exporter.addr;
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    // What crossed the proxy: (request head, response head) of each exchange.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let record = seen.clone();
    let proxy_task = tokio::spawn(async move {
        while let Ok((mut client, _)) = proxy.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                // One request per read is enough for Prometheus' scrapes (a GET without a body).
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let Ok(n) = client.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 || server.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                    let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                    // Read the response head and body until the body length is reached.
                    let mut response = Vec::new();
                    let complete = loop {
                        let Ok(m) = server.read(&mut buf).await else {
                            return;
                        };
                        if m == 0 {
                            break false;
                        }
                        response.extend_from_slice(&buf[..m]);
                        if client.write_all(&buf[..m]).await.is_err() {
                            return;
                        }
                        if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head =
                                String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok());
                            if length.is_some_and(|len| response.len() >= end + 4 + len) {
                                break true;
                            }
                        }
                    };
                    let end = response
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .unwrap_or(0);
                    let head = String::from_utf8_lossy(&response[..end]).into_owned();
                    record.lock().unwrap().push((request, head));
                    if !complete {
                        return;
                    }
                }
            });
        }
    });
    let dir = TempDir::new("gzip");
    let config = format!(
        "global:\n  scrape_interval: 1s\n\
         scrape_configs:\n  - job_name: marketfeed\n    static_configs:\n      - targets: ['{proxy_addr}']\n"
    );
    let prometheus = prom::prometheus(&dir, &config).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ingested = prom::query(
            prometheus.addr,
            r#"marketfeed_messages_total{market="linear",symbol="BTCUSDT"} > 0"#,
        )
        .await;
        if !ingested.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no series through the proxy: {}",
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let up = prom::query(prometheus.addr, r#"up{job="marketfeed"}"#).await;
    assert_eq!(up[0]["value"][1], "1", "{up:?}");
    let seen = seen.lock().unwrap().clone();
    let scrapes: Vec<&(String, String)> = seen
        .iter()
        .filter(|(request, _)| request.starts_with("GET /metrics "))
        .collect();
    assert!(!scrapes.is_empty(), "{seen:?}");
    for (request, response) in scrapes {
        assert!(
            request
                .to_ascii_lowercase()
                .contains("accept-encoding: gzip"),
            "{request}"
        );
        let response = response.to_ascii_lowercase();
        assert!(response.starts_with("http/1.1 200"), "{response}");
        assert!(response.contains("content-encoding: gzip"), "{response}");
        assert!(response.contains("vary: accept-encoding"), "{response}");
    }
    proxy_task.abort();
    drop(exporter);
}
