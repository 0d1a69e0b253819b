//! Reads samples out of a Prometheus text exposition for assertions.

/// One sample line: name, label pairs, value.
type Sample = (String, Vec<(String, String)>, f64);

/// One parsed scrape.
pub struct Scrape {
    /// The raw text, for failure messages.
    pub text: String,
    samples: Vec<Sample>,
}

impl Scrape {
    /// Parses every sample line (comments skipped). Label values in our metrics have no escaped quotes.
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let value = value.parse().ok()?;
                let (name, labels) = match series.split_once('{') {
                    Some((name, rest)) => {
                        let labels = rest
                            .trim_end_matches('}')
                            .split("\",")
                            .filter(|p| !p.is_empty())
                            .filter_map(|p| {
                                let (k, v) = p.split_once("=\"")?;
                                Some((k.to_owned(), v.trim_end_matches('"').to_owned()))
                            })
                            .collect();
                        (name.to_owned(), labels)
                    }
                    None => (series.to_owned(), Vec::new()),
                };
                Some((name, labels, value))
            })
            .collect();
        Self {
            text: text.to_owned(),
            samples,
        }
    }

    fn matching<'a, L: AsRef<str>>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, L)],
    ) -> impl Iterator<Item = f64> + 'a {
        self.samples
            .iter()
            .filter(move |(n, ls, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| ls.iter().any(|(lk, lv)| lk == k && lv == v.as_ref()))
            })
            .map(|(_, _, v)| *v)
    }

    /// The value of the one series of `name` carrying all `labels`; None when absent.
    pub fn value<L: AsRef<str>>(&self, name: &str, labels: &[(&str, L)]) -> Option<f64> {
        let values: Vec<f64> = self.matching(name, labels).collect();
        assert!(
            values.len() <= 1,
            "{name} with those labels matches {} series",
            values.len()
        );
        values.first().copied()
    }

    /// The sum over every series of `name` carrying all `labels`.
    pub fn sum<L: AsRef<str>>(&self, name: &str, labels: &[(&str, L)]) -> f64 {
        self.matching(name, labels).sum()
    }
}

/// Scrapes the exporter at `addr` (expects a 200).
pub async fn scrape(addr: std::net::SocketAddr) -> Scrape {
    let (status, body) = super::http::get(addr, "/metrics").await;
    assert_eq!(status, 200);
    Scrape::parse(&body)
}

/// Scrapes every 50 ms until `cond` holds; panics with `what` and the last scrape after `wait`.
pub async fn until(
    addr: std::net::SocketAddr,
    what: &str,
    wait: std::time::Duration,
    cond: impl Fn(&Scrape) -> bool,
) -> Scrape {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let scrape = scrape(addr).await;
        if cond(&scrape) {
            return scrape;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; last scrape:\n{}",
            scrape.text
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
