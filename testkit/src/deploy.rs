//! Where the deploy checks' pinned Python tools are (`scripts/test.sh` installs them), and YAML read through
//! PyYAML, since the crate has no YAML parser. Owns no assertions about the deploy files themselves: those are in
//! `tests/deploy.rs`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::stack::repo;
use super::tool::run;

/// Where `scripts/test.sh` installs the Python tools: `$DEPLOY_TOOLS_BIN` when it set it, else the same default
/// path, so `cargo test --test deploy` works after one run of the test command.
pub fn tools_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("DEPLOY_TOOLS_BIN") {
        return PathBuf::from(bin);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
        });
    cache.join("marketfeed_exporter/deploy-tools/bin")
}

/// The virtualenv's Python, which has PyYAML and the prometheus-operator models.
pub fn python() -> PathBuf {
    tools_bin().join("python3")
}

const YAML_TO_JSON: &str = "import json, sys, yaml; json.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout)";

/// Every document of a YAML text, as JSON values (PyYAML's safe loader, as YAML 1.1 like Kubernetes' own).
pub fn yaml_docs(text: &str) -> Vec<Value> {
    let out = run(python(), &["-c", YAML_TO_JSON], text);
    assert!(out.ok(), "PyYAML could not parse:\n{}\n{text}", out.text);
    match serde_json::from_str(&out.stdout) {
        Ok(Value::Array(docs)) => docs,
        other => panic!("PyYAML printed {other:?}"),
    }
}

/// The single document of a repository YAML file.
pub fn yaml_file(path: impl AsRef<Path>) -> Value {
    let path = repo("").join(path);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut docs = yaml_docs(&text);
    assert_eq!(docs.len(), 1, "{}: one document expected", path.display());
    docs.remove(0)
}

/// Follows a `/`-separated path of object keys and array indices; `Value::Null` where it leads nowhere.
pub fn at<'a>(value: &'a Value, path: &str) -> &'a Value {
    path.split('/')
        .filter(|k| !k.is_empty())
        .fold(value, |v, k| match k.parse::<usize>() {
            Ok(i) if v.is_array() => &v[i],
            _ => &v[k],
        })
}

/// The string at `path`, failing the test when it is not one.
pub fn str_at<'a>(value: &'a Value, path: &str) -> &'a str {
    at(value, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path}: not a string in {value}"))
}
