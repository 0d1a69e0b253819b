//! The deployment files under `deploy/`, checked offline with real tools: the Kubernetes manifests against
//! Kubernetes' and prometheus-operator's schemas, the kustomizations, the systemd unit with `systemd-analyze`, the
//! Dockerfile and the compose stack against the repository and each other (`docker-compose config`, `promtool`,
//! `amtool`), and every environment the files give the exporter with the real binary's `--check-config`.
//! No Docker engine or cluster is involved: images are not built and nothing is applied.

// Needs programs from outside Rust: the external-tools tier (`./scripts/test.sh`).
#![cfg(feature = "external-tools")]

use marketfeed_testkit as support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::deploy::{at, python, str_at, tools_bin, yaml_docs, yaml_file};
use support::exporter;
use support::prom::{TempDir, free_addr};
use support::stack::{read, replace, repo};
use support::tool::{run, run_ok};

const K8S: &str = "deploy/kubernetes";
/// The oldest Kubernetes with native sidecars on by default, and the newest the pinned validator knows.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.29.0", "1.37.0"];
/// The exporter's default listen port (`--help` says so; checked below).
const PORT: u64 = 10066;
/// The numeric user the image and the manifests run as.
const UID: u64 = 65532;
/// Why both monitors set `honorLabels: true`.
const HONOR_LABELS: &str = "the monitor must honor the exporter's labels: the prometheus-operator sets an `endpoint` \
    target label (the port name) on every target, which would rename the exporter's own `endpoint` label of the REST \
    metrics to exported_endpoint; the exporter exports no job, instance, namespace, service, pod or container label \
    to override";

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/// `--check-config` with exactly `vars` in the environment, as a container or systemd would start it.
fn check_config(vars: &[(String, String)], args: &[&str]) -> (Option<i32>, String) {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = exporter::run(&vars, &[args, &["--check-config"]].concat());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// A ConfigMap's data as the environment `envFrom` makes of it.
fn configmap_vars(configmap: &Value) -> Vec<(String, String)> {
    configmap["data"]
        .as_object()
        .expect("data")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string values").to_owned()))
        .collect()
}

/// A container's `args`.
fn args_of(container: &Value) -> Vec<&str> {
    container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string"))
        .collect()
}

/// Seconds in a duration such as `3m` (the forms the manifests use).
fn seconds(duration: &str) -> u64 {
    let (number, unit) = duration.split_at(duration.len() - 1);
    let n: u64 = number
        .parse()
        .unwrap_or_else(|_| panic!("duration {duration:?}"));
    n * match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => panic!("duration {duration:?}"),
    }
}

/// The exporter's default degraded and stale thresholds, in seconds, as its `--help` prints them: the behaviour the
/// shipped rules give (they read the thresholds from the exporter), warning at 3 minutes and paging at 5.
fn default_thresholds() -> (u64, u64) {
    let help = exporter::run(&[], &["--help"]);
    let help = String::from_utf8(help.stdout).expect("UTF-8 help");
    let default = |var: &str| -> u64 {
        let mut lines = help
            .lines()
            .skip_while(|l| !l.starts_with(&format!("  {var} ")));
        let line = lines.nth(1).unwrap_or_else(|| panic!("{var} in --help"));
        let value = line
            .trim()
            .strip_prefix("default: ")
            .unwrap_or_else(|| panic!("{var}: {line}"));
        seconds(value)
    };
    (
        default("MARKETFEED_DEGRADED_AFTER"),
        default("MARKETFEED_STALE_AFTER"),
    )
}

/// The scrape interval the Grafana datasource assumes.
fn grafana_time_interval() -> String {
    let ds = yaml_file("grafana/provisioning/datasources/prometheus.yml");
    str_at(&ds, "datasources/0/jsonData/timeInterval").to_owned()
}

fn kind_name(doc: &Value) -> String {
    format!("{}/{}", str_at(doc, "kind"), str_at(doc, "metadata/name"))
}

/// Every YAML file under `deploy/kubernetes`, relative to the repository.
fn k8s_files() -> BTreeSet<String> {
    fn walk(dir: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                let relative = path.strip_prefix(repo("")).expect("under the repository");
                out.insert(relative.to_string_lossy().into_owned());
            }
        }
    }
    let mut files = BTreeSet::new();
    walk(&repo(K8S), &mut files);
    files
}

/// Builds a kustomization as kustomize would, for the subset these files use (only `resources:`, files and
/// directories, no transformers: checked here, so this stays a faithful build). Records every file it reads.
fn kustomize(dir: &str, read_files: &mut BTreeSet<String>) -> Vec<Value> {
    let file = format!("{dir}/kustomization.yaml");
    let kustomization = yaml_file(&file);
    read_files.insert(file.clone());
    let keys: BTreeSet<&str> = kustomization
        .as_object()
        .expect("a mapping")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["apiVersion", "kind", "resources"]),
        "{file}: only resources are supported here (a transformer would make this build unfaithful)"
    );
    let mut docs = Vec::new();
    for resource in kustomization["resources"].as_array().expect("resources") {
        let resource = resource.as_str().expect("a path");
        let path = normalize(&format!("{dir}/{resource}"));
        if repo(&path).is_dir() {
            docs.extend(kustomize(&path, read_files));
        } else {
            assert!(
                !resource.contains(".."),
                "{file}: kustomize loads no file from outside the kustomization's directory: {resource}"
            );
            assert!(
                repo(&path).is_file(),
                "{file} lists {resource}, which does not exist"
            );
            docs.extend(yaml_docs(&read(&path)));
            read_files.insert(path);
        }
    }
    docs
}

/// `a/b/../c` → `a/c`.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            ".." => {
                parts.pop();
            }
            "." | "" => {}
            _ => parts.push(part),
        }
    }
    parts.join("/")
}

fn sorted_kinds(docs: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = docs.iter().map(kind_name).collect();
    kinds.sort();
    kinds
}

/// The manifests (not kustomizations) under `deploy/kubernetes`: (path, documents).
fn manifests() -> Vec<(String, Vec<Value>)> {
    k8s_files()
        .into_iter()
        .filter(|f| !f.ends_with("/kustomization.yaml"))
        .map(|f| {
            let docs = yaml_docs(&read(&f));
            (f, docs)
        })
        .collect()
}

fn is_operator_kind(doc: &Value) -> bool {
    str_at(doc, "apiVersion") == "monitoring.coreos.com/v1"
}

/// The exporter container and the pod spec of a deployment file; `init` says which list it must be in.
fn exporter_of(deployment: &Value, init: bool) -> (Value, Value) {
    let pod = at(deployment, "spec/template/spec").clone();
    let list = if init { "initContainers" } else { "containers" };
    let exporter = pod[list]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == "marketfeed-exporter")
        .cloned()
        .unwrap_or_else(|| panic!("no marketfeed-exporter in {list}"));
    (exporter, pod)
}

fn native_deployment() -> Value {
    yaml_file(format!("{K8S}/native/deployment.yaml"))
}

fn classic_deployment() -> Value {
    yaml_file(format!("{K8S}/classic/deployment.yaml"))
}

/// `labels` contains every pair of `selector`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let selector = selector.as_object().expect("matchLabels");
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A Dockerfile's instructions, continuation lines joined, comments dropped: (INSTRUCTION, arguments).
fn dockerfile() -> Vec<(String, String)> {
    let text = read("deploy/docker/Dockerfile");
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                let (instruction, args) = current.split_once(' ').expect("an argument");
                out.push((instruction.to_uppercase(), args.trim().to_owned()));
                current.clear();
            }
        }
    }
    out
}

/// An image reference pinned to an exact version tag (`v3.5.0`, `1.95.0-slim-bookworm`, `12.13-slim`).
fn assert_pinned(image: &str) {
    let (_, tag) = image
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{image}: no tag"));
    let version = tag.split('-').next().unwrap_or_default();
    let numbers: Vec<&str> = version.trim_start_matches('v').split('.').collect();
    assert!(
        numbers.len() >= 2
            && numbers
                .iter()
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
        "{image}: not pinned to an exact version tag"
    );
}

/// The resolved compose configuration (`docker-compose config`: paths absolute, ports in long form).
fn compose() -> Value {
    let out = run_ok(
        "docker-compose",
        &["-f", "deploy/docker/docker-compose.yml", "config"],
    );
    let mut docs = yaml_docs(&out.stdout);
    assert_eq!(docs.len(), 1);
    docs.remove(0)
}

/// A compose service's bind mounts: container path → host path.
fn mounts(service: &Value) -> BTreeMap<String, PathBuf> {
    service["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            let v = v.as_str().expect("short volume syntax");
            let mut parts = v.split(':');
            let (host, container) = (parts.next()?, parts.next()?);
            host.starts_with('/')
                .then(|| (container.to_owned(), PathBuf::from(host)))
        })
        .collect()
}

/// A compose service's published ports: (host ip, published, target).
fn ports(service: &Value) -> Vec<(String, u64, u64)> {
    service["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let p = p.as_str().expect("port string");
            let p = p.trim_end_matches("/tcp");
            let parts: Vec<&str> = p.split(':').collect();
            let [ip, published, target] = parts.as_slice() else {
                panic!("{p}: expected ip:published:target");
            };
            (
                (*ip).to_owned(),
                published.parse().expect("port"),
                target.parse().expect("port"),
            )
        })
        .collect()
}

/// `host:port` of a URL or target.
fn host_port(target: &str) -> (String, u64) {
    let target = target.split("://").last().unwrap_or(target);
    let target = target.split('/').next().unwrap_or(target);
    let (host, port) = target.rsplit_once(':').expect("host:port");
    (host.to_owned(), port.parse().expect("port"))
}

/// A temporary root holding the unit, the example environment file and the built binary at the paths the unit
/// names, plus a copy of this machine's systemd units (verify needs sysinit.target and friends).
fn systemd_root(with_binary: bool) -> TempDir {
    let root = TempDir::new("systemd-root");
    let unit = read("deploy/systemd/marketfeed_exporter.service");
    let dest = |path: &str| {
        let dest = root.path().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().expect("a parent")).expect("mkdir");
        dest
    };
    let units = Path::new("/usr/lib/systemd/system");
    assert!(
        units.is_dir(),
        "no {}: ./scripts/test.sh installs Debian's systemd",
        units.display()
    );
    let copy = dest("usr/lib/systemd/system");
    run_ok("cp", &[Path::new("-r"), units, &copy]);
    std::fs::write(
        dest("etc/systemd/system/marketfeed_exporter.service"),
        &unit,
    )
    .expect("write unit");
    std::fs::copy(
        repo("deploy/systemd/marketfeed_exporter.env"),
        dest(&directive(&unit, "EnvironmentFile")),
    )
    .expect("copy env file");
    if with_binary {
        let exec = directive(&unit, "ExecStart");
        let binary = exec.split_whitespace().next().expect("a program");
        std::fs::copy(exporter::bin(), dest(binary)).expect("copy the binary");
    }
    root
}

/// The value of the one `key=` line of a unit file.
fn directive(unit: &str, key: &str) -> String {
    let values: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect();
    assert_eq!(values.len(), 1, "{key}= should appear once: {values:?}");
    values[0].to_owned()
}

/// `VAR=value` lines of a systemd EnvironmentFile, refusing what systemd would read differently from this
/// parser (quotes, escapes, continuations, `export`).
fn env_file(path: &str) -> Vec<(String, String)> {
    read(path)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            assert!(
                !l.contains(['"', '\'', '\\', '$']) && !l.starts_with("export "),
                "{path}: keep lines plain VAR=value, as systemd and this test read them alike: {l}"
            );
            let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("{path}: {l}"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Kubernetes

#[test]
fn kustomizations_build_every_manifest_and_scrape_once() {
    let mut read_files = BTreeSet::new();
    let default = kustomize(K8S, &mut read_files);
    let native = kustomize(&format!("{K8S}/native"), &mut read_files);
    let classic = kustomize(&format!("{K8S}/classic"), &mut read_files);
    let sharded = kustomize(&format!("{K8S}/sharded"), &mut read_files);

    assert_eq!(default, native, "the default is the native sidecar");
    assert_eq!(
        sorted_kinds(&native),
        [
            "ConfigMap/marketfeed-exporter",
            "Deployment/trading-bot",
            "NetworkPolicy/trading-bot",
            "PodMonitor/marketfeed-exporter",
            "PrometheusRule/marketfeed-exporter",
        ]
    );
    assert_eq!(
        sorted_kinds(&classic),
        [
            "ConfigMap/marketfeed-exporter",
            "Deployment/trading-bot",
            "NetworkPolicy/trading-bot",
            "PrometheusRule/marketfeed-exporter",
            "Service/trading-bot-marketfeed",
            "ServiceMonitor/marketfeed-exporter",
        ]
    );
    assert_eq!(
        sorted_kinds(&sharded),
        [
            "ConfigMap/marketfeed-sharded",
            "PodMonitor/marketfeed-sharded",
            "PrometheusRule/marketfeed-sharded",
            "Service/shards-marketfeed",
            "StatefulSet/marketfeed-a",
            "StatefulSet/marketfeed-b",
        ]
    );
    assert_eq!(
        read_files,
        k8s_files(),
        "every file under {K8S} is built by one of its kustomizations"
    );
    for build in [&native, &classic, &sharded] {
        let monitors = build
            .iter()
            .filter(|d| ["PodMonitor", "ServiceMonitor"].contains(&str_at(d, "kind")))
            .count();
        assert_eq!(
            monitors,
            1,
            "exactly one monitor scrapes the exporter: {:?}",
            sorted_kinds(build)
        );
        let text = serde_json::to_string(build).expect("json");
        assert!(
            !text.contains("prometheus.io/"),
            "no scrape annotations beside the monitor"
        );
    }

    // The real kustomize (embedded in the pinned kubectl wheel) must build the same objects.
    let kubectl = tools_bin().join("kubectl");
    for (dir, expected) in [
        (K8S.to_owned(), &native),
        (format!("{K8S}/classic"), &classic),
        (format!("{K8S}/sharded"), &sharded),
    ] {
        let out = run_ok(&kubectl, &["kustomize", &dir]);
        let mut built = yaml_docs(&out.stdout);
        let mut expected = expected.clone();
        built.sort_by_key(kind_name);
        expected.sort_by_key(kind_name);
        assert_eq!(
            built, expected,
            "kubectl kustomize {dir} differs from the files it lists"
        );
    }
}

#[test]
fn core_resources_pass_kubernetes_validate_strict() {
    let core: Vec<(String, Vec<Value>)> = manifests()
        .into_iter()
        .filter(|(_, docs)| !docs.iter().any(is_operator_kind))
        .collect();
    let files: Vec<&str> = core.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        files,
        [
            "deploy/kubernetes/classic/deployment.yaml",
            "deploy/kubernetes/classic/service.yaml",
            "deploy/kubernetes/common/configmap.yaml",
            "deploy/kubernetes/common/networkpolicy.yaml",
            "deploy/kubernetes/native/deployment.yaml",
            "deploy/kubernetes/sharded/configmap.yaml",
            "deploy/kubernetes/sharded/service.yaml",
            "deploy/kubernetes/sharded/statefulset-a.yaml",
            "deploy/kubernetes/sharded/statefulset-b.yaml",
        ]
    );
    let mut args = vec!["--strict".to_owned()];
    for version in KUBERNETES_VERSIONS {
        args.extend(["-k".to_owned(), version.to_owned()]);
    }
    args.extend(files.iter().map(|f| (*f).to_owned()));
    let out = run_ok(tools_bin().join("kubernetes-validate"), &args);
    let mut expected = Vec::new();
    for (file, docs) in &core {
        for doc in docs {
            for version in KUBERNETES_VERSIONS {
                let resource = format!(
                    "{}/{}",
                    str_at(doc, "kind").to_lowercase(),
                    str_at(doc, "metadata/name")
                );
                expected.push(format!(
                    "INFO {file} passed for resource {resource} against version {}",
                    &version[..4]
                ));
            }
        }
    }
    let lines: Vec<&str> = out.text.lines().collect();
    assert_eq!(
        lines, expected,
        "kubernetes-validate --strict:\n{}",
        out.text
    );
}

#[test]
fn kubernetes_validate_rejects_unknown_fields_and_wrong_types() {
    let dir = TempDir::new("kubernetes-validate");
    let deployment = read(&format!("{K8S}/native/deployment.yaml"));
    let policy = read(&format!("{K8S}/common/networkpolicy.yaml"));
    // (broken copy, what kubernetes-validate must say about it)
    let broken = [
        (
            dir.write(
                "unknown-field.yaml",
                &replace(
                    &deployment,
                    "readOnlyRootFilesystem: true",
                    "readOnlyRootFileSystem: true",
                    2,
                ),
            ),
            "'readOnlyRootFileSystem' was unexpected",
        ),
        (
            dir.write(
                "wrong-type.yaml",
                &replace(&deployment, "runAsUser: 65532", "runAsUser: \"65532\"", 3),
            ),
            "'65532' is not of type 'integer'",
        ),
        (
            dir.write(
                "policy-unknown-field.yaml",
                &replace(&policy, "ipBlock:", "ipblock:", 2),
            ),
            "'ipblock' was unexpected",
        ),
        (
            dir.write(
                "policy-wrong-type.yaml",
                &replace(
                    &policy,
                    "policyTypes:\n    - Ingress\n    - Egress",
                    "policyTypes: Ingress, Egress",
                    1,
                ),
            ),
            "'Ingress, Egress' is not of type 'array'",
        ),
    ];
    let mut args = vec!["--strict".to_owned()];
    for version in KUBERNETES_VERSIONS {
        args.extend(["-k".to_owned(), version.to_owned()]);
    }
    args.extend(broken.iter().map(|(file, _)| file.display().to_string()));
    let out = run(tools_bin().join("kubernetes-validate"), &args, "");
    assert_eq!(out.code, Some(1), "{}", out.text);
    for (file, message) in &broken {
        for version in KUBERNETES_VERSIONS {
            let prefix = format!("ERROR {} did not validate for resource ", file.display());
            let against = format!(" against version {}: ", &version[..4]);
            assert!(
                out.text
                    .lines()
                    .any(|l| l.starts_with(&prefix) && l.contains(&against) && l.contains(message)),
                "kubernetes-validate --strict must reject {} against {version} with {message:?}:\n{}",
                file.display(),
                out.text
            );
        }
    }
}

#[test]
fn operator_resources_match_the_prometheus_operator_crds() {
    let operator: Vec<(String, Vec<Value>)> = manifests()
        .into_iter()
        .filter(|(_, docs)| docs.iter().any(is_operator_kind))
        .collect();
    let mut args = vec!["scripts/check-operator-resources.py".to_owned()];
    args.extend(operator.iter().map(|(f, _)| f.clone()));
    let out = run_ok(python(), &args);
    let expected: Vec<String> = operator
        .iter()
        .flat_map(|(f, docs)| docs.iter().map(move |d| format!("OK {f} {}", kind_name(d))))
        .collect();
    assert_eq!(expected.len(), 5);
    assert_eq!(
        out.text.lines().collect::<Vec<_>>(),
        expected,
        "{}",
        out.text
    );
}

#[test]
fn operator_check_rejects_unknown_fields_wrong_types_and_bad_durations() {
    let dir = TempDir::new("operator-check");
    let podmonitor = read(&format!("{K8S}/native/podmonitor.yaml"));
    let servicemonitor = read(&format!("{K8S}/classic/servicemonitor.yaml"));
    let rule = read(&format!("{K8S}/common/prometheusrule.yaml"));
    let files = [
        dir.write(
            "unknown.yaml",
            &replace(&podmonitor, "interval: 30s", "intervall: 30s", 1),
        ),
        dir.write(
            "type.yaml",
            &replace(&servicemonitor, "- port: metrics", "- port: 10066", 1),
        ),
        dir.write(
            "duration.yaml",
            &replace(&rule, "for: 5m", "for: 5 minutes", 1),
        ),
    ];
    let mut args = vec!["scripts/check-operator-resources.py".to_owned()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let out = run(python(), &args, "");
    assert_eq!(out.code, Some(1), "{}", out.text);
    let lines: Vec<&str> = out.text.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.text);
    assert!(
        lines[0].starts_with("FAIL ")
            && lines[0].ends_with("PodMonitor/marketfeed-exporter: $.spec.podMetricsEndpoints[0].intervall: unknown field"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("ServiceMonitor/marketfeed-exporter: spec.endpoints.0.port: Input should be a valid string"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains("PrometheusRule/marketfeed-exporter: spec.groups.")
            && lines[2].contains(".for: String should match pattern"),
        "{}",
        lines[2]
    );
}

#[test]
fn prometheus_rule_in_the_kustomization_is_the_generated_one() {
    assert_eq!(
        read(&format!("{K8S}/common/prometheusrule.yaml")),
        read("alerting-rules/prometheusrule.yaml"),
        "run alerting-rules/generate-prometheusrule.sh, which writes both"
    );
}

#[test]
fn both_sidecar_forms_run_the_same_exporter_in_the_same_pod() {
    let native = native_deployment();
    let classic = classic_deployment();
    let (mut native_exporter, native_pod) = exporter_of(&native, true);
    let (classic_exporter, classic_pod) = exporter_of(&classic, false);

    assert_eq!(
        native_exporter["restartPolicy"], "Always",
        "what makes the init container a sidecar"
    );
    assert_eq!(
        native_pod["initContainers"].as_array().map(Vec::len),
        Some(1)
    );
    assert!(classic_pod.get("initContainers").is_none());
    assert!(classic_exporter.get("restartPolicy").is_none());
    native_exporter
        .as_object_mut()
        .expect("container")
        .remove("restartPolicy");
    assert_eq!(
        native_exporter, classic_exporter,
        "the exporter container differs between the forms"
    );

    let bot = |pod: &Value| -> Value {
        pod["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == "trading-bot")
            .cloned()
            .expect("a trading-bot container")
    };
    assert_eq!(bot(&native_pod), bot(&classic_pod));
    assert_eq!(classic_pod["containers"].as_array().map(Vec::len), Some(2));
    let rest = |pod: &Value| -> Value {
        let mut pod = pod.clone();
        let map = pod.as_object_mut().expect("pod spec");
        map.remove("containers");
        map.remove("initContainers");
        pod
    };
    assert_eq!(rest(&native_pod), rest(&classic_pod));
    assert_eq!(native["metadata"], classic["metadata"]);
    assert_eq!(at(&native, "spec/selector"), at(&classic, "spec/selector"));
    assert_eq!(
        at(&native, "spec/template/metadata"),
        at(&classic, "spec/template/metadata")
    );
}

#[test]
fn exporter_container_is_hardened_probed_and_sized() {
    let deployment = native_deployment();
    let (exporter, pod) = exporter_of(&deployment, true);

    assert_eq!(
        pod["securityContext"],
        json!({"runAsNonRoot": true, "runAsUser": UID, "runAsGroup": UID, "seccompProfile": {"type": "RuntimeDefault"}})
    );
    // Service links would turn a Service named marketfeed-... into MARKETFEED_* variables the exporter rejects.
    assert_eq!(pod["enableServiceLinks"], false);
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(
        exporter["securityContext"],
        json!({
            "runAsNonRoot": true,
            "runAsUser": UID,
            "runAsGroup": UID,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        })
    );
    let version = env!("CARGO_PKG_VERSION");
    let image = str_at(&exporter, "image");
    assert!(
        image.ends_with(&format!("/marketfeed_exporter:{version}")),
        "{image}: tag the crate version"
    );
    for container in pod["containers"].as_array().expect("containers") {
        assert_pinned(str_at(container, "image"));
    }

    assert_eq!(
        exporter["args"],
        json!([format!("--web.listen-address=:{PORT}")])
    );
    assert_eq!(
        exporter["ports"],
        json!([{"name": "metrics", "containerPort": PORT, "protocol": "TCP"}])
    );
    // Liveness and readiness only on the exporter's own endpoints: never /metrics, never the exchanges.
    for (probe, path) in [
        ("startupProbe", "/-/healthy"),
        ("livenessProbe", "/-/healthy"),
        ("readinessProbe", "/-/ready"),
    ] {
        assert_eq!(
            exporter[probe]["httpGet"],
            json!({"path": path, "port": PORT}),
            "{probe}"
        );
    }
    let probes: Vec<&String> = exporter
        .as_object()
        .expect("container")
        .keys()
        .filter(|k| k.ends_with("Probe"))
        .collect();
    assert_eq!(probes.len(), 3, "{probes:?}");

    // A CPU limit on a latency monitor invites CFS throttling, and a throttled exporter reports its own stall as
    // the feed's staleness: a CPU request schedules it, and only memory is capped.
    assert!(
        at(&exporter, "resources/limits/cpu").is_null(),
        "no CPU limit on the exporter container: throttling would show as feed staleness"
    );
    assert!(
        at(&exporter, "resources/requests/cpu").is_string(),
        "the exporter container requests CPU, which is what schedules it"
    );
    assert_eq!(
        exporter["resources"],
        json!({"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}}),
        "the sizing in deploy/README.md"
    );
    let configmap = yaml_file(format!("{K8S}/common/configmap.yaml"));
    assert_eq!(
        exporter["envFrom"],
        json!([{"configMapRef": {"name": str_at(&configmap, "metadata/name")}}])
    );
    assert!(
        exporter.get("env").is_none(),
        "configuration lives in the ConfigMap"
    );
}

#[test]
fn monitors_select_the_sidecar_and_carry_the_operator_selector_labels() {
    let (exporter, _) = exporter_of(&native_deployment(), true);
    let pod_labels = at(&native_deployment(), "spec/template/metadata/labels").clone();
    let interval = grafana_time_interval();
    let port_name = str_at(&exporter, "ports/0/name");

    let podmonitor = yaml_file(format!("{K8S}/native/podmonitor.yaml"));
    assert!(selects(
        at(&podmonitor, "spec/selector/matchLabels"),
        &pod_labels
    ));
    let endpoint = at(&podmonitor, "spec/podMetricsEndpoints/0");
    assert_eq!(str_at(endpoint, "port"), port_name);
    assert_eq!(str_at(endpoint, "path"), "/metrics");
    assert_eq!(str_at(endpoint, "interval"), interval);
    assert_eq!(endpoint["honorLabels"], true, "{HONOR_LABELS}");

    let service = yaml_file(format!("{K8S}/classic/service.yaml"));
    let (classic_exporter, _) = exporter_of(&classic_deployment(), false);
    assert!(selects(
        at(&service, "spec/selector"),
        at(&classic_deployment(), "spec/template/metadata/labels")
    ));
    // A numeric targetPort: a named one does not resolve to a native sidecar's port before Kubernetes 1.32.
    assert_eq!(
        at(&service, "spec/ports/0/targetPort"),
        &at(&classic_exporter, "ports/0/containerPort").clone()
    );
    let servicemonitor = yaml_file(format!("{K8S}/classic/servicemonitor.yaml"));
    assert!(selects(
        at(&servicemonitor, "spec/selector/matchLabels"),
        at(&service, "metadata/labels")
    ));
    let endpoint = at(&servicemonitor, "spec/endpoints/0");
    assert_eq!(endpoint["port"], at(&service, "spec/ports/0/name").clone());
    assert_eq!(str_at(endpoint, "path"), "/metrics");
    assert_eq!(str_at(endpoint, "interval"), interval);
    assert_eq!(endpoint["honorLabels"], true, "{HONOR_LABELS}");

    // The job label is <namespace>/<PodMonitor name> or the Service name; the exporter-down alerts match
    // .*marketfeed.*. A Service name starting with marketfeed would also become MARKETFEED_* service-link
    // variables in pods that keep service links.
    assert!(str_at(&podmonitor, "metadata/name").contains("marketfeed"));
    let service_name = str_at(&service, "metadata/name");
    assert!(
        service_name.contains("marketfeed") && !service_name.starts_with("marketfeed"),
        "{service_name}"
    );
    let rules = read("alerting-rules/marketfeed.rules.yml");
    assert_eq!(rules.matches("job=~\".*marketfeed.*\"").count(), 2);

    // A Prometheus resource picks monitors and rules by label: all three carry the same selector label.
    let rule = yaml_file(format!("{K8S}/common/prometheusrule.yaml"));
    for resource in [&podmonitor, &servicemonitor, &rule] {
        assert_eq!(
            at(resource, "metadata/labels/release"),
            "prometheus",
            "{}",
            kind_name(resource)
        );
    }
    let readme = read("deploy/README.md");
    for selector in [
        "podMonitorSelector",
        "serviceMonitorSelector",
        "ruleSelector",
    ] {
        assert!(
            readme.contains(selector),
            "deploy/README.md explains {selector}"
        );
    }
}

#[test]
fn network_policy_admits_prometheus_and_lets_the_exporter_reach_dns_and_the_venues() {
    let policy = yaml_file(format!("{K8S}/common/networkpolicy.yaml"));
    let spec = &policy["spec"];

    // The bot's pods, in both forms: by the label the Deployments select them by (a NetworkPolicy binds whole pods).
    for deployment in [native_deployment(), classic_deployment()] {
        assert_eq!(
            at(spec, "podSelector"),
            at(&deployment, "spec/selector"),
            "the policy selects the bot's pods as its Deployment does"
        );
        assert!(selects(
            at(spec, "podSelector/matchLabels"),
            at(&deployment, "spec/template/metadata/labels")
        ));
    }
    assert_eq!(
        spec["policyTypes"],
        json!(["Ingress", "Egress"]),
        "both directions are restricted"
    );

    // In: the exporter's port, by number, from the monitoring namespace only.
    let (exporter, _) = exporter_of(&native_deployment(), true);
    let port = at(&exporter, "ports/0/containerPort").clone();
    assert_eq!(port, json!(PORT));
    assert_eq!(
        spec["ingress"],
        json!([{
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
            "ports": [{"protocol": "TCP", "port": port}],
        }]),
        "ingress only to the exporter's port, only from the monitoring namespace"
    );

    // Out: DNS to the cluster's resolver, and TLS to any address on the ports of the exporter's venue URLs.
    let egress = spec["egress"].as_array().expect("egress rules");
    assert_eq!(
        egress.len(),
        2,
        "DNS and the venues, nothing else: {egress:?}"
    );
    assert_eq!(
        egress[0],
        json!({
            "to": [{
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        }),
        "DNS over UDP and TCP to kube-dns in kube-system"
    );
    assert_eq!(
        egress[1]["to"],
        json!([{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}]),
        "the venues have no fixed addresses: every IPv4 and IPv6 address"
    );
    let allowed: BTreeSet<u64> = egress[1]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| {
            assert_eq!(p["protocol"], "TCP", "{p}");
            p["port"].as_u64().expect("a numeric port")
        })
        .collect();
    let help = exporter::run(&[], &["--help"]);
    let help = String::from_utf8(help.stdout).expect("UTF-8 help");
    let venue_ports: BTreeSet<u64> = help
        .lines()
        .filter_map(|l| l.trim().strip_prefix("default: "))
        .filter_map(|url| {
            let (scheme, rest) = url.split_once("://")?;
            let default = match scheme {
                "wss" | "https" => 443,
                _ => return None,
            };
            let authority = rest.split('/').next().unwrap_or(rest);
            Some(match authority.rsplit_once(':') {
                Some((_, port)) => port.parse().expect("a port"),
                None => default,
            })
        })
        .collect();
    assert_eq!(
        venue_ports,
        BTreeSet::from([443, 9443]),
        "the exporter's default venue URLs (--help):\n{help}"
    );
    assert_eq!(
        allowed, venue_ports,
        "egress on exactly the ports of the exporter's default venue URLs"
    );
}

/// The sharded example: two StatefulSets, the same but for the replica letter, whose pod ordinals are the shards;
/// the shard count in MARKETFEED_SHARD is their replica count; each pod's configuration is valid and watches every
/// market at `*`, split.
#[test]
fn sharded_statefulsets_are_twins_whose_ordinals_are_the_shards() {
    let a = read(&format!("{K8S}/sharded/statefulset-a.yaml"));
    let b = read(&format!("{K8S}/sharded/statefulset-b.yaml"));
    let swapped: String = b
        .replace("statefulset-a.yaml", "statefulset-@.yaml")
        .replace("replica: b", "replica: a")
        .replace("marketfeed-b", "marketfeed-a")
        .replace("Replica B", "Replica A")
        .replace("statefulset-@.yaml", "statefulset-b.yaml");
    assert_eq!(
        a, swapped,
        "statefulset-b.yaml is statefulset-a.yaml for replica b"
    );

    let set = yaml_file(format!("{K8S}/sharded/statefulset-a.yaml"));
    let replicas = set["spec"]["replicas"].as_u64().expect("replicas");
    assert_eq!(str_at(&set, "spec/serviceName"), "shards-marketfeed");
    let container = &set["spec"]["template"]["spec"]["containers"][0];
    let env = container["env"].as_array().expect("env");
    let value = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} in env"))
            .clone()
    };
    assert_eq!(
        value("POD_INDEX")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.labels['apps.kubernetes.io/pod-index']"
    );
    assert_eq!(
        value("MARKETFEED_SHARD")["value"],
        format!("$(POD_INDEX)/{replicas}"),
        "the shard count is the StatefulSet's replica count"
    );

    let configmap = yaml_file(format!("{K8S}/sharded/configmap.yaml"));
    assert_eq!(
        container["envFrom"],
        json!([{"configMapRef": {"name": str_at(&configmap, "metadata/name")}}])
    );
    let args = args_of(container);
    for ordinal in 0..replicas {
        // What Kubernetes makes of $(POD_INDEX)/N for the pod with this ordinal.
        let mut vars = configmap_vars(&configmap);
        vars.push(("MARKETFEED_SHARD".into(), format!("{ordinal}/{replicas}")));
        let (code, out) = check_config(&vars, &args);
        assert_eq!(code, Some(0), "{out}");
        assert!(
            out.contains(&format!("shard {ordinal}/{replicas}: ")),
            "{out}"
        );
        assert_eq!(
            out.matches("symbols * (every trading symbol)").count(),
            5,
            "every market at *: {out}"
        );
    }
}

#[test]
fn configmap_is_a_valid_exporter_configuration() {
    let configmap = yaml_file(format!("{K8S}/common/configmap.yaml"));
    let vars = configmap_vars(&configmap);
    let (exporter, _) = exporter_of(&native_deployment(), true);
    let args = args_of(&exporter);

    let (code, out) = check_config(&vars, &args);
    assert_eq!(code, Some(0), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let market = |prefix: &str| lines.iter().find(|l| l.starts_with(prefix)).copied();
    assert!(
        market("binance/usdm:").is_some_and(|l| l.ends_with("symbols BTCUSDT,ETHUSDT,SOLUSDT")),
        "{out}"
    );
    assert!(
        market("bybit/linear:").is_some_and(|l| l.ends_with("symbols BTCUSDT,ETHUSDT,SOLUSDT")),
        "{out}"
    );
    for unwatched in ["binance/spot:", "bybit/spot:", "bybit/inverse:"] {
        assert!(market(unwatched).is_none(), "{out}");
    }
    assert!(lines.contains(&"log format json, level \"info\""), "{out}");
    assert!(
        lines.contains(&format!("metrics at http://[::]:{PORT}/metrics").as_str()),
        "{out}"
    );

    // The example keeps the shipped behaviour (warn at 3 minutes, page at 5): the rules read these values.
    let data = &configmap["data"];
    assert_eq!(
        (
            seconds(str_at(data, "MARKETFEED_DEGRADED_AFTER")),
            seconds(str_at(data, "MARKETFEED_STALE_AFTER"))
        ),
        default_thresholds()
    );

    // A Service called marketfeed-exporter adds this variable wherever service links are on (a bot Deployment the
    // container is copied into): ignored and named, not fatal. The shipped pods turn the links off all the same.
    let mut with_link = vars.clone();
    with_link.push(("MARKETFEED_EXPORTER_SERVICE_HOST".into(), "10.0.0.1".into()));
    let (code, out) = check_config(&with_link, &args);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(
            "ignoring Kubernetes service-link variables: MARKETFEED_EXPORTER_SERVICE_HOST"
        ),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// systemd

/// `systemd-analyze verify` in a root where ExecStart is the binary cargo just built, at the unit's own path:
/// the unit is checked unmodified, including that its program exists and is executable.
#[test]
fn systemd_unit_verifies_with_the_built_binary_at_its_exec_path() {
    let root = systemd_root(true);
    let root_arg = format!("--root={}", root.path().display());
    let out = run_ok(
        "systemd-analyze",
        &["verify", &root_arg, "marketfeed_exporter.service"],
    );
    // verify exits 0 on unknown keys and bad values too, so any output at all is a failure.
    assert_eq!(out.text.trim(), "", "systemd-analyze verify found problems");

    let missing = systemd_root(false);
    let missing_arg = format!("--root={}", missing.path().display());
    let out = run(
        "systemd-analyze",
        &["verify", &missing_arg, "marketfeed_exporter.service"],
        "",
    );
    assert!(
        !out.ok()
            && out
                .text
                .contains("/usr/local/bin/marketfeed_exporter is not executable"),
        "verify must notice a missing ExecStart binary:\n{}",
        out.text
    );
}

#[test]
fn systemd_sandbox_holds_its_exposure_score() {
    let root = systemd_root(true);
    let root_arg = format!("--root={}", root.path().display());
    // The scale is 0-100 here (an exposure of 1.1 is 11); the unit scores 1.1 ("OK") today.
    let args = [
        "security",
        "--offline=true",
        "--threshold=11",
        &root_arg,
        "marketfeed_exporter.service",
    ];
    let out = run("systemd-analyze", &args, "");
    let score = out
        .text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or("no score printed")
        .trim_start_matches('→')
        .trim();
    eprintln!("systemd-analyze security: {score}");
    assert!(
        out.ok(),
        "the unit's exposure rose above 1.1:\n{}",
        out.text
    );

    // The threshold bites: the same unit without its sandbox fails it.
    let unit = read("deploy/systemd/marketfeed_exporter.service");
    let bare: String = unit
        .lines()
        .take_while(|l| !l.starts_with("# Sandbox."))
        .chain(["", "[Install]", "WantedBy=multi-user.target"])
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(
        root.path()
            .join("etc/systemd/system/marketfeed_exporter.service"),
        bare,
    )
    .expect("write");
    let out = run("systemd-analyze", &args, "");
    assert!(
        !out.ok(),
        "an unsandboxed unit passed the threshold:\n{}",
        out.text
    );
}

#[test]
fn systemd_unit_stops_like_the_exporter_and_keeps_the_required_sandbox() {
    let unit = read("deploy/systemd/marketfeed_exporter.service");
    for (key, value) in [
        ("Type", "exec"),
        ("DynamicUser", "yes"),
        ("Restart", "on-failure"),
        ("RestartPreventExitStatus", "2"),
        ("KillSignal", "SIGTERM"),
        ("TimeoutStopSec", "15s"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("CapabilityBoundingSet", ""),
        ("EnvironmentFile", "/etc/default/marketfeed_exporter"),
    ] {
        assert_eq!(directive(&unit, key), value, "{key}=");
    }
    assert!(unit.contains("\nSystemCallFilter=@system-service\n"));
    // The exporter drains within about 5 s; systemd must wait longer than that before SIGKILL.
    assert!(seconds(&directive(&unit, "TimeoutStopSec")) >= 10);
    assert_eq!(
        directive(&unit, "ExecStart"),
        format!("/usr/local/bin/marketfeed_exporter --web.listen-address=:{PORT}")
    );
}

#[test]
fn systemd_environment_file_is_a_valid_exporter_configuration() {
    let vars = env_file("deploy/systemd/marketfeed_exporter.env");
    let unit = read("deploy/systemd/marketfeed_exporter.service");
    let exec = directive(&unit, "ExecStart");
    let args: Vec<&str> = exec.split_whitespace().skip(1).collect();
    let (code, out) = check_config(&vars, &args);
    assert_eq!(code, Some(0), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    for (market, symbols) in [
        ("binance/spot:", "BTCUSDT,ETHUSDT"),
        ("binance/usdm:", "BTCUSDT,ETHUSDT,SOLUSDT"),
        ("bybit/linear:", "BTCUSDT,ETHUSDT,SOLUSDT"),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(market) && l.ends_with(&format!("symbols {symbols}"))),
            "{market} {symbols}:\n{out}"
        );
    }
    assert_eq!(
        lines.iter().filter(|l| l.contains(": wss://")).count(),
        3,
        "{out}"
    );
    let get = |key: &str| vars.iter().find(|(k, _)| k == key).map(|(_, v)| seconds(v));
    assert_eq!(
        (
            get("MARKETFEED_DEGRADED_AFTER"),
            get("MARKETFEED_STALE_AFTER")
        ),
        {
            let (d, s) = default_thresholds();
            (Some(d), Some(s))
        }
    );
}

/// Every system call the exporter makes while serving, scraped and stopped is one the unit's SystemCallFilter
/// allows, and every socket it opens is of a family RestrictAddressFamilies allows (seccomp would otherwise
/// fail the call with EPERM at run time, which nothing above can see).
#[test]
fn exporter_stays_inside_the_units_system_call_filter() {
    let dir = TempDir::new("strace");
    let trace = dir.path().join("trace");
    let addr = free_addr();
    let closed = "127.0.0.1:9";
    let mut child = Command::new("strace")
        .args(["-f", "-qq", "-o"])
        .arg(&trace)
        .arg(exporter::bin())
        .arg(format!("--web.listen-address={addr}"))
        .env_clear()
        .env("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "BTCUSDT")
        .env("MARKETFEED_BYBIT_LINEAR_URL", format!("ws://{closed}"))
        .env("MARKETFEED_BYBIT_REST_URL", format!("http://{closed}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("strace not found: ./scripts/test.sh installs Debian's strace");
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get(addr, "/-/ready").is_none() {
        assert!(
            Instant::now() < deadline,
            "the exporter did not become ready under strace"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for path in [
        "/metrics",
        "/api/v1/symbols",
        "/api/v1/symbols/bybit/linear/BTCUSDT",
    ] {
        assert!(
            http_get(addr, path).is_some_and(|r| r.starts_with("HTTP/1.1 200")),
            "{path}"
        );
    }
    // SIGTERM to the exporter itself (strace's only child), so the drain is traced too.
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id()))
        .expect("children");
    let exporter = children
        .split_whitespace()
        .next()
        .expect("the traced exporter");
    run_ok("kill", &["-TERM", exporter]);
    let status = child.wait().expect("wait for strace");
    assert!(
        status.success(),
        "the exporter did not exit 0 on SIGTERM: {status}"
    );

    let trace = std::fs::read_to_string(&trace).expect("trace");
    let mut used = BTreeSet::new();
    let mut families = BTreeSet::new();
    for line in trace.lines() {
        let call = line
            .split_once(' ')
            .map_or("", |(_, rest)| rest.trim_start());
        let Some((name, args)) = call.split_once('(') else {
            continue;
        };
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            continue;
        }
        if name == "socket" {
            families.insert(args.split(',').next().unwrap_or_default().to_owned());
        }
        used.insert(name.to_owned());
    }
    assert!(
        used.contains("accept4") && used.contains("connect"),
        "{used:?}"
    );
    assert!(
        families.iter().all(|f| f == "AF_INET" || f == "AF_INET6"),
        "socket families {families:?}"
    );

    let allowed = syscall_set("@system-service");
    let denied: BTreeSet<String> = syscall_set("@privileged")
        .union(&syscall_set("@resources"))
        .cloned()
        .collect();
    let outside: Vec<&String> = used
        .iter()
        .filter(|s| !allowed.contains(*s) || denied.contains(*s))
        .collect();
    assert!(
        outside.is_empty(),
        "system calls the unit's filter refuses: {outside:?}"
    );
}

/// The system calls of a `systemd-analyze syscall-filter` group, nested groups expanded.
fn syscall_set(group: &str) -> BTreeSet<String> {
    let out = run_ok("systemd-analyze", &["syscall-filter", group]);
    let mut calls = BTreeSet::new();
    for line in out.stdout.lines().skip(1) {
        let entry = line.trim();
        if entry.is_empty() || entry.starts_with('#') {
            continue;
        }
        if entry.starts_with('@') {
            calls.extend(syscall_set(entry));
        } else {
            calls.insert(entry.to_owned());
        }
    }
    assert!(!calls.is_empty(), "{group}: no system calls listed");
    calls
}

/// A blocking GET; `None` while nothing listens.
fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

// ---------------------------------------------------------------------------------------------------------------
// Docker

#[test]
fn dockerfile_is_pinned_non_root_and_consistent_with_the_repository() {
    let instructions = dockerfile();
    let stages: Vec<usize> = instructions
        .iter()
        .enumerate()
        .filter(|(_, (i, _))| i == "FROM")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(stages.len(), 2, "a build stage and a runtime stage");
    for &n in &stages {
        let image = instructions[n]
            .1
            .split_whitespace()
            .next()
            .expect("an image");
        assert_pinned(image);
    }
    assert_eq!(
        instructions[stages[0]].1.split_whitespace().last(),
        Some("build")
    );
    let (build, runtime) = instructions.split_at(stages[1]);

    // The build: the binary cargo builds, where cargo builds it, with the lock file honoured.
    let workdir = build
        .iter()
        .find(|(i, _)| i == "WORKDIR")
        .map(|(_, a)| a.clone())
        .expect("a WORKDIR");
    let builds: Vec<&String> = build
        .iter()
        .filter(|(i, _)| i == "RUN")
        .map(|(_, a)| a)
        .filter(|a| a.contains("cargo build"))
        .collect();
    assert_eq!(builds.len(), 2, "a dependency layer and the crate");
    assert!(
        builds
            .iter()
            .all(|b| b.contains("cargo build --release --locked")),
        "{builds:?}"
    );
    let binary = exporter::bin();
    let binary = binary
        .as_path()
        .file_name()
        .expect("binary name")
        .to_string_lossy();
    let built = format!("{workdir}/target/release/{binary}");

    // Every COPY from the context exists and survives .dockerignore (an allow-list after `*`).
    let ignore = read(".dockerignore");
    let rules: Vec<&str> = ignore
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        rules.first(),
        Some(&"*"),
        ".dockerignore starts by excluding everything (target/ is huge)"
    );
    let allowed: Vec<&str> = rules[1..]
        .iter()
        .map(|r| {
            r.strip_prefix('!')
                .expect("only exceptions after *")
                .trim_end_matches('/')
        })
        .collect();
    for (_, args) in build.iter().filter(|(i, _)| i == "COPY") {
        let parts: Vec<&str> = args.split_whitespace().collect();
        for source in &parts[..parts.len() - 1] {
            assert!(
                repo(source).exists(),
                "COPY {source}: not in the repository"
            );
            assert!(
                allowed.contains(source),
                "COPY {source}: excluded by .dockerignore"
            );
        }
    }
    // Cargo loads every workspace member's manifest, even for a build that never compiles it.
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "src",
        "benches",
        "testkit/Cargo.toml",
    ] {
        assert!(
            allowed.contains(&needed),
            ".dockerignore must let {needed} through"
        );
    }

    // The runtime stage: the binary copied from the build, run as a numeric non-root user, on the default port.
    let get = |name: &str| -> Vec<&String> {
        runtime
            .iter()
            .filter(|(i, _)| i == name)
            .map(|(_, a)| a)
            .collect()
    };
    let copy = get("COPY");
    assert_eq!(copy.len(), 1);
    let parts: Vec<&str> = copy[0].split_whitespace().collect();
    assert_eq!(parts, ["--from=build", built.as_str(), parts[2]]);
    assert_eq!(get("ENTRYPOINT"), [&format!("[\"{}\"]", parts[2])]);
    let user = get("USER");
    assert_eq!(user.len(), 1);
    let (uid, gid) = user[0].split_once(':').expect("USER uid:gid");
    assert_eq!(
        (uid.parse::<u64>().ok(), gid.parse::<u64>().ok()),
        (Some(UID), Some(UID))
    );
    let (_, help) = check_config(&[], &["--help"]);
    assert!(
        help.contains(&format!("(default \":{PORT}\")")),
        "the default port moved:\n{help}"
    );
    assert_eq!(get("EXPOSE"), [&PORT.to_string()]);
    assert_eq!(get("CMD"), [&format!("[\"--web.listen-address=:{PORT}\"]")]);
    assert_eq!(get("STOPSIGNAL"), ["SIGTERM"]);
}

#[test]
fn compose_file_is_valid_and_consistent_with_its_configs() {
    let config = compose();
    let services = &config["services"];
    let names: BTreeSet<&str> = services
        .as_object()
        .expect("services")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["alertmanager", "exporter", "grafana", "prometheus"])
    );
    let root = std::fs::canonicalize(repo("")).expect("repository root");

    for (name, service) in services.as_object().expect("services") {
        assert_pinned(str_at(service, "image"));
        for (container, host) in mounts(service) {
            assert!(
                host.exists(),
                "{name}: {} (mounted at {container}) does not exist",
                host.display()
            );
            assert!(
                host.starts_with(&root),
                "{name}: {} is outside the repository",
                host.display()
            );
        }
        for (ip, _, _) in ports(service) {
            assert_eq!(
                ip, "127.0.0.1",
                "{name}: a local stack publishes on loopback only"
            );
        }
    }

    // The exporter: built from the Dockerfile with the repository as context, on the port the image exposes.
    let exporter = &services["exporter"];
    assert_eq!(Path::new(str_at(exporter, "build/context")), root);
    assert_eq!(
        str_at(exporter, "build/dockerfile"),
        "deploy/docker/Dockerfile"
    );
    assert_eq!(
        str_at(exporter, "image"),
        format!("marketfeed_exporter:{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(ports(exporter), [("127.0.0.1".to_owned(), PORT, PORT)]);
    let vars: Vec<(String, String)> = exporter["environment"]
        .as_object()
        .expect("environment")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_owned()))
        .collect();
    let (code, out) = check_config(&vars, &[]);
    assert_eq!(code, Some(0), "the compose exporter's environment:\n{out}");

    // Prometheus: its config and the shipped rule file mounted where prometheus.yml looks for them.
    let prometheus = &services["prometheus"];
    let prom_mounts = mounts(prometheus);
    assert!(
        prometheus.get("command").is_none(),
        "the image's default --config.file is relied on"
    );
    assert_eq!(
        prom_mounts["/etc/prometheus/prometheus.yml"],
        root.join("deploy/docker/prometheus.yml")
    );
    let prom = yaml_file("deploy/docker/prometheus.yml");
    let rule_files: Vec<&str> = prom["rule_files"]
        .as_array()
        .expect("rule_files")
        .iter()
        .map(|r| r.as_str().expect("path"))
        .collect();
    assert_eq!(rule_files.len(), 1);
    assert_eq!(
        prom_mounts[rule_files[0]],
        root.join("alerting-rules/marketfeed.rules.yml")
    );
    assert_eq!(
        str_at(&prom, "global/scrape_interval"),
        grafana_time_interval()
    );
    let scrape = at(&prom, "scrape_configs/0");
    assert!(
        str_at(scrape, "job_name").contains("marketfeed"),
        "the exporter-down alerts match .*marketfeed.*"
    );
    let (host, port) = host_port(str_at(scrape, "static_configs/0/targets/0"));
    assert_eq!((host.as_str(), port), ("exporter", PORT));
    let (host, port) = host_port(str_at(
        &prom,
        "alerting/alertmanagers/0/static_configs/0/targets/0",
    ));
    assert_eq!(host, "alertmanager");
    assert!(
        ports(&services["alertmanager"])
            .iter()
            .any(|&(_, _, target)| target == port)
    );

    // Alertmanager: the compose config at the image's default path.
    let alertmanager = &services["alertmanager"];
    assert!(
        alertmanager.get("command").is_none(),
        "the image's default --config.file is relied on"
    );
    assert_eq!(
        mounts(alertmanager)["/etc/alertmanager/alertmanager.yml"],
        root.join("deploy/docker/alertmanager.yml")
    );

    // Grafana: provisioning mounted where Grafana reads it, dashboards where the provider looks, datasource
    // pointing at the prometheus service.
    let grafana = mounts(&services["grafana"]);
    assert_eq!(
        grafana["/etc/grafana/provisioning/datasources"],
        root.join("grafana/provisioning/datasources")
    );
    assert_eq!(
        grafana["/etc/grafana/provisioning/dashboards"],
        root.join("grafana/provisioning/dashboards")
    );
    let provider = yaml_file("grafana/provisioning/dashboards/marketfeed.yml");
    assert_eq!(
        grafana[str_at(&provider, "providers/0/options/path")],
        root.join("grafana/dashboards")
    );
    let datasource = yaml_file("grafana/provisioning/datasources/prometheus.yml");
    let (host, port) = host_port(str_at(&datasource, "datasources/0/url"));
    assert_eq!(host, "prometheus");
    assert!(
        ports(prometheus)
            .iter()
            .any(|&(_, _, target)| target == port)
    );
}

#[test]
fn docker_compose_config_rejects_unknown_keys() {
    // Fed on stdin with deploy/docker as the project directory, so relative paths resolve as in the real file.
    let broken = replace(
        &read("deploy/docker/docker-compose.yml"),
        "    read_only: true\n",
        "    read_only: true\n    readonly: true\n",
        1,
    );
    let out = run(
        "docker-compose",
        &[
            "--project-directory",
            "deploy/docker",
            "-f",
            "-",
            "config",
            "-q",
        ],
        &broken,
    );
    assert!(!out.ok() && out.text.contains("'readonly'"), "{}", out.text);
}

#[test]
fn compose_prometheus_config_passes_promtool_with_its_mounts() {
    // Materialise the container's view: each mount's host file at <tmp>/<container path>, and prometheus.yml's
    // container paths pointed into <tmp>.
    let dir = TempDir::new("compose-prometheus");
    let config = compose();
    let prometheus_mounts = mounts(&config["services"]["prometheus"]);
    for (container, host) in &prometheus_mounts {
        let dest = dir.path().join(container.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        std::fs::copy(host, &dest).unwrap_or_else(|e| panic!("{}: {e}", host.display()));
    }
    let inside = dir.path().join("etc/prometheus/prometheus.yml");
    let text = std::fs::read_to_string(&inside).expect("prometheus.yml mounted");
    let prefix = format!("{}/etc/prometheus/", dir.path().display());
    std::fs::write(&inside, replace(&text, "/etc/prometheus/", &prefix, 1)).expect("write");

    let out = run_ok(
        "promtool",
        &["check", "config", inside.to_str().expect("utf-8")],
    );
    let rules = read("alerting-rules/marketfeed.rules.yml");
    let count = rules
        .lines()
        .filter(|l| {
            l.trim_start().starts_with("- record:") || l.trim_start().starts_with("- alert:")
        })
        .count();
    assert!(
        out.text.contains("SUCCESS: 1 rule files found"),
        "{}",
        out.text
    );
    assert!(
        out.text.contains("rules/marketfeed.rules.yml"),
        "{}",
        out.text
    );
    assert!(
        out.text.contains(&format!("SUCCESS: {count} rules found")),
        "{}",
        out.text
    );
}

#[test]
fn compose_alertmanager_config_passes_amtool_and_routes_as_shipped() {
    let out = run_ok(
        "amtool",
        &["check-config", "deploy/docker/alertmanager.yml"],
    );
    assert!(
        out.text.contains("SUCCESS")
            && out.text.contains("5 inhibit rules")
            && out.text.contains("3 receivers"),
        "{}",
        out.text
    );
    let compose = yaml_file("deploy/docker/alertmanager.yml");
    let shipped = yaml_file("alerting-rules/alertmanager.yml");
    for key in ["global", "route", "inhibit_rules"] {
        assert_eq!(
            compose[key], shipped[key],
            "{key} differs from alerting-rules/alertmanager.yml"
        );
    }
    let names = |config: &Value| -> Vec<Value> {
        config["receivers"]
            .as_array()
            .expect("receivers")
            .iter()
            .map(|r| r["name"].clone())
            .collect()
    };
    assert_eq!(names(&compose), names(&shipped));
    for receiver in compose["receivers"].as_array().expect("receivers") {
        assert_eq!(
            receiver.as_object().map(|r| r.len()),
            Some(1),
            "compose receivers notify nobody: {receiver}"
        );
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Documentation

#[test]
fn deploy_readme_covers_every_piece() {
    let readme = read("deploy/README.md");
    let mut pieces: Vec<String> = k8s_files().into_iter().collect();
    pieces.extend(
        [
            "deploy/docker/Dockerfile",
            "deploy/docker/docker-compose.yml",
            "deploy/docker/prometheus.yml",
            "deploy/docker/alertmanager.yml",
            "deploy/systemd/marketfeed_exporter.service",
            "deploy/systemd/marketfeed_exporter.env",
            "scripts/check-operator-resources.py",
        ]
        .map(str::to_owned),
    );
    for piece in pieces {
        let short = piece.trim_start_matches("deploy/");
        assert!(
            readme.contains(short),
            "deploy/README.md does not mention {short}"
        );
    }
}
