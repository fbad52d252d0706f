//! Streaming to NATS servers that require credentials or TLS, each a real
//! `nats-server` run from a configuration file: with the right setting every stored
//! delivery reaches the stream; with a wrong one nothing does, and health says why.
//! The `.creds` case runs the server in operator mode with an operator, account and
//! user JWT chain that the test signs itself, as `nsc` would.

use std::path::Path;
use std::time::{Duration, Instant};

use async_nats::ConnectOptions;
use hookvault::config::{NatsAuth, NatsConfig, Secret};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, fixtures, new_id};
use crate::nats::{self, NatsServer, header};

/// The server's `listen` and `jetstream` lines, then `requirement`.
fn config(port: u16, store: &Path, requirement: &str) -> String {
    format!(
        "listen: 127.0.0.1:{port}\njetstream {{ store_dir: {:?} }}\n{requirement}\n",
        store.to_str().unwrap()
    )
}

/// Posts three deliveries of different content; their ids.
async fn post_three(app: &TestApp) -> Vec<String> {
    let mut stored = Vec::new();
    for fixture in fixtures() {
        let id = new_id();
        let (status, body) = app.post_signed(&fixture.event, &id, &fixture.bytes).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["data"]["status"] == "stored" {
            stored.push(id);
        }
        if stored.len() == 3 {
            return stored;
        }
    }
    panic!("fewer than three fixtures of different content");
}

/// Health's `stream` once `done` holds of it.
async fn stream_health(app: &TestApp, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, health) = app.get_json("/api/webhooks/health").await;
        let stream = health["data"]["stream"].clone();
        if done(&stream) {
            return stream;
        }
        assert!(Instant::now() < deadline, "stream health stayed {stream}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// hookvault with `auth` publishes three deliveries to `server`, read back through
/// `reader`; hookvault with `wrong` publishes nothing and reports the refusal.
async fn publishes_only_with_the_right_setting(
    server: &NatsServer,
    right: impl FnOnce(&mut NatsConfig),
    wrong: impl FnOnce(&mut NatsConfig),
    reader: ConnectOptions,
) {
    let mut settings = NatsConfig::new(&server.url());
    right(&mut settings);
    let app = TestApp::spawn_with(move |c| c.nats = Some(settings)).await;
    let ids = post_three(&app).await;
    let status = stream_health(&app, |s| s["lag"] == 0 && s["published"] == 3).await;
    assert_eq!(status["connected"], true, "{status}");
    assert!(status["lastError"].is_null(), "{status}");

    let client = reader
        .connect(server.url())
        .await
        .expect("the reader connects");
    let messages = nats::messages_of(client.clone()).await;
    let published: Vec<&str> = messages
        .iter()
        .map(|m| header(m, "Nats-Msg-Id").unwrap())
        .collect();
    assert_eq!(published, ids, "every delivery once, in order");

    let mut settings = NatsConfig::new(&server.url());
    wrong(&mut settings);
    let refused = TestApp::spawn_with(move |c| c.nats = Some(settings)).await;
    post_three(&refused).await;
    let status = stream_health(&refused, |s| !s["lastError"].is_null()).await;
    assert_eq!(status["published"], 0, "{status}");
    assert_eq!(status["connected"], false, "{status}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        nats::messages_of(client).await.len(),
        3,
        "nothing more came in"
    );
}

fn secret(text: &str) -> Secret {
    Secret::new(text.to_owned())
}

#[tokio::test]
async fn a_token_server_takes_the_token_setting() {
    let Some(server) = NatsServer::start_configured(|port, store| {
        config(port, store, "authorization { token: \"s3cret-token\" }")
    })
    .await
    else {
        return;
    };
    publishes_only_with_the_right_setting(
        &server,
        |c| c.auth = NatsAuth::Token(secret("s3cret-token")),
        |c| c.auth = NatsAuth::Token(secret("not-the-token")),
        ConnectOptions::with_token("s3cret-token".into()),
    )
    .await;
}

#[tokio::test]
async fn a_user_and_password_server_takes_them() {
    let Some(server) = NatsServer::start_configured(|port, store| {
        config(
            port,
            store,
            "authorization { users = [ { user: \"hookvault\", password: \"pa55word\" } ] }",
        )
    })
    .await
    else {
        return;
    };
    publishes_only_with_the_right_setting(
        &server,
        |c| {
            c.auth = NatsAuth::UserPassword {
                user: "hookvault".into(),
                password: secret("pa55word"),
            }
        },
        |c| {
            c.auth = NatsAuth::UserPassword {
                user: "hookvault".into(),
                password: secret("wrong"),
            }
        },
        ConnectOptions::with_user_and_password("hookvault".into(), "pa55word".into()),
    )
    .await;
}

#[tokio::test]
async fn an_nkey_server_takes_the_seed() {
    let user = nkeys::KeyPair::new_user();
    let stranger = nkeys::KeyPair::new_user();
    let public_key = user.public_key();
    let Some(server) = NatsServer::start_configured(|port, store| {
        config(
            port,
            store,
            &format!("authorization {{ users = [ {{ nkey: {public_key} }} ] }}"),
        )
    })
    .await
    else {
        return;
    };
    let seed = user.seed().unwrap();
    let reader = ConnectOptions::with_nkey(seed.clone());
    publishes_only_with_the_right_setting(
        &server,
        |c| c.auth = NatsAuth::NkeySeed(secret(&seed)),
        |c| c.auth = NatsAuth::NkeySeed(secret(&stranger.seed().unwrap())),
        reader,
    )
    .await;
}

/// A certificate authority and what it signed, as PEM files in `dir`.
struct Pki {
    ca: std::path::PathBuf,
    server: (std::path::PathBuf, std::path::PathBuf),
    client: (std::path::PathBuf, std::path::PathBuf),
}

fn pki(dir: &Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let signed = |name: &str, names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        (
            write(&format!("{name}.pem"), cert.pem()),
            write(&format!("{name}-key.pem"), key.serialize_pem()),
        )
    };
    let server = signed("server", vec!["127.0.0.1".into(), "localhost".into()]);
    let client = signed("client", vec!["hookvault".into()]);
    Pki {
        ca: write("ca.pem", ca.pem()),
        server,
        client,
    }
}

/// Mutual TLS: the server's certificate is checked against the CA setting, and the
/// server takes only a client certificate from the same CA.
#[tokio::test]
async fn a_tls_server_takes_the_ca_and_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let (ca, (cert, key)) = (pki.ca.clone(), pki.server.clone());
    let Some(server) = NatsServer::start_configured(|port, store| {
        config(
            port,
            store,
            &format!(
                "tls {{ cert_file: {cert:?}, key_file: {key:?}, ca_file: {ca:?}, verify: true }}"
            ),
        )
    })
    .await
    else {
        return;
    };
    let reader = ConnectOptions::new()
        .add_root_certificates(pki.ca.clone())
        .add_client_certificate(pki.client.0.clone(), pki.client.1.clone())
        .require_tls(true);
    let (ca, client) = (pki.ca.clone(), pki.client.clone());
    publishes_only_with_the_right_setting(
        &server,
        |c| {
            c.tls_ca = Some(ca);
            c.tls_client = Some(client);
        },
        // Trusts the server, but has no client certificate to show.
        |c| c.tls_ca = Some(pki.ca.clone()),
        reader,
    )
    .await;
}

/// A NATS JWT (header, claims, Ed25519 signature by `signer`), as `nsc` makes them.
fn jwt(signer: &nkeys::KeyPair, subject: &str, name: &str, nats: Value) -> String {
    use base64::Engine;
    let encode = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let header = encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let claims = serde_json::json!({
        "jti": new_id().replace('-', "").to_uppercase(),
        "iat": hookvault::domain::timestamp::now_ms() / 1000,
        "iss": signer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let signed = format!("{header}.{}", encode(claims.to_string().as_bytes()));
    let signature = signer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", encode(&signature))
}

/// A user's `.creds` file: its JWT and its seed, in `nsc`'s format.
fn creds(dir: &Path, name: &str, jwt: &str, user: &nkeys::KeyPair) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.creds"));
    let text = format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        user.seed().unwrap()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Operator mode: the server trusts an operator, which signed an account (with
/// JetStream), which signed the user in the `.creds` file. A user signed by another
/// account's key is refused.
#[tokio::test]
async fn an_operator_mode_server_takes_a_creds_file() {
    let operator = nkeys::KeyPair::new_operator();
    let account = nkeys::KeyPair::new_account();
    let user = nkeys::KeyPair::new_user();
    let unknown_account = nkeys::KeyPair::new_account();
    let stranger = nkeys::KeyPair::new_user();
    let unlimited = serde_json::json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
        "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
    });
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        "test-operator",
        serde_json::json!({"type": "operator", "version": 2}),
    );
    let account_jwt = jwt(
        &operator,
        &account.public_key(),
        "hookvault",
        serde_json::json!({"limits": unlimited, "type": "account", "version": 2}),
    );
    let user_claims = serde_json::json!({
        "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
        "type": "user", "version": 2,
    });
    let user_jwt = jwt(
        &account,
        &user.public_key(),
        "hookvault",
        user_claims.clone(),
    );
    let stranger_jwt = jwt(
        &unknown_account,
        &stranger.public_key(),
        "stranger",
        user_claims,
    );
    let dir = tempfile::tempdir().unwrap();
    let right = creds(dir.path(), "hookvault", &user_jwt, &user);
    let wrong = creds(dir.path(), "stranger", &stranger_jwt, &stranger);
    // JetStream in operator mode needs a system account.
    let system = nkeys::KeyPair::new_account();
    let system_jwt = jwt(
        &operator,
        &system.public_key(),
        "SYS",
        serde_json::json!({"type": "account", "version": 2}),
    );
    let (account_key, system_key) = (account.public_key(), system.public_key());
    let Some(server) = NatsServer::start_configured(|port, store| {
        config(
            port,
            store,
            &format!(
                "operator: {operator_jwt}\nsystem_account: {system_key}\nresolver: MEMORY\n\
                 resolver_preload: {{ {account_key}: {account_jwt}, {system_key}: {system_jwt} }}"
            ),
        )
    })
    .await
    else {
        return;
    };
    let reader = ConnectOptions::with_credentials_file(right.clone())
        .await
        .unwrap();
    publishes_only_with_the_right_setting(
        &server,
        |c| c.auth = NatsAuth::CredsFile(right.clone()),
        |c| c.auth = NatsAuth::CredsFile(wrong),
        reader,
    )
    .await;
}
