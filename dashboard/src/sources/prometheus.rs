//! Reading the programs' `/metrics`: the Prometheus text format, and rates between two reads.
//!
//! Only what the page needs from the format: one sample per line, `name{labels} value`; comments
//! and timestamps are skipped. (A full parser would add a dependency to read a format this
//! simple, and the page reads nothing else.)

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// One sample: a metric name, its labels, its value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) value: f64,
}

impl Sample {
    /// The value of label `name`, if the sample has it.
    pub(crate) fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    fn matches(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.name == name && labels.iter().all(|(key, value)| self.label(key) == Some(value))
    }
}

/// Every sample of one read of one endpoint.
#[derive(Clone, Debug, Default)]
pub(crate) struct Samples(pub(crate) Vec<Sample>);

impl Samples {
    /// Parses the text format; lines it cannot read are skipped.
    pub(crate) fn parse(text: &str) -> Samples {
        Samples(text.lines().filter_map(parse_line).collect())
    }

    /// The sum of `name` over the samples carrying all of `labels`.
    pub(crate) fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|sample| sample.value).sum()
    }

    /// The samples of `name` carrying all of `labels`.
    pub(crate) fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.0.iter().filter(move |sample| sample.matches(name, labels))
    }
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let close = open + line[open..].find('}')?;
            (&line[..open], parse_labels(&line[open + 1..close])?, &line[close + 1..])
        }
        None => {
            let space = line.find(' ')?;
            (&line[..space], Vec::new(), &line[space..])
        }
    };
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some(Sample { name: name.to_owned(), labels, value })
}

/// `a="x",b="y"`; values may hold escaped quotes and commas.
fn parse_labels(text: &str) -> Option<Vec<(String, String)>> {
    let mut labels = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().to_owned();
        let after = rest[eq + 1..].strip_prefix('"')?;
        let (mut value, mut escaped, mut end) = (String::new(), false, None);
        for (at, ch) in after.char_indices() {
            match (escaped, ch) {
                (true, 'n') => (value.push('\n'), escaped = false).1,
                (true, other) => (value.push(other), escaped = false).1,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = Some(at);
                    break;
                }
                (false, other) => value.push(other),
            }
        }
        labels.push((key, value));
        rest = after[end? + 1..].trim_start_matches(',').trim();
    }
    Some(labels)
}

/// The endpoints of one scrape URL: every address its host resolves to (a scaled service under
/// Docker's DNS is one name for all its replicas), each as its own URL.
pub(crate) async fn expand(url: &str) -> Vec<String> {
    let Ok(parsed) = reqwest::Url::parse(url) else { return vec![url.to_owned()] };
    let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default()) else {
        return vec![url.to_owned()];
    };
    if host.parse::<std::net::IpAddr>().is_ok() || host == "localhost" {
        return vec![url.to_owned()];
    }
    let resolved: Vec<SocketAddr> = match tokio::net::lookup_host((host, port)).await {
        Ok(addrs) => addrs.collect(),
        Err(_) => return vec![url.to_owned()],
    };
    let mut urls: Vec<String> = resolved
        .into_iter()
        .map(|addr| {
            let mut one = parsed.clone();
            let _ = one.set_ip_host(addr.ip());
            one.to_string()
        })
        .collect();
    urls.sort();
    urls.dedup();
    if urls.is_empty() { vec![url.to_owned()] } else { urls }
}

/// Reads one endpoint.
pub(crate) async fn scrape(client: &reqwest::Client, url: &str) -> Result<Samples, String> {
    let response = client.get(url).timeout(Duration::from_millis(800)).send().await.map_err(|err| err.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let text = response.text().await.map_err(|err| err.to_string())?;
    Ok(Samples::parse(&text))
}

/// Counter increases per second between two reads of the same endpoints: per endpoint, so an
/// endpoint missing from one read adds nothing (rather than its whole total), and a counter that
/// went down (the process restarted) counts from zero.
#[derive(Debug, Default)]
pub(crate) struct Rates {
    previous: HashMap<String, Samples>,
    current: HashMap<String, Samples>,
    seconds: f64,
}

impl Rates {
    /// Moves on to a new round of reads, `elapsed` after the last.
    pub(crate) fn next_round(&mut self, reads: HashMap<String, Samples>, elapsed: Duration) {
        self.previous = std::mem::replace(&mut self.current, reads);
        self.seconds = elapsed.as_secs_f64().max(0.001);
    }

    /// Every endpoint's samples of this round.
    pub(crate) fn current(&self) -> impl Iterator<Item = &Samples> {
        self.current.values()
    }

    /// What endpoint `url` answered this round.
    pub(crate) fn current_of(&self, url: &str) -> Option<&Samples> {
        self.current.get(url)
    }

    /// Whether endpoint `url` answered this round.
    pub(crate) fn answered(&self, url: &str) -> bool {
        self.current.contains_key(url)
    }

    /// The increase per second of `name` with `labels`, summed over the endpoints.
    pub(crate) fn per_sec(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.increase(name, labels, |_| true) / self.seconds
    }

    /// The increase (not per second) of the samples of `name` with `labels` that `keep` keeps,
    /// summed over the endpoints.
    pub(crate) fn increase(&self, name: &str, labels: &[(&str, &str)], keep: impl Fn(&Sample) -> bool) -> f64 {
        let mut total = 0.0;
        for (url, now) in &self.current {
            let Some(before) = self.previous.get(url) else { continue };
            for sample in now.matching(name, labels).filter(|sample| keep(sample)) {
                total += delta(before, sample);
            }
        }
        total
    }

    /// The sum of gauge `name` with `labels` over the endpoints, now.
    pub(crate) fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.current.values().map(|samples| samples.sum(name, labels)).sum()
    }

    /// The 99th percentile, in seconds, of histogram `name` (its `_bucket` series) with
    /// `labels`, over the calls made since the last round; none without calls.
    pub(crate) fn p99(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let bucket = format!("{name}_bucket");
        let mut by_bound: Vec<(f64, f64)> = Vec::new();
        for (url, now) in &self.current {
            let Some(before) = self.previous.get(url) else { continue };
            for sample in now.matching(&bucket, labels) {
                let Some(bound) = sample.label("le").and_then(|le| le.parse::<f64>().ok()) else { continue };
                let calls = delta(before, sample);
                match by_bound.iter_mut().find(|(b, _)| *b == bound) {
                    Some((_, count)) => *count += calls,
                    None => by_bound.push((bound, calls)),
                }
            }
        }
        by_bound.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total = by_bound.last()?.1;
        if total <= 0.0 {
            return None;
        }
        // Cumulative buckets: the first bound holding 99% of the calls.
        by_bound.iter().find(|(_, count)| *count >= 0.99 * total).map(|(bound, _)| *bound)
    }
}

/// How much `sample` grew since the same series in `before` (all of it after a restart).
fn delta(before: &Samples, sample: &Sample) -> f64 {
    let earlier =
        before.0.iter().find(|old| old.name == sample.name && old.labels == sample.labels).map_or(0.0, |old| old.value);
    if sample.value >= earlier { sample.value - earlier } else { sample.value }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# TYPE http_requests_total counter
http_requests_total{route="place_order",method="POST",status="202"} 10
http_requests_total{route="place_order",method="POST",status="409"} 4
http_requests_total{route="path",method="POST",status="200"} 7
rpc_client_in_flight{service="Stock",endpoint="127.0.0.1:7002"} 3
label_with_escapes{v="a\"b,c"} 1.5
up 1 1700000000
"#;

    #[test]
    fn samples_are_summed_by_label() {
        let samples = Samples::parse(TEXT);
        assert_eq!(samples.sum("http_requests_total", &[("route", "place_order")]), 14.0);
        assert_eq!(samples.sum("http_requests_total", &[("status", "202")]), 10.0);
        assert_eq!(samples.sum("up", &[]), 1.0);
        assert_eq!(samples.matching("label_with_escapes", &[]).next().unwrap().label("v"), Some("a\"b,c"));
    }

    #[test]
    fn rates_are_per_endpoint_and_survive_a_restart() {
        let mut rates = Rates::default();
        let read = |a: f64, b: f64| {
            HashMap::from([
                ("a".to_owned(), Samples::parse(&format!("x_total {a}\n"))),
                ("b".to_owned(), Samples::parse(&format!("x_total {b}\n"))),
            ])
        };
        rates.next_round(read(100.0, 50.0), Duration::from_secs(1));
        rates.next_round(read(110.0, 5.0), Duration::from_secs(2));
        // a: +10; b restarted (50 → 5): counts 5.
        assert_eq!(rates.per_sec("x_total", &[]), 7.5);
        let mut only_a = read(120.0, 0.0);
        only_a.remove("b");
        rates.next_round(only_a, Duration::from_secs(1));
        assert_eq!(rates.per_sec("x_total", &[]), 10.0);
    }

    #[test]
    fn the_p99_is_the_bucket_holding_99_percent_of_the_new_calls() {
        let histogram = |fast: u32, slow: u32| {
            let text = format!(
                "d_bucket{{le=\"0.001\"}} {fast}\nd_bucket{{le=\"0.01\"}} {}\nd_bucket{{le=\"+Inf\"}} {}\n",
                fast + slow,
                fast + slow
            );
            HashMap::from([("a".to_owned(), Samples::parse(&text))])
        };
        let mut rates = Rates::default();
        rates.next_round(histogram(0, 0), Duration::from_secs(1));
        rates.next_round(histogram(90, 10), Duration::from_secs(1));
        assert_eq!(rates.p99("d", &[]), Some(0.01));
        rates.next_round(histogram(190, 10), Duration::from_secs(1));
        assert_eq!(rates.p99("d", &[]), Some(0.001), "only the last round's calls count");
        rates.next_round(histogram(190, 10), Duration::from_secs(1));
        assert_eq!(rates.p99("d", &[]), None);
    }
}
