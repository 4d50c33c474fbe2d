//! Why a backend could not answer, in terms every backend shares.

/// Why a backend could not load its model or answer a request.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A request cannot be answered as given.
    #[error("request cannot be scored: {0}")]
    BadRequest(String),
    /// The request cache failed.
    #[error("{0}")]
    Cache(String),
    /// A server could not answer (after retries), or answered with something unusable.
    #[error("{0}")]
    Server(String),
    /// An engine's own failure (loading the model, a forward pass), with the engine's message.
    #[error(transparent)]
    Engine(Box<dyn std::error::Error + Send + Sync + 'static>),
}
