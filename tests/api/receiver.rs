//! A forwarding target for the tests: a real HTTP/1.1 server on a loopback port that
//! records every request (headers and exact body bytes) and answers as the test
//! says: a status, no answer until the client gives up, or a closed connection.
//! Written on a raw socket (with `httparse`) so it can also misbehave in ways a
//! well-behaved server framework would not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct Request {
    /// Lower-case names.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
    /// When a 2xx answer to it was written (the request taken), if one was.
    pub taken_at: Option<Instant>,
}

impl Request {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    pub fn delivery_id(&self) -> &str {
        self.header("x-github-delivery")
    }

    pub fn seq(&self) -> u64 {
        self.header("x-hookvault-seq")
            .parse()
            .expect("a seq header")
    }

    pub fn attempt(&self) -> u32 {
        self.header("x-hookvault-delivery-attempt")
            .parse()
            .expect("an attempt header")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Status(u16),
    /// Never answers (the client's timeout ends it).
    Hang,
    /// Closes the connection without an answer.
    Close,
}

type Behaviour = Box<dyn Fn(&Request) -> Answer + Send + Sync>;

pub struct Receiver {
    pub url: String,
    /// Every request that came, in arrival order (answered or not).
    pub requests: Arc<Mutex<Vec<Request>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    server: JoinHandle<()>,
}

impl Receiver {
    /// Answers 200 to everything until told otherwise.
    pub async fn start() -> Self {
        Self::on(TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    /// On a given port (a target that comes back where it was).
    pub async fn start_on(port: u16) -> Self {
        Self::on(TcpListener::bind(("127.0.0.1", port)).await.unwrap())
    }

    fn on(listener: TcpListener) -> Self {
        let port = listener.local_addr().unwrap().port();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let behaviour: Arc<Mutex<Behaviour>> =
            Arc::new(Mutex::new(Box::new(|_| Answer::Status(200))));
        let server = tokio::spawn({
            let (requests, behaviour) = (requests.clone(), behaviour.clone());
            async move {
                while let Ok((socket, _)) = listener.accept().await {
                    let (requests, behaviour) = (requests.clone(), behaviour.clone());
                    tokio::spawn(serve(socket, requests, behaviour));
                }
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}/github-webhook/"),
            requests,
            behaviour,
            server,
        }
    }

    pub fn answer(&self, behaviour: impl Fn(&Request) -> Answer + Send + Sync + 'static) {
        *self.behaviour.lock().unwrap() = Box::new(behaviour);
    }

    pub fn received(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what was received (generous deadline).
    pub async fn wait_until(&self, what: &str, done: impl Fn(&[Request]) -> bool) -> Vec<Request> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let received = self.received();
            if done(&received) {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {} requests",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Serves the requests of one connection (keep-alive) until it closes.
async fn serve(
    mut socket: TcpStream,
    requests: Arc<Mutex<Vec<Request>>>,
    behaviour: Arc<Mutex<Behaviour>>,
) {
    let mut buffer = Vec::new();
    loop {
        let Some(request) = read_request(&mut socket, &mut buffer).await else {
            return;
        };
        let answer = (behaviour.lock().unwrap())(&request);
        let index = {
            let mut requests = requests.lock().unwrap();
            requests.push(request);
            requests.len() - 1
        };
        match answer {
            Answer::Status(status) => {
                let body = format!("answer {status}");
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\ncontent-type: text/plain\r\n\r\n{body}",
                    body.len()
                );
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                if (200..300).contains(&status) {
                    requests.lock().unwrap()[index].taken_at = Some(Instant::now());
                }
            }
            Answer::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Answer::Close => return,
        }
    }
}

async fn read_request(socket: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Request> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        if let httparse::Status::Complete(head) = parsed.parse(buffer).ok()? {
            let headers: HashMap<String, String> = parsed
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let length: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while buffer.len() < head + length {
                read_more(socket, buffer).await?;
            }
            let body = buffer[head..head + length].to_vec();
            buffer.drain(..head + length);
            return Some(Request {
                headers,
                body,
                at: Instant::now(),
                taken_at: None,
            });
        }
        read_more(socket, buffer).await?;
    }
}

async fn read_more(socket: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 16 << 10];
    let n = socket.read(&mut chunk).await.ok()?;
    (n > 0).then(|| buffer.extend_from_slice(&chunk[..n]))
}
