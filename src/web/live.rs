//! The web configuration in force, re-read when its files change so that certificate rotation and new users
//! need no restart.
//!
//! Every accepted connection asks [`Live::refresh`], which compares the files' metadata (a few `stat` calls)
//! with what was loaded and rebuilds only on a change. A reload that fails keeps the previous configuration and
//! is logged once per change of the files, never with a file's contents.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use axum::http::{HeaderName, HeaderValue};
use rustls::ServerConfig;

use super::auth::BasicAuth;
use super::config::{WebConfig, WebConfigError};
use super::tls;

/// What one loaded configuration means at run time.
pub struct Settings {
    /// The TLS configuration for new handshakes; `None` serves plain HTTP.
    pub tls: Option<Arc<ServerConfig>>,
    /// Basic authentication; `None` lets every request through.
    pub auth: Option<BasicAuth>,
    /// Headers added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Settings {
    /// Reads the files `web` names and builds the run-time form.
    pub fn build(web: &WebConfig) -> Result<Settings, WebConfigError> {
        Ok(Settings {
            tls: web.tls.as_ref().map(tls::server_config).transpose()?,
            auth: BasicAuth::new(web.users.clone()),
            headers: web.headers.clone(),
        })
    }

    fn plain() -> Settings {
        Settings {
            tls: None,
            auth: None,
            headers: Vec::new(),
        }
    }
}

/// The files a configuration depends on, and what `stat` said about each.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint(Vec<Option<(SystemTime, u64, u64)>>);

impl Fingerprint {
    fn of(web: &WebConfig) -> Fingerprint {
        let mut files: Vec<&PathBuf> = vec![&web.path];
        if let Some(tls) = &web.tls {
            files.extend([&tls.cert_file, &tls.key_file]);
            files.extend(&tls.client_ca_file);
        }
        Fingerprint(files.into_iter().map(stat).collect())
    }
}

fn stat(path: &PathBuf) -> Option<(SystemTime, u64, u64)> {
    // metadata() follows symlinks, so a Kubernetes Secret's atomic symlink swap shows as a change.
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.modified().ok()?, meta.len(), inode))
}

struct Loaded {
    web: WebConfig,
    fingerprint: Fingerprint,
    settings: Arc<Settings>,
}

/// The configuration in force, and how to notice it changed.
pub struct Live {
    /// `None`: no `--web.config.file`, plain HTTP for the life of the process.
    loaded: Option<RwLock<Loaded>>,
}

impl Live {
    /// Builds the first settings from `web`; an error here stops the start.
    pub fn new(web: Option<&WebConfig>) -> Result<Live, WebConfigError> {
        if web.is_some_and(|w| w.tls.is_none() && !w.users.is_empty()) {
            tracing::warn!("basic auth without TLS: passwords cross the network in clear text");
        }
        let loaded = web
            .map(|web| {
                Ok::<_, WebConfigError>(RwLock::new(Loaded {
                    fingerprint: Fingerprint::of(web),
                    settings: Arc::new(Settings::build(web)?),
                    web: web.clone(),
                }))
            })
            .transpose()?;
        Ok(Live { loaded })
    }

    /// The settings in force, without looking at the files.
    pub fn current(&self) -> Arc<Settings> {
        match &self.loaded {
            None => Arc::new(Settings::plain()),
            Some(loaded) => read(loaded).settings.clone(),
        }
    }

    /// The settings in force after re-reading the files if they changed since the last look.
    pub fn refresh(&self) -> Arc<Settings> {
        let Some(loaded) = &self.loaded else {
            return self.current();
        };
        let (path, seen) = {
            let now = read(loaded);
            let seen = Fingerprint::of(&now.web);
            if seen == now.fingerprint {
                return now.settings.clone();
            }
            (now.web.path.clone(), seen)
        };
        let mut now = loaded.write().unwrap_or_else(|e| e.into_inner());
        if Fingerprint::of(&now.web) != seen || now.fingerprint == seen {
            // Another connection got here first.
            return now.settings.clone();
        }
        match reload(&path, now.settings.tls.is_some()) {
            Ok((web, settings)) => {
                tracing::info!(path = %path.display(), "web configuration reloaded");
                now.fingerprint = Fingerprint::of(&web);
                now.web = web;
                now.settings = Arc::new(settings);
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "web configuration not reloaded; keeping the previous one");
                // Remember what was seen, so the same broken files are not retried (and logged) per connection.
                now.fingerprint = seen;
            }
        }
        now.settings.clone()
    }
}

fn read(loaded: &RwLock<Loaded>) -> std::sync::RwLockReadGuard<'_, Loaded> {
    // Writers replace whole values, so a poisoned lock still holds a consistent configuration.
    loaded.read().unwrap_or_else(|e| e.into_inner())
}

fn reload(path: &std::path::Path, tls_on: bool) -> Result<(WebConfig, Settings), WebConfigError> {
    let web = WebConfig::load(path)?;
    if web.tls.is_some() != tls_on {
        return Err(WebConfigError::Invalid {
            field: "tls_server_config".to_owned(),
            problem: "switching TLS on or off needs a restart".to_owned(),
        });
    }
    let settings = Settings::build(&web)?;
    Ok((web, settings))
}
