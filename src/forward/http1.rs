//! The lean client of the common target: plain `http`, redirects not followed. Each
//! in-flight slot keeps an HTTP/1.1 connection alive (hyper's own, without a pool
//! around it), and the attempt that uses a connection drives it in its own task:
//! no connection task to wake, no per-request URL parsing or redirect layer. What it
//! cost as reqwest is in benches/README.md ("Forwarding to a target"); reqwest still
//! serves `https` and targets that follow redirects.
//!
//! Addresses are checked at every connection, like reqwest's resolver does for the
//! others (see [`address`]); the attempt's timeout is the caller's.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, HOST};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::address;

/// Bytes of an answer read at most; a longer answer's connection is not kept.
const ANSWER_LIMIT: usize = 64 << 10;

type Connection = http1::Connection<TokioIo<TcpStream>, Full<Bytes>>;

/// One kept-alive connection: the handle requests go through, and the connection
/// itself, polled only while an attempt uses it.
struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    connection: Pin<Box<Connection>>,
}

pub struct Client {
    /// What the resolver is asked (an IP literal without brackets).
    host: String,
    port: u16,
    /// The `Host` header: the URL's authority.
    authority: HeaderValue,
    /// The request target in origin form (path and query).
    path: Uri,
    allow_link_local: bool,
    connect_timeout: Duration,
    /// Connections between attempts; at most `keep` (the target's concurrency).
    idle: Mutex<Vec<Conn>>,
    keep: usize,
}

/// What the target answered: its status and the first bytes of its answer.
pub struct Answered {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Client {
    /// A client for `url` if it is one this client serves (`http`).
    pub fn for_url(
        url: &reqwest::Url,
        allow_link_local: bool,
        connect_timeout: Duration,
        keep: usize,
    ) -> Option<Result<Self, String>> {
        if url.scheme() != "http" {
            return None;
        }
        let made = || -> Result<Self, String> {
            let named = url.host_str().ok_or("url: no host")?;
            let host = named
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = url.port_or_known_default().unwrap_or(80);
            let authority = match url.port() {
                Some(port) => format!("{named}:{port}"),
                None => named.to_owned(),
            };
            let path = match url.query() {
                Some(query) => format!("{}?{query}", url.path()),
                None => url.path().to_owned(),
            };
            Ok(Self {
                host,
                port,
                authority: HeaderValue::try_from(authority).map_err(|e| format!("url: {e}"))?,
                path: Uri::try_from(path).map_err(|e| format!("url: {e}"))?,
                allow_link_local,
                connect_timeout,
                idle: Mutex::new(Vec::new()),
                keep,
            })
        };
        Some(made())
    }

    /// POSTs `body` with `headers`; the answer, or what went wrong in a few words.
    /// A kept connection the target closed meanwhile is replaced by a new one (the
    /// request was not sent on it); once sent, a request is never sent again here.
    pub async fn post(&self, mut headers: HeaderMap, body: Bytes) -> Result<Answered, String> {
        headers.insert(HOST, self.authority.clone());
        headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.path.clone();
        *request.headers_mut() = headers;
        let kept = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let (mut conn, request) = match kept {
            Some(mut conn) => match exchange(&mut conn, request).await {
                Exchange::Done(answered, reusable) => {
                    return Ok(self.done(conn, answered, reusable));
                }
                Exchange::Failed(error) => return Err(error),
                Exchange::Unsent(request) => (self.connect().await?, *request),
            },
            None => (self.connect().await?, request),
        };
        match exchange(&mut conn, request).await {
            Exchange::Done(answered, reusable) => Ok(self.done(conn, answered, reusable)),
            Exchange::Failed(error) => Err(error),
            Exchange::Unsent(_) => Err("request failed: the new connection closed".into()),
        }
    }

    fn done(&self, conn: Conn, answered: Answered, reusable: bool) -> Answered {
        if reusable {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < self.keep {
                idle.push(conn);
            }
        }
        answered
    }

    async fn connect(&self) -> Result<Conn, String> {
        let connecting = async {
            let addrs = match self.allow_link_local {
                true => tokio::net::lookup_host((self.host.as_str(), self.port))
                    .await
                    .map_err(|e| format!("{}: {e}", self.host))?
                    .collect(),
                false => address::resolve(&self.host, self.port).await?,
            };
            let stream = connect_any(&addrs).await?;
            // One small write per request: Nagle would hold the body for the ACK.
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let (sender, connection) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(Conn {
                sender,
                connection: Box::pin(connection),
            })
        };
        match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(error)) => Err(format!("could not connect: {error}")),
            Err(_) => Err("could not connect: timed out".into()),
        }
    }
}

async fn connect_any(addrs: &[SocketAddr]) -> Result<TcpStream, String> {
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last = format!("{addr}: {error}"),
        }
    }
    Err(last)
}

enum Exchange {
    /// Answered; whether the connection can carry another request.
    Done(Answered, bool),
    /// Sent (or maybe sent), and no answer.
    Failed(String),
    /// Not sent: the connection was closed before it could be.
    Unsent(Box<Request<Full<Bytes>>>),
}

/// One request on `conn`, driving the connection meanwhile (reads, writes, its end).
async fn exchange(conn: &mut Conn, request: Request<Full<Bytes>>) -> Exchange {
    let Conn { sender, connection } = conn;
    let work = async {
        if sender.ready().await.is_err() {
            return Exchange::Unsent(Box::new(request));
        }
        let response = match sender.try_send_request(request).await {
            Ok(response) => response,
            Err(mut error) => {
                return match error.take_message() {
                    Some(request) => Exchange::Unsent(Box::new(request)),
                    None => Exchange::Failed(describe(error.error())),
                };
            }
        };
        let status = response.status();
        let mut body = response.into_body();
        let mut kept = Vec::new();
        let mut read = 0;
        loop {
            match body.frame().await {
                None => break,
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        read += data.len();
                        let take = (super::status::ANSWER_BYTES.saturating_sub(kept.len()))
                            .min(data.len());
                        kept.extend_from_slice(&data[..take]);
                    }
                    if read > ANSWER_LIMIT {
                        // Left unread: the connection goes with it.
                        return Exchange::Done(Answered { status, body: kept }, false);
                    }
                }
                // The answer was cut short: what came of it still counts.
                Some(Err(_)) => return Exchange::Done(Answered { status, body: kept }, false),
            }
        }
        Exchange::Done(Answered { status, body: kept }, true)
    };
    let mut work = pin!(work);
    let mut ended = false;
    let exchanged = poll_fn(|cx| {
        if !ended && connection.as_mut().poll(cx).is_ready() {
            // Closed or broken: the request (if any) learns of it through `sender`.
            ended = true;
        }
        work.as_mut().poll(cx)
    })
    .await;
    match exchanged {
        Exchange::Done(answered, reusable) => Exchange::Done(answered, reusable && !ended),
        other => other,
    }
}

/// A hyper error in a few words, with its causes.
fn describe(error: &hyper::Error) -> String {
    super::send::with_causes(format!("request failed: {error}"), error)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    fn client(url: &str, allow_link_local: bool) -> Client {
        let url = reqwest::Url::parse(url).unwrap();
        Client::for_url(&url, allow_link_local, Duration::from_secs(1), 2)
            .expect("plain http")
            .unwrap()
    }

    /// A server that answers `per_connection` requests on each connection, then
    /// closes it; counts the connections.
    async fn server(per_connection: usize) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook?x=1", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    for _ in 0..per_connection {
                        // Each test request is small: the head and body in one read.
                        while !buffer.ends_with(b"{}") {
                            let mut chunk = [0; 4096];
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let head = String::from_utf8_lossy(&buffer).into_owned();
                        assert!(head.starts_with("POST /hook?x=1 HTTP/1.1\r\n"), "{head}");
                        assert!(head.contains("content-length: 2\r\n"), "{head}");
                        buffer.clear();
                        let answer = "HTTP/1.1 202 Accepted\r\ncontent-length: 5\r\n\r\nthank";
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, connections)
    }

    #[tokio::test]
    async fn a_connection_is_kept_and_replaced_once_the_target_closed_it() {
        let (url, connections) = server(2).await;
        let client = client(&url, false);
        for _ in 0..5 {
            let answered = client
                .post(HeaderMap::new(), Bytes::from_static(b"{}"))
                .await
                .unwrap();
            assert_eq!(answered.status, StatusCode::ACCEPTED);
            assert_eq!(answered.body, b"thank");
            // Let the server's close arrive before the next request.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Two requests a connection: every closed one was replaced, no attempt lost.
        assert_eq!(connections.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn idle_connections_are_bounded_by_the_concurrency() {
        let (url, connections) = server(usize::MAX).await;
        let client = client(&url, false);
        let posts = (0..6).map(|_| client.post(HeaderMap::new(), Bytes::from_static(b"{}")));
        for answered in futures::future::join_all(posts).await {
            assert_eq!(answered.unwrap().status, StatusCode::ACCEPTED);
        }
        assert_eq!(connections.load(Ordering::SeqCst), 6);
        assert_eq!(client.idle.lock().unwrap().len(), 2, "keep is 2");
    }

    #[tokio::test]
    async fn refused_addresses_are_not_connected_to() {
        let refused = client("http://169.254.169.254/latest/meta-data/", false);
        let error = refused
            .post(HeaderMap::new(), Bytes::from_static(b"{}"))
            .await
            .err()
            .unwrap();
        assert!(error.contains("link-local"), "{error}");
        let ipv6 = reqwest::Url::parse("http://[fd00:ec2::254]:8080/").unwrap();
        let lean = Client::for_url(&ipv6, false, Duration::from_secs(1), 1)
            .unwrap()
            .unwrap();
        let error = lean
            .post(HeaderMap::new(), Bytes::new())
            .await
            .err()
            .unwrap();
        assert!(error.contains("metadata"), "{error}");
        assert_eq!(lean.authority, "[fd00:ec2::254]:8080");
        // https is reqwest's.
        let https = reqwest::Url::parse("https://example.com/").unwrap();
        assert!(Client::for_url(&https, false, Duration::from_secs(1), 1).is_none());
    }
}
