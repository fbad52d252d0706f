//! A consumer of what hookvault streams to NATS JetStream: a durable pull consumer
//! named `jobs` on the `workflow_job` deliveries, printing each one's delivery id and
//! subject and acknowledging it. The example of docs/streaming.md, compiled by
//! `cargo test` and run by its tests.
//!
//! `cargo run --example consume_jobs -- [nats-url] [count]`: from the first job not
//! yet acknowledged by `jobs`, forever or until `count` of them.

use async_nats::jetstream::{self, consumer::pull};
use futures::StreamExt;

#[tokio::main]
async fn main() -> Result<(), async_nats::Error> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let count = match args.next() {
        Some(count) => count.parse()?,
        None => usize::MAX,
    };

    let js = jetstream::new(async_nats::connect(url).await?);
    let stream = js.get_stream("HOOKVAULT_EVENTS").await?;
    let jobs = stream
        .get_or_create_consumer(
            "jobs",
            pull::Config {
                durable_name: Some("jobs".into()),
                filter_subject: "hookvault.events.workflow_job.>".into(),
                ..Default::default()
            },
        )
        .await?;
    let mut messages = jobs.messages().await?.take(count);
    while let Some(message) = messages.next().await {
        let message = message?;
        // The same id is sent again after an outage or a restart: a consumer that
        // must act once keeps the ids it has handled (docs/streaming.md, "At least once").
        let delivery = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get("X-GitHub-Delivery"))
            .map_or("?", |id| id.as_str());
        println!("{delivery} {}", message.subject);
        message.ack().await?;
    }
    Ok(())
}
