//! docker-compose.yml and scripts/dev-up run the same system: the same programs from the same
//! build, each with the same `SECKILL_*` settings. Only hosts differ: compose names its services
//! (postgres, redis, rabbitmq, the programs') where scripts/stack.conf, which dev-up reads, says
//! 127.0.0.1. The dashboard and compose's Prometheus watch every program's /metrics. And the k6
//! flash sale's defaults point at that system.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use serde::Deserialize;
use yaml_serde::Value;

#[derive(Deserialize)]
struct Compose {
    services: BTreeMap<String, Service>,
    #[serde(default)]
    networks: BTreeMap<String, Option<Network>>,
}

#[derive(Deserialize)]
struct Network {
    #[serde(default)]
    internal: bool,
}

#[derive(Deserialize)]
struct Service {
    build: Option<Value>,
    image: Option<String>,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    environment: BTreeMap<String, Value>,
    container_name: Option<String>,
    #[serde(default)]
    ports: Vec<String>,
    #[serde(default)]
    depends_on: BTreeMap<String, Value>,
    #[serde(default)]
    networks: Vec<String>,
}

/// A program's settings, keyed by variable name, in stack.conf's order of programs.
type Stack = Vec<(String, BTreeMap<String, String>)>;

/// deploy/prometheus/prometheus.yml, the parts checked here.
#[derive(Deserialize)]
struct Prometheus {
    global: PrometheusGlobal,
    scrape_configs: Vec<ScrapeConfig>,
}

#[derive(Deserialize)]
struct PrometheusGlobal {
    scrape_interval: String,
}

#[derive(Deserialize)]
struct ScrapeConfig {
    job_name: String,
    #[serde(default)]
    dns_sd_configs: Vec<DnsSdConfig>,
}

#[derive(Deserialize)]
struct DnsSdConfig {
    names: Vec<String>,
    #[serde(rename = "type")]
    kind: String,
    port: u16,
}

/// The program that runs once, never scaled: the operator's page, published on loopback.
const DASHBOARD: &str = "dashboard";

/// The services compose publishes, each on this machine's loopback only, with their networks: the
/// load balancer (the API), the dashboard and Prometheus (they read the programs on `backend`),
/// Grafana (it reads Prometheus, on `edge`). Everything else is on `backend` only.
const PUBLISHED: [(&str, &[&str]); 4] = [
    ("load-balancer", &["backend", "edge"]),
    (DASHBOARD, &["backend", "edge"]),
    ("prometheus", &["backend", "edge"]),
    ("grafana", &["edge"]),
];

fn repo_file(path: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    fs::read_to_string(&path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()))
}

fn compose() -> Compose {
    let mut value: Value = yaml_serde::from_str(&repo_file("docker-compose.yml")).expect("docker-compose.yml is YAML");
    value.apply_merge().expect("docker-compose.yml's `<<` merges");
    yaml_serde::from_value(value).expect("docker-compose.yml has the expected shape")
}

/// The services built from our Dockerfile: the Seckill programs (the rest are infrastructure).
fn programs(compose: &Compose) -> BTreeMap<&str, &Service> {
    compose.services.iter().filter(|(_, service)| service.build.is_some()).map(|(name, s)| (name.as_str(), s)).collect()
}

/// scripts/stack.conf: `[program]` headers, each followed by its `KEY=value` lines.
fn stack() -> Stack {
    let mut programs: Stack = Vec::new();
    for line in repo_file("scripts/stack.conf").lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            programs.push((name.to_owned(), BTreeMap::new()));
        } else if let Some((key, value)) = line.split_once('=').filter(|_| !line.starts_with('#')) {
            let (program, settings) = programs.last_mut().expect("a setting before any [program] in stack.conf");
            let previous = settings.insert(key.to_owned(), value.to_owned());
            assert!(previous.is_none(), "stack.conf sets {key} twice for {program}");
        }
    }
    programs
}

/// A compose environment value as the container sees it, with `${NAME:-default}` and
/// `${NAME-default}` taken at their defaults (what `docker compose up` gives with nothing set).
fn compose_value(key: &str, value: &Value) -> String {
    let raw = match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        other => panic!("{key}: not a scalar: {other:?}"),
    };
    let mut out = String::new();
    let mut rest = raw.as_str();
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
            continue;
        }
        let end = rest.find('}').unwrap_or_else(|| panic!("{key}: unclosed ${{ in {raw}"));
        let expression = rest[..end].strip_prefix("${").unwrap_or_else(|| panic!("{key}: write ${{NAME}}, not $NAME"));
        let default = expression.split_once(":-").or_else(|| expression.split_once('-'));
        let (_, default) = default.unwrap_or_else(|| panic!("{key}: ${{{expression}}} has no default"));
        out.push_str(default);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A URL value (`scheme://[user@]host[:port]/...`) split around its host; None if not a URL.
fn split_at_host(value: &str) -> Option<(&str, &str, &str)> {
    let authority_start = value.find("://")? + 3;
    let authority_end = value[authority_start..].find('/').map_or(value.len(), |end| authority_start + end);
    let host_start =
        value[authority_start..authority_end].rfind('@').map_or(authority_start, |at| authority_start + at + 1);
    let host_end = value[host_start..authority_end].find(':').map_or(authority_end, |colon| host_start + colon);
    Some((&value[..host_start], &value[host_start..host_end], &value[host_end..]))
}

fn url_host(value: &str) -> Option<&str> {
    split_at_host(value).map(|(_, host, _)| host)
}

/// A value with the host of a URL replaced by a placeholder, so both sides compare equal; a bind
/// address (`0.0.0.0:7001` in a container's private network, `127.0.0.1:7001` on a developer's
/// machine) likewise.
fn without_host(value: &str) -> String {
    if let Some(port) = value.strip_prefix("0.0.0.0:").or_else(|| value.strip_prefix("127.0.0.1:")) {
        return format!("<bind>:{port}");
    }
    match split_at_host(value) {
        Some((before, _, after)) => format!("{before}<host>{after}"),
        None => value.to_owned(),
    }
}

#[test]
fn compose_runs_the_programs_dev_up_starts_from_one_image() {
    let compose = compose();
    let programs = programs(&compose);
    let in_compose: BTreeSet<&str> = programs.keys().copied().collect();
    let stack = stack();
    let in_stack: BTreeSet<&str> = stack.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(in_compose, in_stack, "compose services built from the Dockerfile vs scripts/stack.conf programs");

    let images: BTreeSet<Option<&str>> = programs.values().map(|service| service.image.as_deref()).collect();
    assert_eq!(images.len(), 1, "every program runs the one image: {images:?}");
    assert!(images.iter().all(Option::is_some), "the shared image is named, so it is built once");
    for (name, service) in &programs {
        assert_eq!(service.command, [*name], "compose runs the binary {name} as the {name} service");
    }
}

#[test]
fn every_program_has_the_same_settings_in_both() {
    let compose = compose();
    let programs = programs(&compose);
    let mut differences = Vec::new();
    for (name, local) in stack() {
        let Some(service) = programs.get(name.as_str()) else { continue };
        let in_compose: BTreeMap<&str, String> =
            service.environment.iter().map(|(key, value)| (key.as_str(), compose_value(key, value))).collect();
        let keys: BTreeSet<&str> = local.keys().map(String::as_str).chain(in_compose.keys().copied()).collect();
        for key in keys {
            let here = local.get(key).map(|value| without_host(value));
            let there = in_compose.get(key).map(|value| without_host(value));
            if here != there {
                differences.push(format!("{name} {key}: stack.conf {here:?}, compose {there:?}"));
            }
        }
    }
    assert!(differences.is_empty(), "settings differ:\n{}", differences.join("\n"));
}

#[test]
fn hosts_are_local_for_dev_up_and_compose_services_waited_for_in_compose() {
    let compose = compose();
    let programs = programs(&compose);
    for (name, local) in stack() {
        for (key, value) in &local {
            if let Some(host) = url_host(value) {
                assert!(matches!(host, "127.0.0.1" | "localhost"), "stack.conf: {name} {key} points at {host}");
            }
        }
        let service = programs[name.as_str()];
        for (key, value) in &service.environment {
            let value = compose_value(key, value);
            if let Some(host) = url_host(&value) {
                assert!(compose.services.contains_key(host), "compose: {name} {key} names no service: {host}");
                // The sandbox payment provider calls the gateway back, which itself waits for
                // order-service: waiting for it would be a cycle (its callbacks are retried).
                let calls_back = key == "SECKILL_PAYMENT__SANDBOX__WEBHOOK_URL";
                assert!(
                    calls_back || service.depends_on.contains_key(host),
                    "compose: {name} uses {host} but does not wait for it"
                );
            }
        }
    }
}

#[test]
fn user_service_gateway_and_dashboard_share_the_jwt_secret() {
    const KEY: &str = "SECKILL_JWT__SECRET";
    const SHARING: [&str; 3] = ["user-service", "gateway", DASHBOARD];
    let stack: BTreeMap<String, BTreeMap<String, String>> = stack().into_iter().collect();
    for name in SHARING {
        assert_eq!(stack[name].get(KEY), stack["user-service"].get(KEY), "stack.conf: {name}");
    }
    let compose = compose();
    let secret = |service: &str| compose.services[service].environment.get(KEY).map(|value| compose_value(KEY, value));
    for name in SHARING {
        assert!(secret(name).is_some(), "docker-compose.yml: {name} has no {KEY}");
        assert_eq!(secret(name), secret("user-service"), "docker-compose.yml: {name}");
    }
}

#[test]
fn scaled_programs_have_no_fixed_name_or_host_port() {
    let compose = compose();
    for (name, service) in programs(&compose) {
        assert!(service.container_name.is_none(), "{name} has a container_name: `--scale` would clash");
        if name != DASHBOARD {
            assert!(service.ports.is_empty(), "{name} publishes a port: `--scale` would clash");
        }
    }
}

#[test]
fn dev_up_and_the_image_build_the_same_packages() {
    fn packages(file: &str) -> BTreeSet<String> {
        let text = repo_file(file);
        let build = text
            .lines()
            .find(|line| line.contains("cargo build") && line.contains(" -p "))
            .expect("a cargo build line");
        let words: Vec<&str> = build.split_whitespace().collect();
        words.windows(2).filter(|pair| pair[0] == "-p").map(|pair| pair[1].to_owned()).collect()
    }
    assert_eq!(packages("scripts/dev-up"), packages("Dockerfile"));

    let dockerfile = repo_file("Dockerfile");
    let copied =
        dockerfile.lines().find(|line| line.contains("/out/")).expect("the Dockerfile copies binaries to /out/");
    for (name, _) in stack() {
        assert!(copied.split_whitespace().any(|word| word == name), "the image lacks the {name} binary");
    }
}

#[test]
fn dev_up_listens_on_loopback_only() {
    for (name, local) in stack() {
        for (key, value) in local.iter().filter(|(key, _)| key.ends_with("LISTEN")) {
            assert!(value.starts_with("127.0.0.1:"), "stack.conf: {name} {key}={value} is reachable from outside");
        }
    }
}

#[test]
fn compose_publishes_on_loopback_only_what_an_operator_opens_and_keeps_the_rest_on_an_internal_network() {
    let compose = compose();
    let backend = compose.networks.get("backend").and_then(Option::as_ref).expect("a `backend` network");
    assert!(backend.internal, "the backend network is internal: no way in from outside");
    assert!(compose.networks.contains_key("edge"), "an `edge` network, for the published services");
    let published: BTreeMap<&str, &[&str]> = PUBLISHED.into_iter().collect();
    for name in published.keys() {
        assert!(compose.services.contains_key(*name), "compose has no {name} service");
    }
    for (name, service) in &compose.services {
        if let Some(networks) = published.get(name.as_str()) {
            let mut on: Vec<&str> = service.networks.iter().map(String::as_str).collect();
            on.sort_unstable();
            assert_eq!(on, *networks, "{name}'s networks");
            assert_eq!(service.ports.len(), 1, "{name} publishes one port only: {:?}", service.ports);
            assert!(service.ports[0].starts_with("127.0.0.1:"), "{name} published on loopback: {:?}", service.ports);
        } else {
            assert_eq!(service.networks, ["backend"], "{name} is on the internal network only");
            assert!(service.ports.is_empty(), "{name} publishes {:?}", service.ports);
        }
    }
    let dashboard = &compose.services[DASHBOARD];
    let listen = compose_value("SECKILL_LISTEN", &dashboard.environment["SECKILL_LISTEN"]);
    let container_port = dashboard.ports[0].rsplit(':').next().expect("a port");
    assert_eq!(listen.rsplit(':').next(), Some(container_port), "compose publishes the port the dashboard listens on");
}

/// `SECKILL_SCRAPE__STOCK_SERVICE` for stock-service.
fn scrape_key(program: &str) -> String {
    format!("SECKILL_SCRAPE__{}", program.to_uppercase().replace('-', "_"))
}

/// The port of a `host:port` setting.
fn port_of(value: &str) -> u16 {
    value.rsplit(':').next().and_then(|port| port.parse().ok()).unwrap_or_else(|| panic!("no port in {value}"))
}

#[test]
fn the_dashboard_scrapes_every_programs_metrics_and_talks_to_the_gateway() {
    let stack = stack();
    let settings: BTreeMap<&str, &BTreeMap<String, String>> =
        stack.iter().map(|(name, s)| (name.as_str(), s)).collect();
    let dashboard = settings[DASHBOARD];
    let compose = compose();
    let in_compose = &compose.services[DASHBOARD].environment;
    let mut expected = BTreeSet::new();
    for (name, local) in &stack {
        let Some(metrics) = local.get("SECKILL_METRICS_LISTEN") else { continue };
        let key = scrape_key(name);
        let port = port_of(metrics);
        assert_eq!(
            dashboard.get(&key).map(String::as_str),
            Some(format!(r#"["http://127.0.0.1:{port}/metrics"]"#).as_str()),
            "stack.conf: the dashboard's {key} is {name}'s /metrics, one instance (dev-up adds the replicas)"
        );
        let there = in_compose.get(&key).map(|value| compose_value(&key, value));
        assert_eq!(
            there.as_deref(),
            Some(format!(r#"["http://{name}:{port}/metrics"]"#).as_str()),
            "compose: the dashboard's {key} names the {name} service (every replica)"
        );
        expected.insert(key);
    }
    let scraped: BTreeSet<String> =
        dashboard.keys().filter(|key| key.starts_with("SECKILL_SCRAPE__")).cloned().collect();
    assert_eq!(scraped, expected, "stack.conf: the dashboard scrapes the programs with /metrics, no others");

    let gateway = port_of(&settings["gateway"]["SECKILL_LISTEN"]);
    assert_eq!(dashboard["SECKILL_GATEWAY_URL"], format!("http://127.0.0.1:{gateway}"), "stack.conf");
    let there = compose_value("SECKILL_GATEWAY_URL", &in_compose["SECKILL_GATEWAY_URL"]);
    assert_eq!(url_host(&there), Some("gateway"), "compose: the dashboard's SECKILL_GATEWAY_URL");
}

#[test]
fn prometheus_scrapes_every_replica_of_every_program_every_5_s() {
    let config: Prometheus = yaml_serde::from_str(&repo_file("deploy/prometheus/prometheus.yml"))
        .expect("prometheus.yml has the expected shape");
    assert_eq!(config.global.scrape_interval, "5s");
    let compose = compose();
    for (name, service) in programs(&compose) {
        let Some(metrics) = service.environment.get("SECKILL_METRICS_LISTEN") else { continue };
        let port = port_of(&compose_value("SECKILL_METRICS_LISTEN", metrics));
        let job = config.scrape_configs.iter().find(|job| job.job_name == name);
        let job = job.unwrap_or_else(|| panic!("prometheus.yml has no job {name}"));
        assert!(
            job.dns_sd_configs.iter().any(|sd| sd.names == [name] && sd.kind == "A" && sd.port == port),
            "prometheus.yml: job {name} finds every replica by DNS (type A, the name {name}, port {port})"
        );
    }
}

#[test]
fn every_program_runs_in_development_explicitly_with_one_cluster_key() {
    let stack = stack();
    let keys: BTreeSet<&String> = stack.iter().filter_map(|(_, settings)| settings.get("SECKILL_RPC__KEY")).collect();
    assert_eq!(keys.len(), 1, "one cluster key for all: {keys:?}");
    for (name, settings) in &stack {
        assert_eq!(settings.get("SECKILL_ENV").map(String::as_str), Some("development"), "{name}");
        assert!(settings.contains_key("SECKILL_RPC__KEY"), "{name} has no SECKILL_RPC__KEY");
    }
}

#[test]
fn compose_values_take_their_defaults_and_hosts_are_ignored() {
    let value = |text: &str| Value::String(text.to_owned());
    assert_eq!(compose_value("K", &value("${A:-x}")), "x");
    assert_eq!(compose_value("K", &value("${A-}")), "");
    assert_eq!(compose_value("K", &value("p$$w-${B:-y}z")), "p$w-yz");
    assert_eq!(url_host("amqp://guest:guest@rabbitmq:5672/%2f"), Some("rabbitmq"));
    assert_eq!(url_host("redis://127.0.0.1:6379"), Some("127.0.0.1"));
    assert_eq!(url_host("0.0.0.0:7001"), None);
    assert_eq!(without_host("postgres://postgres@postgres:5432/seckill"), "postgres://postgres@<host>:5432/seckill");
    assert_eq!(without_host("redis://redis"), "redis://<host>");
    assert_eq!(without_host("0.0.0.0:7001"), without_host("127.0.0.1:7001"));
}

#[test]
fn the_k6_script_defaults_to_the_stacks_gateway_admin_and_captcha() {
    let script = repo_file("loadtest/seckill.js");
    let default = |name: &str| {
        let start = format!("setting('{name}', '");
        let from = script.find(&start).unwrap_or_else(|| panic!("seckill.js has no default for {name}")) + start.len();
        script[from..].split('\'').next().unwrap_or_default().to_owned()
    };
    let stack: BTreeMap<String, BTreeMap<String, String>> = stack().into_iter().collect();
    let (user_service, gateway) = (&stack["user-service"], &stack["gateway"]);
    assert_eq!(default("ADMIN_USER"), user_service["SECKILL_ADMIN__USERNAME"]);
    assert_eq!(default("ADMIN_PASSWORD"), user_service["SECKILL_ADMIN__PASSWORD"]);
    assert_eq!(default("CAPTCHA"), gateway["SECKILL_CAPTCHA__TEST_ANSWER"]);
    let port = gateway["SECKILL_LISTEN"].rsplit(':').next().unwrap_or_default();
    assert_eq!(default("BASE_URL"), format!("http://127.0.0.1:{port}"));
}

#[test]
fn the_load_balancer_fronts_every_gateway_replica_on_the_gateways_port() {
    let compose = compose();
    let config = repo_file("deploy/haproxy/haproxy.cfg");
    let gateway_listen = compose_value("SECKILL_LISTEN", &compose.services["gateway"].environment["SECKILL_LISTEN"]);
    let gateway_port = gateway_listen.rsplit(':').next().expect("a port");
    let template = config.lines().map(str::trim).find(|line| line.starts_with("server-template")).expect("a template");
    assert!(
        template.split_whitespace().any(|word| word == format!("gateway:{gateway_port}")),
        "haproxy.cfg must resolve the `gateway` service on its port {gateway_port}: {template}"
    );
    let published = &compose.services["load-balancer"].ports[0];
    let container_port = published.rsplit(':').next().expect("a port");
    assert!(
        config.lines().any(|line| line.trim() == format!("bind :{container_port}")),
        "haproxy binds {container_port}"
    );
}
