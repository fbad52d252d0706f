//! Real `nats-server -js` processes on free loopback ports (nats-server 2.15 from
//! tests/nats/requirements.txt, or Debian's 2.9; `.ci/run` installs both), killed
//! when dropped, and what the tests read back from a stream.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::StreamMessage};

use crate::skips::skip;

/// The stream hookvault creates by default.
pub const STREAM: &str = "HOOKVAULT_EVENTS";

/// `nats-server` on the PATH, or where Debian puts it (`/usr/sbin`, off a user's PATH).
fn binary() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nats-server"))
        .find(|path| path.is_file())
}

/// The binary, or `None` after recording the skip (a failure under CI).
pub fn installed() -> Option<PathBuf> {
    let found = binary();
    if found.is_none() {
        skip("nats-server is not installed (apt-get install nats-server)");
    }
    found
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One server; `cluster` makes it a member of a three-node cluster.
pub struct NatsServer {
    binary: PathBuf,
    pub port: u16,
    args: Vec<String>,
    pub store: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    /// A stand-alone JetStream server, or `None` when nats-server is missing.
    pub async fn start() -> Option<Self> {
        let mut server = Self::new(installed()?, Vec::new());
        server.run();
        server.ready().await;
        Some(server)
    }

    /// A server run from a configuration file: `config` is given the port and the
    /// store directory and returns the file's text (its `listen`, `jetstream` and
    /// whatever it requires of clients). Ready once its port takes connections: a
    /// server that wants credentials answers no anonymous client.
    pub async fn start_configured(config: impl FnOnce(u16, &Path) -> String) -> Option<Self> {
        let mut server = Self::new(installed()?, Vec::new());
        let file = server.store.path().join("nats.conf");
        std::fs::write(&file, config(server.port, server.store.path())).unwrap();
        server.args = vec!["-c".into(), file.to_str().unwrap().into()];
        server.run();
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", server.port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "nats-server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(server)
    }

    fn new(binary: PathBuf, args: Vec<String>) -> Self {
        Self {
            binary,
            port: free_port(),
            args,
            store: tempfile::tempdir().unwrap(),
            child: None,
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn run(&mut self) {
        // A configured server takes everything from its file.
        let configured = self.args.first().is_some_and(|a| a == "-c");
        let flags: Vec<String> = if configured {
            Vec::new()
        } else {
            let store = self.store.path().to_str().unwrap().to_owned();
            let port = self.port.to_string();
            ["-js", "-a", "127.0.0.1", "-p", &port, "-sd", &store]
                .map(String::from)
                .to_vec()
        };
        let child = Command::new(&self.binary)
            .args(&flags)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
    }

    /// Kills the server (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and store directory.
    pub async fn restart(&mut self) {
        self.run();
        self.ready().await;
    }

    /// Waits until JetStream answers (a cluster member: until its client port is open).
    async fn ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(client) = async_nats::connect(self.url()).await
                && (!self.args.is_empty() || jetstream_answers(client).await)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server on {} did not start",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// JetStream answers a lookup (of a stream that is not there) once it is up.
async fn jetstream_answers(client: async_nats::Client) -> bool {
    use async_nats::jetstream::context::GetStreamErrorKind;
    match jetstream::new(client).get_stream("NO_SUCH_STREAM").await {
        Ok(_) => true,
        Err(e) => matches!(e.kind(), GetStreamErrorKind::JetStream(_)),
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether `binary` knows JetStream's `sync_interval` (nats-server 2.10 and later).
fn knows_sync_interval(binary: &Path) -> bool {
    let output = Command::new(binary).arg("--version").output().unwrap();
    // "nats-server: v2.15.1"
    let said = String::from_utf8_lossy(&output.stdout);
    let version: Vec<u32> = said
        .trim()
        .rsplit('v')
        .next()
        .unwrap_or_default()
        .split('.')
        .filter_map(|n| n.parse().ok())
        .collect();
    version[..] >= [2, 10][..]
}

/// Three servers in one JetStream cluster, each with `sync_interval: always` (an
/// fsync per write: what a 200 in cluster mode needs to survive power loss), or
/// `None` when nats-server is missing.
pub async fn cluster() -> Option<Vec<NatsServer>> {
    let binary = installed()?;
    let sync_always = knows_sync_interval(&binary);
    if !sync_always {
        skip(
            "this nats-server (Debian's 2.9) has no sync_interval: the cluster tests run without it \
             (pip install -r tests/nats/requirements.txt)",
        );
    }
    let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut nodes: Vec<NatsServer> = (0..3)
        .map(|i| {
            let others: Vec<String> = routes
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, port)| format!("nats://127.0.0.1:{port}"))
                .collect();
            let args = vec![
                "-n".into(),
                format!("hv-{i}"),
                "--cluster_name".into(),
                "hookvault-test".into(),
                "--cluster".into(),
                format!("nats://127.0.0.1:{}", routes[i]),
                "--routes".into(),
                others.join(","),
            ];
            let mut server = NatsServer::new(binary.clone(), args);
            if sync_always {
                let file = server.store.path().join("sync.conf");
                std::fs::write(&file, "jetstream { sync_interval: always }\n").unwrap();
                server
                    .args
                    .extend(["-c".into(), file.to_str().unwrap().into()]);
            }
            server
        })
        .collect();
    for node in &mut nodes {
        node.run();
    }
    for node in &nodes {
        node.ready().await;
    }
    // JetStream in a cluster answers once the meta group has a leader.
    let client = async_nats::connect(nodes[0].url()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !jetstream_answers(client.clone()).await {
        assert!(
            Instant::now() < deadline,
            "the NATS cluster elected no leader"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Some(nodes)
}

/// The servers as `HOOKVAULT_NATS_URL` takes them.
pub fn urls(nodes: &[NatsServer]) -> String {
    nodes
        .iter()
        .map(NatsServer::url)
        .collect::<Vec<_>>()
        .join(",")
}

/// Every message in the stream, in stream order.
pub async fn messages(url: &str) -> Vec<StreamMessage> {
    messages_of(async_nats::connect(url).await.unwrap()).await
}

/// Every message in the stream, read through `client`, in stream order.
pub async fn messages_of(client: async_nats::Client) -> Vec<StreamMessage> {
    let js = jetstream::new(client);
    let mut stream = js.get_stream(STREAM).await.expect("the stream exists");
    let state = stream.info().await.unwrap().state.clone();
    let mut out = Vec::new();
    for seq in state.first_sequence..=state.last_sequence {
        if state.messages == 0 {
            break;
        }
        out.push(stream.get_raw_message(seq).await.expect("message"));
    }
    assert_eq!(out.len() as u64, state.messages);
    out
}

/// Messages the stream holds now (none before it exists).
pub async fn held(url: &str) -> u64 {
    let js = jetstream::new(async_nats::connect(url).await.unwrap());
    match js.get_stream(STREAM).await {
        Ok(mut stream) => stream.info().await.map_or(0, |i| i.state.messages),
        Err(_) => 0,
    }
}

/// Waits until the stream holds `count` messages (and no more come).
pub async fn wait_for_messages(url: &str, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let held = held(url).await;
        if held >= count {
            assert_eq!(held, count, "more messages than deliveries");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the stream holds {held} of {count} messages"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A header of a stored message. Parsed, so `Nats-Msg-Id` finds the library's
/// well-known header too.
pub fn header<'a>(message: &'a StreamMessage, name: &str) -> Option<&'a str> {
    let name: async_nats::HeaderName = name.parse().unwrap();
    message.headers.get(name).map(|v| v.as_str())
}
