//! HTTP basic authentication against the bcrypt hashes of the web configuration.
//!
//! bcrypt is slow on purpose, so it runs on the blocking pool, one verification at a time process-wide: a
//! client guessing passwords costs at most one core and never delays the runtime's workers (ingest, scrapes).
//! Successful checks are remembered, so a scraper presenting the same credentials every 15 s pays once.
//!
//! Verifications queue per client address: one address has one in progress and at most
//! [`MAX_WAITING_PER_PEER`] waiting behind it, and further unverified requests from it are answered 429 at once
//! without any bcrypt. A flood of guesses from one address therefore delays another client's first login by one
//! verification at most, and holds no more connections than it has requests in that short queue.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::HeaderValue;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::sync::Semaphore;

use super::config::PasswordHash;

/// One bcrypt verification at a time, whatever the number of connections or reloads.
static BCRYPT: Semaphore = Semaphore::const_new(1);

/// Remembered successes beyond this are forgotten all at once; a legitimate deployment has a handful.
const MAX_REMEMBERED: usize = 1024;

/// Unverified requests from one address that may wait behind the one being verified.
pub const MAX_WAITING_PER_PEER: usize = 2;

/// The outcome of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Known user, right password.
    Allowed,
    /// No credentials, an unknown user or a wrong password.
    Denied,
    /// This address already has as many verifications queued as it may: try again in a moment (429).
    Busy,
}

/// One address's queue of verifications.
struct Lane {
    /// One verification of this address at a time.
    turn: Arc<tokio::sync::Semaphore>,
    /// Its checks in progress or waiting.
    queued: usize,
}

/// A place in an address's queue, given back on drop (also when the client goes away mid-check).
struct Place<'a> {
    auth: &'a BasicAuth,
    peer: IpAddr,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut lanes = self.auth.lanes();
        if let Some(lane) = lanes.get_mut(&self.peer) {
            lane.queued -= 1;
            if lane.queued == 0 {
                lanes.remove(&self.peer);
            }
        }
    }
}

/// The users of one loaded web configuration.
pub struct BasicAuth {
    users: BTreeMap<String, PasswordHash>,
    /// Keyed hashes of (user, password) pairs that verified. The key is random per process, so the set holds
    /// nothing an attacker could test passwords against.
    verified: Mutex<HashSet<u64>>,
    keys: std::collections::hash_map::RandomState,
    lanes: Mutex<HashMap<IpAddr, Lane>>,
}

impl BasicAuth {
    /// `None` when there are no users: authentication is off.
    pub fn new(users: BTreeMap<String, PasswordHash>) -> Option<BasicAuth> {
        (!users.is_empty()).then(|| BasicAuth {
            users,
            verified: Mutex::new(HashSet::new()),
            keys: Default::default(),
            lanes: Mutex::default(),
        })
    }

    /// Whether `authorization` (the request's header) carries a known user and the right password; `peer` is the
    /// client's address, whose queue an unverified check waits in.
    pub async fn check(
        &self,
        authorization: Option<&HeaderValue>,
        peer: Option<IpAddr>,
    ) -> Verdict {
        let Some((user, password)) = authorization.and_then(credentials) else {
            return Verdict::Denied;
        };
        let key = self.keys.hash_one((&user, &password));
        if self.remembered().contains(&key) {
            return Verdict::Allowed;
        }
        let peer = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ip| ip.to_canonical());
        let Some((turn, _place)) = self.join(peer) else {
            return Verdict::Busy;
        };
        let Ok(_turn) = turn.acquire_owned().await else {
            return Verdict::Denied;
        };
        self.verify(key, user, password).await
    }

    /// A place in `peer`'s queue and the semaphore that gives its turns, or None when the queue is full.
    fn join(&self, peer: IpAddr) -> Option<(Arc<tokio::sync::Semaphore>, Place<'_>)> {
        let mut lanes = self.lanes();
        let lane = lanes.entry(peer).or_insert_with(|| Lane {
            turn: Arc::new(tokio::sync::Semaphore::new(1)),
            queued: 0,
        });
        if lane.queued > MAX_WAITING_PER_PEER {
            return None;
        }
        lane.queued += 1;
        Some((lane.turn.clone(), Place { auth: self, peer }))
    }

    fn lanes(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Lane>> {
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Verifies the credentials (in this address's turn), remembering them when right.
    async fn verify(&self, key: u64, user: String, password: String) -> Verdict {
        // The one before may have verified these very credentials.
        if self.remembered().contains(&key) {
            return Verdict::Allowed;
        }
        // An unknown user is checked against a real hash anyway, so timing does not tell users apart.
        let (hash, known) = match self.users.get(&user) {
            Some(hash) => (hash.clone(), true),
            None => match self.users.values().next() {
                Some(hash) => (hash.clone(), false),
                None => return Verdict::Denied,
            },
        };
        let Ok(_permit) = BCRYPT.acquire().await else {
            return Verdict::Denied;
        };
        let matches = tokio::task::spawn_blocking(move || {
            bcrypt::verify(password, hash.expose()).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if !(matches && known) {
            return Verdict::Denied;
        }
        let mut remembered = self.remembered();
        if remembered.len() >= MAX_REMEMBERED {
            remembered.clear();
        }
        remembered.insert(key);
        Verdict::Allowed
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

    async fn check(auth: &BasicAuth, header: Option<&HeaderValue>) -> Verdict {
        auth.check(header, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)))
            .await
    }

    #[tokio::test]
    async fn only_the_right_user_and_password_pass() {
        let auth = auth();
        assert_eq!(
            check(&auth, Some(&header("alice", "right"))).await,
            Verdict::Allowed
        );
        // Remembered now; the second check takes the fast path and must agree.
        assert_eq!(
            check(&auth, Some(&header("alice", "right"))).await,
            Verdict::Allowed
        );
        assert_eq!(
            check(&auth, Some(&header("alice", "wrong"))).await,
            Verdict::Denied
        );
        assert_eq!(
            check(&auth, Some(&header("bob", "right"))).await,
            Verdict::Denied
        );
        assert_eq!(check(&auth, None).await, Verdict::Denied);
        assert_eq!(
            check(&auth, Some(&HeaderValue::from_static("Bearer abc"))).await,
            Verdict::Denied
        );
        assert_eq!(
            check(&auth, Some(&HeaderValue::from_static("Basic !!!"))).await,
            Verdict::Denied
        );
        let lower =
            HeaderValue::from_str(&format!("basic {}", STANDARD.encode("alice:right"))).unwrap();
        assert_eq!(check(&auth, Some(&lower)).await, Verdict::Allowed);
    }

    /// A flood of guesses from one address: one in progress and two waiting, the rest refused at once; another
    /// address's first login waits for one verification at most, and the remembered credentials never wait.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_address_cannot_queue_more_than_its_share() {
        let hash = bcrypt::hash("right", 8).unwrap();
        let users = BTreeMap::from([("alice".to_owned(), PasswordHash::new_for_tests(hash))]);
        let auth = Arc::new(BasicAuth::new(users).unwrap());
        let attacker = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5)));
        let guesses: Vec<_> = (0..10)
            .map(|_| {
                let auth = auth.clone();
                tokio::spawn(
                    async move { auth.check(Some(&header("alice", "wrong")), attacker).await },
                )
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let right = header("alice", "right");
        let legit = auth.check(Some(&right), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(legit.await, Verdict::Allowed);
        let mut verdicts = Vec::new();
        for guess in guesses {
            verdicts.push(guess.await.unwrap());
        }
        let busy = verdicts.iter().filter(|v| **v == Verdict::Busy).count();
        let denied = verdicts.iter().filter(|v| **v == Verdict::Denied).count();
        assert_eq!(
            (denied, busy),
            (1 + MAX_WAITING_PER_PEER, 10 - 1 - MAX_WAITING_PER_PEER)
        );
        assert!(auth.lanes().is_empty(), "every place given back");
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
