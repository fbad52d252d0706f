//! The connection to NATS from the settings, and the stream: created when missing,
//! checked when present.

use std::time::Duration;

use async_nats::jetstream::{self, ErrorCode, context::GetStreamErrorKind, stream};

use super::subject::{SUBJECTS, covers};
use crate::config::{NatsAuth, NatsConfig};

/// JetStream drops a message whose `Nats-Msg-Id` it stored within this window: it
/// covers every re-send after a NATS outage, a failed publish or a restart (the cursor
/// is at most a second behind after a crash), as long as hookvault is back within it.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// How long a publish waits for its acknowledgement before it is sent again.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// A client that connects, and reconnects, in the background: a NATS server that is
/// down at start only delays publishing, it never stops hookvault.
pub async fn connect(config: &NatsConfig) -> Result<async_nats::Client, String> {
    let options = match &config.auth {
        NatsAuth::None => async_nats::ConnectOptions::new(),
        NatsAuth::Token(token) => async_nats::ConnectOptions::with_token(token.expose().into()),
        NatsAuth::UserPassword { user, password } => {
            async_nats::ConnectOptions::with_user_and_password(
                user.clone(),
                password.expose().into(),
            )
        }
        NatsAuth::NkeySeed(seed) => async_nats::ConnectOptions::with_nkey(seed.expose().into()),
        NatsAuth::CredsFile(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| format!("cannot read the credentials file {}: {e}", path.display()))?,
    };
    let mut options = options
        .name("hookvault")
        .retry_on_initial_connect()
        .max_reconnects(None)
        // Reconnects back off up to 5 s (the library's default is 4 s after a few).
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((100u64 << attempts.min(6)).min(5_000))
        })
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("connected to NATS"),
                async_nats::Event::Disconnected => tracing::warn!("disconnected from NATS"),
                other => tracing::warn!(event = %other, "NATS"),
            }
        });
    if let Some(ca) = &config.tls_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let Some((cert, key)) = &config.tls_client {
        options = options
            .add_client_certificate(cert.clone(), key.clone())
            .require_tls(true);
    }
    options
        .connect(config.servers.clone())
        .await
        .map_err(|e| format!("cannot connect to NATS: {e}"))
}

pub fn jetstream(client: async_nats::Client) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(ACK_TIMEOUT)
        .build(client)
}

/// Creates the events stream when it is missing; see [`ensure`].
pub async fn ensure_stream(js: &jetstream::Context, config: &NatsConfig) -> Result<(), String> {
    ensure(
        js,
        config,
        SUBJECTS,
        "GitHub webhook deliveries stored by hookvault",
    )
    .await
}

/// Creates the stream `config.stream` when it is missing (`subjects`, file storage,
/// the configured replicas and age limit, a two-minute duplicate window); when it
/// exists, its subjects must take `subjects`, or publishing could not work.
pub async fn ensure(
    js: &jetstream::Context,
    config: &NatsConfig,
    subjects: &str,
    description: &str,
) -> Result<(), String> {
    match js.get_stream(&config.stream).await {
        Ok(mut found) => {
            let info = found.info().await.map_err(|e| e.to_string())?;
            let ours = subjects;
            let subjects = &info.config.subjects;
            if subjects.iter().any(|s| covers(s, ours)) {
                Ok(())
            } else {
                Err(format!(
                    "the stream {} exists, but its subjects {subjects:?} do not take {ours}: \
                     add {ours} to it (`nats stream edit`) or set HOOKVAULT_NATS_STREAM",
                    config.stream
                ))
            }
        }
        Err(e) => match e.kind() {
            GetStreamErrorKind::JetStream(error)
                if error.error_code() == ErrorCode::STREAM_NOT_FOUND =>
            {
                js.create_stream(stream::Config {
                    name: config.stream.clone(),
                    subjects: vec![subjects.into()],
                    storage: stream::StorageType::File,
                    num_replicas: config.replicas,
                    max_age: config.max_age.unwrap_or_default(),
                    duplicate_window: DUPLICATE_WINDOW,
                    description: Some(description.into()),
                    ..Default::default()
                })
                .await
                .map_err(|e| format!("cannot create the stream {}: {e}", config.stream))?;
                tracing::info!(stream = %config.stream, replicas = config.replicas, "created the NATS stream");
                Ok(())
            }
            _ => Err(format!("cannot look up the stream {}: {e}", config.stream)),
        },
    }
}
