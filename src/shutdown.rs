//! The process-wide stop signal: a `watch` flag that turns true once. Every long-running task (feeds, REST
//! pollers, the web server, the listing follower) takes a receiver and ends when it turns true; a generation of
//! feeds gets a flag of its own. Knows nothing of what stops.

use tokio::sync::watch;

/// Resolves once the flag is set (or its sender is gone). Returns `()` so no watch guard, which is not `Send`, is
/// held inside a `select!`.
pub async fn stopped(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_when_set_or_when_the_sender_is_gone() {
        let (tx, mut rx) = watch::channel(false);
        let waiting = tokio::spawn(async move { stopped(&mut rx).await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        tx.send(true).unwrap();
        waiting.await.unwrap();

        let (tx, mut rx) = watch::channel(false);
        drop(tx);
        stopped(&mut rx).await;
    }
}
