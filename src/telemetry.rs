//! Logs and traces: log lines on stderr as text or JSON (`--log-format`), and, in binaries built
//! with the `otlp` feature, spans exported over OTLP/HTTP (`--otlp-endpoint`). The feature is off
//! by default: the exporter and its protobuf code add to every build, and most servers ship logs.
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::BoxError;

/// How log lines are written.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// For people: one line per event, with its span's fields.
    #[default]
    Text,
    /// For log shippers: one JSON object per line (`timestamp`, `level`, `fields`, `target`,
    /// `span`, `spans`).
    Json,
}

/// Keeps the trace exporter running; dropping it sends the spans still buffered.
pub struct Telemetry {
    #[cfg(feature = "otlp")]
    tracer: Option<otlp::Provider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        #[cfg(feature = "otlp")]
        if let Some(t) = self.tracer.take() {
            otlp::shutdown(t);
        }
    }
}

/// Installs the process's subscriber: `RUST_LOG` (default `info`, with the database crates at
/// `warn`), log lines on stderr in `format`, and spans to `otlp_endpoint` if given.
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> Result<Telemetry, BoxError> {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    #[cfg_attr(not(feature = "otlp"), allow(unused_mut))]
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = vec![match format {
        LogFormat::Text => lines.boxed(),
        LogFormat::Json => lines.json().boxed(),
    }];
    #[cfg(feature = "otlp")]
    let tracer = match otlp_endpoint {
        Some(endpoint) => {
            let (layer, provider) = otlp::layer(endpoint)?;
            layers.push(layer);
            Some(provider)
        }
        None => None,
    };
    #[cfg(not(feature = "otlp"))]
    if otlp_endpoint.is_some() {
        return Err(
            "--otlp-endpoint (OTEL_EXPORTER_OTLP_ENDPOINT) needs a binary built with the `otlp` feature: \
                    cargo build --release --features otlp"
                .into(),
        );
    }
    tracing_subscriber::registry().with(layers).with(filter).try_init()?;
    Ok(Telemetry {
        #[cfg(feature = "otlp")]
        tracer,
    })
}

#[cfg(feature = "otlp")]
mod otlp {
    //! Spans to an OpenTelemetry collector over OTLP/HTTP with protobuf bodies, sent by reqwest's
    //! blocking client from the batch processor's own thread (no gRPC stack).
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig;
    use tracing_subscriber::{Layer, Registry};

    use crate::BoxError;

    pub type Provider = opentelemetry_sdk::trace::SdkTracerProvider;

    /// The layer that turns `tracing` spans (a request's `graphql` span, with its operation name)
    /// into OpenTelemetry spans, batched to `endpoint` + `/v1/traces`.
    pub fn layer(endpoint: &str) -> Result<(Box<dyn Layer<Registry> + Send + Sync>, Provider), BoxError> {
        let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(url)
            .build()?;
        let resource = opentelemetry_sdk::Resource::builder().with_service_name("closedloop").build();
        let provider = Provider::builder().with_batch_exporter(exporter).with_resource(resource).build();
        let tracer = provider.tracer("closedloop");
        Ok((Box::new(tracing_opentelemetry::layer().with_tracer(tracer)), provider))
    }

    pub fn shutdown(provider: Provider) {
        if let Err(e) = provider.shutdown() {
            eprintln!("sending the last spans failed: {e}");
        }
    }
}
