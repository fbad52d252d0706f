//! `TestApp`: the real server on port 0 with a temp data dir, and a typed client that
//! signs deliveries the way GitHub does.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hookvault::App;
use hookvault::config::{Config, Secret};
use hookvault::ingest::Signature;
use hookvault::process::Stage;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SECRET: &str = "It's a Secret to Everybody";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub config: Config,
    // Kept alive for the app's lifetime; shared so a restart reuses it.
    pub data_dir: Arc<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts with the test defaults, adjusted by `tweak`.
    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_full(tweak, Vec::new()).await
    }

    /// Starts with extra processing stages.
    pub async fn spawn_full(tweak: impl FnOnce(&mut Config), stages: Vec<Arc<dyn Stage>>) -> Self {
        let data_dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        Self::spawn_in(data_dir, tweak, stages).await
    }

    /// Starts on an existing data dir.
    pub async fn spawn_in(
        data_dir: Arc<tempfile::TempDir>,
        tweak: impl FnOnce(&mut Config),
        stages: Vec<Arc<dyn Stage>>,
    ) -> Self {
        let mut config = Config::new(data_dir.path(), vec![Secret::new(SECRET)]);
        config.retry_base = Duration::from_millis(20);
        tweak(&mut config);
        Self::start(config, data_dir, stages).await
    }

    async fn start(
        config: Config,
        data_dir: Arc<tempfile::TempDir>,
        stages: Vec<Arc<dyn Stage>>,
    ) -> Self {
        Self::start_on("127.0.0.1:0", config, data_dir, stages).await
    }

    async fn start_on(
        address: &str,
        config: Config,
        data_dir: Arc<tempfile::TempDir>,
        stages: Vec<Arc<dyn Stage>>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind(address).await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn({
            let config = config.clone();
            async move {
                let app = stages.into_iter().fold(App::new(config), App::with_stage);
                app.run(listener, async {
                    let _ = stopped.await;
                })
                .await
                .expect("server ran");
            }
        });
        let client = client_builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self {
            address,
            client,
            config,
            data_dir,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Stops gracefully (the store closes) and starts again on the same data dir.
    pub async fn restart(mut self) -> Self {
        self.stop().await;
        Self::start(self.config.clone(), self.data_dir.clone(), Vec::new()).await
    }

    /// Starts again on the same data dir and the same port, after a stop: what a
    /// client sees as the server going away and coming back.
    pub async fn start_again_on_same_port(&mut self) {
        assert!(self.server.is_none(), "stop the server first");
        let address = self.address.trim_start_matches("http://").to_owned();
        let mut started = Self::start_on(
            &address,
            self.config.clone(),
            self.data_dir.clone(),
            Vec::new(),
        )
        .await;
        // What is left of `started` stops nothing when dropped.
        self.stop = started.stop.take();
        self.server = started.server.take();
    }

    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A delivery as GitHub sends it: JSON, signed with [`SECRET`].
    pub async fn post_signed(
        &self,
        event: &str,
        delivery_id: &str,
        body: &[u8],
    ) -> (StatusCode, Value) {
        self.post(Delivery::new(event, delivery_id, body)).await
    }

    /// Posts a delivery and, when it is acknowledged, waits until the store has
    /// applied it (an ack comes when the log has it; lists and counters follow).
    pub async fn post(&self, delivery: Delivery) -> (StatusCode, Value) {
        let answer = self.post_unapplied(delivery).await;
        if answer.0.is_success() {
            self.applied().await;
        }
        answer
    }

    /// Waits until every acknowledged delivery is applied to the store.
    pub async fn applied(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (_, health) = self.get_json("/api/webhooks/health").await;
            if health["data"]["log"]["applierLag"].as_u64() == Some(0) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the store did not apply the log: {health}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Posts a delivery and returns as soon as it is answered.
    pub async fn post_unapplied(&self, delivery: Delivery) -> (StatusCode, Value) {
        let mut request = self.client.post(self.url("/api/webhooks/github"));
        for (name, value) in &delivery.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request
            .body(delivery.body)
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_json(&self, path_and_query: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(self.url(path_and_query))
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `pagination.total` of the events list with this query string.
    pub async fn count(&self, query: &str) -> u64 {
        let (status, body) = self
            .get_json(&format!("/api/webhooks/events?{query}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["pagination"]["total"].as_u64().expect("total")
    }

    /// Waits until no event is pending (processing runs in the background).
    pub async fn settle(&self) {
        self.applied().await;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while self.count("status=pending").await > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "events stayed pending"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls one event until `done` holds for it; returns it.
    pub async fn wait_for(&self, delivery_id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (_, body) = self
                .get_json(&format!("/api/webhooks/events/{delivery_id}"))
                .await;
            if done(&body["data"]) {
                return body["data"].clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting on {delivery_id}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await;
        response
            .expect("request sent")
            .text()
            .await
            .expect("metrics text")
    }

    pub async fn post_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Delivery ids listed by the events API for this query string, newest first.
    pub async fn listed_ids(&self, query: &str) -> Vec<String> {
        let (status, body) = self
            .get_json(&format!("/api/webhooks/events?{query}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["deliveryId"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A request to the ingest endpoint; starts as a valid signed JSON delivery, and
/// tests break one part of it at a time.
#[derive(Clone)]
pub struct Delivery {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Delivery {
    pub fn new(event: &str, delivery_id: &str, body: &[u8]) -> Self {
        let headers = vec![
            ("X-GitHub-Event".into(), event.into()),
            ("X-GitHub-Delivery".into(), delivery_id.into()),
            ("X-GitHub-Hook-ID".into(), "292430182".into()),
            ("User-Agent".into(), "GitHub-Hookshot/044aadd".into()),
            ("Content-Type".into(), "application/json".into()),
            ("X-Hub-Signature-256".into(), sign(body)),
        ];
        Self {
            headers,
            body: body.to_vec(),
        }
    }

    pub fn without(mut self, header: &str) -> Self {
        self.headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case(header));
        self
    }

    pub fn with(self, header: &str, value: &str) -> Self {
        let mut delivery = self.without(header);
        delivery.headers.push((header.into(), value.into()));
        delivery
    }

    /// Replaces the body and signs the new one.
    pub fn body(self, body: &[u8]) -> Self {
        let mut delivery = self.with("X-Hub-Signature-256", &sign(body));
        delivery.body = body.to_vec();
        delivery
    }
}

/// An HTTP client. reqwest is built without a rustls crypto provider (hookvault
/// picks ring), so the process-wide one is installed first.
pub fn client_builder() -> reqwest::ClientBuilder {
    hookvault::server::tls::install_provider();
    reqwest::Client::builder()
}

pub fn client() -> reqwest::Client {
    client_builder().build().expect("a client")
}

pub fn sign(body: &[u8]) -> String {
    Signature::compute(SECRET.as_bytes(), body).to_header()
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// One example payload from `fixtures/`.
pub struct Fixture {
    pub event: String,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub json: Value,
}

impl Fixture {
    pub fn action(&self) -> Option<&str> {
        self.json["action"].as_str()
    }

    pub fn repository(&self) -> Option<&str> {
        self.json["repository"]["full_name"].as_str()
    }
}

/// Every fixture, in a stable order (event type, then example number).
pub fn fixtures() -> Vec<Fixture> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut all = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let event = dir.file_name().unwrap().to_str().unwrap().to_owned();
        for file in std::fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let json = serde_json::from_slice(&bytes).unwrap();
            all.push(Fixture {
                event: event.clone(),
                path,
                bytes,
                json,
            });
        }
    }
    all.sort_by(|a, b| a.path.cmp(&b.path));
    all
}

pub fn fixture(event: &str, n: usize) -> Fixture {
    fixtures()
        .into_iter()
        .find(|f| f.event == event && f.path.file_stem().unwrap() == n.to_string().as_str())
        .unwrap_or_else(|| panic!("no fixture {event}/{n}"))
}

/// A verified delivery built the way the ingest endpoint builds it, for tests that
/// drive the store directly.
pub fn delivery(event: &str, body: &[u8]) -> hookvault::domain::Delivery {
    let mut headers = http::HeaderMap::new();
    headers.insert("x-hub-signature-256", sign(body).parse().unwrap());
    headers.insert("content-type", "application/json".parse().unwrap());
    headers.insert("x-github-event", event.parse().unwrap());
    headers.insert("x-github-delivery", new_id().parse().unwrap());
    headers.insert("user-agent", "GitHub-Hookshot/test".parse().unwrap());
    let parsed = hookvault::ingest::DeliveryHeaders::parse(&headers, true).unwrap();
    hookvault::ingest::verify(
        parsed,
        &headers,
        body.to_vec().into(),
        &[Secret::new(SECRET)],
    )
    .unwrap()
}

/// Waits, if the top of the hour is less than `room` away, until it has passed: for
/// tests whose events must all fall in one hour bucket.
pub async fn clear_of_the_hour(room: Duration) {
    const HOUR_MS: i64 = 3_600_000;
    let now = hookvault::domain::timestamp::now_ms();
    let left = HOUR_MS - now.rem_euclid(HOUR_MS);
    if left < room.as_millis() as i64 {
        tokio::time::sleep(Duration::from_millis(left as u64 + 100)).await;
    }
}

/// Opens a store directly (no server), with content dedup off, for tests that drive
/// the store or the processor themselves.
pub fn open_store(dir: &Path) -> (hookvault::store::Store, hookvault::store::WriterHandle) {
    let options = hookvault::store::StoreOptions::plain(1 << 20);
    hookvault::store::Store::open(dir, &options).expect("store opens")
}

/// A load on a server that is about to be killed: `senders` connections post the
/// fixtures, each under a new delivery id, until the server stops answering. The
/// ids it acknowledged as stored are collected (the server must run without content
/// dedup, so every delivery is stored).
pub struct LoadUntilGone {
    pub senders: Vec<JoinHandle<()>>,
    pub acknowledged: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl LoadUntilGone {
    pub fn start(address: &str, senders: usize) -> Self {
        let corpus: Arc<Vec<(String, Vec<u8>)>> =
            Arc::new(fixtures().into_iter().map(|f| (f.event, f.bytes)).collect());
        let acknowledged: Arc<std::sync::Mutex<std::collections::HashSet<String>>> = Arc::default();
        let client = client();
        let senders = (0..senders)
            .map(|sender_index| {
                let url = format!("{address}/api/webhooks/github");
                let (client, acknowledged, corpus) =
                    (client.clone(), acknowledged.clone(), corpus.clone());
                tokio::spawn(async move {
                    for i in (sender_index..).step_by(senders) {
                        let id = new_id();
                        let (event, body) = &corpus[i % corpus.len()];
                        let delivery = Delivery::new(event, &id, body);
                        let mut request = client.post(&url);
                        for (name, value) in &delivery.headers {
                            request = request.header(name.as_str(), value.as_str());
                        }
                        let Ok(response) = request.body(delivery.body).send().await else {
                            return;
                        };
                        let Ok(answer) = response.json::<Value>().await else {
                            return;
                        };
                        assert_eq!(answer["data"]["status"], "stored", "{answer}");
                        acknowledged.lock().unwrap().insert(id);
                    }
                })
            })
            .collect();
        Self {
            senders,
            acknowledged,
        }
    }

    /// Waits for the senders (after the server is gone); the acknowledged ids.
    pub async fn finish(self) -> std::collections::HashSet<String> {
        for sender in self.senders {
            sender.await.unwrap();
        }
        self.acknowledged.lock().unwrap().clone()
    }
}
