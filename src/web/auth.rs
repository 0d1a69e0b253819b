//! HTTP basic authentication against the bcrypt hashes of the web configuration.
//!
//! bcrypt is slow on purpose, so it runs on the blocking pool, one verification at a time process-wide: a
//! client guessing passwords costs at most one core and never delays the runtime's workers (ingest, scrapes).
//! Successful checks are remembered, so a scraper presenting the same credentials every 15 s pays once.

use std::collections::{BTreeMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Mutex;

use axum::http::HeaderValue;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::sync::Semaphore;

use super::config::PasswordHash;

/// One bcrypt verification at a time, whatever the number of connections or reloads.
static BCRYPT: Semaphore = Semaphore::const_new(1);

/// Remembered successes beyond this are forgotten all at once; a legitimate deployment has a handful.
const MAX_REMEMBERED: usize = 1024;

/// The users of one loaded web configuration.
pub struct BasicAuth {
    users: BTreeMap<String, PasswordHash>,
    /// Keyed hashes of (user, password) pairs that verified. The key is random per process, so the set holds
    /// nothing an attacker could test passwords against.
    verified: Mutex<HashSet<u64>>,
    keys: std::collections::hash_map::RandomState,
}

impl BasicAuth {
    /// `None` when there are no users: authentication is off.
    pub fn new(users: BTreeMap<String, PasswordHash>) -> Option<BasicAuth> {
        (!users.is_empty()).then(|| BasicAuth {
            users,
            verified: Mutex::new(HashSet::new()),
            keys: Default::default(),
        })
    }

    /// Whether `authorization` (the request's header) carries a known user and the right password.
    pub async fn check(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = authorization.and_then(credentials) else {
            return false;
        };
        let key = self.keys.hash_one((&user, &password));
        if self.remembered().contains(&key) {
            return true;
        }
        // An unknown user is checked against a real hash anyway, so timing does not tell users apart.
        let (hash, known) = match self.users.get(&user) {
            Some(hash) => (hash.clone(), true),
            None => match self.users.values().next() {
                Some(hash) => (hash.clone(), false),
                None => return false,
            },
        };
        let Ok(_permit) = BCRYPT.acquire().await else {
            return false;
        };
        let matches = tokio::task::spawn_blocking(move || {
            bcrypt::verify(password, hash.expose()).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        let ok = matches && known;
        if ok {
            let mut remembered = self.remembered();
            if remembered.len() >= MAX_REMEMBERED {
                remembered.clear();
            }
            remembered.insert(key);
        }
        ok
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashSet<u64>> {
        // A panic while holding this lock cannot leave the set inconsistent; keep using it.
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `Basic base64(user:password)`, the scheme matched case-insensitively (RFC 7617).
fn credentials(header: &HeaderValue) -> Option<(String, String)> {
    let value = header.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, password: &str) -> HeaderValue {
        HeaderValue::from_str(&format!(
            "Basic {}",
            STANDARD.encode(format!("{user}:{password}"))
        ))
        .unwrap()
    }

    fn auth() -> BasicAuth {
        let hash = bcrypt::hash("right", 4).unwrap();
        let users = BTreeMap::from([("alice".to_owned(), PasswordHash::new_for_tests(hash))]);
        BasicAuth::new(users).unwrap()
    }

    #[tokio::test]
    async fn only_the_right_user_and_password_pass() {
        let auth = auth();
        assert!(auth.check(Some(&header("alice", "right"))).await);
        // Remembered now; the second check takes the fast path and must agree.
        assert!(auth.check(Some(&header("alice", "right"))).await);
        assert!(!auth.check(Some(&header("alice", "wrong"))).await);
        assert!(!auth.check(Some(&header("bob", "right"))).await);
        assert!(!auth.check(None).await);
        assert!(
            !auth
                .check(Some(&HeaderValue::from_static("Bearer abc")))
                .await
        );
        assert!(
            !auth
                .check(Some(&HeaderValue::from_static("Basic !!!")))
                .await
        );
        let lower =
            HeaderValue::from_str(&format!("basic {}", STANDARD.encode("alice:right"))).unwrap();
        assert!(auth.check(Some(&lower)).await);
    }

    #[test]
    fn no_users_means_no_authentication() {
        assert!(BasicAuth::new(BTreeMap::new()).is_none());
    }

    #[test]
    fn credentials_split_at_the_first_colon() {
        assert_eq!(
            credentials(&header("alice", "pa:ss")),
            Some(("alice".to_owned(), "pa:ss".to_owned()))
        );
    }
}
